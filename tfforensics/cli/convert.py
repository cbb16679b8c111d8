"""``tfforensics convert torch|gandct``: the originals' released detectors as ``.keras`` files."""

from __future__ import annotations

import logging

from tfforensics.cli._common import add_command, add_flag, add_out, add_output_args, add_quiet, setup_logging

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "convert",
        help="turn a released detector (PyTorch .pth, GANDCTAnalysis SavedModel) into a .keras model",
        description=(
            "Read the weights a paper released and save them as a tfforensics detector (.keras, loaded with "
            "safe_mode) that takes raw 0..255 images and carries its own preprocessing, for classify, evaluate "
            "and test. Nothing in the input file is executed. See docs/published-models.md for where each "
            "original's weights live."
        ),
        examples="""
            tfforensics convert torch weights/blur_jpg_prob0.5.pth --arch resnet50 --out cnndetection.keras
            tfforensics convert torch NPR.pth --arch npr --out npr-256.keras --size 256
            tfforensics convert gandct models/ffhq_dct_resnet --mean-var mean_var/ffhq --out ffhq-resnet.keras
        """,
    )
    actions = parser.add_subparsers(title="formats", metavar="FORMAT", dest="format", required=True)
    torch = add_command(
        actions, "torch", help="a PyTorch checkpoint (CNNDetection, LGrad, NPR) without torch",
        description=(
            "Read CHECKPOINT (zip or legacy torch.save format; {'model': state_dict} wrappers and 'module.' "
            "prefixes are handled) with a restricted unpickler that accepts only tensors, storages and "
            "OrderedDict, map the weights into the Keras port of --arch (OIHW -> HWIO, batch-norm running "
            "statistics) and save it behind the originals' test-time preprocessing (pixels / 255, ImageNet "
            "mean and std; no resize, no crop). The model's output is P(fake)."
        ),
        examples="""
            tfforensics convert torch blur_jpg_prob0.1.pth --arch resnet50 --out cnndetection-0.1.keras
            tfforensics convert torch NPR.pth --arch npr --out npr.keras
        """,
    )
    torch.add_argument("checkpoint", metavar="CHECKPOINT", help="the released .pth / .pt file")
    torch.add_argument("--arch", required=True, choices=["resnet50", "npr"],
                       help="resnet50: CNNDetection / LGrad detector; npr: NPR (Tan et al. 2024)")
    add_out(torch, required=True, detail="the .keras file")
    add_flag(torch, "size", default_text="any size, as the originals test: no resize, no crop",
             detail="of the model's input")
    add_output_args(torch)
    add_quiet(torch, detail="print only the output path")
    torch.set_defaults(run=run_torch)

    gandct = add_command(
        actions, "gandct", help="a GANDCTAnalysis (Frank et al.) Keras SavedModel + its mean_var files",
        description=(
            "Read the weights of MODEL_DIR (a TF2 Keras SavedModel saved by GANDCTAnalysis' classifer.py; only "
            "its variables checkpoint is read, no graph is run), copy them into the registry architecture they "
            "fit (log, nn, cnn, resnet; or --arch), and save a .keras that carries run_classifier.py's input "
            "pipeline: with --mean-var, DCT, log(|x| + eps) and standardisation with the mean/var files; "
            "without it, pixels scaled to [-1, 1]."
        ),
        examples="""
            tfforensics convert gandct models/ffhq_dct_resnet --mean-var mean_var/ffhq --out ffhq-resnet.keras
            tfforensics convert gandct models/lsun_pixel_cnn --size 128 --out lsun-pixel-cnn.keras
        """,
    )
    gandct.add_argument("model_dir", metavar="MODEL_DIR", help="the released SavedModel folder")
    gandct.add_argument("--mean-var", default=None, metavar="PREFIX",
                        help="folder with mean.npy and var.npy (or PREFIX_mean.npy / PREFIX_var.npy); omit for a "
                             "pixel classifier")
    add_out(gandct, required=True, detail="the .keras file")
    gandct.add_argument("--arch", default=None, choices=["log", "nn", "cnn", "resnet"],
                        help="architecture (default: the one the weights fit)")
    add_flag(gandct, "size", default_text="a DCT classifier takes the size of --mean-var",
             detail="of a pixel classifier's input")
    add_flag(gandct, "class_names", default_text="0, 1, ... or real, fake for one output")
    gandct.add_argument("--no-log", action="store_true",
                        help="the classifier was trained on the DCT without log scaling")
    add_output_args(gandct)
    add_quiet(gandct, detail="print only the output path")
    gandct.set_defaults(run=run_gandct)


def run_torch(args) -> int:
    from tfforensics.models.published import convert_torch

    setup_logging(args.quiet)
    out = convert_torch(args.checkpoint, args.arch, args.out, image_size=args.size, overwrite=args.overwrite)
    print(out)
    return 0


def run_gandct(args) -> int:
    from tfforensics.models.published import convert_gandct

    setup_logging(args.quiet)
    names = args.class_names or None
    out = convert_gandct(args.model_dir, args.out, args.mean_var, overwrite=args.overwrite, arch=args.arch,
                         image_size=args.size, class_names=names, log=not args.no_log)
    print(out)
    return 0
