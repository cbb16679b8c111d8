"""``tfforensics report``: render report.md / report.html again from a run's results.json."""

from __future__ import annotations

from tfforensics.cli._common import add_command, add_output_args


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "report",
        help="render report.md and report.html again from a run's results.json (nothing is re-run)",
        description=(
            "Reads RUN_DIR/results.json (written by `tfforensics reproduce`: every number, and every figure as a "
            "path relative to RUN_DIR) and writes RUN_DIR/report.md and RUN_DIR/report.html, byte for byte what "
            "reproduce wrote. Nothing is trained or evaluated again. --embed-images puts the figures into "
            "report.html as data URIs, so that one file can be mailed or uploaded on its own (report.md keeps "
            "the links to the PNG files)."
        ),
        examples="""
            tfforensics report reports/quick --overwrite
            tfforensics report reports/quick --embed-images --overwrite   # one self-contained report.html
        """,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="output directory of `tfforensics reproduce` (holds results.json)")
    parser.add_argument("--embed-images", action="store_true",
                        help="embed the figures in report.html (base64 data URIs): one file to send around")
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.benchmark.report import render_run

    markdown_path, html_path = render_run(args.run_dir, embed_images=args.embed_images, overwrite=args.overwrite)
    print(f"{markdown_path}\n{html_path}")
    return 0
