"""Equivalence with the original StyleGAN TF1 code, when a checkout of it is at hand.

Skipped unless ``STYLEGAN_TF1_SRC`` names a directory holding the original ``dnnlib/``
and ``training/networks_stylegan.py`` (NVlabs/stylegan, or ``img2gad/stylegan`` of
chuangchuangtan/LGrad); nothing of it ships with tfforensics. A pickle in the official
format whose ``build_module_src`` is that source is loaded by the original dnnlib under
``tensorflow.compat.v1`` in a subprocess (as ``pickle.load`` of an official file does),
and its discriminator scores, input gradients and generator images are compared with the
port's. The one edit to the original source: ``[1, use_noise, R, R]`` becomes
``[1, int(use_noise), R, R]``, since TensorFlow 2 no longer takes a bool as a dimension.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfforensics.models.stylegan.pkl import build_from_state, find_network, loads_pkl

from test_stylegan import official_pickle

SOURCE = os.environ.get("STYLEGAN_TF1_SRC")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SOURCE, reason="set STYLEGAN_TF1_SRC to a checkout of the original StyleGAN code"),
]

RUNNER = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    import tensorflow.compat.v1 as tf1
    tf1.disable_v2_behavior()
    sys.modules["tensorflow"] = tf1
    sys.path.insert(0, sys.argv[1])
    import dnnlib.tflib as tflib
    tflib.init_tf({"allow_soft_placement": True})
    with open(sys.argv[2], "rb") as f:
        G, D, Gs = pickle.load(f)
    data = np.load(sys.argv[3])
    x = data["x"]
    images_in = tf1.placeholder(tf1.float32, [None] + list(x.shape[1:]))
    scores = D.get_output_for(images_in, None)
    grad = tf1.gradients(tf1.reduce_sum(scores), images_in)[0]
    s4, g4 = tflib.run([scores, grad], {images_in: x})
    s1, g1 = tflib.run([scores, grad], {images_in: x[:1]})
    images = Gs.run(data["z"], None, truncation_psi=0.7, randomize_noise=False)
    np.savez(sys.argv[4], s4=s4, g4=g4, s1=s1, g1=g1, images=images)
""")


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = tmp_path_factory.mktemp("stylegan_tf1") / "src"
    shutil.copytree(Path(SOURCE), root, ignore=shutil.ignore_patterns("__pycache__", "*.pkl", "results"))
    module = root / "training" / "networks_stylegan.py"
    text = module.read_text(encoding="utf-8-sig").replace("[1, use_noise, 2**res, 2**res]",
                                                          "[1, int(use_noise), 2**res, 2**res]")
    module.write_text(text, encoding="utf-8")
    return root, text


def _relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("resolution, fused_scale", [(32, True), (32, False), (256, "auto")])
def test_port_equals_original_graph(original, tmp_path, resolution, fused_scale):
    root, module_src = original
    kw = {"num_channels": 3, "resolution": resolution, "label_size": 0, "fused_scale": fused_scale}
    if resolution < 256:
        kw.update(fmap_base=256, fmap_max=32)
        gkw = {**kw, "latent_size": 16, "dlatent_size": 16, "mapping_fmaps": 16, "mapping_layers": 3}
    else:  # the LSUN-bedroom configuration used by LGrad
        gkw = {**kw, "latent_size": 512, "dlatent_size": 512}
    data = official_pickle(d_kwargs=kw, g_kwargs=gkw, seed=5, module_src=module_src)
    (tmp_path / "net.pkl").write_bytes(data)
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (4, 3, resolution, resolution)).astype(np.float32)
    z = rng.standard_normal((3, gkw["latent_size"])).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, z=z)
    (tmp_path / "run.py").write_text(RUNNER)
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(root), str(tmp_path / "net.pkl"),
                           str(tmp_path / "in.npz"), str(tmp_path / "out.npz")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    want = np.load(tmp_path / "out.npz")

    states = loads_pkl(data)
    d = build_from_state(find_network(states, "D"), data_format="channels_first")
    for batch, key in ((x, "4"), (x[:1], "1")):
        xt = tf.constant(batch)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            scores = d(xt)
            total = tf.reduce_sum(scores)
        assert _relative_error(scores.numpy(), want["s" + key]) < 1e-5
        assert _relative_error(tape.gradient(total, xt).numpy(), want["g" + key]) < 1e-4
    gs = build_from_state(find_network(states, "Gs"), randomize_noise=False)
    assert _relative_error(gs(z).numpy().transpose(0, 3, 1, 2), want["images"]) < 1e-4
