"""``tfforensics regularize invert|train|visualize|sweep``: Fourier artifact regularisation of a generator."""

from __future__ import annotations

import logging
from pathlib import Path

from tfforensics.cli._common import (
    ListAction, add_command, add_flag, add_out, add_output_args, add_runtime_args, positive_int, setup_logging,
)

logger = logging.getLogger(__name__)
TYPES = ("l1", "frobenius", "l2", "cos", "azimuthal")


def _out(parser, help_text):
    add_out(parser, required=True, detail=help_text)


def _generator_args(parser):
    group = parser.add_argument_group("networks")
    group.add_argument("--weights", default=None,
                       help="StyleGAN generator .keras (default: the mini benchmark's shipped 64 px StyleGAN)")
    group.add_argument("--discriminator", default=None,
                       help="its discriminator .keras (default: the shipped one)")


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "regularize",
        help="fine-tune a StyleGAN with a Fourier loss and measure how often detectors still catch it",
        description=(
            "Fourier artifact regularisation (the artifact_regularization_for_gans original): invert real images "
            "into (real, latent) pairs, fine-tune the generator with adv_weight * softplus(-D(G(w))) + "
            "fourier_weight * Fourier(G(w), real), score every epoch with the project's detectors, draw the runs, "
            "and sweep the band threshold. See docs/regularize.md."
        ),
        examples="""
            tfforensics regularize invert --out pairs --crops 256
            tfforensics regularize train 1 1e3 cos 1e-3 1000 --pairs pairs --detector runs/dct/model.keras --out runs/reg_f
            tfforensics regularize train 1 0 cos 1e-3 1000 --pairs pairs --detector runs/dct/model.keras --out runs/reg_a
            tfforensics regularize visualize runs/reg_f runs/reg_a:3 --out figures
            tfforensics regularize sweep pairs --out sweep
        """,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    for add in (_add_invert, _add_train, _add_visualize, _add_sweep):
        add(actions)


def _add_invert(actions) -> None:
    invert = add_command(
        actions, "invert", help="real images -> (real image, latent) pairs in W",
        description=("Invert real images with the StyleGAN port (Adam on w, pixel MSE + feature MSE on the "
                     "discriminator's features, the original's 200 steps and keep rule loss < 0.3). Writes "
                     "OUT/real/*.png, OUT/latents.npy and OUT/manifest.json (losses of every image, kept or not)."),
        examples="""
            tfforensics regularize invert --out pairs --crops 512
            tfforensics regularize invert --images data/real64 --out pairs --steps 300 --keep-below 0.2
        """,
    )
    source = invert.add_mutually_exclusive_group()
    source.add_argument("--images", default=None, help="folder of real images at the generator's size")
    source.add_argument("--crops", type=positive_int, default=256,
                        help="number of crops of the bundled photos to invert when --images is not given (default: 256)")
    _out(invert, "folder for the pairs")
    options = invert.add_argument_group("inversion")
    options.add_argument("--steps", type=positive_int, default=200, help="Adam steps per image (default: 200, the original)")
    add_flag(options, "lr", default=0.01, detail="on w, idinvert's")
    options.add_argument("--feature-weight", type=float, default=1.0,
                         help="weight of the feature MSE (default: 1; 0 = pixels only)")
    options.add_argument("--feature-layer", default="16x16.Conv1_down",
                         help="discriminator layer of the features (default: 16x16.Conv1_down)")
    options.add_argument("--keep-below", type=float, default=0.3, help="keep pairs whose loss ends below (default: 0.3)")
    options.add_argument("--space", choices=("w", "wplus"), default="w",
                         help="one w for every layer, or one per layer (default: w)")
    add_flag(options, "batch_size", default=64, detail="images optimised together")
    _generator_args(invert)
    add_output_args(invert)
    add_runtime_args(invert)
    invert.set_defaults(run=run_invert)


def _add_train(actions) -> None:
    train = add_command(
        actions, "train", help="fine-tune on pairs; detection rate and quality per epoch",
        description=("Fine-tune the generator's synthesis network on PAIRS (D frozen; Adam beta1 0, beta2 0.99 at "
                     "LR / 2; batch 1) for --epochs epochs. Before the first epoch and after each one, N_IMAGES "
                     "samples (fixed latents) are scored by the detectors (share flagged as fake) and the quality "
                     "proxy (KID on the StyleGAN discriminator's features; mean log|DCT| distance to real images). "
                     "Running the same command again continues the run; a larger --epochs adds epochs."),
        examples="""
            tfforensics regularize train 0 1e3 cos 1e-4 1000 --pairs pairs --detector dct.keras --out runs/f
            tfforensics regularize train 1 1e3 cos 1e-5 1000 --pairs pairs --detector dct.keras --lgrad runs/lgrad --out runs/fa
            tfforensics regularize train 1 10 frobenius 1e-3 500 --pairs pairs --detector dct.keras --band radial:0.5-1 --out runs/r
            tfforensics regularize train 1 10 frobenius 1e-2 500 --pairs pairs --detector dct.keras --target mean --color --random-samples 8 --out runs/m
        """,
    )
    train.add_argument("adv_weight", metavar="ADV_WEIGHT", type=float, help="weight of softplus(-D(G(w)))")
    train.add_argument("fourier_weight", metavar="FOURIER_WEIGHT", type=float, help="weight of the Fourier term")
    train.add_argument("kind", metavar="TYPE", choices=TYPES, help=", ".join(TYPES))
    train.add_argument("learning_rate", metavar="LR", type=float, help="learning rate (Adam runs at LR / 2)")
    train.add_argument("n_images", metavar="N_IMAGES", type=positive_int, help="samples scored per epoch")
    train.add_argument("--pairs", required=True, help="folder written by `regularize invert`")
    _out(train, "run folder")
    loss = train.add_argument_group("Fourier term")
    loss.add_argument("--band", default=None,
                      help="threshold t (rows [t:-t], columns [t:]), low:R, high:R, radial:R1-R2 (R = frequency / "
                           "Nyquist) or all (default: the original's 40 scaled to the image side, 10 at 64 px)")
    loss.add_argument("--spectrum", choices=("dft", "dct"), default="dft",
                      help="|rfft2| of the gray image (the original) or the detectors' log|DCT| (default: dft)")
    add_flag(loss, "color", default=False, detail="compare each RGB channel's spectrum, not the gray one")
    loss.add_argument("--target", choices=("pair", "mean"), default="pair",
                      help="pair: each image's spectrum against its real image (the original); mean: the mean "
                           "standardised log-DCT spectrum of the batch against the mean of real reference images "
                           "(TYPE l1 or frobenius; --spectrum is not used; see docs/regularize.md) (default: pair)")
    loss.add_argument("--random-samples", type=int, default=0,
                      help="with --target mean: images from fresh random latents added to each step's batch "
                           "(default: 0)")
    loss.add_argument("--reference", default=None,
                      help="with --target mean: folder of real images whose mean spectrum is the target "
                           "(default: the pairs' real images)")
    add_flag(train, "epochs", default_text="20, the original's", default=20, detail="over the pairs")
    scoring = train.add_argument_group("scoring")
    scoring.add_argument("--detector", required=True, help="DCT classifier saved by `tfforensics train` (.keras)")
    add_flag(scoring, "real_class", default_text="label 0", detail="of the detector")
    scoring.add_argument("--lgrad", default=None, help="LGrad detector (`tfforensics lgrad train` run or .keras)")
    scoring.add_argument("--lgrad-discriminator", default=None,
                         help="StyleGAN discriminator .keras for the LGrad gradients (default: the shipped one)")
    scoring.add_argument("--real", default=None,
                         help="folder of real images for the quality proxy (default: N_IMAGES crops of the bundled "
                              "photos)")
    _generator_args(train)
    add_output_args(train)
    add_runtime_args(train)
    train.set_defaults(run=run_train)


def _add_visualize(actions) -> None:
    visualize = add_command(
        actions, "visualize", help="loss curves, detection per epoch, spectra and samples of several runs",
        description="Draw RUN[:EPOCH] ... side by side (EPOCH: the epoch to show; default the last).",
        examples="""
            tfforensics regularize visualize runs/f:17 runs/fa:10 runs/a:5 --out figures
        """,
    )
    visualize.add_argument("runs", metavar="RUN[:EPOCH]", nargs="+", help="run folders of `regularize train`")
    _out(visualize, "folder for the figures and visualize.json")
    add_output_args(visualize)
    visualize.set_defaults(run=run_visualize)


def _add_sweep(actions) -> None:
    sweep = add_command(
        actions, "sweep", help="spectral gap between real images and their reconstructions per band threshold",
        description=("The original's sweep: mean Frobenius (unscaled) and cosine Fourier dissimilarity between the "
                     "real images of PAIRS and the generator's images of their latents, for each threshold t "
                     "(1 .. side/2 - 1 by default; the original swept 1-127 at 256 px). Writes sweep.json and "
                     "sweep.png."),
        examples="""
            tfforensics regularize sweep pairs --out sweep
            tfforensics regularize sweep pairs --weights runs/f/generator.keras --spectrum dct --out sweep_f
        """,
    )
    sweep.add_argument("pairs", metavar="PAIRS", help="folder written by `regularize invert`")
    _out(sweep, "folder for sweep.json and sweep.png")
    sweep.add_argument("--thresholds", action=ListAction, default=None, metavar="T",
                       help="FIRST-LAST or a list, spaces or commas between them (default: all)")
    sweep.add_argument("--spectrum", choices=("dft", "dct"), default="dft", help="(default: dft)")
    sweep.add_argument("--weights", default=None, help="generator .keras (default: the shipped StyleGAN)")
    add_output_args(sweep)
    sweep.set_defaults(run=run_sweep)


def _generator(weights):
    from tfforensics.benchmark.gans import load_generator

    return load_generator("stylegan", weights)


def _discriminator(weights):
    from tfforensics.benchmark.gans import load_gan_discriminator

    return load_gan_discriminator("stylegan", weights)


def run_invert(args) -> int:
    import numpy as np

    from tfforensics.benchmark.gans import training_crops
    from tfforensics.errors import UserError
    from tfforensics.io.images import list_images, load_image
    from tfforensics.regularization.inversion import InversionConfig, write_pairs

    setup_logging(args.quiet)
    config = InversionConfig(steps=args.steps, learning_rate=args.lr, feature_weight=args.feature_weight,
                             feature_layer=args.feature_layer, keep_below=args.keep_below, space=args.space,
                             batch_size=args.batch_size, seed=args.seed)
    generator = _generator(args.weights)
    size = int(generator.output_shape[1])
    if args.images:
        paths = list_images(args.images)
        if not paths:
            raise UserError(f"{args.images}: contains no images.")
        images, sources = np.stack([load_image(p, size=(size, size), size_of="the generator's output")
                                    for p in paths]), paths
    else:
        images = training_crops(args.crops, size, seed=args.seed)
        sources = [f"bundled-photo crop {i} (seed {args.seed})" for i in range(len(images))]
    manifest = write_pairs(generator, images, args.out, discriminator=_discriminator(args.discriminator),
                           config=config, sources=sources, generator_source=args.weights or "shipped stylegan",
                           overwrite=args.overwrite, progress=not args.quiet, command=args.command_line)
    print(f"{args.out}: kept {manifest['kept']} of {manifest['count']} pairs (loss < {config.keep_below})")
    return 0


def run_train(args) -> int:
    import numpy as np

    from tfforensics.benchmark.gans import training_crops
    from tfforensics.errors import UserError
    from tfforensics.io.images import list_images, load_image
    from tfforensics.regularization.evaluation import QualityProxy, dct_detector, lgrad_detector
    from tfforensics.regularization.finetune import RegularizeConfig, finetune

    setup_logging(args.quiet)
    config = RegularizeConfig(adv_weight=args.adv_weight, fourier_weight=args.fourier_weight, kind=args.kind,
                              learning_rate=args.learning_rate, n_images=args.n_images, band=args.band,
                              spectrum=args.spectrum, color=args.color, target=args.target,
                              random_samples=args.random_samples, epochs=args.epochs, seed=args.seed)
    generator = _generator(args.weights)
    size = int(generator.output_shape[1])
    reference = None
    if args.reference:
        if args.target != "mean":
            raise UserError("--reference is the real spectrum of --target mean; add --target mean.")
        reference = np.stack([load_image(p, size=(size, size), size_of="the generator's output")
                              for p in list_images(args.reference)])
    detectors = [dct_detector(args.detector, args.real_class)]
    if args.lgrad:
        detectors.append(lgrad_detector(args.lgrad, args.lgrad_discriminator))
    if args.real:
        real = np.stack([load_image(p, size=(size, size), size_of="the generator's output")
                         for p in list_images(args.real)[:max(args.n_images, 2)]])
    else:
        real = training_crops(args.n_images, size, seed=args.seed + 7)
    record = finetune(args.pairs, args.out, config, detectors=detectors, quality=QualityProxy(real),
                      generator=generator, discriminator=_discriminator(args.discriminator), reference=reference,
                      generator_source=args.weights or "shipped stylegan", overwrite=args.overwrite,
                      progress=not args.quiet, command=args.command_line)
    keys = [k for k in record["epochs"][0] if k.endswith("_detection_rate")] + ["kid", "spectral_distance"]
    print("epoch  " + "  ".join(f"{k:>22}" for k in keys))
    for row in record["epochs"]:
        print(f"{row['epoch']:>5}  " + "  ".join(f"{row[k]:>22.4f}" for k in keys))
    print(f"{args.out}: generator.keras, run.json, epochs/, samples/, spectra.npz")
    return 0


#: What ``regularize visualize`` writes; visualize.json (the runs drawn) marks the figures as ours.
VISUALIZE_FILES = ("visualize.json", "losses.png", "detection.png", "spectra.png", "samples.png")


def run_visualize(args) -> int:
    from tfforensics.io.atomic import atomic_write_json
    from tfforensics.io.outputs import PRODUCER, claim_files
    from tfforensics.regularization.plots import plot_runs

    claim_files(args.out, VISUALIZE_FILES, record="visualize.json", command="regularize visualize",
                previous="figures", contents=", ".join(VISUALIZE_FILES[1:]), instead="--out",
                overwrite=args.overwrite)  # before the work
    paths = plot_runs(args.runs, args.out)
    atomic_write_json(Path(args.out) / "visualize.json", {"producer": PRODUCER, "runs": list(args.runs),
                                                          "files": [Path(p).name for p in paths]})
    for path in paths:
        print(path)
    return 0


def _thresholds(text):
    from tfforensics.errors import UserError

    if text is None:
        return None
    text = ",".join(text) if isinstance(text, list) else text
    try:
        if "-" in text:
            first, last = (int(v) for v in text.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--thresholds {text!r}: give FIRST-LAST (1-31) or a comma list (5,10,20).") from None


def run_sweep(args) -> int:
    import json

    from tfforensics.io.atomic import atomic_write_json
    from tfforensics.io.outputs import PRODUCER, claim_files
    from tfforensics.regularization.evaluation import band_sweep
    from tfforensics.regularization.inversion import load_pairs, synthesize
    from tfforensics.regularization.plots import plot_sweep

    claim_files(args.out, ["sweep.json", "sweep.png"], record="sweep.json", command="regularize sweep",
                previous="sweep", contents="sweep.json and sweep.png", instead="--out",
                overwrite=args.overwrite)  # before the work
    real, latents, _ = load_pairs(args.pairs)
    fake = synthesize(_generator(args.weights), latents)
    sweep = band_sweep(real, fake, _thresholds(args.thresholds), spectrum=args.spectrum)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", {"producer": PRODUCER, **sweep})
    plot_sweep(sweep, out / "sweep.png")
    best = max(range(len(sweep["thresholds"])), key=lambda i: sweep["cos"][i])
    print(json.dumps({"thresholds": f"{sweep['thresholds'][0]}..{sweep['thresholds'][-1]}",
                      "largest_cos_gap_at": sweep["thresholds"][best], "cos": round(sweep["cos"][best], 5)}))
    print(f"{out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0
