"""``tfforensics convert torch|gandct``: the originals' released detectors as ``.keras`` files."""

from __future__ import annotations

import logging

from tfforensics.cli._common import add_command, add_output_args, positive_int, setup_logging

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
            tfforensics convert torch NPR.pth --arch npr --out npr.keras --image-size 224
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
    torch.add_argument("--out", "--output", "-o", dest="out", required=True, help="the .keras file to write")
    torch.add_argument("--image-size", type=positive_int, default=256,
                       help="side of the square images the saved model takes (default: 256, the ForenSynths size)")
    add_output_args(torch)
    torch.add_argument("--quiet", "-q", action="store_true", help="print only the output path")
    torch.set_defaults(run=run_torch)


def run_torch(args) -> int:
    from tfforensics.models.published import convert_torch

    setup_logging(args.quiet)
    out = convert_torch(args.checkpoint, args.arch, args.out, image_size=args.image_size, overwrite=args.overwrite)
    print(out)
    return 0
