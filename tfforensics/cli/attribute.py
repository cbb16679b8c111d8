"""``tfforensics attribute``: Yu et al.'s GAN-fingerprint attribution (train, test, fingerprints, immunize)."""

from __future__ import annotations

import logging

from tfforensics.cli._common import (
    add_augment, add_command, add_flag, add_legacy, add_out, add_output_args, add_quiet, add_runtime_args,
    augmentation_of, positive_int,
    setup_logging,
)
from tfforensics.errors import UserError
from tfforensics.evaluation.attribution import ATTRIBUTION_MODELS
from tfforensics.models.names import ATTRIBUTION_FRONT_ENDS

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "attribute",
        help="attribute images to the GAN that made them (Yu et al. ICCV 2019): train, test, fingerprints, immunize",
        description=(
            "GAN-fingerprint attribution after Yu, Davis & Fritz (ICCV 2019). `train` fits the attribution "
            "network (or its fingerprint-visualisation variant, visnet) on pixel records or straight on image "
            "folders; `test` attributes records, a folder or one image with a trained .keras model or a released "
            "GANFingerprints .pkl; `fingerprints` draws a visnet's model fingerprints and the demo panel; "
            "`immunize` measures accuracy under perturbations before and after fine-tuning on them."
        ),
        examples="""
            tfforensics attribute train datasets/gan_sources --out runs/yu
            tfforensics attribute test runs/yu path/to/image.png
            tfforensics attribute test CelebA_ProGAN_SNGAN_CramerGAN_MMDGAN_128.pkl test_images/
            tfforensics attribute fingerprints runs/yu_visnet --images test_images/ --out figures/
            tfforensics attribute immunize runs/yu --out runs/yu_immunized
        """,
    )
    commands = parser.add_subparsers(title="attribute commands", metavar="ACTION")
    _add_train(commands)
    _add_test(commands)
    _add_fingerprints(commands)
    _add_immunize(commands)
    parser.set_defaults(run=lambda args: (parser.print_help(), 0)[1])


def _add_train(commands) -> None:
    parser = add_command(
        commands, "train",
        help="train the attribution network on records or image folders",
        description=(
            "Train on SOURCE: a dataset written by `tfforensics prepare --raw --color` (pixels in [-1, 1]) or a "
            "folder with one sub-folder per source (real, each GAN), which is prepared into OUT/data first "
            "(split 0.7/0.2/0.1, all images of one size: crop or resize them first). Adam with beta1 0, beta2 "
            "0.99, left-right mirroring, as the original. OUT/model.keras takes raw 0..255 images."
        ),
        examples="""
            tfforensics attribute train datasets/gan_sources --out runs/yu
            tfforensics attribute train datasets/gan_sources_raw --arch attribution_predown --switching-res 32
            tfforensics attribute train datasets/gan_sources --arch visnet -e 20 --out runs/yu_visnet
            tfforensics attribute train datasets/gan_sources --augment blur_jpg_prob=0.5 --out runs/yu_robust
        """,
    )
    parser.add_argument("source", metavar="SOURCE", help="prepared pixel records, or image folders (one per source)")
    parser.add_argument("--arch", default="attribution", choices=ATTRIBUTION_MODELS,
                        help="network: attribution (default), attribution_predown, or visnet")
    add_legacy(parser, "--model", "arch", means="--arch (the earlier spelling; --model names a model file elsewhere)",
               choices=ATTRIBUTION_MODELS)
    fit = parser.add_argument_group("training")
    add_flag(fit, "epochs", default=30)
    add_flag(fit, "batch_size", default=32, detail="the global batch, over all replicas")
    add_flag(fit, "lr", default=1e-3)
    add_flag(fit, "early_stopping", default=5)
    add_augment(fit, "the train split of `prepare --layout pixels` records, before the model's own encoding")
    net = parser.add_argument_group("network")
    net.add_argument("--switching-res", type=positive_int, default=None,
                     help="attribution_predown: blur and sub-sample the input to this side first (default: half)")
    net.add_argument("--fmap-max", type=positive_int, default=None, help="most feature maps per layer (default: 512)")
    net.add_argument("--input", dest="front_end", default="pixels", choices=ATTRIBUTION_FRONT_ENDS,
                     help="attribution: what the first convolution sees, a fixed layer saved in the model that "
                          "still takes pixels: pixels (default, the published network), residual (NPR's "
                          "x - up(down(x)), Tan et al. CVPR 2024) or dct (log |DCT|). On real / nearest / "
                          "bilinear 32 px crops (1000 each) measured: test 52%% with pixels after 45 epochs, 93%% with "
                          "residual after 20, 99.7%% with dct after 5 (docs/attribution.md)")
    add_flag(net, "split", default_text="0.7 0.2 0.1", detail="when SOURCE is image folders")
    add_out(parser, default_text="runs/MODEL-SOURCE-TIME", detail="run directory")
    add_output_args(parser)
    add_runtime_args(parser, workers=True)
    parser.set_defaults(run=_train)


def _add_test(commands) -> None:
    parser = add_command(
        commands, "test",
        help="attribute records, a folder or one image",
        description=(
            "Attribute INPUT with MODEL (model.keras / a run directory from `attribute train`, or a released "
            "GANFingerprints .pkl, read without TF1 and without running any code in it). INPUT is a dataset "
            "(its --split is scored), a folder of images, a folder of source folders (named like the model's "
            "sources, so accuracy and the confusion matrix are printed), or one image file. Images of another "
            "size are resized with a warning. Prints the predicted source of every image and the share per source."
        ),
        examples="""
            tfforensics attribute test runs/yu image.png
            tfforensics attribute test runs/yu datasets/gan_sources_raw --subset test --out runs/yu/test
            tfforensics attribute test CelebA_ProGAN_SNGAN_CramerGAN_MMDGAN_128.pkl folder_of_pngs/
            tfforensics attribute test my_11_sources.pkl pngs/ --class-names real seed0 seed1 ...
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras, a run directory, or a GANFingerprints .pkl")
    parser.add_argument("input", metavar="INPUT", help="dataset directory, image folder, or one image")
    add_flag(parser, "subset", default="test", detail="of a dataset INPUT")
    add_legacy(parser, "--split", "subset", means="--subset (the earlier spelling)", choices=["train", "val", "test"])
    add_flag(parser, "class_names", default_text="the original's 5 or 11 names", detail="the sources of a .pkl")
    add_flag(parser, "batch_size", default=32)
    add_out(parser, detail="folder for metrics.json")
    add_output_args(parser)
    add_quiet(parser, detail="summary only, not one line per image")
    parser.set_defaults(run=_test)


def _add_fingerprints(commands) -> None:
    parser = add_command(
        commands, "fingerprints",
        help="save a visnet's model fingerprints and the demo panel of given images",
        description=(
            "Write the model fingerprints of MODEL (a run of `attribute train --arch visnet`) as one PNG per "
            "source and a grid (PNG and PDF) into OUT; with --images, also the demo panel of each image: the "
            "input, its image fingerprint, the model fingerprints, the response to each, and a bar plot of the "
            "responses (green: the true source when the folder names it, red: a wrong prediction)."
        ),
        examples="""
            tfforensics attribute fingerprints runs/yu_visnet --out figures/
            tfforensics attribute fingerprints runs/yu_visnet --images datasets/gan_sources --limit 10 --out figures/
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="visnet model.keras or run directory")
    parser.add_argument("--images", default=None, help="an image, a folder, or a folder of source folders")
    add_flag(parser, "limit", detail="one panel per image")
    add_out(parser, required=True, detail="folder for the figures")
    add_output_args(parser)
    add_quiet(parser, detail="print only the folder")
    parser.set_defaults(run=_fingerprints)


def _add_immunize(commands) -> None:
    from tfforensics.evaluation.attribution import IMMUNIZE_KINDS

    parser = add_command(
        commands, "immunize",
        help="accuracy under perturbations before and after fine-tuning on perturbed data",
        description=(
            "Perturb the test split of the run's records (noise, blur, JPEG, crop, relighting, as `tfforensics "
            "perturb`), score MODEL on each, fine-tune it on perturbed copies of the train split (one model on a "
            "mixture, or --per-kind one model per perturbation as the paper) and score again. Prints one table; "
            "OUT/immunization.json holds the numbers."
        ),
        examples="""
            tfforensics attribute immunize runs/yu
            tfforensics attribute immunize runs/yu --per-kind -e 10 --out runs/yu_immunized
        """,
    )
    parser.add_argument("model", metavar="RUN", help="run directory written by `attribute train`")
    parser.add_argument("--dataset", default=None, help="pixel records (default: those the run trained on)")
    parser.add_argument("--kinds", nargs="+", default=list(IMMUNIZE_KINDS), choices=IMMUNIZE_KINDS,
                        help="perturbations (default: all five)")
    parser.add_argument("--per-kind", action="store_true", help="fine-tune one model per perturbation")
    add_flag(parser, "epochs", default=5, detail="of fine-tuning")
    add_flag(parser, "batch_size", default=32)
    add_flag(parser, "lr", default_text="the run's / 10", detail="of fine-tuning")
    add_out(parser, default_text="RUN/immunize", detail="folder for immunization.json")
    add_output_args(parser)
    add_runtime_args(parser)
    parser.set_defaults(run=_immunize)


def _fingerprints(args) -> int:
    from tfforensics.evaluation.attribution import write_fingerprints

    setup_logging(args.quiet)
    written = write_fingerprints(args.model, args.out, images=args.images, overwrite=args.overwrite, limit=args.limit)
    logger.info("%d fingerprints, %d panel files", len(written["fingerprints"]), len(written["panels"]))
    print(args.out)
    return 0


def _immunize(args) -> int:
    from tfforensics.evaluation.attribution import format_immunization, immunize

    setup_logging(args.quiet)
    result = immunize(args.model, args.dataset, args.out, kinds=args.kinds, per_kind=args.per_kind,
                      epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                      overwrite=args.overwrite, verbose=0 if args.quiet else 2)
    print("\n".join(format_immunization(result)))
    return 0


def _train(args) -> int:
    from tfforensics.evaluation.attribution import train_attribution

    setup_logging(args.quiet)
    augmentation = augmentation_of(args)  # a bad --augment fails before any work
    options = {}
    if args.switching_res is not None:
        options["switching_res"] = args.switching_res
    if args.fmap_max is not None:
        options["fmap_max"] = args.fmap_max
    if args.front_end != "pixels":
        if args.arch != "attribution":
            raise UserError(f"--input {args.front_end} is for --arch attribution; {args.arch} reads pixels.")
        options["front_end"] = args.front_end
    result = train_attribution(
        args.source, args.out, model=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, early_stopping=args.early_stopping, seed=args.seed, model_options=options,
        fractions=args.split, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet,
        verbose=0 if args.quiet else "auto", command=args.command_line, augmentation=augmentation,
    )
    val = result.run["val_metrics"]
    logger.info("%s: %d epochs%s", result.model_path, result.run["epochs_run"],
                f", val accuracy {val['accuracy']:.2%}" if val else "")
    print(result.model_path)
    return 0


def _test(args) -> int:
    from tfforensics.evaluation.attribution import evaluate_attribution, format_confusion
    from tfforensics.evaluation.evaluate import format_report

    setup_logging(args.quiet)
    report, images = evaluate_attribution(args.model, args.input, split=args.subset, batch_size=args.batch_size,
                                          class_names=args.class_names, out=args.out, progress=not args.quiet,
                                          overwrite=args.overwrite)
    if images is None:
        print(format_report(report))
        print("\n".join(format_confusion(report)))
        return 0
    lines = images.lines()
    if args.quiet:
        lines = lines[len(images.paths):]
    print("\n".join(lines))
    return 0
