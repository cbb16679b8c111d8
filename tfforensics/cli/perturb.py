"""``tfforensics perturb``: noisy, blurred, JPEG-compressed or cropped copies of an image tree."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_flag, add_legacy, add_out, add_output_args, add_runtime_args, add_skip_bad, setup_logging,
    fraction, positive_int,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    from tfforensics.preprocess.perturb import ALIASES, COMPAT_MODES, KINDS

    parser = add_command(
        subparsers, "perturb",
        help="write perturbed copies (noise|blur|jpeg|crop|combined|all) of an image tree",
        description=(
            "Write a PNG copy of every image under SRC (class sub-folders kept) to OUT, perturbed as in "
            "Frank et al.'s robustness experiments: noise (Gaussian, std ~ U[5, 20]), blur (Gaussian, "
            "kernel 3/5/7/9, sigma 4 as the original), jpeg (quality 10..74), crop (5-20% of each side, "
            "resized back, bicubic), combined (each of the four in turn with probability P). As the "
            "original, each image is perturbed with probability P (default 0.5) and copied unchanged "
            "otherwise. `all` writes OUT/<kind>/ for every kind. OUT/perturbations.json records the "
            "parameters of each file; the same --seed gives the same output. --compat original rebuilds the "
            "paper's perturbed sets as the original script made them (JPEG always at quality 95, combined "
            "rotating one step per image, noise truncated, names <mode>_<i>.png; see docs)."
        ),
        examples="""
            tfforensics perturb jpeg data/celeba128 data/celeba128_jpeg
            tfforensics perturb all data/celeba128 data/celeba128_perturbed --seed 1
            tfforensics perturb noise data/mini data/mini_noise --probability 1 --workers 2
            tfforensics perturb cropping data/celeba128 data/celeba128_cropping --compat original
        """,
    )
    parser.add_argument("kind", metavar="KIND", choices=KINDS + ("all",) + tuple(ALIASES),
                        help="one of " + ", ".join(KINDS + ("all",)) + " (cropping: the original's name of crop)")
    parser.add_argument("source", metavar="SRC", help="folder of images, or of class sub-folders")
    add_out(parser, positional=True, required=True, detail="output folder (created; must be empty or absent)")
    parser.add_argument("--probability", "-p", type=fraction, default=0.5,
                        help="chance that an image (for combined: each step) is perturbed (default: 0.5)")
    add_flag(parser, "limit", detail="the original's --size")
    for spelling in ("--size", "-s"):  # create_perturbed_imagedata.py's count of images
        add_legacy(parser, spelling, "limit", means="--limit (the original's --size)", type=positive_int)
    add_flag(parser, "compat", choices=COMPAT_MODES,
             detail="original: the original script's draws, order, JPEG quality 95 and file names, seeded by --seed "
                    "(one process)")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.preprocess import perturb_folder

    setup_logging(args.quiet)
    result = perturb_folder(args.source, args.out, args.kind, probability=args.probability, seed=args.seed,
                            limit=args.limit, workers=args.workers, skip_bad=args.skip_bad,
                            overwrite=args.overwrite, progress=not args.quiet, compat=args.compat)
    for kind, counts in result.details.items():
        logger.info("%s: %d images written, %d perturbed", kind, counts["written"], counts["perturbed"])
    logger.info("%s: done, %d skipped", result.output, len(result.skipped))
    return 0
