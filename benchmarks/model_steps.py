"""The models' training steps: as built now vs the formulation each change replaced.

Each build is timed in a process of its own (in one process the model built first trains
slower, whichever formulation it is, which once made a no-gain change look 1.9x faster), the
old and the new alternating, on the same random batches (64x64x3, batch 32, one compute
thread, as ``reproduce``):

- **visnet** and **attribution** (Yu et al., ``fmap_max`` 8 as in ``reproduce``): leaky ReLU as
  ``tf.nn.leaky_relu`` vs ``tf.maximum(x, 0.2 x)`` (the same values; the gradient differs only
  at exactly 0);
- **npr**: batch normalization trained by TensorFlow's fused kernel
  (:class:`tfforensics.layers.FusedBatchNormalization`) vs Keras' separate ops (the same
  function to float32 rounding; the difference is taken on training-mode outputs);
- **first epoch** of ``log2`` / ``cnn``: the optimizer built before ``fit`` (as ``train`` does)
  vs inside the first traced step (which makes ``tf.function`` trace the step twice).

It prints the median over the processes of each build's median epoch (first epoch: its seconds,
trace included, and the traces counted), the ratio, and for the first kind the largest difference
of the two builds' predictions with the same weights (0: the change keeps the outputs).

    python benchmarks/model_steps.py --batches 8 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


@contextlib.contextmanager
def keras_batch_norm():
    """Batch normalization by Keras' own ops (moments, then scale and shift) in training too."""
    from tfforensics.layers.normalization import FusedBatchNormalization

    kept = FusedBatchNormalization._fused
    FusedBatchNormalization._fused = lambda self, inputs, training, mask: False
    try:
        yield
    finally:
        FusedBatchNormalization._fused = kept


#: model -> (the change, the formulation it replaced, whether outputs are compared in training mode)
CHANGES = {
    "visnet": ("tf.nn.leaky_relu", maximum_lrelu, False),
    "attribution": ("tf.nn.leaky_relu", maximum_lrelu, False),
    "npr": ("fused batch norm", keras_batch_norm, True),
}


def _build(name):
    from tfforensics.models.classifiers import MODELS
    from tfforensics.training.fit import build_optimizer_state, compile_classifier

    options = {"fmap_max": 8} if name in ("visnet", "attribution") else {}  # reproduce's width
    builder = MODELS[name]
    model = builder((64, 64, 3), 5, **options)
    compile_classifier(model, 5, 1e-3, getattr(builder, "adam_options", None))
    build_optimizer_state(model)
    return model


def _data(batches: int, seed: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (32 * batches, 64, 64, 3)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((images, rng.integers(0, 5, len(images)))).batch(32).cache()


def epoch_seconds(name, old: bool, data, repeats: int) -> float:
    """Median seconds of an epoch of one build (after a first, traced epoch)."""
    with CHANGES[name][1]() if old else contextlib.nullcontext():
        model = _build(name)
        model.fit(data, epochs=1, verbose=0, shuffle=False)  # traced with that formulation
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(data, epochs=1, verbose=0, shuffle=False)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def largest_difference(name, data) -> float:
    """Largest difference of the two builds' predictions with the same weights."""
    import numpy as np

    _, formulation, training = CHANGES[name]
    with formulation():
        old = _build(name)
    new = _build(name)
    new.set_weights(old.get_weights())
    images = next(iter(data))[0]
    if training:
        with formulation():
            before = np.asarray(old(images, training=True))
        return float(np.max(np.abs(before - np.asarray(new(images, training=True)))))
    return float(np.max(np.abs(old.predict_on_batch(images) - new.predict_on_batch(images))))


def first_epoch(name, data, prebuilt: bool):
    """Seconds of a new model's first epoch (its traces included) and how often ``train_step`` was traced."""
    from tfforensics.models.classifiers import MODELS
    from tfforensics.training.fit import build_optimizer_state, compile_classifier

    model = MODELS[name]((64, 64, 3), 5)
    compile_classifier(model, 5, 1e-3)
    traces, step = [], model.train_step
    model.train_step = lambda batch: traces.append(1) or step(batch)
    started = time.perf_counter()
    if prebuilt:
        build_optimizer_state(model)  # what `train` does before fit
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - started, len(traces)


def _child(args) -> int:
    """One measurement in this process: prints its result as JSON."""
    from tfforensics.io.parallel import pin_compute_threads

    pin_compute_threads(1)
    data = _data(args.batches, args.seed)
    kind, name, old = args.child[0], args.child[1], args.child[2] == "old"
    if kind == "epoch":
        result = {"seconds": epoch_seconds(name, old, data, args.repeats)}
    elif kind == "difference":
        result = {"difference": largest_difference(name, data)}
    else:
        seconds, traces = first_epoch(name, data, prebuilt=not old)
        result = {"seconds": seconds, "traces": traces}
    print(json.dumps(result))
    return 0


def _run(args, *child) -> dict:
    command = [sys.executable, __file__, "--batches", str(args.batches), "--repeats", str(args.repeats),
               "--seed", str(args.seed), "--child", *child]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="batches of 32 per epoch (default: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per process (default: 3)")
    parser.add_argument("--processes", type=int, default=3, help="processes per build (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    print(f"{'model':<12} {'change':<18} {'old s/epoch':>11} {'new s/epoch':>11} {'ratio':>6} {'max |diff|':>10}")
    for name, (change, _, _) in CHANGES.items():
        seconds = {"old": [], "new": []}
        for _ in range(args.processes):
            for build in ("old", "new"):
                seconds[build].append(_run(args, "epoch", name, build)["seconds"])
        old, new = statistics.median(seconds["old"]), statistics.median(seconds["new"])
        difference = _run(args, "difference", name, "new")["difference"]
        print(f"{name:<12} {change:<18} {old:>11.3f} {new:>11.3f} {old / new:>5.2f}x {difference:>10.2g}")
    print(f"\n{'model':<12} {'optimizer built':<24} {'first epoch s':>13} {'traces':>6}")
    for name in ("log2", "cnn"):
        runs = {"old": [], "new": []}
        for _ in range(args.processes):
            for build in ("old", "new"):
                runs[build].append(_run(args, "first", name, build))
        medians = {build: statistics.median(run["seconds"] for run in runs[build]) for build in runs}
        for build, label in (("old", "inside the traced step"), ("new", "before fit (train)")):
            print(f"{name:<12} {label:<24} {medians[build]:>13.2f} {runs[build][0]['traces']:>6}")
        print(f"{name:<12} {'ratio':<24} {medians['old'] / medians['new']:>12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
