"""``tfforensics classify``: share of images per class in a folder, by a saved model."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_flag, add_legacy, add_output_args, add_quiet, add_skip_bad, positive_int, setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "classify",
        help="classify a folder of raw images with a trained model",
        description=(
            "Score every image of IMAGE_DIR with MODEL (model.keras written by `tfforensics train`; it holds "
            "its own preprocessing and class names, so no mean/var files are needed) and print the share of "
            "images per predicted class. Images must have the model's size; they are read as luma when the "
            "model takes one channel."
        ),
        examples="""
            tfforensics classify runs/ridge_dct/model.keras ~/data/ffhq/fake --limit 1000
            tfforensics classify runs/resnet ~/data/mixed -b 64 --csv scores.csv
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    parser.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images, or one image file")
    add_flag(parser, "limit", default_text="all")
    for spelling in ("--size", "-s"):  # run_classifier.py's count of images (--size is an image side elsewhere)
        add_legacy(parser, spelling, "limit", means="--limit (the original's --size)", type=positive_int)
    add_flag(parser, "batch_size", default=32)
    parser.add_argument("--csv", default=None, metavar="FILE", help="write one row per image: path, class, scores")
    parser.add_argument("--recursive", action="store_true", help="include images in sub-folders")
    add_legacy(parser, "-r", "recursive", means="--recursive (-r is prepare's --raw)", action="store_true")
    add_skip_bad(parser)
    add_output_args(parser)
    add_quiet(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.classify import claim_csv, classify_images, write_csv
    from tfforensics.preprocess._folder import log_skipped

    setup_logging(args.quiet)
    if args.csv:
        claim_csv(args.csv, args.overwrite)  # before any work: a bad --csv fails at once
    result = classify_images(args.model, args.image_dir, size=args.limit, batch_size=args.batch_size,
                             skip_bad=args.skip_bad, recursive=args.recursive, progress=not args.quiet)
    print(result.summary())
    log_skipped(result.skipped)
    if args.csv:
        write_csv(result, args.csv)
        logger.info("wrote %s", args.csv)
    return 0
