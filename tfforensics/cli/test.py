"""``tfforensics test``: accuracy, precision/recall, AP and ROC AUC of a saved model on records."""

from __future__ import annotations

from tfforensics.cli._common import (
    add_command, add_flag, add_legacy, add_out, add_output_args, add_quiet, setup_logging,
)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "test",
        help="score a trained model on the test split of prepared records",
        description=(
            "Run MODEL (model.keras or a run directory written by `tfforensics train`) on a split of DATASET "
            "(prepared with the same encoding). Reports accuracy, per-class precision and recall, the confusion "
            "matrix, and for real vs fake (every class but the real one counts as fake) accuracy, average "
            "precision and ROC AUC, overall and per source. --out receives metrics.json, predictions.csv, "
            "confusion_matrix.png and roc.png."
        ),
        examples="""
            tfforensics test runs/ridge_dct/model.keras datasets/celeba_dct_log --out runs/ridge_dct/test
            tfforensics test runs/resnet datasets/lsun_dct_log --subset val --real-class lsun_real
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    parser.add_argument("dataset", metavar="DATASET",
                        help="dataset directory (or manifest.json) written by prepare, or the original "
                             "prepare_dataset.py output (<stem>_test_tf[/data.tfrecords] or <stem>_test/ .npy)")
    add_flag(parser, "subset", default="test")
    add_legacy(parser, "--split", "subset", means="--subset (the earlier spelling)", choices=["train", "val", "test"])
    add_flag(parser, "batch_size", default=64)
    add_flag(parser, "real_class", default_text="label 0", detail="for the real-vs-fake metrics")
    add_out(parser, detail="folder for metrics.json, predictions.csv and plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_quiet(parser, detail="print only the metrics")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.evaluate import evaluate_model, format_report

    setup_logging(args.quiet)
    report = evaluate_model(args.model, args.dataset, split=args.subset, batch_size=args.batch_size,
                            real_class=args.real_class, out=args.out, plots=not args.no_plots,
                            progress=not args.quiet, overwrite=args.overwrite)
    print(format_report(report))
    return 0
