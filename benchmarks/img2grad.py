"""Benchmark: images/s of img2grad's batched gradient function at 256x256 on the CPU.

LGrad's original img2grad builds the StyleGAN discriminator with the TF1 code of
NVIDIA's ``dnnlib``/``tflib`` and runs ``tf.gradients`` in a ``tf.compat.v1`` session,
one image per run. That code is not installed here (nor installable from this
project's dependencies), and a Keras 3 model cannot be built into a TF1 graph, so the
TF1-graph baseline is **not measured**; the script says so instead of printing a ratio
against something that is not the original.

What runs, in one process, alternately, best of ``--repeats``:

(a) baseline beside it: the same compiled gradient function fed one image per call (the
    original's batch of one);
(b) tfforensics: :func:`tfforensics.models.lgrad.compute_gradients` in batches of ``--batch-size``.

The discriminator is a StyleGAN discriminator at 256x256 built with random weights
(``--fmap-max``, default 64; the speed does not depend on the weights). Both outputs are
compared (uint8 gradient images; the per-image minibatch-stddev makes them batch-independent).

Usage: python benchmarks/img2grad.py [--images 32] [--batch-size 16] [--fmap-max 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--fmap-max", type=int, default=64, help="widest layer of the discriminator (default 64)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import keras

    from tfforensics.benchmark.photos import load_photos, random_crops
    from tfforensics.models.lgrad import compute_gradients, gradient_function, to_uint8
    from tfforensics.models.stylegan.networks import build_discriminator

    keras.utils.set_random_seed(0)
    model = build_discriminator(num_channels=3, resolution=256, fmap_max=args.fmap_max, independent_images=True)
    images, _ = random_crops(load_photos(), args.images, 256, seed=0)
    function = gradient_function(model)

    def one_at_a_time():
        return np.concatenate([to_uint8(function(images[i:i + 1]).numpy()) for i in range(len(images))])

    def batched():
        return compute_gradients(model, images, batch_size=args.batch_size)

    one_at_a_time(), batched()  # trace both input shapes first
    best, outputs = {}, {}
    for _ in range(args.repeats):
        for name, run in (("(a) one image per call", one_at_a_time), (f"(b) batches of {args.batch_size}", batched)):
            start = time.perf_counter()
            outputs[name] = run()
            best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
    (a, b) = best.values()
    difference = int(np.abs(np.subtract(*[o.astype(int) for o in outputs.values()])).max())
    print(f"{args.images} images, 256x256 RGB, StyleGAN discriminator (fmap_max {args.fmap_max}, "
          f"{model.count_params()} weights), CPU, {os.cpu_count()} cores; best of {args.repeats}")
    for name, seconds in best.items():
        print(f"  {name:28s} {args.images / seconds:8.1f} images/s  ({seconds:.2f} s)")
    print(f"ratio batched / one image per call:  {a / b:5.2f}x   (largest uint8 difference: {difference})")
    print("original TF1 graph (tf.compat.v1 session, dnnlib/tflib): not measured -- the original LGrad/StyleGAN "
          "TF1 code is not installed and a Keras 3 model cannot be built into a TF1 graph.")


if __name__ == "__main__":
    main()
