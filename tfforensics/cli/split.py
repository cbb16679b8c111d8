"""``tfforensics split``: train/dev/test folders (70/20/10, seeded), optionally resized."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_filter, add_flag, add_out, add_output_args, add_runtime_args, add_skip_bad, setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "split",
        help="split a folder into train/dev/test folders (70/20/10), optionally resizing",
        description=(
            "Shuffle the images of each folder under SRC with --seed and write them to OUT/train, OUT/dev "
            "and OUT/test (class sub-folders are kept: OUT/train/<class>/...). With --size the images are "
            "resized to SIZE x SIZE PNGs (the 004 project's build_dataset.py); without it they are copied."
        ),
        examples="""
            tfforensics split data/raw/stylegan data/64x64/stylegan --size 64
            tfforensics split data/celeba128 data/celeba128_split --split 0.8 0.1 0.1 --seed 1
            tfforensics split data/mini data/mini_split --names train val test --skip-bad
        """,
    )
    parser.add_argument("source", metavar="SRC", help="folder of images, or of class sub-folders")
    add_out(parser, positional=True, required=True, detail="output folder (created; must be empty or absent)")
    add_flag(parser, "split", default=(0.7, 0.2, 0.1), detail="the val split is written to the folder named by --names")
    add_flag(parser, "size", default_text="copy the files unchanged", detail="resize to PIXELS x PIXELS PNGs")
    add_filter(parser, default="bilinear", detail="for --size")
    parser.add_argument("--names", nargs=3, metavar=("TRAIN", "DEV", "TEST"), default=("train", "dev", "test"),
                        help="names of the three split folders (default: train dev test)")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.preprocess import split_folder

    setup_logging(args.quiet)
    result = split_folder(args.source, args.out, fractions=tuple(args.split), size=args.size, filter=args.filter,
                          seed=args.seed, names=tuple(args.names), workers=args.workers, skip_bad=args.skip_bad,
                          overwrite=args.overwrite, progress=not args.quiet)
    counts = ", ".join(f"{name} {count}" for name, count in result.details["counts"].items())
    logger.info("%s: %s images, %d skipped", result.output, counts, len(result.skipped))
    return 0
