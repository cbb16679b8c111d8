"""``tfforensics resize``: every image of a folder to N x N (the 004 project's ``--is_testing``)."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_filter, add_flag, add_out, add_output_args, add_runtime_args, add_skip_bad, setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "resize",
        help="resize every image of a folder to N x N PNGs (no split)",
        description=(
            "Resize every image under SRC (sub-folders too) to SIZE x SIZE and write PNGs with the same "
            "names under OUT. The aspect ratio is not kept (crop first for that). To resize and split "
            "into train/dev/test, use `tfforensics split --size`."
        ),
        examples="""
            tfforensics resize data/raw/stylegan_test data/64x64/stylegan_test --size 64
            tfforensics resize data/raw/real data/128x128/real --size 128 --filter lanczos --skip-bad
        """,
    )
    parser.add_argument("source", metavar="SRC", help="folder of images (sub-folders are mirrored)")
    add_out(parser, positional=True, required=True, detail="output folder (created; must be empty or absent)")
    add_flag(parser, "size", required=True, detail="of the output images")
    add_filter(parser, default="bilinear", detail="bilinear is the 004 project's")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True, seed=False)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.preprocess import resize_folder

    setup_logging(args.quiet)
    result = resize_folder(args.source, args.out, args.size, filter=args.filter, workers=args.workers,
                           skip_bad=args.skip_bad, overwrite=args.overwrite, progress=not args.quiet)
    logger.info("%s: %d images resized to %dx%d, %d skipped", result.output, result.written, args.size,
                args.size, len(result.skipped))
    return 0
