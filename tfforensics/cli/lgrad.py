"""``tfforensics lgrad train|test``: the LGrad ResNet-50 detector on gradient images."""

from __future__ import annotations

import logging

from pathlib import Path

from tfforensics.cli._common import (
    ListAction, add_augment, add_command, add_flag, add_legacy, add_out, add_output_args, add_runtime_args,
    augmentation_of, positive_int, setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "lgrad",
        help="train / test the LGrad detector on gradient images",
        description=(
            "Binary ResNet-50 (real = 0, fake = 1) on gradient images written by `tfforensics img2grad`, "
            "laid out as CNNDetection: <root>/[<class>/]0_real|1_fake. The defaults are the original "
            "recipe (train-detector.sh): torchvision's ResNet-50 v1.5 with fc drawn from N(0, 0.02), Adam 5e-4 "
            "(0.9, 0.999), batch 16, 100 epochs, learning rate x0.8 after epoch 10, 20, ... (counted from 0, as "
            "train.py); train: resize 256, random crop 224, horizontal flip, ImageNet mean/std; test: no resize, "
            "no crop. The original started from torchvision's ImageNet weights, which are not shipped here."
        ),
        examples="""
            tfforensics lgrad train grads/train runs/lgrad-4class --classes car,cat,chair,horse
            tfforensics lgrad test runs/lgrad-4class grads/test --out runs/lgrad-4class/test
        """,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    _add_train(actions)
    _add_test(actions)


def _add_train(actions) -> None:
    train = add_command(
        actions, "train", help="train a detector",
        description=("Train on records from `img2grad --format tfrecords` (their train split; a val split is "
                     "scored each epoch) or on ROOT/[<class>/]0_real|1_fake gradient images, with the one "
                     "training loop of `tfforensics train`; writes the run directory OUT (model.keras, run.json, "
                     "checkpoints)."),
        examples="""
            tfforensics lgrad train grads/train runs/lgrad-horse --classes horse --val grads/val
            tfforensics lgrad train grads/train runs/lgrad-4class --classes car,cat,chair,horse --test grads/test
            tfforensics lgrad train grads/train runs/lgrad-robust --classes horse --augment blur_jpg_prob=0.5
            tfforensics lgrad train grads/train runs/quick --arch small --epochs 2 --load-size 64 --crop-size 56
        """,
    )
    train.add_argument("root", metavar="ROOT",
                       help="training gradient images, or records from `img2grad --format tfrecords` (train split)")
    add_out(train, positional=True, required=True, detail="run directory for model.keras and run.json")
    add_flag(train, "classes", default_text="all", detail="under ROOT, e.g. car,cat,chair,horse")
    train.add_argument("--val", default=None, metavar="DIR",
                       help="gradient images of the val split (the original's <dataroot>/val, same layout and "
                            "--classes), scored each epoch; records carry their own val split")
    train.add_argument("--test", default=None, metavar="DIR",
                       help="a tree of test families (as `lgrad test` takes), scored after every epoch at whose end "
                            "the learning rate decays, as the original tests its eight families; rows in run.json")
    model = train.add_argument_group("model")
    model.add_argument("--arch", choices=["resnet50", "resnet50_keras", "small"], default="resnet50",
                       help="resnet50 (default: torchvision's v1.5, the original's), resnet50_keras (Keras' v1, "
                            "for --weights imagenet) or a small residual net for quick CPU runs")
    model.add_argument("--weights", choices=["imagenet"], default=None,
                       help="with --arch resnet50_keras: start from Keras' ImageNet weights (downloaded by Keras; "
                            "default: random)")
    schedule = train.add_argument_group("schedule")
    add_flag(schedule, "epochs", default=100)
    add_flag(schedule, "batch_size", default=16)
    add_flag(schedule, "lr", default=5e-4)
    schedule.add_argument("--decay-every", type=positive_int, default=10, help="epochs between decays (default: 10)")
    schedule.add_argument("--decay-factor", type=float, default=0.8, help="learning-rate factor (default: 0.8)")
    augment = train.add_argument_group("augmentation")
    add_augment(augment, "the gradient images, before the resize, crop and flip (CNNDetection's order)")
    augment.add_argument("--load-size", type=positive_int, default=256, help="resize to this square first (default: 256)")
    augment.add_argument("--crop-size", type=positive_int, default=224, help="random crop (default: 224)")
    augment.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    augment.add_argument("--class-bal", dest="class_bal", action="store_true",
                         help="draw real and fake images with equal probability (the original's --class_bal; "
                              "off in its train-detector.sh)")
    # the original train.py's spellings (train-detector.sh), so its command lines still parse
    add_legacy(augment, "--class_bal", "class_bal", means="--class-bal (the original's spelling)",
               action="store_true")
    add_legacy(augment, "--no_flip", "no_flip", means="--no-flip (the original's spelling)", action="store_true")
    for original, dest in (("--niter", "epochs"), ("--delr_freq", "decay_every"), ("--loadSize", "load_size"),
                           ("--cropSize", "crop_size")):
        add_legacy(schedule, original, dest, means=f"--{dest.replace('_', '-')} (the original's spelling)",
                   type=positive_int)
    add_flag(schedule, "early_stopping", default_text="0, the original's fixed schedule",
             detail="for records with a val split", default=0)
    add_output_args(train)
    add_runtime_args(train)
    train.set_defaults(run=run_train)


def _add_test(actions) -> None:
    test = add_command(
        actions, "test", help="evaluate per GAN family",
        description=("Evaluate MODEL on ROOT/<family>/[<class>/]0_real|1_fake (or ROOT/0_real|1_fake): "
                     "ACC at 0.5, real ACC, fake ACC and average precision per family and their mean."),
        examples="""
            tfforensics lgrad test runs/lgrad-4class grads/test
            tfforensics lgrad test runs/lgrad-4class/model.keras grads/test --families progan stylegan --out results
        """,
    )
    test.add_argument("model", metavar="MODEL", help="run directory or .keras file from `lgrad train`")
    test.add_argument("root", metavar="ROOT", help="test gradient images, or a records dataset (see --split)")
    test.add_argument("--families", action=ListAction, default=None, metavar="NAME",
                      help="family folders (spaces or commas between them) (default: all)")
    add_flag(test, "batch_size", default=32)
    add_flag(test, "subset", default="test", detail="of a records dataset ROOT")
    add_legacy(test, "--split", "subset", means="--subset (the earlier spelling)", choices=["train", "val", "test"])
    add_out(test, detail="folder for metrics.json (a name ending in .json: that file, the earlier meaning)")
    add_output_args(test)
    add_runtime_args(test)
    test.set_defaults(run=run_test)


def run_train(args) -> int:
    from tfforensics.models.lgrad import TrainConfig, train_detector

    setup_logging(args.quiet)
    augmentation = augmentation_of(args)  # a bad --augment fails before any work
    config = TrainConfig(arch=args.arch, weights=args.weights, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.lr, decay_every=args.decay_every, decay_factor=args.decay_factor,
                         load_size=args.load_size, crop_size=args.crop_size, flip=not args.no_flip, seed=args.seed,
                         early_stopping=args.early_stopping or None, class_balance=args.class_bal,
                         augmentation=augmentation if augmentation is not None and augmentation.active else None)
    train_detector(args.root, args.out, config, classes=args.classes or None, progress=not args.quiet,
                   command=args.command_line, overwrite=args.overwrite, val_root=args.val,
                   test_root=args.test)
    logger.info("saved %s/model.keras", args.out)
    return 0


def run_test(args) -> int:
    from tfforensics.models.lgrad import evaluate_detector, format_table, load_detector, save_results

    setup_logging(args.quiet)
    target = None
    if args.out:
        from tfforensics.io.outputs import claim_file, json_is_ours

        target = Path(args.out) if Path(args.out).suffix == ".json" else Path(args.out) / "metrics.json"
        claim_file(target, overwrite=args.overwrite, ours=json_is_ours, what="metrics JSON")  # before the work
    model = load_detector(args.model)
    results = evaluate_detector(model, args.root, families=args.families or None, batch_size=args.batch_size,
                                progress=not args.quiet, split=args.subset)
    print(format_table(results))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        save_results(results, target)
    return 0
