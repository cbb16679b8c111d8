"""``tfforensics classify``: share of images per class in a folder, by a saved model."""

from __future__ import annotations

import logging

from tfforensics.cli._common import add_command, add_output_args, add_skip_bad, positive_int, setup_logging

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
            tfforensics classify runs/ridge_dct/model.keras ~/data/ffhq/fake --size 1000
            tfforensics classify runs/resnet ~/data/mixed -b 64 --csv scores.csv
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    parser.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images, or one image file")
    parser.add_argument("--size", "-s", type=positive_int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--batch-size", "-b", type=positive_int, default=32, help="batch size (default: 32)")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write one row per image: path, class, scores")
    parser.add_argument("--recursive", "-r", action="store_true", help="include images in sub-folders")
    add_skip_bad(parser)
    add_output_args(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.classify import claim_csv, classify_images, write_csv
    from tfforensics.preprocess._folder import log_skipped

    setup_logging(args.quiet)
    if args.csv:
        claim_csv(args.csv, args.overwrite)  # before any work: a bad --csv fails at once
    result = classify_images(args.model, args.image_dir, size=args.size, batch_size=args.batch_size,
                             skip_bad=args.skip_bad, recursive=args.recursive, progress=not args.quiet)
    print(result.summary())
    log_skipped(result.skipped)
    if args.csv:
        write_csv(result, args.csv)
        logger.info("wrote %s", args.csv)
    return 0
