"""The training loop's per-epoch overhead: ``train`` as it is vs Keras' defaults it replaced.

A small model on the benchmark's records spends much of an epoch outside its steps: Keras'
``fit`` makes two ``tf.data`` iterators per epoch of a finite dataset (one thrown away), and
``BackupAndRestore`` saved the model after every epoch. ``train`` now passes ``steps_per_epoch``
(one iterator per epoch) and backs up only when the last backup is older than
``BACKUP_COST_RATIO`` times its cost. This script trains the same model on the same records for
the same epochs (no early stopping) both ways in one process, alternating, and prints the
seconds of each and the ratio:

- **baseline**: ``steps_per_epoch`` not given and a backup after every epoch (``train`` with
  those two switched back);
- **tfforensics**: ``train`` as it is.

Both use the same val pipeline (cached splits without a map function). The shuffle order differs
(Keras' extra iterator advanced the shuffle's seeds), so the two runs end with other weights;
the script prints both val losses.

    python benchmarks/train_loop.py --images 500 --epochs 30 --models log2 cnn
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def keras_defaults():
    """``train`` with Keras' own epoch handling and a backup after every epoch."""
    import tfforensics.training.fit as fit

    steps, ratio = fit._steps_per_epoch, fit.BACKUP_COST_RATIO
    fit._steps_per_epoch, fit.BACKUP_COST_RATIO = (lambda dataset, strategy: None), 0
    try:
        yield
    finally:
        fit._steps_per_epoch, fit.BACKUP_COST_RATIO = steps, ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500, help="images per class (default: 500)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per training (default: 30)")
    parser.add_argument("--models", nargs="+", default=["log2", "cnn"], help="models to train (default: log2 cnn)")
    parser.add_argument("--repeats", type=int, default=2, help="trainings of each kind per model (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from train_input import make_images

    from tfforensics.data import Encoding, prepare
    from tfforensics.io.parallel import pin_compute_threads
    from tfforensics.training.fit import train

    pin_compute_threads(1)  # as reproduce: one compute thread
    with tempfile.TemporaryDirectory() as tmp:
        root = make_images(Path(tmp) / "images", args.images, args.size, args.seed)
        manifest = prepare(root, Path(tmp) / "dct", Encoding(log=True, color=True, normalize=True), workers=1,
                           seed=args.seed, progress=False)
        print(f"{manifest.count('train')} training images, {manifest.count('val')} val, {args.epochs} epochs, "
              f"one compute thread")
        print(f"| model | baseline (s) | tfforensics (s) | ratio | val loss baseline / tfforensics |")
        print("|---|---|---|---|---|")
        for model in args.models:
            seconds, losses = {"baseline": [], "tfforensics": []}, {}

            def run(kind):
                out = Path(tmp) / f"{model}_{kind}"
                context = keras_defaults() if kind == "baseline" else contextlib.nullcontext()
                with context:
                    started = time.perf_counter()
                    result = train(model, manifest, out=out, epochs=args.epochs, early_stopping=0, seed=args.seed,
                                   overwrite=True, verbose=0)
                    seconds[kind].append(time.perf_counter() - started)
                losses[kind] = result.run["val_metrics"]["loss"]

            run("tfforensics")  # warm-up: imports, first traces
            seconds["tfforensics"].clear()
            for _ in range(args.repeats):
                run("baseline")
                run("tfforensics")
            base, ours = (statistics.median(seconds[k]) for k in ("baseline", "tfforensics"))
            print(f"| {model} | {base:.2f} | {ours:.2f} | {base / ours:.2f}x | "
                  f"{losses['baseline']:.4f} / {losses['tfforensics']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
