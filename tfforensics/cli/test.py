"""``tfforensics test``: accuracy, precision/recall, AP and ROC AUC of a saved model on records."""

from __future__ import annotations

from tfforensics.cli._common import add_command, add_output_args, positive_int, setup_logging


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
            tfforensics test runs/resnet datasets/lsun_dct_log --split val --real-class lsun_real
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    parser.add_argument("dataset", metavar="DATASET",
                        help="dataset directory (or manifest.json) written by prepare, or the original "
                             "prepare_dataset.py output (<stem>_test_tf[/data.tfrecords] or <stem>_test/ .npy)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"], help="split (default: test)")
    parser.add_argument("--batch-size", "-b", type=positive_int, default=64, help="batch size (default: 64)")
    parser.add_argument("--real-class", default=None,
                        help="name or label of the real class for the real-vs-fake metrics (default: label 0)")
    parser.add_argument("--out", "--output", "-o", dest="out", default=None, help="directory for metrics.json, predictions.csv and plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar, print only the metrics")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.evaluate import evaluate_model, format_report

    setup_logging(args.quiet)
    report = evaluate_model(args.model, args.dataset, split=args.split, batch_size=args.batch_size,
                            real_class=args.real_class, out=args.out, plots=not args.no_plots,
                            progress=not args.quiet, overwrite=args.overwrite)
    print(format_report(report))
    return 0
