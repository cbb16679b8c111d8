"""``tfforensics mean-var``: train-split mean.npy / var.npy of the DCT (compute_mean_var.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from tfforensics.errors import UserError
from tfforensics.cli._common import (
    add_color_args, add_command, add_flag, add_legacy, add_out, add_output_args, add_runtime_args, add_skip_bad,
    color_of, setup_logging, positive_int,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "mean-var",
        help="mean.npy / var.npy of the DCT over the train split (for a DCT input layer)",
        description=(
            "Per-coefficient mean and population variance of the 2-D DCT, saved as OUT/mean.npy and "
            "OUT/var.npy (+ mean_var.json saying how). SRC is one of: a dataset written by `prepare` "
            "(its train split as stored; with --normalize its recorded statistics); one folder of class "
            "sub-folders (the train split `prepare` would draw with the same --split and --seed); or "
            "image folders (the first --limit images of each, as the original's AMOUNT). Folders give the raw "
            "DCT of RGB images by default, as the original; see --log and --grayscale."
        ),
        examples="""
            tfforensics mean-var data/celeba128 -o mean_var/celeba --log
            tfforensics mean-var data/ffhq/real data/ffhq/fake --limit 10000 -o mean_var/ffhq
            tfforensics mean-var datasets/celeba_dct_log -o mean_var/celeba_records
        """,
    )
    parser.add_argument("sources", metavar="SRC", nargs="+",
                        help="prepared dataset (or the original prepare_dataset.py output), class-folder tree or "
                             "image folders")
    add_out(parser, default="mean_var", detail="folder for mean.npy, var.npy and mean_var.json")
    add_flag(parser, "limit", default_text="all", detail="images per folder / class (for a dataset: records)")
    for spelling in ("--amount", "-n"):  # the earlier spellings (-n is prepare's --normalize)
        add_legacy(parser, spelling, "limit", means="--limit", type=positive_int)
    parser.add_argument("--log", "-l", action="store_true", help="statistics of log(|DCT| + 1e-12)")
    add_color_args(parser, default_color=True)
    add_flag(parser, "split", default_text="0.7 0.2 0.1", detail="of a class-folder tree, as given to prepare")
    parser.add_argument("--all-images", action="store_true", help="class-folder tree: use every image, not the train split")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.analysis.spectra import mean_var_from_dataset, mean_var_from_folders
    from tfforensics.data.manifest import MANIFEST_NAME
    from tfforensics.data.original import looks_original

    setup_logging(args.quiet)
    first = Path(args.sources[0])
    if (first / MANIFEST_NAME).is_file() or first.name == MANIFEST_NAME or looks_original(first):
        if len(args.sources) > 1:
            raise UserError(f"{args.sources[1]}: give one prepared dataset, or image folders, not both.")
        info = mean_var_from_dataset(first, args.out, limit=args.limit, overwrite=args.overwrite,
                                     progress=not args.quiet)
    else:
        info = mean_var_from_folders(args.sources, args.out, amount=args.limit, color=color_of(args, True),
                                     log=args.log, fractions=args.split, seed=args.seed,
                                     train_only=not args.all_images, skip_bad=args.skip_bad, workers=args.workers,
                                     overwrite=args.overwrite, progress=not args.quiet)
        if info["skipped"]:
            logger.warning("skipped %d bad images (listed in mean_var.json)", len(info["skipped"]))
    logger.info("%s: mean.npy, var.npy of shape %s from %d images (%s)", info["output"], info["shape"],
                info["count"], info["mode"])
    return 0
