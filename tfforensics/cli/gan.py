"""``tfforensics gan train|sample``: the small GANs of the mini benchmark."""

from __future__ import annotations

import logging
from pathlib import Path

from tfforensics.errors import UserError
from tfforensics.cli._common import (
    add_command, add_flag, add_out, add_output_args, add_runtime_args, positive_int, setup_logging,
)
from tfforensics.models.names import GAN_FAMILIES

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    families = "\n".join(f"  {name:<11} {entry.description}" for name, entry in GAN_FAMILIES.items())
    parser = add_command(
        subparsers, "gan",
        help="train / sample the small GANs of the embedded benchmark",
        description=(
            "Small generators trained on the shipped real crops of the benchmark's train-split photos "
            "(tfforensics/benchmark/data), one per up-sampling family (Frank et al.'s up-sampling experiment); "
            "they differ only in the up-sampling operator, so each leaves its own spectral artifacts. Families:\n" + families
        ),
        examples="""
            tfforensics gan train nearest runs/gan-nearest --steps 1500 --seed 1
            tfforensics gan sample transposed fakes/transposed --count 500 --seed 0
        """,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    train = add_command(
        actions, "train", help="train one family on the train-split photo crops",
        description=("Train FAMILY (non-saturating GAN loss, R1 on reals, Adam, EMA generator) on the shipped "
                     "real crops of the benchmark's train-split photos (never its val or test photos). Writes "
                     "OUT/generator.keras (the EMA generator), OUT/discriminator.keras and OUT/run.json every "
                     "--checkpoint-every steps; running the same command again continues an interrupted run."),
        examples="""
            tfforensics gan train stylegan runs/gan-stylegan --seed 4
            tfforensics gan train bilinear runs/gan-bilinear-32 --size 32 --steps 500 --batch-size 16
        """,
    )
    train.add_argument("family", metavar="FAMILY", choices=list(GAN_FAMILIES), help=", ".join(GAN_FAMILIES))
    add_out(train, positional=True, required=True, detail="run folder for generator.keras, discriminator.keras, run.json")
    schedule = train.add_argument_group("schedule")
    schedule.add_argument("--steps", type=positive_int, default=1500, help="training steps (default: 1500)")
    add_flag(schedule, "batch_size", default=32, detail="a multiple of 4")
    add_flag(schedule, "lr", default=1e-3, detail="betas (0, 0.99)")
    schedule.add_argument("--r1", type=float, default=1.0, help="R1 penalty weight gamma on reals (default: 1)")
    schedule.add_argument("--checkpoint-every", type=positive_int, default=250, help="steps between saves (default: 250)")
    data = train.add_argument_group("data")
    add_flag(data, "size", default=64, detail="a power of two >= 8")
    data.add_argument("--crops", type=positive_int, default=None,
                      help="real crops to train on, from the train-split photos of the shipped crops "
                           "(default: all 1494 of them)")
    add_flag(train, "overwrite", default=False, detail="start afresh even if OUT holds a run")
    add_runtime_args(train)
    train.set_defaults(run=run_train)

    sample = add_command(
        actions, "sample", help="write generated images as PNG",
        description=("Write COUNT images of FAMILY as OUT_DIR/000000.png, 000001.png, ... (same --seed, same "
                     "images). With --pkl, sample the averaged generator Gs of an official StyleGAN pickle "
                     "(karras2019stylegan-*.pkl, read without TF1 or code execution) with truncation psi "
                     "--truncation, the images LGrad's protocol and the Fourier regularisation start from."),
        examples="""
            tfforensics gan sample nearest fakes/nearest --count 1000
            tfforensics gan sample stylegan fakes/mine --count 64 --weights runs/gan-stylegan --seed 3
            tfforensics gan sample --pkl karras2019stylegan-bedrooms-256x256.pkl --truncation 0.7 --count 100 fakes/bedrooms
        """,
    )
    # no argparse choices: with --pkl the one positional is OUT (run_sample sorts them out)
    sample.add_argument("family", metavar="FAMILY", nargs="?", default=None,
                        help=", ".join(GAN_FAMILIES) + " (omit with --pkl)")
    add_out(sample, positional=True, detail="folder for the PNG files")
    sample.add_argument("--count", type=positive_int, required=True, help="number of images")
    sample.add_argument("--weights", default=None,
                        help="generator.keras or a `gan train` run folder (default: the weights shipped with "
                             "tfforensics)")
    sample.add_argument("--pkl", default=None, metavar="PKL",
                        help="an official StyleGAN pickle: sample its Gs instead of a FAMILY")
    sample.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="truncation psi of the --pkl generator (default: the pickle's, 0.7 in the official ones)")
    add_flag(sample, "batch_size", default=64)
    add_output_args(sample)
    add_runtime_args(sample)
    sample.set_defaults(run=run_sample)


def run_train(args) -> int:
    from tfforensics.benchmark.gans import training_crops
    from tfforensics.training.gan import (
        CHECKPOINT_DIR, DISCRIMINATOR_FILE, GENERATOR_FILE, RUN_FILE, GanConfig, train_gan,
    )
    from tfforensics.io.outputs import claim_output, mark_output, read_marker, remove_output

    setup_logging(args.quiet)
    config = GanConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, r1_gamma=args.r1,
                       seed=args.seed, checkpoint_every=args.checkpoint_every)
    output = Path(args.out)

    def own_run(marker):  # a run folder of ours is continued (or refused below), never emptied without asking
        return marker.get("command") == "gan train" and not args.overwrite

    claim_output(output, overwrite=args.overwrite, command="gan train", reuse=own_run)
    marker = read_marker(output) if output.is_dir() else None
    run_file = output / RUN_FILE
    if marker is not None and args.overwrite:
        remove_output(output)
    elif run_file.is_file():
        import json

        previous = json.loads(run_file.read_text())
        if previous.get("family") != args.family or previous.get("size") != args.size:
            raise UserError(f"{output}: holds a {previous.get('family')} run at size {previous.get('size')}; "
                            "choose another OUT or pass --overwrite.")
        elif previous.get("step", 0) >= args.steps:
            raise UserError(f"{output}: already trained for {previous['step']} steps; pass a larger --steps "
                            "to continue or --overwrite to start afresh.")
    output.mkdir(parents=True, exist_ok=True)
    mark_output(output, "gan train", files=[GENERATOR_FILE, DISCRIMINATOR_FILE, RUN_FILE], dirs=[CHECKPOINT_DIR])
    crops = training_crops(args.crops, args.size, seed=args.seed)
    trainer = train_gan(args.family, crops, config=config, output=output, progress=not args.quiet,
                        command=args.command_line)
    logger.info("saved %s/generator.keras after %d steps (%.0f s)", output, int(trainer.step.numpy()),
                trainer.seconds)
    return 0


def run_sample(args) -> int:
    from tfforensics.benchmark.gans import load_generator, sample_images, write_samples
    from tfforensics.io.outputs import claim_output
    from tfforensics.io.outputs import staged_output

    setup_logging(args.quiet)
    if args.out is None and args.family is not None and args.pkl is not None:
        args.family, args.out = None, args.family  # `gan sample --pkl PKL OUT`: the one positional is OUT
    if args.out is None:
        raise UserError("gan sample: give the output folder (OUT or --out OUT).")
    if args.family is not None and args.family not in GAN_FAMILIES:
        raise UserError(f"gan sample: unknown FAMILY {args.family!r}; choose one of {', '.join(GAN_FAMILIES)}.")
    if args.count < 1 or args.batch_size < 1:
        raise UserError(f"--count and --batch-size must be >= 1. Received: {args.count}, {args.batch_size}")
    if (args.family is None) == (args.pkl is None):
        raise UserError("gan sample: give either FAMILY or --pkl PKL (an official StyleGAN pickle), not both or none.")
    if args.pkl is None and args.truncation is not None:
        raise UserError("--truncation applies to a --pkl generator only.")
    if args.pkl is not None and args.weights is not None:
        raise UserError("--weights and --pkl both name a generator; give one of them.")
    claim_output(args.out, overwrite=args.overwrite, command="gan sample")  # before the work
    if args.pkl is not None:
        from tfforensics.models.stylegan.pkl import build_from_state, find_network, load_pkl

        overrides = {} if args.truncation is None else {"truncation_psi": args.truncation}
        generator = build_from_state(find_network(load_pkl(args.pkl), "Gs"), **overrides)
    else:
        generator = load_generator(args.family, args.weights)
    images = sample_images(generator, args.count, seed=args.seed, batch_size=args.batch_size,
                           progress=not args.quiet)
    with staged_output(args.out, overwrite=args.overwrite, command="gan sample") as work:
        write_samples(images, work)
    logger.info("wrote %d images to %s", len(images), args.out)
    return 0
