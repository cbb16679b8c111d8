"""``tfforensics weights``: the heat map of a linear detector's weights over the spectrum."""

from __future__ import annotations

import logging

from tfforensics.cli._common import add_command, add_out, add_output_args, add_quiet, setup_logging

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "weights",
        help="heat map of a linear model's weights per DCT coefficient (extract_weights.py)",
        description=(
            "Plot |mean over colour channels| of the first kernel of MODEL (a linear model over the encoded "
            "image, e.g. `log` ridge regression on log-DCT coefficients) as a heat map, one per output unit: "
            "the frequencies the detector relies on. As GANDCTAnalysis' extract_weights.py (which used "
            "--vmax 0.04 and inferno). --out receives weights.npy (H x W x units), weights[_CLASS].png|pdf "
            "and weights.json."
        ),
        examples="""
            tfforensics weights runs/log_dct/model.keras --out runs/log_dct/weights
            tfforensics weights runs/ridge --out figures/ridge_weights --vmax 0.04 --format pdf
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory written by train")
    add_out(parser, default="weights", detail="folder for weights.npy, the plots and weights.json")
    parser.add_argument("--vmax", type=float, default=None,
                        help="upper end of the colour scale (the original: 0.04; default: the largest weight)")
    parser.add_argument("--cmap", default="inferno", help="matplotlib colour map (default: inferno)")
    parser.add_argument("--format", nargs="+", choices=["png", "pdf", "svg"], default=["png", "pdf"],
                        help="plot file formats (default: png pdf)")
    add_quiet(parser)
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.analysis.weights import plot_weight_maps
    from tfforensics.cli.stats import colormaps

    setup_logging(args.quiet)
    info = plot_weight_maps(args.model, args.out, vmax=args.vmax, cmap=colormaps([args.cmap])[0],
                            formats=tuple(args.format), overwrite=args.overwrite)
    logger.info("%s: weights %s, largest |mean| %.4g; files: %s", args.out, "x".join(map(str, info["shape"])),
                info["max"], ", ".join(info["files"]))
    return 0
