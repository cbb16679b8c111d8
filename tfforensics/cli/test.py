"""``tfforensics test``: accuracy, precision/recall, AP and ROC AUC of a saved model on records."""

from __future__ import annotations

from tfforensics.cli._common import (
    add_command, add_flag, add_legacy, add_out, add_output_args, add_quiet, add_skip_bad, nonnegative_int,
    setup_logging,
)
from tfforensics.errors import UserError


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "test",
        help="score a trained model on the test split of prepared records",
        description=(
            "Run MODEL (model.keras or a run directory written by `tfforensics train`) on a split of DATASET "
            "(prepared with the same encoding). Reports accuracy, per-class precision and recall, the confusion "
            "matrix, and for real vs fake (every class but the real one counts as fake) accuracy, average "
            "precision and ROC AUC, overall and per source. --out receives metrics.json, predictions.csv, "
            "confusion_matrix.png and roc.png. DATASET may also be a folder of images with one sub-folder "
            "per class (the 004 project's test sets): the sub-folder named like the model's real class (or "
            "`real`) is real, the others fake; it reports accuracy overall, on real and on fake images and "
            "per folder, and --save-errors N copies up to N false positives (real called fake) and N false "
            "negatives into OUT/false_positives and OUT/false_negatives."
        ),
        examples="""
            tfforensics test runs/ridge_dct/model.keras datasets/celeba_dct_log --out runs/ridge_dct/test
            tfforensics test runs/resnet datasets/lsun_dct_log --subset val --real-class lsun_real
            tfforensics test runs/cnn004 data/64x64/test --out runs/cnn004/test --save-errors 20
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    parser.add_argument("dataset", metavar="DATASET",
                        help="dataset directory (or manifest.json) written by prepare, or the original "
                             "prepare_dataset.py output (<stem>_test_tf[/data.tfrecords] or <stem>_test/ .npy), "
                             "or a folder of class sub-folders of images")
    add_flag(parser, "subset", default="test")
    add_legacy(parser, "--split", "subset", means="--subset (the earlier spelling)", choices=["train", "val", "test"])
    add_flag(parser, "batch_size", default=64)
    add_flag(parser, "real_class", default_text="label 0", detail="for the real-vs-fake metrics")
    add_out(parser, detail="folder for metrics.json, predictions.csv and plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--save-errors", type=nonnegative_int, default=0, metavar="N",
                        help="image folders: copy up to N false positives and N false negatives (most confident "
                             "first) into OUT/false_positives and OUT/false_negatives (default: 0, none)")
    add_skip_bad(parser)
    add_quiet(parser, detail="print only the metrics")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.evaluate import evaluate_model, format_report

    setup_logging(args.quiet)
    from tfforensics.evaluation.folder_test import evaluate_labelled_folder, format_folder_report, is_labelled_folder

    if is_labelled_folder(args.dataset):
        report = evaluate_labelled_folder(args.model, args.dataset, real_class=args.real_class,
                                          batch_size=args.batch_size, out=args.out, save_errors=args.save_errors,
                                          overwrite=args.overwrite, skip_bad=args.skip_bad, progress=not args.quiet)
        print(format_folder_report(report))
        return 0
    if args.save_errors:
        raise UserError(f"{args.dataset}: --save-errors copies image files, so it needs a folder of class "
                        "sub-folders of images, not records.")
    report = evaluate_model(args.model, args.dataset, split=args.subset, batch_size=args.batch_size,
                            real_class=args.real_class, out=args.out, plots=not args.no_plots,
                            progress=not args.quiet, overwrite=args.overwrite)
    print(format_report(report))
    return 0
