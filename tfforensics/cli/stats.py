"""``tfforensics stats``: mean / std DCT spectra per source, differences to the first, heat maps."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_color_args, add_command, add_flag, add_legacy, add_out, add_output_args, add_runtime_args, add_skip_bad,
    color_of, setup_logging, positive_int,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "stats",
        help="DCT spectrum statistics per source with heat maps (PNG + PDF)",
        description=(
            "For each source folder: mean and standard deviation of the 2-D DCT over up to --limit images "
            "(log-scaled for display), and log|mean_ref| - log|mean| against the first (reference) source, "
            "its absolute value and the ratio, as Frank et al.'s compute_statistics.py. Writes heat maps "
            "OUT/<cmap>/*.png|pdf (shared colour scales), OUT/overview.png|pdf, OUT/spectra.npz and "
            "OUT/spectra.json. A source is PATH or PATH,NAME; one folder of class sub-folders stands for "
            "its classes (sorted; the first is the reference)."
        ),
        examples="""
            tfforensics stats data/celeba128/real,REAL data/celeba128/progan,ProGAN --limit 10000 -o spectra/celeba
            tfforensics stats data/mini --color -o spectra/mini
            tfforensics stats data/ffhq/real data/ffhq/fake --cmap inferno coolwarm --format png
            tfforensics stats data/ffhq/real data/ffhq/fake --cmap original --format pdf
        """,
    )
    parser.add_argument("sources", metavar="SRC", nargs="+", help="source folders, reference first (PATH or PATH,NAME)")
    add_out(parser, default="spectra", detail="folder for the plots and numbers")
    add_flag(parser, "limit", default_text="all", detail="images per source")
    for spelling in ("--amount", "-n"):  # the earlier spellings (-n is prepare's --normalize)
        add_legacy(parser, spelling, "limit", means="--limit", type=positive_int)
    add_color_args(parser, default_color=False)
    parser.add_argument("--cmap", nargs="+", default=["inferno"],
                        help="matplotlib colour maps, one folder each; `original` stands for the original's five "
                             "(inferno Spectral spring jet coolwarm) (default: inferno)")
    parser.add_argument("--format", nargs="+", choices=["png", "pdf", "svg"], default=["png", "pdf"],
                        help="plot file formats (default: png pdf)")
    add_flag(parser, "batch_size", default=64, detail="images per DCT batch")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True, seed=False)
    parser.set_defaults(run=run)


def colormaps(names) -> tuple[str, ...]:
    """``--cmap`` values checked against matplotlib, ``original`` expanded, duplicates dropped."""
    import matplotlib

    from tfforensics.analysis.spectra import ORIGINAL_CMAPS
    from tfforensics.errors import UserError

    expanded = [c for name in names for c in (ORIGINAL_CMAPS if name == "original" else (name,))]
    unknown = [name for name in expanded if name not in matplotlib.colormaps]
    if unknown:
        raise UserError(f"--cmap: unknown matplotlib colour map {unknown[0]!r} (e.g. inferno, viridis, coolwarm, "
                        "or `original` for the original's five).")
    return tuple(dict.fromkeys(expanded))


def run(args) -> int:
    from tfforensics.analysis.spectra import spectrum_stats

    setup_logging(args.quiet)
    result = spectrum_stats(args.sources, args.out, amount=args.limit, color=color_of(args, False), cmaps=colormaps(args.cmap),
                            formats=tuple(args.format), batch_size=args.batch_size, skip_bad=args.skip_bad,
                            workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    for entry in result.summary()["sources"]:
        extra = f", mean |difference| to {result.names[0]}: {entry['mean_abs_difference']:.3f}" if "mean_abs_difference" in entry else ""
        logger.info("%s: %d images, mean log spectrum %.3f%s", entry["name"], entry["images"],
                    entry["mean_log_spectrum"], extra)
    if result.skipped:
        logger.warning("skipped %d bad images (listed in spectra.json)", len(result.skipped))
    logger.info("plots and numbers in %s", args.out)
    return 0
