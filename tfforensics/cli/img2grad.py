"""``tfforensics img2grad``: images -> StyleGAN discriminator gradient images (LGrad)."""

from __future__ import annotations

import logging

from tfforensics.errors import UserError
from tfforensics.cli._common import (
    add_command, add_filter, add_flag, add_legacy, add_out, add_output_args, add_runtime_args, add_skip_bad,
    setup_logging,
)

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "img2grad",
        help="images -> gradients of a pretrained StyleGAN discriminator (LGrad input)",
        description=(
            "For every image under SRC (recursively): resize to the discriminator's resolution (PIL), "
            "scale to [-1, 1], take the gradient of the summed discriminator output w.r.t. the input, "
            "min-max scale it per image to 0..255 and save it as OUT/<same relative path>/<name>.png (the original's "
            "output), or with --format tfrecords as records + manifest.json like every prepared dataset. "
            "The discriminator comes from an official StyleGAN (v1) .pkl, read without TF1 and without "
            "running code from the file, or from the port's own .keras/.npz. Runs on the GPU when present. "
            "OUT is tied to the images, the discriminator and the options (a fingerprint): the same command "
            "again reuses it or continues an interrupted run; other options need a new OUT or --overwrite."
        ),
        examples="""
            tfforensics img2grad data/CNNDetection/test grads/test --pkl karras2019stylegan-bedrooms-256x256.pkl
            tfforensics img2grad data/train grads/train_records --pkl karras2019stylegan-bedrooms-256x256.pkl --format tfrecords --split 0.9 0.1 0
            tfforensics img2grad photos/ grads/ --weights stylegan_d.npz --batch-size 32
        """,
    )
    parser.add_argument("source", metavar="SRC", help="image directory (searched recursively)")
    add_out(parser, positional=True, required=True, detail="output directory (PNG tree or dataset)")
    model = parser.add_argument_group("discriminator").add_mutually_exclusive_group(required=True)
    model.add_argument("--pkl", help="official karras2019stylegan-*.pkl (its D is used)")
    model.add_argument("--weights", help="the port's own discriminator (.keras or .npz)")
    group = parser.add_argument_group("processing")
    add_flag(group, "batch_size", default=16, detail="each image's gradient is independent of the batch")
    from tfforensics.io.images import RESIZE_FILTERS

    add_filter(group, default="bicubic", detail="to the discriminator's size; bicubic is PIL's default")
    add_legacy(group, "--resample", "filter", means="--filter (the earlier spelling)", choices=sorted(RESIZE_FILTERS))
    out = parser.add_argument_group("format")
    out.add_argument("--format", choices=["png", "tfrecords"], default="png",
                     help="PNG tree (default, the original's output) or TFRecords + manifest (raw RGB encoding: "
                          "pixels scaled to [-1, 1])")
    add_flag(out, "split", default_text="1 0 0, all in train", detail="with --format tfrecords")
    out.add_argument("--layout", choices=["original", "compact"], default="original",
                     help="with --format tfrecords: record layout (default: original)")
    add_skip_bad(parser)
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.models.lgrad import img2grad, load_discriminator

    setup_logging(args.quiet)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1. Received: --batch-size {args.batch_size}")
    from tfforensics.io.outputs import claim_output

    # before loading the discriminator: a refused OUT fails at once
    claim_output(args.out, overwrite=args.overwrite, sources=[args.source], command="img2grad",
                 reuse=lambda marker: marker.get("command") == "img2grad")
    model = load_discriminator(pkl=args.pkl, weights=args.weights)
    summary = img2grad(
        args.source, args.out, model, batch_size=args.batch_size, resample=args.filter, format=args.format,
        overwrite=args.overwrite, skip_bad=args.skip_bad, fractions=args.split, layout=args.layout,
        workers=args.workers, seed=args.seed, command=args.command_line, progress=not args.quiet,
    )
    logger.info("%s: %d images, %d gradients written at %dx%d, %d from an interrupted run (or reused), %d skipped",
                summary["output"], summary["images"], summary["written"], summary["resolution"],
                summary["resolution"], summary["kept_existing"], len(summary["skipped"]))
    return 0
