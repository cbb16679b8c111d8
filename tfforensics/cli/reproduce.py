"""``tfforensics reproduce``: the whole pipeline on the embedded mini benchmark, with a report."""

from __future__ import annotations

import logging

from tfforensics.cli._common import add_command, add_out, add_output_args, add_runtime_args, setup_logging

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "reproduce",
        help="run every method on the embedded mini benchmark (or --data) and write a report",
        description=(
            "Builds the mini benchmark (the shipped crops of 209 real photos, split by photo, plus samples "
            "of tfforensics' own small GANs trained on the train photos, one per up-sampling family), "
            "prepares pixel and log-DCT records, trains and tests log2 and cnn on both (and without --quick NPR "
            "on pixels), runs "
            "leave-one-family-out detection, the kNN / eigenfaces / PRNU baselines, img2grad with the mini "
            "StyleGAN discriminator and the LGrad detector, Yu et al.'s network, DCT classifiers (and NPR) trained "
            "with blur + JPEG augmentation, a robustness table (every detector under JPEG, blur, resize "
            "and noise) and the Fourier regularisation, and writes OUT/report.md, report.html and "
            "results.json. --quick takes under 3 minutes on 2 CPU cores, the default profile about 15. OUT must be new, empty or a previous "
            "reproduce output: the same command again continues in it (each stage replaces only what it "
            "wrote and stops at a file it did not write); --overwrite first removes a previous reproduce "
            "output, and only when every file in it is one tfforensics wrote."
        ),
        examples="""
            tfforensics reproduce --quick --out reports/quick
            tfforensics reproduce --out reports/full --seed 1
            tfforensics reproduce --data data/celeba --out reports/celeba
        """,
    )
    parser.add_argument("--data", default=None,
                        help="your own folders instead of the benchmark: one sub-folder per source (the first "
                             "in sorted order is the real one), or already split into train/ val/ test/")
    parser.add_argument("--quick", action="store_true", help="small profile: fewer images, epochs and grid points")
    add_out(parser, default="reports/reproduce", detail="folder for the report and everything it needs")
    add_output_args(parser)
    add_runtime_args(parser, workers=True,
                     workers_detail="here also the stages that run side by side (classifiers, baselines, LGrad, "
                                    "Yu et al., augmentation, regularisation ...), one per process; --workers 1 "
                                    "runs them one after the other, with the same numbers (every process computes on one thread, "
                                    "so the numbers do not depend on the machine's cores either)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.benchmark.reproduce import reproduce

    setup_logging(args.quiet)
    results = reproduce(args.out, data=args.data, quick=args.quick, seed=args.seed, workers=args.workers,
                        command=args.command_line, overwrite=args.overwrite)
    logger.info("report: %s/report.md (and report.html, results.json); %.0f s in all",
                args.out, results["wall_s"])
    return 0
