"""``tfforensics lgrad train|test``: the LGrad ResNet-50 detector on gradient images."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_output_args, add_runtime_args, nonnegative_int, positive_int, setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "lgrad",
        help="train / test the LGrad detector on gradient images",
        description=(
            "Binary ResNet-50 (real = 0, fake = 1) on gradient images written by `tfforensics img2grad`, "
            "laid out as CNNDetection: <root>/[<class>/]0_real|1_fake. The defaults are the original "
            "schedule: Adam 5e-4 (0.9, 0.999), batch 16, 100 epochs, learning rate x0.8 every 10 epochs; "
            "train: resize 256, random crop 224, horizontal flip, ImageNet mean/std; test: no resize, no crop."
        ),
        examples="""
            tfforensics lgrad train grads/train runs/lgrad-4class --classes car,cat,chair,horse
            tfforensics lgrad test runs/lgrad-4class grads/test --output runs/lgrad-4class/test.json
        """,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    train = add_command(
        actions, "train", help="train a detector",
        description=("Train on records from `img2grad --format tfrecords` (their train split; a val split is "
                     "scored each epoch) or on ROOT/[<class>/]0_real|1_fake gradient images, with the one "
                     "training loop of `tfforensics train`; writes the run directory OUT (model.keras, run.json, "
                     "checkpoints)."),
        examples="""
            tfforensics lgrad train grads/train runs/lgrad-horse --classes horse
            tfforensics lgrad train grads/train runs/quick --arch small --epochs 2 --load-size 64 --crop-size 56
        """,
    )
    train.add_argument("root", metavar="ROOT",
                       help="training gradient images, or records from `img2grad --format tfrecords` (train split)")
    train.add_argument("output", metavar="OUT", help="run directory for model.keras and run.json")
    train.add_argument("--classes", default=None,
                       help="comma-separated class folders under ROOT (e.g. car,cat,chair,horse; default: all)")
    model = train.add_argument_group("model")
    model.add_argument("--arch", choices=["resnet50", "small"], default="resnet50",
                       help="resnet50 (default, the original) or a small residual net for quick CPU runs")
    model.add_argument("--weights", choices=["imagenet"], default=None,
                       help="start from ImageNet weights as the original (downloaded by Keras; default: random)")
    schedule = train.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=positive_int, default=100, help="(default: 100)")
    schedule.add_argument("--batch-size", type=positive_int, default=16, help="(default: 16)")
    schedule.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default: 5e-4)")
    schedule.add_argument("--decay-every", type=positive_int, default=10, help="epochs between decays (default: 10)")
    schedule.add_argument("--decay-factor", type=float, default=0.8, help="learning-rate factor (default: 0.8)")
    augment = train.add_argument_group("augmentation")
    augment.add_argument("--load-size", type=positive_int, default=256, help="resize to this square first (default: 256)")
    augment.add_argument("--crop-size", type=positive_int, default=224, help="random crop (default: 224)")
    augment.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    schedule.add_argument("--early-stopping", type=nonnegative_int, default=0, metavar="EPOCHS",
                          help="patience on the val split's loss, for records with a val split (default: 0, the "
                               "original's fixed schedule)")
    add_output_args(train)
    add_runtime_args(train)
    train.set_defaults(run=run_train)

    test = add_command(
        actions, "test", help="evaluate per GAN family",
        description=("Evaluate MODEL on ROOT/<family>/[<class>/]0_real|1_fake (or ROOT/0_real|1_fake): "
                     "ACC at 0.5, real ACC, fake ACC and average precision per family and their mean."),
        examples="""
            tfforensics lgrad test runs/lgrad-4class grads/test
            tfforensics lgrad test runs/lgrad-4class/model.keras grads/test --families progan,stylegan --output m.json
        """,
    )
    test.add_argument("model", metavar="MODEL", help="run directory or .keras file from `lgrad train`")
    test.add_argument("root", metavar="ROOT", help="test gradient images, or a records dataset (see --split)")
    test.add_argument("--families", default=None, help="comma-separated family folders (default: all)")
    test.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    test.add_argument("--split", default="test", help="split of a records dataset ROOT (default: test)")
    test.add_argument("--out", "--output", "-o", dest="output", default=None, help="also write the metrics as JSON here")
    add_output_args(test)
    add_runtime_args(test)
    test.set_defaults(run=run_test)


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def run_train(args) -> int:
    from tfforensics.models.lgrad import TrainConfig, train_detector

    setup_logging(args.quiet)
    config = TrainConfig(arch=args.arch, weights=args.weights, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.lr, decay_every=args.decay_every, decay_factor=args.decay_factor,
                         load_size=args.load_size, crop_size=args.crop_size, flip=not args.no_flip, seed=args.seed,
                         early_stopping=args.early_stopping or None)
    train_detector(args.root, args.output, config, classes=_names(args.classes), progress=not args.quiet,
                   command=args.command_line, overwrite=args.overwrite)
    logger.info("saved %s/model.keras", args.output)
    return 0


def run_test(args) -> int:
    from tfforensics.models.lgrad import evaluate_detector, format_table, load_detector, save_results

    setup_logging(args.quiet)
    if args.output:
        from tfforensics.io.outputs import claim_file, json_is_ours

        claim_file(args.output, overwrite=args.overwrite, ours=json_is_ours, what="metrics JSON")  # before the work
    model = load_detector(args.model)
    results = evaluate_detector(model, args.root, families=_names(args.families), batch_size=args.batch_size,
                                progress=not args.quiet, split=args.split)
    print(format_table(results))
    if args.output:
        save_results(results, args.output)
    return 0
