"""``tfforensics evaluate``: the ForenSynths / CNNDetection protocol (ACC and AP per GAN family)."""

from __future__ import annotations

from tfforensics.cli._common import (
    add_command, add_flag, add_out, add_output_args, add_quiet, add_skip_bad, positive_int, setup_logging,
)


def add_parser(subparsers) -> None:
    from tfforensics.preprocess.perturb import CONDITION_HELP

    parser = add_command(
        subparsers, "evaluate",
        help="ACC / AP per GAN family on a test set in the ForenSynths layout (CNNDetection's protocol)",
        description=(
            "Score MODEL (any saved detector: model.keras written by train, or by convert from released weights) "
            "on ROOT laid out as CNNDetection's test set, ROOT/<family>[/<class>]/{0_real,1_fake}/*.png "
            "(sub-classes pooled), and report per family, as eval_test8gan.py computes them: ACC at threshold "
            "0.5, real ACC, fake ACC and AP, plus their mean. ROOT may also be one family (ROOT/0_real, "
            "ROOT/1_fake) or one image file. --perturb adds the same table for perturbed copies of the images "
            "(JPEG, blur, down-and-up resize, noise; CNNDetection's robustness evaluation); --jpeg Q and --blur S "
            "are short for --perturb jpegQ and blurS. --out receives evaluation.md, "
            "evaluation.json and evaluation.csv."
        ),
        examples="""
            tfforensics evaluate cnndetection.keras ~/data/CNNDetection/test --out results/cnndetection
            tfforensics evaluate npr.keras ~/data/CNNDetection/test --jpeg 75 --blur 1 --out results/npr
            tfforensics evaluate runs/log2/model.keras bench/test-tree --perturb jpeg95 jpeg75 blur1 blur2 resize0.5 noise5
            tfforensics evaluate runs/resnet/model.keras photo.png
            tfforensics evaluate runs/lgrad/model.keras ~/data/CNNDetection/test --pkl karras2019stylegan-bedrooms-256x256.pkl
        """,
    )
    parser.add_argument("model", metavar="MODEL", help="model.keras or run directory (a detector taking raw images)")
    parser.add_argument("root", metavar="ROOT", help="test-set folder in the ForenSynths layout, or one image")
    parser.add_argument("--perturb", nargs="+", action="extend", default=[], metavar="NAME",
                        help="also score perturbed copies, one table per NAME: " + CONDITION_HELP)
    parser.add_argument("--jpeg", type=positive_int, action="append", default=[], metavar="Q",
                        help="also score JPEG-compressed copies at quality Q (repeatable; = --perturb jpegQ)")
    parser.add_argument("--blur", type=float, action="append", default=[], metavar="SIGMA",
                        help="also score Gaussian-blurred copies with standard deviation SIGMA "
                             "(repeatable; = --perturb blurSIGMA)")
    lgrad = parser.add_argument_group("LGrad detectors: the images' gradients computed on the fly (as img2grad)")
    lgrad.add_argument("--pkl", help="official karras2019stylegan-*.pkl whose D the detector was trained with")
    lgrad.add_argument("--weights", help="the port's own discriminator (.keras or .npz), instead of --pkl")
    add_flag(parser, "real_class", default_text="label 0", detail="of the model")
    add_flag(parser, "batch_size", default=32)
    add_out(parser, detail="folder for evaluation.md, evaluation.json and evaluation.csv")
    add_skip_bad(parser)
    add_output_args(parser)
    add_quiet(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from tfforensics.evaluation.evaluate import evaluate_folders, format_evaluation
    from tfforensics.preprocess._folder import log_skipped

    setup_logging(args.quiet)
    discriminator = None
    if args.pkl or args.weights:
        from tfforensics.models.lgrad import load_discriminator

        discriminator = load_discriminator(pkl=args.pkl, weights=args.weights)
    report = evaluate_folders(args.model, args.root, jpeg=args.jpeg, blur=args.blur, perturb=args.perturb,
                              batch_size=args.batch_size, real_class=args.real_class, skip_bad=args.skip_bad,
                              out=args.out, overwrite=args.overwrite, progress=not args.quiet, discriminator=discriminator)
    print(format_evaluation(report), end="")
    log_skipped(report["skipped"])
    return 0
