"""Bytes and accuracy of the three record layouts: original (float32), compact (float16), pixels (uint8).

Prepares the same images three times with the same encoding (default: colour log-DCT
normalised per coefficient, reproduce's DCT input) and trains one classifier on each with
the same seed: on original and compact records the classifier trains on the stored values,
on pixel records the model's own preprocessing layers encode the pixels at every step. It
prints, against the original layout in the same run, the bytes of the records, the test
accuracy of the trained model, the agreement of its test predictions with the original's,
and the training throughput (the DCT moves from ``prepare`` into each training step).

    python benchmarks/records_layout.py                          # 300 crops per class, 64x64 RGB, bilinear
    python benchmarks/records_layout.py --per-class 600 --model cnn --epochs 5 --augment blur_jpg_prob=0.5
    python benchmarks/records_layout.py --source reports/reproduce/benchmark/train   # any class folders
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LAYOUTS = ("original", "compact", "pixels")


def make_images(root: Path, count: int, size: int, seed: int, fake: str = "bilinear") -> Path:
    """Real photo crops and up-sampled (``fake``: bilinear or nearest) copies of other crops, one folder each."""
    from PIL import Image

    from tfforensics.benchmark.photos import load_photos, random_crops, upsampled

    crops, _ = random_crops(load_photos(), 2 * count, size, seed=seed)
    for name, images in (("a_real", crops[:count]), (f"b_{fake}", upsampled(crops[count:], fake))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i:05d}.png", compress_level=1)
    return root


def record_bytes(manifest) -> int:
    return sum(entry["num_bytes"] for entry in manifest.splits.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="class folders to prepare (default: photo crops)")
    parser.add_argument("--per-class", type=int, default=300, help="crops per class when no --source (default: 300)")
    parser.add_argument("--size", type=int, default=64, help="crop size (default: 64)")
    parser.add_argument("--fake", choices=["bilinear", "nearest"], default="bilinear",
                        help="up-sampling of the fake class (default: bilinear, the harder one)")
    parser.add_argument("--gray", action="store_true", help="gray log-DCT instead of colour")
    parser.add_argument("--raw", action="store_true", help="pixels in [-1, 1] instead of the log-DCT")
    parser.add_argument("--model", default="log2", help="classifier to train (default: log2)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default: 10, no early stopping)")
    parser.add_argument("--augment", default=None, metavar="SPEC",
                        help="also train on the pixel records with this augmentation (e.g. blur_jpg_prob=0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import numpy as np

    from tfforensics.data import Encoding, prepare
    from tfforensics.data.augment import Augmentation
    from tfforensics.data.reader import as_numpy
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.models.wrapped import probabilities
    from tfforensics.training.fit import train

    encoding = Encoding("raw", color=not args.gray) if args.raw else \
        Encoding("dct", log=True, color=not args.gray, normalize=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = args.source or make_images(tmp / "images", args.per_class, args.size, args.seed, args.fake)
        rows, manifests = {}, {}
        augmentation = Augmentation.parse(args.augment) if args.augment else None
        runs = [("original", None), *[(layout, None) for layout in LAYOUTS]]  # run 0 warms TensorFlow up
        runs += [("pixels", augmentation)] if augmentation else []
        for run, (layout, augment) in enumerate(runs):
            manifest = manifests[layout] = prepare(source, tmp / layout, encoding, layout=layout,
                                                   workers=args.workers, seed=args.seed, progress=False)
            result = train(args.model, manifest, out=tmp / f"run{run}_{layout}", epochs=args.epochs, early_stopping=0,
                           seed=args.seed, deterministic=True, verbose=0, augmentation=augment)
            report = evaluate_model(result.model_path, manifest)
            name = layout if augment is None else f"pixels + {args.augment}"
            rows[name] = {"bytes": record_bytes(manifest), "accuracy": report["accuracy"],
                            "ap": report["real_vs_fake"]["average_precision"],
                            "samples_per_s": result.run["train_samples_per_second"], "model": result.model}
        # every trained model on the same test images (the pixel records' uint8 pixels)
        images, _ = as_numpy(manifests["pixels"], "test", encoded=False)
        predictions = {layout: probabilities(row["model"].predict(images.astype("float32"), verbose=0))
                       for layout, row in rows.items()}  # (N, classes), also for one sigmoid unit
        shown = manifests["original"]
    base = rows["original"]
    print(f"{encoding.describe()}, {shown.count('train')} train / {shown.count('test')} test images of "
          f"{shown.image_shape}, "
          f"{args.model}, {args.epochs} epochs, seed {args.seed}")
    width = max(len(name) for name in rows)
    print(f"{'layout':<{width}} {'bytes':>12} {'vs original':>11} {'test acc':>9} {'AP':>7} {'same argmax':>11} "
          f"{'max |Δp|':>9} {'train samples/s':>16} {'vs original':>11}")
    for layout, row in rows.items():
        agree = float((predictions[layout].argmax(1) == predictions["original"].argmax(1)).mean())
        delta = float(np.abs(predictions[layout] - predictions["original"]).max())
        print(f"{layout:<{width}} {row['bytes']:>12,} {row['bytes'] / base['bytes']:>10.3f}× {row['accuracy']:>9.4f} "
              f"{row['ap']:>7.4f} {agree:>11.4f} {delta:>9.2e} {row['samples_per_s']:>16.0f} "
              f"{row['samples_per_s'] / base['samples_per_s']:>10.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
