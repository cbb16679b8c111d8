"""``tfforensics crop celeba|lsun``: the 128x128 crops of Frank et al. / Yu et al."""

from __future__ import annotations

import argparse
import logging
import textwrap

from tfforensics.cli._common import (
    add_command, add_flag, add_out, add_output_args, add_runtime_args, add_skip_bad, setup_logging,
)

logger = logging.getLogger(__name__)

_HELP = {
    "celeba": "fixed 128x128 face window of aligned CelebA images",
    "lsun": "centre square on the shorter side, resized to 128x128",
}

_KINDS = {
    "celeba": (
        "CelebA face window: size x size around row 121, column 89 (lower-right corner at "
        "(121 + size/2, 89 + size/2), clipped to the image), as GANFingerprints / GANDCTAnalysis.",
        """
        tfforensics crop celeba data/img_align_celeba data/celeba128
        tfforensics crop celeba data/img_align_celeba data/celeba128 --limit 100000 --skip-bad
        """,
    ),
    "lsun": (
        "LSUN: centre square on the shorter side, resized to size x size with the original's filter "
        "(scikit-image bilinear, anti-aliased).",
        """
        tfforensics crop lsun data/lsun_bedroom data/lsun128
        tfforensics crop lsun data/lsun_bedroom data/lsun64 --size 64 --workers 2
        """,
    ),
}


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "crop",
        help="crop a folder of CelebA or LSUN images to 128x128 PNGs",
        description=(
            "Crop every image under SRC (sub-folders too) and write PNGs with the same names under OUT. "
            "OUT appears only when every image is written."
        ),
        examples="""
            tfforensics crop celeba data/img_align_celeba data/celeba128
            tfforensics crop lsun data/lsun_bedroom data/lsun128
        """,
    )
    kinds = parser.add_subparsers(title="datasets", metavar="DATASET", dest="kind")
    for kind, (description, examples) in _KINDS.items():
        sub = kinds.add_parser(
            kind, help=_HELP[kind], description=description,
            epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("source", metavar="SRC", help="folder of images (sub-folders are mirrored)")
        add_out(sub, positional=True, required=True, detail="output folder (created; must be empty or absent)")
        add_flag(sub, "size", default=128, detail="of the output images")
        add_flag(sub, "limit", detail="the original's SIZE")
        add_skip_bad(sub)
        add_output_args(sub)
        add_runtime_args(sub, workers=True, seed=False)
        sub.set_defaults(run=run)
    parser.set_defaults(run=lambda args: _help(parser))


def _help(parser) -> int:
    parser.print_help()
    return 0


def run(args) -> int:
    from tfforensics.preprocess import crop_folder

    setup_logging(args.quiet)
    result = crop_folder(args.source, args.out, args.kind, args.size, workers=args.workers,
                         skip_bad=args.skip_bad, limit=args.limit, overwrite=args.overwrite,
                         progress=not args.quiet)
    logger.info("%s: %d images cropped (%s, %dx%d), %d skipped", result.output, result.written, args.kind,
                args.size, args.size, len(result.skipped))
    return 0
