"""``tfforensics train``: fit a classifier on prepared records; save it with its preprocessing."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_augment, add_command, add_flag, add_legacy, add_out, add_output_args, add_runtime_args, augmentation_of,
    setup_logging, positive_int,
)
from tfforensics.errors import UserError
from tfforensics.models.names import MODEL_NAMES

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "train",
        help="train a classifier (log, log2, nn, cnn, resnet, ...) on prepared records",
        description=(
            "Train MODEL on the train split of DATASET (a directory written by `tfforensics prepare`, or its "
            "manifest.json); the val split drives early stopping. Image size, channels and classes come from "
            "the manifest. The saved OUT/model.keras takes raw 0..255 images: the DCT, log scaling and "
            "normalisation of the dataset are layers inside it. On records of `prepare --layout pixels` those "
            "layers (frozen) encode the pixels during training too, and --augment can blur / JPEG-compress / "
            "resize / add noise to them first. An interrupted run continues from OUT/backup/ (a recent finished "
            "epoch) when the same command runs again. Models: " + ", ".join(MODEL_NAMES) + "."
        ),
        examples="""
            tfforensics train log2 datasets/celeba_dct_log --out runs/ridge_dct
            tfforensics train resnet datasets/lsun_dct_log -e 20 -b 64 --early-stopping 3 --out runs/resnet
            tfforensics train log3 datasets/ffhq_raw --l1 0.001 --l2 0.01 --lr 1e-4 --seed 1
            tfforensics train resnet datasets/lsun_pixels --augment blur_jpg_prob=0.5 --out runs/resnet_robust
            tfforensics train log2 data/ffhq_color_dct_log_scaled_train_tf data/ffhq_color_dct_log_scaled_val_tf --image_size 128
        """,
    )
    parser.add_argument("model", metavar="MODEL", choices=MODEL_NAMES, help="one of: " + ", ".join(MODEL_NAMES))
    parser.add_argument("dataset", metavar="DATASET",
                        help="dataset directory (or manifest.json) written by prepare, or the original "
                             "prepare_dataset.py output (<stem>_train_tf[/data.tfrecords] or <stem>_train/ .npy)")
    parser.add_argument("val", metavar="VAL", nargs="?", default=None,
                        help="the original's VAL_DATASET, for original record files whose val split is not "
                             "beside DATASET (a tfforensics dataset has its val split inside)")
    add_flag(parser, "class_names", default_text="0, 1, ...", detail="for original data without a manifest")
    fit = parser.add_argument_group("training")
    add_flag(fit, "epochs", default_text="50; cnn004: 10, as the 004 project")
    add_flag(fit, "batch_size", default=32, detail="the global batch, over all replicas")
    add_flag(fit, "lr", default_text="1e-3; npr: 2e-4")
    fit.add_argument("--l1", type=float, default=0.01, help="L1 penalty of log1/log3 (default: 0.01)")
    fit.add_argument("--l2", type=float, default=0.01, help="L2 penalty of log2/log3/nn (default: 0.01)")
    add_flag(fit, "early_stopping", default_text="5; cnn004: 0", detail="the best weights are restored")
    fit.add_argument("--hidden-units", type=positive_int, default=None,
                     help="nn: units of the hidden layer (the 004 project's --hidden_layer; default: 128)")
    # The 004 project's spellings (classifier.py's --batch_size, --early_stopping and --image_size are
    # hidden spellings of the shared flags), accepted so that old command lines still run.
    add_legacy(fit, "--epoch", "epochs", means="--epochs (the 004 project's)", type=positive_int)
    add_legacy(fit, "--hidden_layer", "hidden_units", means="--hidden-units (the 004 project's)", type=positive_int)
    add_augment(fit, "the train split of `prepare --layout pixels` records, before the model's own encoding")
    shape = parser.add_argument_group("overrides (default: from the manifest)")
    shape.add_argument("--num-classes", type=positive_int, default=None,
                       help="number of classes (1 or 2: one sigmoid unit)")
    add_legacy(shape, "--classes", "num_classes", means="--num-classes (the earlier spelling)", type=positive_int)
    add_flag(shape, "size", detail="of the records; must match them")
    shape.add_argument("--channels", type=int, choices=[1, 3], default=None,
                       help="channels the saved model takes (3 on a gray dataset: RGB in, luma inside)")
    add_out(parser, default_text="runs/MODEL-DATASET-TIME",
            detail="run directory: model.keras, run.json, checkpoints/, logs/ (TensorBoard)")
    add_output_args(parser)
    add_runtime_args(parser)
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TensorFlow ops also on GPU (slower; always on without GPU)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.training.fit import train

    setup_logging(args.quiet)
    augmentation = augmentation_of(args)  # a bad --augment fails before any work
    dataset = args.dataset
    if args.val is not None or args.class_names:
        from tfforensics.data.manifest import Manifest
        from tfforensics.data.original import infer_manifest, looks_original

        if not looks_original(dataset):
            raise UserError(f"{dataset}: VAL and --class-names are for the original prepare_dataset.py output "
                            "(no manifest); a tfforensics dataset has its val split and class names inside.")
        dataset = infer_manifest(dataset, val=args.val, class_names=args.class_names)
        if isinstance(dataset, Manifest) and "val" not in dataset.splits:
            logger.warning("%s: no val split found beside it; pass VAL for early stopping.", args.dataset)
    from tfforensics.models.classifiers import MODELS

    defaults = {"epochs": 50, "early_stopping": 5, "learning_rate": 1e-3,
                **getattr(MODELS[args.model], "train_defaults", {})}
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    early_stopping = defaults["early_stopping"] if args.early_stopping is None else args.early_stopping
    learning_rate = defaults["learning_rate"] if args.lr is None else args.lr
    if args.hidden_units is not None and args.model != "nn":
        raise UserError(f"--hidden-units sets the hidden layer of `nn`; {args.model} has no such option.")
    model_options = {"hidden_units": args.hidden_units} if args.hidden_units is not None else None
    result = train(
        args.model, dataset, out=args.out, epochs=epochs, batch_size=args.batch_size, model_options=model_options,
        l1=args.l1, l2=args.l2, learning_rate=learning_rate, early_stopping=early_stopping, seed=args.seed,
        deterministic=True if args.deterministic else None, num_classes=args.num_classes,
        image_size=args.size, channels=args.channels, overwrite=args.overwrite,
        verbose=0 if args.quiet else "auto", command=args.command_line, augmentation=augmentation,
    )
    run_info = result.run
    val = run_info["val_metrics"]
    logger.info("%s: %d epochs (best %d), %.0f samples/s%s", result.model_path, run_info["epochs_run"],
                run_info["best_epoch"], run_info["train_samples_per_second"] or 0,
                f", val accuracy {val['accuracy']:.2%}" if val else "")
    print(result.model_path)
    return 0
