"""``tfforensics prepare``: image folders to DCT or pixel TFRecords (or .npy)."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_command, add_output_args, add_runtime_args, add_skip_bad, setup_logging, fraction, nonnegative_int, positive_int,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "prepare",
        help="image folders -> DCT or pixel TFRecords / .npy with a manifest",
        description=(
            "Encode SRC (one sub-folder per source; labels follow the sorted folder names) into "
            "OUT/{train,val,test}/ shards and OUT/manifest.json. Default encoding: 2-D type-II "
            "orthonormal DCT per channel of the grayscale image. Records use the GANDCTAnalysis "
            "layout (image float list, label, shape) unless --layout compact (float16 bytes) or --layout pixels "
            "(the uint8 pixels, a quarter of the bytes: the encoding and its statistics are recorded in the "
            "manifest and applied when the records are read, or by the model's own layers in `train`, which "
            "can then augment the pixels with --augment)."
        ),
        examples="""
            tfforensics prepare data/celeba128 datasets/celeba_dct_log --log --color --normalize
            tfforensics prepare data/lsun datasets/lsun_raw --raw --color --sizes 100000 20000 30000
            tfforensics prepare data/mini datasets/mini_npy --log --format npy --skip-bad
            tfforensics prepare data/celeba128 datasets/celeba_pixels --log --color --normalize --layout pixels
            tfforensics prepare data/celeba128 datasets/celeba_dct --runner beam \\
                --beam-options="--direct_num_workers=4 --direct_running_mode=multi_processing"
            tfforensics prepare /mnt/shared/celeba128 /mnt/shared/celeba_dct --runner beam \\
                --beam-options="--runner=FlinkRunner --flink_master=flink-jobmanager:8081 --environment_type=LOOPBACK"
        """,
    )
    parser.add_argument("source", metavar="SRC", help="directory with one sub-folder of images per class")
    parser.add_argument("output", metavar="OUT", help="output dataset directory")
    enc = parser.add_argument_group("encoding")
    enc.add_argument("--raw", "-r", action="store_true", help="pixels scaled to [-1, 1] instead of the DCT")
    enc.add_argument("--log", "-l", action="store_true", help="log(|x| + 1e-12) of the DCT coefficients")
    enc.add_argument("--color", "-c", action="store_true", help="keep RGB (default: grayscale, as the original)")
    enc.add_argument("--abs", "-a", action="store_true", help="divide each coefficient by its train-split max |x|")
    enc.add_argument("--normalize", "-n", action="store_true",
                     help="zero mean, unit variance per coefficient, statistics from the train split only")
    out = parser.add_argument_group("layout")
    out.add_argument("--format", choices=["tfrecords", "npy"], default="tfrecords",
                     help="sharded TFRecords (default) or the original per-image .npy layout")
    out.add_argument("--layout", choices=["original", "compact", "pixels"], default="original",
                     help="record layout: original float list (default), compact float16 bytes, or pixels "
                          "(uint8, encoded on reading / inside the model; needed for train --augment)")
    out.add_argument("--gzip", action="store_true", help="GZIP-compress the record shards")
    out.add_argument("--shards", type=positive_int, default=None, help="shards per split (default: ~128 MiB each)")
    split = parser.add_argument_group("splits").add_mutually_exclusive_group()
    split.add_argument("--split", type=fraction, nargs=3, metavar=("TRAIN", "VAL", "TEST"), default=None,
                       help="fractions per class (default: 0.7 0.2 0.1)")
    split.add_argument("--sizes", type=nonnegative_int, nargs=3, metavar=("TRAIN", "VAL", "TEST"), default=None,
                       help="images per class in each split, as the original (e.g. 100000 20000 30000)")
    split.add_argument("--presplit", action="store_true",
                       help="SRC is already split: SRC/train/<class>/, SRC/val/<class>/, SRC/test/<class>/")
    engine = parser.add_argument_group("runner")
    engine.add_argument("--runner", choices=["local", "beam"], default="local",
                        help="local process pool (default) or an Apache Beam pipeline (extra tfforensics[beam]); "
                             "both write the same records and manifest")
    engine.add_argument("--beam-options", default=None, metavar='"FLAGS"',
                        help="Beam pipeline options, e.g. \"--runner=DataflowRunner --project=P --region=R "
                             "--temp_location=gs://B/tmp\" (default: DirectRunner); see docs/scaling.md")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.data import Encoding, prepare

    setup_logging(args.quiet)
    encoding = Encoding(
        transform="raw" if args.raw else "dct", log=args.log, color=args.color,
        abs_scale=args.abs, normalize=args.normalize,
    )
    manifest = prepare(
        args.source, args.output, encoding,
        format=args.format, layout=args.layout, compression="GZIP" if args.gzip else None,
        fractions=args.split, sizes=args.sizes, presplit=args.presplit, shards=args.shards, workers=args.workers,
        skip_bad=args.skip_bad, seed=args.seed, overwrite=args.overwrite,
        command=args.command_line, progress=not args.quiet, runner=args.runner, beam_options=args.beam_options,
    )
    counts = ", ".join(f"{split} {manifest.count(split)}" for split in manifest.splits)
    logger.info("%s: %s, %s classes %s, shape %s", manifest.root, encoding.describe(), manifest.num_classes,
                manifest.class_names, manifest.image_shape)
    logger.info("images: %s", counts)
    if manifest.skipped:
        logger.warning("skipped %d bad images (listed in manifest.json):", len(manifest.skipped))
        for entry in manifest.skipped:
            logger.warning("  %s: %s", entry["path"], entry["reason"])
    return 0
