"""``tfforensics prepare``: image folders to DCT or pixel TFRecords (or .npy)."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_color_args, add_command, add_flag, add_out, color_of, add_output_args, add_runtime_args, add_skip_bad, setup_logging,
    nonnegative_int, positive_int,
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
            "can then augment the pixels with --augment). The original "
            "prepare_dataset.py loaded RGB whatever -c said (-c only renamed its output), stored 0..255 for "
            "-r alone and [-1, 1] for -rn, and took the first 100000/20000/30000 files of each class in "
            "sorted order: --compat gandct gives its data (see docs/cli.md)."
        ),
        examples="""
            tfforensics prepare data/celeba128 datasets/celeba_dct_log --log --color --normalize
            tfforensics prepare data/lsun datasets/lsun_raw --raw --color --sizes 100000 20000 30000
            tfforensics prepare data/mini datasets/mini_npy --log --format npy --skip-bad
            tfforensics prepare data/celeba128 datasets/celeba_pixels --log --color --normalize --layout pixels
            tfforensics prepare data/celeba128 datasets/celeba_raw_original -r --compat gandct --sizes 2000 200 500
            tfforensics prepare data/celeba128 datasets/celeba_dct --runner beam \\
                --beam-options="--direct_num_workers=4 --direct_running_mode=multi_processing"
            tfforensics prepare /mnt/shared/celeba128 /mnt/shared/celeba_dct --runner beam \\
                --beam-options="--runner=FlinkRunner --flink_master=flink-jobmanager:8081 --environment_type=LOOPBACK"
        """,
    )
    parser.add_argument("source", metavar="SRC", help="directory with one sub-folder of images per class")
    add_out(parser, positional=True, required=True, detail="output dataset directory")
    enc = parser.add_argument_group("encoding")
    enc.add_argument("--raw", "-r", action="store_true",
                     help="pixels scaled to [-1, 1] instead of the DCT (the original's -r alone stored 0..255: "
                          "--compat gandct)")
    enc.add_argument("--log", "-l", action="store_true", help="log(|x| + 1e-12) of the DCT coefficients")
    enc.add_argument("--abs", "-a", action="store_true",
                     help="divide each coefficient by its train-split max |x| (the original's -a stopped with a "
                          "TypeError before writing anything)")
    enc.add_argument("--normalize", "-n", action="store_true",
                     help="zero mean, unit variance per coefficient, statistics from the train split only "
                          "(with --compat gandct -r: pixels scaled to [-1, 1], as the original's -rn)")
    add_flag(enc, "compat", choices=["gandct"], detail="gandct: the original prepare_dataset.py's data: RGB always, "
             "-r alone 0..255, -rn [-1, 1], the first --sizes files of each class in sorted order "
             "(default --sizes 100000 20000 30000, its constants)")
    add_color_args(parser, default_color=False)
    out = parser.add_argument_group("layout")
    out.add_argument("--format", choices=["tfrecords", "npy"], default="tfrecords",
                     help="sharded TFRecords (default) or the original per-image .npy layout")
    out.add_argument("--layout", choices=["original", "compact", "pixels"], default="original",
                     help="record layout: original float list (default), compact float16 bytes, or pixels "
                          "(uint8, encoded on reading / inside the model; needed for train --augment)")
    out.add_argument("--gzip", action="store_true", help="GZIP-compress the record shards")
    out.add_argument("--shards", type=positive_int, default=None, help="shards per split (default: ~128 MiB each)")
    split = parser.add_argument_group("splits").add_mutually_exclusive_group()
    add_flag(split, "split", default_text="0.7 0.2 0.1")
    split.add_argument("--sizes", type=nonnegative_int, nargs=3, metavar=("TRAIN", "VAL", "TEST"), default=None,
                       help="images per class in each split (the original's constants: 100000 20000 30000)")
    split.add_argument("--presplit", action="store_true",
                       help="SRC is already split: SRC/train/<class>/, SRC/val/<class>/, SRC/test/<class>/")
    parser.add_argument("--split-order", choices=["shuffled", "sorted"], default=None,
                        help="which files of a class go to which split: a seeded permutation (shuffled, the "
                             "default) or the first ones in sorted file-name order, train then val then test "
                             "(sorted, the original's; the default with --compat gandct)")
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


#: The original prepare_dataset.py's split constants (TRAIN_SIZE, VAL_SIZE, TEST_SIZE).
GANDCT_SIZES = (100_000, 20_000, 30_000)


def encoding_options(args) -> tuple:
    """``(Encoding, split order, sizes)`` from the flags; ``--compat gandct`` reads them as the original did."""
    from tfforensics.data import Encoding
    from tfforensics.errors import UserError

    if args.compat != "gandct":
        encoding = Encoding(transform="raw" if args.raw else "dct", log=args.log, color=color_of(args, False),
                            abs_scale=args.abs, normalize=args.normalize)
        return encoding, args.split_order or "shuffled", args.sizes
    if args.color is False:
        raise UserError("--grayscale: the original prepare_dataset.py loads RGB whatever -c says; drop --grayscale "
                        "or --compat gandct.")
    if args.raw:
        ignored = [flag for flag, on in (("--log", args.log), ("--abs", args.abs)) if on]
        if ignored:
            logger.warning("%s: ignored with -r, as the original ignores them for raw data.", " and ".join(ignored))
        # -r alone: the decoded uint8 pixels as they are; -rn: scale_image, x / 127.5 - 1.
        encoding = Encoding(transform="raw" if args.normalize else "raw255", color=True)
    elif args.abs:
        raise UserError("--abs with --compat gandct: the original's -a stops with a TypeError (a float slice "
                        "index) before writing anything, so there is no data of it to match; drop --compat gandct "
                        "for tfforensics' --abs.")
    else:
        encoding = Encoding(transform="dct", log=args.log, color=True, normalize=args.normalize)
    given = args.sizes is not None or args.split is not None or args.presplit
    sizes = args.sizes if given else GANDCT_SIZES
    return encoding, args.split_order or "sorted", sizes


def run(args) -> int:
    from tfforensics.data import prepare

    setup_logging(args.quiet)
    encoding, split_order, sizes = encoding_options(args)
    manifest = prepare(
        args.source, args.out, encoding,
        format=args.format, layout=args.layout, compression="GZIP" if args.gzip else None,
        fractions=args.split, sizes=sizes, split_order=split_order, presplit=args.presplit, shards=args.shards, workers=args.workers,
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
