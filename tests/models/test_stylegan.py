"""StyleGAN port: official-format pickles, the restricted loader, forward passes and gradients.

The pickles here are written the way the official ones were: three objects of a class
that pickles as the global ``dnnlib.tflib.network.Network``, each with the state dict
of TF1 ``Network.__getstate__``. The variable names and shapes come from the list below,
written from the TF1 build functions (template graph, ``structure='linear'``) — not from
the Keras port — so a naming or shape slip in the port fails the load.
"""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
import tensorflow as tf

from _dnnlib import Network, dnnlib_dumps
from tfforensics.models.stylegan import build_discriminator, build_synthesis, tf1_variables
from tfforensics.models.stylegan.layers import EqualizedConv2D
from tfforensics.models.stylegan.pkl import (
    build_from_state, find_network, load_network, load_pkl, loads_pkl, save_network,
)

RES = 32
D_KWARGS = {"num_channels": 3, "resolution": RES, "label_size": 0, "fmap_base": 256, "fmap_max": 32}
G_KWARGS = {**D_KWARGS, "latent_size": 16, "dlatent_size": 16, "mapping_fmaps": 16, "mapping_layers": 3}


# --- TF1 variable lists (names, shapes, creation order of the template graph) ----------------

def _nf(kw):
    base, decay, fmax = kw.get("fmap_base", 8192), kw.get("fmap_decay", 1.0), kw.get("fmap_max", 512)
    return lambda stage: min(int(base / (2.0 ** (stage * decay))), fmax)


def tf1_d_variables(kw):
    nf, nc, log2 = _nf(kw), kw["num_channels"], int(np.log2(kw["resolution"]))
    mbstd = kw.get("mbstd_num_features", 1) if kw.get("mbstd_group_size", 4) > 1 else 0
    out = [("lod", ())]

    def fromrgb(res):
        scope = f"FromRGB_lod{log2 - res}"
        return [(f"{scope}/weight", (1, 1, nc, nf(res - 1))), (f"{scope}/bias", (nf(res - 1),))]

    out += fromrgb(log2)
    for res in range(log2, 2, -1):
        s = f"{2 ** res}x{2 ** res}"
        out += [(f"{s}/Conv0/weight", (3, 3, nf(res - 1), nf(res - 1))), (f"{s}/Conv0/bias", (nf(res - 1),)),
                (f"{s}/Conv1_down/weight", (3, 3, nf(res - 1), nf(res - 2))), (f"{s}/Conv1_down/bias", (nf(res - 2),))]
        out += fromrgb(res - 1)
    out += [("4x4/Conv/weight", (3, 3, nf(1) + mbstd, nf(1))), ("4x4/Conv/bias", (nf(1),)),
            ("4x4/Dense0/weight", (nf(1) * 16, nf(0))), ("4x4/Dense0/bias", (nf(0),)),
            ("4x4/Dense1/weight", (nf(0), 1)), ("4x4/Dense1/bias", (1,))]
    return out


def tf1_synthesis_variables(kw):
    nf, nc, log2, dl = _nf(kw), kw["num_channels"], int(np.log2(kw["resolution"])), kw.get("dlatent_size", 512)
    num_layers = 2 * log2 - 2
    out = [("lod", ())] + [(f"noise{i}", (1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2))) for i in range(num_layers)]

    def epilogue(scope, channels):
        return [(f"{scope}/Noise/weight", (channels,)), (f"{scope}/bias", (channels,)),
                (f"{scope}/StyleMod/weight", (dl, 2 * channels)), (f"{scope}/StyleMod/bias", (2 * channels,))]

    def torgb(res):
        scope = f"ToRGB_lod{log2 - res}"
        return [(f"{scope}/weight", (1, 1, nf(res - 1), nc)), (f"{scope}/bias", (nc,))]

    out += [("4x4/Const/const", (1, nf(1), 4, 4))] + epilogue("4x4/Const", nf(1))
    out += [("4x4/Conv/weight", (3, 3, nf(1), nf(1)))] + epilogue("4x4/Conv", nf(1)) + torgb(2)
    for res in range(3, log2 + 1):
        s = f"{2 ** res}x{2 ** res}"
        out += [(f"{s}/Conv0_up/weight", (3, 3, nf(res - 2), nf(res - 1)))] + epilogue(f"{s}/Conv0_up", nf(res - 1))
        out += [(f"{s}/Conv1/weight", (3, 3, nf(res - 1), nf(res - 1)))] + epilogue(f"{s}/Conv1", nf(res - 1))
        out += torgb(res)
    return out


def tf1_mapping_variables(kw):
    sizes = [kw.get("latent_size", 512)] + [kw.get("mapping_fmaps", 512)] * (kw.get("mapping_layers", 8) - 1)
    sizes += [kw.get("dlatent_size", 512)]
    out = []
    for i in range(len(sizes) - 1):
        out += [(f"Dense{i}/weight", (sizes[i], sizes[i + 1])), (f"Dense{i}/bias", (sizes[i + 1],))]
    return out


# --- writing pickles as dnnlib did -------------------------------------------------------------



def random_values(spec, rng, scale=1.0):
    values = []
    for name, shape in spec:
        if name == "lod":
            value = np.float32(0)
        elif name.endswith("/bias") or name.endswith("Noise/weight"):
            value = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith("/const"):
            value = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            value = (scale * rng.standard_normal(shape)).astype(np.float32)
        values.append((name, value))
    return values


NO_SOURCE = "raise RuntimeError('build_module_src must never be executed')\n"


def network(name, func, kwargs, variables, components=None, module_src=NO_SOURCE):
    return Network({"version": 3, "name": name, "static_kwargs": dict(kwargs), "components": components or {},
                    "build_module_src": module_src, "build_func_name": func, "variables": variables})


def official_pickle(d_kwargs=D_KWARGS, g_kwargs=G_KWARGS, seed=0, protocol=4, old_numpy_names=False,
                    d_variables=None, module_src=NO_SOURCE):
    """Bytes of a ``(G, D, Gs)`` pickle in the official format with random weights.

    ``module_src`` is stored as ``build_module_src`` (the TF1 source dnnlib would run);
    by default a line that fails if anything ever executes it.
    """
    rng = np.random.default_rng(seed)
    network = functools.partial(globals()["network"], module_src=module_src)
    num_layers = 2 * int(np.log2(g_kwargs["resolution"])) - 2

    def generator(name):
        synthesis = network("G_synthesis", "G_synthesis", g_kwargs,
                            random_values(tf1_synthesis_variables(g_kwargs), rng))
        mapping = network("G_mapping", "G_mapping", {**g_kwargs, "dlatent_broadcast": num_layers},
                          random_values(tf1_mapping_variables(g_kwargs), rng, scale=100.0))  # init std 1/lrmul
        own = [("lod", np.float32(0)), ("dlatent_avg", rng.standard_normal(g_kwargs["dlatent_size"]).astype(np.float32))]
        return network(name, "G_style", g_kwargs, own, {"synthesis": synthesis, "mapping": mapping})

    d = network("D", "D_basic", d_kwargs, d_variables or random_values(tf1_d_variables(d_kwargs), rng))
    data = dnnlib_dumps((generator("G"), d, generator("Gs")), protocol)
    if old_numpy_names:  # as written by NumPy 1.x (GLOBAL opcodes are newline-terminated text)
        assert protocol <= 2
        data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    return data


@pytest.fixture(scope="module")
def pkl_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pkl") / "karras2019stylegan-test-32x32.pkl"
    path.write_bytes(official_pickle(d_kwargs={**D_KWARGS, "fused_scale": True}))
    return path


# --- NumPy reference of the discriminator -------------------------------------------------------

def np_conv(x, w, pad=None):
    """SAME cross-correlation, NHWC x HWIO, stride 1 (loop over kernel taps only)."""
    k = w.shape[0]
    pad = k // 2 if pad is None else pad
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    h, wd = x.shape[1], x.shape[2]
    out = np.zeros(x.shape[:3] + (w.shape[3],))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nhwc,cd->nhwd", xp[:, i:i + h, j:j + wd], w[i, j])
    return out


def np_reference_d(values, kw, x):
    """D_basic at lod 0, written from the TF1 definitions with NumPy in float64."""
    v = {k: np.asarray(a, np.float64) for k, a in values}
    nf, log2 = _nf(kw), int(np.log2(kw["resolution"]))
    lrelu = lambda t: np.where(t >= 0, t, 0.2 * t)  # noqa: E731

    def layer(t, scope, gain=np.sqrt(2)):
        w = v[f"{scope}/weight"]
        w = w * gain / np.sqrt(np.prod(w.shape[:-1]))
        return (np_conv(t, w) if w.ndim == 4 else t @ w) + v[f"{scope}/bias"]

    blur = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    t = lrelu(layer(np.asarray(x, np.float64), "FromRGB_lod0"))
    for res in range(log2, 2, -1):
        s = f"{2 ** res}x{2 ** res}"
        t = lrelu(layer(t, f"{s}/Conv0"))
        c = t.shape[-1]
        t = np_conv(t, blur[:, :, None, None] * np.eye(c)[None, None])
        w = v[f"{s}/Conv1_down/weight"]
        t = np_conv(t, w * np.sqrt(2) / np.sqrt(np.prod(w.shape[:-1])))
        t = t.reshape(t.shape[0], t.shape[1] // 2, 2, t.shape[2] // 2, 2, -1).mean(axis=(2, 4))
        t = lrelu(t + v[f"{s}/Conv1_down/bias"])
    n, group = t.shape[0], min(4, t.shape[0])
    y = t.reshape(group, n // group, *t.shape[1:])
    std = np.sqrt(((y - y.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean(axis=(1, 2, 3))
    t = np.concatenate([t, np.broadcast_to(np.tile(std, group)[:, None, None, None], t.shape[:3] + (1,))], axis=-1)
    t = lrelu(layer(t, "4x4/Conv"))
    t = t.transpose(0, 3, 1, 2).reshape(n, -1)
    t = lrelu(layer(t, "4x4/Dense0"))
    return layer(t, "4x4/Dense1", gain=1.0)


def np_conv_up_fused(x, w):
    """TF1 fused up-conv: transposed conv, stride 2, SAME, with the 4-shift summed kernel (scatter form)."""
    wt = np.pad(w.transpose(0, 1, 3, 2), [(1, 1), (1, 1), (0, 0), (0, 0)])
    wt = wt[1:, 1:] + wt[:-1, 1:] + wt[1:, :-1] + wt[:-1, :-1]  # [4, 4, out, in]
    n, h, wd, _ = x.shape
    out = np.zeros((n, 2 * h + 2, 2 * wd + 2, wt.shape[2]))
    for i in range(4):
        for j in range(4):
            out[:, i:i + 2 * h:2, j:j + 2 * wd:2] += np.einsum("nhwc,oc->nhwo", x, wt[i, j])
    return out[:, 1:2 * h + 1, 1:2 * wd + 1]  # SAME: output position 2i + q - 1


def np_reference_generator(states, gkw, z, psi=0.7, cutoff=8):
    """G_style (mapping, truncation, synthesis with the stored noise) in float64 NumPy."""
    gs = find_network(states, "Gs")
    comps = {c.build_func_name: c for c in gs.components.values()}
    m = {k: np.asarray(a, np.float64) for k, a in comps["G_mapping"].variables.items()}
    v = {k: np.asarray(a, np.float64) for k, a in comps["G_synthesis"].variables.items()}
    lrelu = lambda t: np.where(t >= 0, t, 0.2 * t)  # noqa: E731
    scaled = lambda w, gain, lrmul=1.0: w * gain / np.sqrt(np.prod(w.shape[:-1])) * lrmul  # noqa: E731
    nf, log2 = _nf(gkw), int(np.log2(gkw["resolution"]))
    num_layers = 2 * log2 - 2
    x = np.asarray(z, np.float64)
    x = x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-8)
    for i in range(gkw["mapping_layers"]):
        x = lrelu(x @ scaled(m[f"Dense{i}/weight"], np.sqrt(2), 0.01) + m[f"Dense{i}/bias"] * 0.01)
    dl = np.repeat(x[:, None], num_layers, axis=1)
    avg = np.asarray(gs.variables["dlatent_avg"], np.float64)
    coefs = np.where(np.arange(num_layers) < cutoff, psi, 1.0)[None, :, None]
    dl = avg + (dl - avg) * coefs

    def epilogue(t, index, scope):
        t = t + v[f"noise{index}"][0, 0][None, :, :, None] * v[f"{scope}/Noise/weight"]
        t = lrelu(t + v[f"{scope}/bias"])
        t = t - t.mean(axis=(1, 2), keepdims=True)
        t = t / np.sqrt((t ** 2).mean(axis=(1, 2), keepdims=True) + 1e-8)
        style = dl[:, index] @ scaled(v[f"{scope}/StyleMod/weight"], 1.0) + v[f"{scope}/StyleMod/bias"]
        c = t.shape[-1]
        return t * (style[:, None, None, :c] + 1) + style[:, None, None, c:]

    blur = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    t = np.repeat(v["4x4/Const/const"].transpose(0, 2, 3, 1), len(z), axis=0)
    t = epilogue(t, 0, "4x4/Const")
    t = epilogue(np_conv(t, scaled(v["4x4/Conv/weight"], np.sqrt(2))), 1, "4x4/Conv")
    for res in range(3, log2 + 1):
        s = f"{2 ** res}x{2 ** res}"
        w = scaled(v[f"{s}/Conv0_up/weight"], np.sqrt(2))
        fused = gkw.get("fused_scale", "auto") is True or (gkw.get("fused_scale", "auto") == "auto" and 2 ** res >= 128)
        t = np_conv_up_fused(t, w) if fused else np_conv(t.repeat(2, axis=1).repeat(2, axis=2), w)
        t = np_conv(t, blur[:, :, None, None] * np.eye(t.shape[-1])[None, None])
        t = epilogue(t, res * 2 - 4, f"{s}/Conv0_up")
        t = epilogue(np_conv(t, scaled(v[f"{s}/Conv1/weight"], np.sqrt(2))), res * 2 - 3, f"{s}/Conv1")
    return np_conv(t, scaled(v["ToRGB_lod0/weight"], 1.0)) + v["ToRGB_lod0/bias"]


# --- tests ---------------------------------------------------------------------------------------

def test_load_pkl_returns_three_states(pkl_file):
    g, d, gs = load_pkl(pkl_file)
    assert (g.name, d.name, gs.name) == ("G", "D", "Gs")
    assert d.build_func_name == "D_basic" and gs.build_func_name == "G_style"
    assert [k for k, _ in tf1_d_variables(D_KWARGS)] == list(d.variables)
    assert "G_synthesis/4x4/Const/const" in gs.all_variables()


def test_discriminator_matches_numpy_reference(pkl_file):
    _, d_state, _ = load_pkl(pkl_file)
    model = build_from_state(d_state)
    x = np.random.default_rng(1).uniform(-1, 1, (4, RES, RES, 3)).astype(np.float32)
    got = model(x).numpy()
    want = np_reference_d(d_state.state["variables"], D_KWARGS, x)
    assert got.shape == (4, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # NCHW interface: same scores
    nchw = build_from_state(d_state, data_format="channels_first")
    np.testing.assert_allclose(nchw(x.transpose(0, 3, 1, 2)).numpy(), got, rtol=1e-5, atol=1e-6)


def test_discriminator_input_gradient_matches_finite_differences(pkl_file):
    _, d_state, _ = load_pkl(pkl_file)
    model = build_from_state(d_state, independent_images=True)
    x = np.random.default_rng(2).uniform(-1, 1, (1, RES, RES, 3))
    with tf.GradientTape() as tape:
        xt = tf.constant(x, tf.float32)
        tape.watch(xt)
        total = tf.reduce_sum(model(xt))
    grad = tape.gradient(total, xt).numpy()
    values = d_state.state["variables"]
    kw = dict(D_KWARGS)
    rng = np.random.default_rng(3)
    for _ in range(6):
        idx = (0, *rng.integers(0, RES, 2), rng.integers(0, 3))
        step = np.zeros_like(x)
        step[idx] = 1e-4
        numeric = (np_reference_d(values, kw, x + step).sum() - np_reference_d(values, kw, x - step).sum()) / 2e-4
        assert grad[idx] == pytest.approx(numeric, rel=2e-2, abs=1e-3 * float(np.abs(grad).max()))


def test_generator_loads_and_runs_deterministically(pkl_file):
    *_, gs = load_pkl(pkl_file)
    model = build_from_state(gs, randomize_noise=False)
    z = np.random.default_rng(4).standard_normal((2, 16)).astype(np.float32)
    a, b = model(z).numpy(), model(z).numpy()
    assert a.shape == (2, RES, RES, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[0] - a[1]).max() > 1e-3
    # psi = 0: every latent maps to dlatent_avg, so all images are the same
    flat = build_from_state(gs, randomize_noise=False, truncation_psi=0.0, truncation_cutoff=100)
    out = flat(z).numpy()
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    noisy = build_from_state(gs)  # randomize_noise from the pickle's default (True)
    assert np.abs(noisy(z).numpy() - noisy(z).numpy()).max() > 0


@pytest.mark.parametrize("resample", ["up", "down"])
def test_fused_resampling_equals_separate_ops(resample):
    """TF1's fused ops equal the separate ones; the fused up-conv (a transposed
    convolution, which flips the kernel) equals nearest up-sampling + conv with the
    spatially flipped kernel."""
    x = np.random.default_rng(5).standard_normal((2, 8, 8, 4)).astype(np.float32)
    fused = EqualizedConv2D(5, 3, resample=resample, fused=True)
    plain = EqualizedConv2D(5, 3, resample=resample, fused=False)
    fused.build(x.shape)
    plain.build(x.shape)
    w = np.random.default_rng(6).standard_normal(fused.weight.shape).astype(np.float32)
    fused.weight.assign(w)
    plain.weight.assign(w[::-1, ::-1] if resample == "up" else w)
    got = fused(x).numpy()
    assert got.shape == ((2, 16, 16, 5) if resample == "up" else (2, 4, 4, 5))
    np.testing.assert_allclose(got, plain(x).numpy(), rtol=1e-4, atol=1e-4)


def test_protocol2_pickle_with_numpy1_names_loads():
    states = loads_pkl(official_pickle(protocol=2, old_numpy_names=True))
    d = find_network(states, "D")
    assert d.variables["4x4/Dense1/weight"].shape == (32, 1)


class _Evil:
    def __reduce__(self):
        import os
        return os.system, ("echo owned",)


def test_loader_refuses_os_system_and_runs_nothing(tmp_path):
    marker = tmp_path / "executed"
    hand_made = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    path = tmp_path / "evil.pkl"
    path.write_bytes(hand_made)
    with pytest.raises(pickle.UnpicklingError, match=r"refuses to load global 'os\.system'"):
        load_pkl(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match=r"global '(posix|os|nt)\.system'"):
        loads_pkl(pickle.dumps(_Evil()))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        loads_pkl(b"cbuiltins\neval\n(S'1'\ntR.")


def test_shape_mismatch_names_variable_and_shapes():
    variables = random_values(tf1_d_variables(D_KWARGS), np.random.default_rng(0))
    variables = [(k, np.zeros((3, 3, 16, 7), np.float32) if k == "32x32/Conv0/weight" else v) for k, v in variables]
    d = find_network(loads_pkl(official_pickle(d_variables=variables)), "D")
    with pytest.raises(ValueError, match=r"'32x32/Conv0/weight' has shape \(3, 3, 16, 7\) in the pickle but "
                                         r"\(3, 3, 16, 16\)"):
        build_from_state(d)


def test_missing_and_unexpected_variables_are_named():
    variables = [kv for kv in random_values(tf1_d_variables(D_KWARGS), np.random.default_rng(0))
                 if kv[0] != "4x4/Dense0/bias"]
    d = find_network(loads_pkl(official_pickle(d_variables=variables)), "D")
    with pytest.raises(ValueError, match=r"'4x4/Dense0/bias' \(shape \(32,\)\) is missing"):
        build_from_state(d)
    extra = random_values(tf1_d_variables(D_KWARGS), np.random.default_rng(0)) + [("64x64/Conv0/weight", np.zeros(3))]
    d = find_network(loads_pkl(official_pickle(d_variables=extra)), "D")
    with pytest.raises(ValueError, match=r"holds variable '64x64/Conv0/weight'"):
        build_from_state(d)


def test_port_names_equal_tf1_names():
    kw = {**G_KWARGS, "resolution": 16}
    synthesis = build_synthesis(**kw)
    want = {k: s for k, s in tf1_synthesis_variables(kw) if not k.startswith("ToRGB_lod") or k.startswith("ToRGB_lod0")}
    want.pop("lod")
    assert {k: tuple(v.shape) for k, v in tf1_variables(synthesis).items()} == want
    d = build_discriminator(**{**D_KWARGS, "resolution": 16})
    want = {k: s for k, s in tf1_d_variables({**D_KWARGS, "resolution": 16})
            if not k.startswith("FromRGB_lod") or k.startswith("FromRGB_lod0")}
    want.pop("lod")
    assert {k: tuple(v.shape) for k, v in tf1_variables(d).items()} == want


@pytest.mark.parametrize("suffix", [".npz", ".keras"])
def test_own_weights_round_trip(pkl_file, tmp_path, suffix):
    _, d_state, gs_state = load_pkl(pkl_file)
    x = np.random.default_rng(7).uniform(-1, 1, (2, RES, RES, 3)).astype(np.float32)
    d = build_from_state(d_state)
    path = save_network(d, tmp_path / f"d{suffix}")
    np.testing.assert_allclose(load_network(path)(x).numpy(), d(x).numpy(), rtol=1e-6)
    gs = build_from_state(gs_state, randomize_noise=False)
    z = np.random.default_rng(8).standard_normal((2, 16)).astype(np.float32)
    path = save_network(gs, tmp_path / f"gs{suffix}")
    np.testing.assert_allclose(load_network(path)(z).numpy(), gs(z).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused_scale", ["auto", True])
def test_generator_matches_numpy_reference(fused_scale):
    gkw = {**G_KWARGS, "resolution": 16, "fused_scale": fused_scale}
    states = loads_pkl(official_pickle(g_kwargs=gkw, seed=11))
    model = build_from_state(find_network(states, "Gs"), randomize_noise=False)
    z = np.random.default_rng(12).standard_normal((3, 16)).astype(np.float32)
    got = model(z).numpy()
    want = np_reference_generator(states, gkw, z)
    assert got.shape == want.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_variants_serialize_with_keras_safe_mode(tmp_path):
    """Non-default branches (dense 4x4 input, no styles' noise, NCHW) build, save and reload."""
    import keras

    synthesis = build_synthesis(**{**G_KWARGS, "resolution": 8}, const_input_layer=False, use_noise=False,
                                use_pixel_norm=True, data_format="channels_first")
    d = build_discriminator(**{**D_KWARGS, "resolution": 8}, mbstd_group_size=0, blur_filter=None,
                            nonlinearity="relu", data_format="channels_first")
    dl = np.random.default_rng(0).standard_normal((2, 4, 16)).astype(np.float32)
    images = synthesis(dl).numpy()
    assert images.shape == (2, 3, 8, 8)
    assert "4x4/Dense/weight" in tf1_variables(synthesis) and "4x4/Conv/weight" in tf1_variables(d)
    assert tf1_variables(d)["4x4/Conv/weight"].shape == (3, 3, 32, 32)  # no mbstd feature
    for model, x in ((synthesis, dl), (d, images)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        again = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"`resolution` must be a power of two >= 4. Received: resolution=48"):
        build_discriminator(resolution=48)
    with pytest.raises(ValueError, match=r"label_size > 0\) are not supported. Received: label_size=10"):
        build_discriminator(resolution=32, label_size=10)
    with pytest.raises(ValueError, match=r"`fused_scale` must be True, False or 'auto'"):
        build_synthesis(resolution=8, fmap_base=64, fused_scale="yes")
    with pytest.raises(ValueError, match=r"`kernel_size` must be a positive odd int. Received: kernel_size=2"):
        EqualizedConv2D(4, 2)


def test_minibatch_stddev_groups_like_tf1():
    from tfforensics.models.stylegan.layers import MinibatchStddev

    x = np.random.default_rng(0).standard_normal((8, 4, 4, 6)).astype(np.float32)
    out = MinibatchStddev(4, 2)(x).numpy()
    assert out.shape == (8, 4, 4, 8)
    # groups are images {m, m+2, m+4, m+6}; features split the channels into 2 halves
    group = x[[1, 3, 5, 7]]
    want = np.sqrt(group.var(axis=0) + 1e-8)[..., 3:].mean()
    np.testing.assert_allclose(out[5, 2, 1, 7], want, rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of the group size"):
        MinibatchStddev(4)(x[:6])


def test_ffhq_generator_size_matches_the_official_count():
    """The official README prints Gs (FFHQ 1024x1024) with 26,219,627 trainable parameters,
    counted over the template graph, which also holds the ToRGB layers of lower resolutions."""
    from tfforensics.models.stylegan import build_generator

    kw = {"num_channels": 3, "resolution": 1024, "label_size": 0}
    gs = build_generator(**kw)
    port = sum(int(np.prod(w.shape)) for w in gs.trainable_weights)
    unused_torgb = sum(int(np.prod(shape)) for name, shape in tf1_synthesis_variables(kw)
                       if name.startswith("ToRGB_lod") and not name.startswith("ToRGB_lod0/"))
    assert port + unused_torgb == 26_219_627
