"""The models' training steps: each as written now vs the formulation it replaced.

Three changes to how the models are built, each measured against the old build in one process,
alternating, on the same random batches (64x64x3, batch 32, one compute thread, as ``reproduce``):

- **npr** (and ResNet-50): a stride-1 3x3 convolution with Keras' ``"same"`` padding vs a
  ``ZeroPadding2D`` layer and a ``"valid"`` convolution (the same outputs);
- **visnet** and **attribution** (Yu et al.): leaky ReLU as ``tf.nn.leaky_relu`` vs
  ``tf.maximum(x, 0.2 x)`` (the same values; the gradient differs only at exactly 0);
- **first epoch** of ``log2`` / ``cnn``: the optimizer built before ``fit`` vs inside the first
  traced step (which makes ``tf.function`` trace the step twice).

For the first two it prints the median seconds of an epoch of each build, the ratio, and the
largest difference of the two builds' predictions with the same weights (0 where the change is
exact). For the third, the seconds of a first epoch (trace included) and the traces counted.

    python benchmarks/model_steps.py --batches 8 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def explicit_padding():
    """``published._conv`` as it was: zero-padding layer, then a "valid" convolution."""
    from keras import layers

    import tfforensics.models.published as published

    def conv(x, filters, kernel, stride, name):
        if kernel // 2:
            x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        return layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)

    kept, published._conv = published._conv, conv
    try:
        yield
    finally:
        published._conv = kept


@contextlib.contextmanager
def maximum_lrelu():
    """Leaky ReLU as ``tf.maximum(x, 0.2 x)`` (two ops and their gradients)."""
    import tensorflow as tf

    import tfforensics.models.stylegan.layers as stylegan_layers

    kept = stylegan_layers._activate

    def activate(x, activation):
        return tf.maximum(x, x * stylegan_layers.LRELU_ALPHA) if activation == "lrelu" else kept(x, activation)

    stylegan_layers._activate = activate
    try:
        yield
    finally:
        stylegan_layers._activate = kept


def _build(name):
    from tfforensics.models.classifiers import MODELS
    from tfforensics.training.fit import build_optimizer_state, compile_classifier

    options = {"fmap_max": 8} if name in ("visnet", "attribution") else {}  # reproduce's width
    builder = MODELS[name]
    model = builder((64, 64, 3), 5, **options)
    compile_classifier(model, 5, 1e-3, getattr(builder, "adam_options", None))
    build_optimizer_state(model)
    return model


def compare_builds(name, old_build, data, repeats):
    """Median epoch seconds of the old and the new build, and their predictions' largest difference."""
    import numpy as np

    with old_build():
        old = _build(name)
        old.fit(data, epochs=1, verbose=0, shuffle=False)  # traced with the old formulation
    new = _build(name)
    new.fit(data, epochs=1, verbose=0, shuffle=False)
    new.set_weights(old.get_weights())
    images = next(iter(data))[0]
    difference = float(np.max(np.abs(old.predict_on_batch(images) - new.predict_on_batch(images))))
    seconds = {"old": [], "new": []}
    for _ in range(repeats):
        for key, model in (("old", old), ("new", new)):
            started = time.perf_counter()
            model.fit(data, epochs=1, verbose=0, shuffle=False)
            seconds[key].append(time.perf_counter() - started)
    return statistics.median(seconds["old"]), statistics.median(seconds["new"]), difference


def first_epoch(name, data, prebuilt: bool):
    """Seconds of a new model's first epoch (its traces included) and how often ``train_step`` was traced."""
    import keras

    from tfforensics.models.classifiers import MODELS
    from tfforensics.training.fit import compile_classifier

    model = MODELS[name]((64, 64, 3), 5)
    compile_classifier(model, 5, 1e-3)
    traces, step = [], model.train_step
    model.train_step = lambda batch: traces.append(1) or step(batch)
    started = time.perf_counter()
    if prebuilt:
        model.optimizer.build(model.trainable_variables)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    keras.backend.clear_session()
    return time.perf_counter() - started, len(traces)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 per epoch (default: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs of each build (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tfforensics.io.parallel import pin_compute_threads

    pin_compute_threads(1)
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(args.seed)
    images = rng.uniform(-1, 1, (32 * args.batches, 64, 64, 3)).astype(np.float32)
    labels = rng.integers(0, 5, len(images))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32).cache()

    print(f"{'model':<12} {'change':<28} {'old s/epoch':>11} {'new s/epoch':>11} {'ratio':>6} {'max |diff|':>10}")
    for name, change, old_build in (("npr", "'same' padding at stride 1", explicit_padding),
                                    ("visnet", "tf.nn.leaky_relu", maximum_lrelu),
                                    ("attribution", "tf.nn.leaky_relu", maximum_lrelu)):
        old, new, difference = compare_builds(name, old_build, data, args.repeats)
        print(f"{name:<12} {change:<28} {old:>11.3f} {new:>11.3f} {old / new:>5.2f}x {difference:>10.2g}")
    print(f"\n{'model':<12} {'first epoch, optimizer built':<36} {'s':>6} {'traces':>6}")
    for name in ("log2", "cnn"):
        timings = {}
        for prebuilt in (False, True, False, True):
            seconds, traces = first_epoch(name, data, prebuilt)
            timings.setdefault(prebuilt, []).append((seconds, traces))
        for prebuilt, label in ((False, "inside the traced step"), (True, "before fit (train)")):
            seconds = statistics.median(s for s, _ in timings[prebuilt])
            print(f"{name:<12} {label:<36} {seconds:>6.2f} {timings[prebuilt][0][1]:>6}")
        ratio = statistics.median(s for s, _ in timings[False]) / statistics.median(s for s, _ in timings[True])
        print(f"{name:<12} {'ratio':<36} {ratio:>5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
