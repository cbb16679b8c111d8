"""The field's published detectors as released: PyTorch checkpoints read without torch, their
Keras ports against an independent NumPy forward pass, ``convert`` and ``evaluate``.

Checkpoints are written here in PyTorch's own layouts (:mod:`_torch_format`: the zip
``archive/data.pkl`` + ``archive/data/<key>``, the legacy magic-number stream and the
legacy tar) with the key names of the originals' state dicts and random weights.
"""

from __future__ import annotations

import collections
import zipfile

import numpy as np
import pytest

import _torch_format as torchfmt
from tfforensics.errors import UserError
from tfforensics.io.torch_checkpoint import load_checkpoint, load_state_dict


def _weights(rng):
    return torchfmt.state_dict({
        "conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "bn1.running_mean": rng.standard_normal(4).astype(np.float64),
        "bn1.num_batches_tracked": np.array(7, dtype=np.int64),
        "fc.weight": rng.standard_normal((1, 4)).astype(np.float16),
        "mask": np.array([True, False]),
    })


# --- the reader -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["zip", "zip_stem", "legacy", "tar"])
def test_reads_every_layout(tmp_path, layout):
    weights = _weights(np.random.default_rng(0))
    path = tmp_path / "model_epoch_best.pth"
    if layout == "zip":
        torchfmt.save_zip({"model": weights, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
                           "total_steps": 12}, path)
    elif layout == "zip_stem":  # torch 1.6 - 1.x named the top folder after the file
        torchfmt.save_zip(weights, path, archive="model_epoch_best")
    elif layout == "legacy":
        torchfmt.save_legacy({"model": weights, "total_steps": 12}, path)
    else:
        torchfmt.save_tar(collections.OrderedDict(weights), path)
    loaded = load_state_dict(path)
    assert list(loaded) == list(weights)
    for name, value in weights.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value)


def test_views_offsets_strides_and_module_prefix(tmp_path):
    storage = np.arange(24, dtype=np.float32)
    checkpoint = {"state_dict": collections.OrderedDict([
        ("module.a", torchfmt.Tensor(storage, offset=1, size=(3, 2), stride=(1, 3))),  # a transposed view
        ("module.b", torchfmt.Tensor(storage, size=(2, 3, 4))),
        ("module.w", torchfmt.Tensor(storage[:6], parameter=True)),
    ])}
    path = torchfmt.save_zip(checkpoint, tmp_path / "net.pth")
    loaded = load_state_dict(path)
    np.testing.assert_array_equal(loaded["a"], np.lib.stride_tricks.as_strided(storage[1:], (3, 2), (4, 12)))
    np.testing.assert_array_equal(loaded["b"], storage.reshape(2, 3, 4))
    np.testing.assert_array_equal(loaded["w"], storage[:6])
    raw = load_checkpoint(path)  # the whole object, arrays in place of tensors
    assert set(raw) == {"state_dict"} and isinstance(raw["state_dict"], collections.OrderedDict)


# --- hostile checkpoints: one line, nothing runs, nothing allocated ------------------------------

def _zip_with_pickle(path, data):
    with zipfile.ZipFile(path, "w") as handle:
        handle.writestr("archive/data.pkl", data)
        handle.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"), ("torch.nn.modules.conv", "Conv2d"),
                                         ("numpy.core.multiarray", "_reconstruct"), ("torch", "load")])
def test_other_globals_are_refused(tmp_path, module, name):
    path = _zip_with_pickle(tmp_path / "evil.pth", torchfmt.pickle_with_global(module, name))
    with pytest.raises(UserError, match=rf"evil.pth: refuses to load global '{module}.{name}'"):
        load_state_dict(path)


def test_huge_declared_sizes_are_refused_before_allocating(tmp_path):
    import tracemalloc

    small = np.zeros(4, np.float32)
    cases = {
        "numel": torchfmt.Tensor(small, numel=10 ** 12),  # a storage of 4 TB in a tiny file
        "shape": torchfmt.Tensor(small, size=(10 ** 6, 10 ** 6), stride=(10 ** 6, 1)),
        "offset": torchfmt.Tensor(small, offset=3, size=(2,), stride=(1,)),
        "stride": torchfmt.Tensor(small, size=(2, 2), stride=(3, 1)),
    }
    tracemalloc.start()
    try:
        for what, tensor in cases.items():
            path = torchfmt.save_zip({"w": tensor}, tmp_path / f"{what}.pth")
            with pytest.raises(UserError, match=rf"{what}.pth: .*(declares|refused)"):
                load_state_dict(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20


def test_truncated_and_missing_storages(tmp_path):
    weights = {"w": np.ones((8, 8), np.float32)}
    cut = torchfmt.save_zip(weights, tmp_path / "cut.pth", edit=lambda n, b: b[:-5] if n.endswith("data/0") else b)
    with pytest.raises(UserError, match=r"cut.pth: storage '0' declares 64 elements .*256 bytes.* 251 bytes"):
        load_state_dict(cut)
    gone = torchfmt.save_zip(weights, tmp_path / "gone.pth", edit=lambda n, b: None if n.endswith("data/0") else b)
    with pytest.raises(UserError, match=r"gone.pth: storage '0' .* is missing"):
        load_state_dict(gone)
    for cut_bytes in (3, 200, 300):
        legacy = torchfmt.save_legacy(weights, tmp_path / f"legacy{cut_bytes}.pth", cut=cut_bytes)
        with pytest.raises(UserError, match=rf"legacy{cut_bytes}.pth: .*truncated"):
            load_state_dict(legacy)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "noise.pth").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(UserError, match="noise.pth: "):
        load_state_dict(tmp_path / "noise.pth")
    path = torchfmt.save_zip({"epoch": 3, "name": "x"}, tmp_path / "nothing.pth")
    with pytest.raises(UserError, match="nothing.pth: holds no state dict"):
        load_state_dict(path)
    with pytest.raises(UserError, match="missing.pth: checkpoint not found"):
        load_state_dict(tmp_path / "missing.pth")


# --- Keras ports against an independent NumPy forward pass (NCHW, torch's layout) -----------------

def _torch_state(arch, rng, in_channels=3):
    """A random state dict with the originals' key names and shapes (torch layouts)."""
    state = collections.OrderedDict()

    def conv(name, out, inp, k):
        state[f"{name}.weight"] = (rng.standard_normal((out, inp, k, k)) * np.sqrt(2.0 / (inp * k * k))).astype(np.float32)

    def bn(name, n, gain=1.0):
        state[f"{name}.weight"] = (gain * rng.uniform(0.5, 1.5, n)).astype(np.float32)
        state[f"{name}.bias"] = rng.uniform(-0.2, 0.2, n).astype(np.float32)
        state[f"{name}.running_mean"] = rng.uniform(-0.2, 0.2, n).astype(np.float32)
        state[f"{name}.running_var"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        state[f"{name}.num_batches_tracked"] = np.array(100, dtype=np.int64)

    conv("conv1", 64, in_channels, 7 if arch == "resnet50" else 3)
    bn("bn1", 64)
    stages = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)][: 4 if arch == "resnet50" else 2]
    inplanes = 64
    for s, (planes, blocks, _stride) in enumerate(stages):
        for b in range(blocks):
            name = f"layer{s + 1}.{b}"
            conv(f"{name}.conv1", planes, inplanes, 1); bn(f"{name}.bn1", planes)
            conv(f"{name}.conv2", planes, planes, 3); bn(f"{name}.bn2", planes)
            conv(f"{name}.conv3", planes * 4, planes, 1); bn(f"{name}.bn3", planes * 4, gain=0.3)
            if b == 0:
                conv(f"{name}.downsample.0", planes * 4, inplanes, 1); bn(f"{name}.downsample.1", planes * 4)
            inplanes = planes * 4
    head = "fc" if arch == "resnet50" else "fc1"
    state[f"{head}.weight"] = (rng.standard_normal((1, inplanes)) / np.sqrt(inplanes)).astype(np.float32)
    state[f"{head}.bias"] = np.array([0.1], np.float32)
    return state


def _np_conv(x, w, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("ncijkl,ockl->noij", windows, w.astype(np.float64), optimize=True)


def _np_bn(x, s, name):
    scale = s[f"{name}.weight"] / np.sqrt(s[f"{name}.running_var"].astype(np.float64) + 1e-5)
    return (x - s[f"{name}.running_mean"][None, :, None, None]) * scale[None, :, None, None] + s[f"{name}.bias"][None, :, None, None]


def _np_maxpool(x):
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    return np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-1, -2))


def _np_forward(arch, s, images):
    """torch's forward of CNNDetection's / NPR's model on 0..255 NHWC images -> (features, P(fake))."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = images.astype(np.float64).transpose(0, 3, 1, 2) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406])[None, :, None, None]) / np.array([0.229, 0.224, 0.225])[None, :, None, None]
    if arch == "npr":  # x - interpolate(interpolate(x, 0.5), 2), nearest: source index floor(i * in / out)
        h, w = x.shape[2:]
        down = x[:, :, (np.arange(h // 2) * 2), :][:, :, :, (np.arange(w // 2) * 2)]
        up = down[:, :, np.arange(h) // 2, :][:, :, :, np.arange(w) // 2]
        x = (x - up) * 2.0 / 3.0
    x = _np_maxpool(relu(_np_bn(_np_conv(x, s["conv1.weight"], 2, 3 if arch == "resnet50" else 1), s, "bn1")))
    stages = [(3, 1), (4, 2), (6, 2), (3, 2)][: 4 if arch == "resnet50" else 2]
    for i, (blocks, stride) in enumerate(stages):
        for b in range(blocks):
            n = f"layer{i + 1}.{b}"
            st = stride if b == 0 else 1
            y = relu(_np_bn(_np_conv(x, s[f"{n}.conv1.weight"], 1, 0), s, f"{n}.bn1"))
            y = relu(_np_bn(_np_conv(y, s[f"{n}.conv2.weight"], st, 1), s, f"{n}.bn2"))
            y = _np_bn(_np_conv(y, s[f"{n}.conv3.weight"], 1, 0), s, f"{n}.bn3")
            short = _np_bn(_np_conv(x, s[f"{n}.downsample.0.weight"], st, 0), s, f"{n}.downsample.1") if b == 0 else x
            x = relu(y + short)
    features = x.mean(axis=(2, 3))
    head = "fc" if arch == "resnet50" else "fc1"
    logit = features @ s[f"{head}.weight"].T.astype(np.float64) + s[f"{head}.bias"]
    return features, 1.0 / (1.0 + np.exp(-logit[:, 0]))


def _images(count, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3)).astype(np.uint8)


def _check_port(model, arch, state, images):
    import keras

    from tfforensics.models.wrapped import class_names_of, unwrap

    assert class_names_of(model) == ["real", "fake"]
    features, expected = _np_forward(arch, state, images)
    got = np.asarray(model(images.astype(np.float32)))[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    preprocessing, classifier = unwrap(model)
    inner = keras.Model(classifier.inputs, classifier.get_layer("avgpool").output)
    port_features = np.asarray(inner(preprocessing(images.astype(np.float32))))
    assert np.max(np.abs(port_features - features)) <= 1e-4 * np.max(np.abs(features))


def _cnndetection_checkpoint(state):
    # CNNDetection saves {'model': state_dict, 'optimizer': ..., 'total_steps': n}; DataParallel adds 'module.'.
    return {"model": torchfmt.state_dict({f"module.{k}": v for k, v in state.items()}), "total_steps": 5}


def test_resnet50_port_matches_numpy(tmp_path):
    from tfforensics.models.published import port_from_state_dict

    state = _torch_state("resnet50", np.random.default_rng(1))
    path = torchfmt.save_zip(_cnndetection_checkpoint(state), tmp_path / "blur_jpg_prob0.5.pth")
    model = port_from_state_dict("resnet50", load_state_dict(path), image_size=32)
    assert model.input_shape == (None, 32, 32, 3)
    _check_port(model, "resnet50", state, _images(2, 32))


def test_npr_converts_on_the_command_line_and_matches_numpy(tmp_path, capsys):
    from tfforensics.cli.main import launch
    from tfforensics.models.wrapped import load_model

    state = _torch_state("npr", np.random.default_rng(1))
    path = torchfmt.save_legacy(_cnndetection_checkpoint(state), tmp_path / "NPR.pth")
    out = tmp_path / "npr.keras"
    assert launch(["convert", "torch", str(path), "--arch", "npr", "--out", str(out), "-q"]) == 0
    model = load_model(out)  # safe_mode
    assert model.input_shape == (None, None, None, 3)  # any size, as the original tests
    _check_port(model, "npr", state, _images(2, 32))
    _check_port(model, "npr", state, _images(1, 48, seed=1))
    # An existing output is not replaced without --overwrite, and a wrong --arch is one line.
    capsys.readouterr()
    assert launch(["convert", "torch", str(path), "--arch", "npr", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert launch(["convert", "torch", str(path), "--arch", "resnet50", "--out", str(tmp_path / "x.keras")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NPR.pth: " in err and "--arch" in err, err


def test_npr_layer_and_registry():
    from tfforensics.layers import NeighbourResidual
    from tfforensics.models.classifiers import build_model

    x = np.random.default_rng(0).standard_normal((2, 8, 6, 3)).astype(np.float32)
    got = np.asarray(NeighbourResidual()(x))
    up = np.repeat(np.repeat(x[:, ::2, ::2], 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(got, (x - up) * 2 / 3, atol=1e-6)
    model = build_model("npr", (32, 32, 3), 2)
    assert model.get_layer("predictions").units == 1 and model.get_layer("conv1").strides == (2, 2)
    assert model.get_layer("layer2_3_conv3").filters == 512
    with pytest.raises(ValueError, match="even image height"):
        build_model("npr", (31, 32, 3), 2)


# --- evaluate: the ForenSynths protocol ---------------------------------------------------------

@pytest.fixture(scope="module")
def forensynths(tmp_path_factory):
    """A tiny test set in CNNDetection's layout: progan with two classes, stylegan and deepfake flat."""
    from conftest import write_folder
    from tfforensics.benchmark.photos import load_photos, random_crops, upsampled

    root = tmp_path_factory.mktemp("forensynths") / "test"
    crops, _ = random_crops(load_photos(), 60, 32, seed=3)
    folders = ["progan/car", "progan/cat", "stylegan", "deepfake"]
    for i, folder in enumerate(folders):
        part = crops[i * 12:(i + 1) * 12]
        write_folder(root / folder / "0_real", part[:5])
        write_folder(root / folder / "1_fake", upsampled(part[5:], "nearest"))
    return root


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    import keras

    from tfforensics.io.atomic import save_keras
    from tfforensics.models.classifiers import build_model
    from tfforensics.models.published import detector_on_images

    keras.utils.set_random_seed(2)
    path = tmp_path_factory.mktemp("detector") / "cnn.keras"
    save_keras(detector_on_images(build_model("cnn", (32, 32, 3), 2)), path)
    return path


def _sklearn_rows(model, root, family_dirs, transform=None):
    from PIL import Image
    from sklearn.metrics import accuracy_score, average_precision_score

    rows = {}
    for family, dirs in family_dirs.items():
        paths, labels = [], []
        for d in dirs:
            for label, name in enumerate(("0_real", "1_fake")):
                files = sorted((root / d / name).glob("*.png"))
                paths += files
                labels += [label] * len(files)
        images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
        if transform is not None:
            images = np.stack([transform(image) for image in images])
        y, p = np.array(labels), np.asarray(model.predict(images.astype(np.float32), verbose=0))[:, 0]
        rows[family] = {"accuracy": accuracy_score(y, p > 0.5), "real_accuracy": accuracy_score(y[y == 0], p[y == 0] > 0.5),
                        "fake_accuracy": accuracy_score(y[y == 1], p[y == 1] > 0.5),
                        "average_precision": average_precision_score(y, p)}
    return rows


def test_evaluate_equals_sklearn(forensynths, detector, tmp_path, capsys):
    import csv
    import json

    from tfforensics.cli.main import launch
    from tfforensics.models.wrapped import load_model
    from tfforensics.preprocess.perturb import down_and_up, jpeg_compress

    out = tmp_path / "results"
    assert launch(["evaluate", str(detector), str(forensynths), "--perturb", "resize0.5", "jpeg60", "--jpeg", "60",
                   "--blur", "1", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "| **mean** |" in printed and "## jpeg60" in printed and "## blur1" in printed and "## resize0.5" in printed
    report = json.loads((out / "evaluation.json").read_text())
    assert list(report["conditions"]) == ["clean", "resize0.5", "jpeg60", "blur1"]  # --jpeg 60 = --perturb jpeg60
    clean = report["conditions"]["clean"]
    assert list(clean["families"]) == ["progan", "stylegan", "deepfake"]  # eval_test8gan's order
    assert clean["families"]["progan"]["count"] == 24 and clean["families"]["progan"]["real"] == 10
    model = load_model(detector)
    dirs = {"progan": ["progan/car", "progan/cat"], "stylegan": ["stylegan"], "deepfake": ["deepfake"]}
    for condition, transform in (("clean", None), ("jpeg60", lambda im: jpeg_compress(im, 60)),
                                 ("resize0.5", lambda im: down_and_up(im, 0.5))):
        expected = _sklearn_rows(model, forensynths, dirs, transform)
        table = report["conditions"][condition]
        for family, row in expected.items():
            for key, value in row.items():
                assert table["families"][family][key] == pytest.approx(value, abs=1e-9), (condition, family, key)
        for key in row:
            assert table["mean"][key] == pytest.approx(np.mean([r[key] for r in expected.values()]), abs=1e-9)
    rows = list(csv.DictReader((out / "evaluation.csv").open()))
    assert len(rows) == 4 * 4 and rows[3]["family"] == "mean"
    assert float(rows[3]["average_precision"]) == pytest.approx(clean["mean"]["average_precision"], abs=1e-6)
    assert "| progan |" in (out / "evaluation.md").read_text()
    # again without --overwrite: refused in one line; with it, replaced
    assert launch(["evaluate", str(detector), str(forensynths), "--out", str(out), "-q"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert launch(["evaluate", str(detector), str(forensynths), "--out", str(out), "-q", "--overwrite"]) == 0


def test_evaluate_and_classify_one_image(forensynths, detector, capsys):
    from tfforensics.cli.main import launch
    from tfforensics.evaluation.classify import classify_images
    from tfforensics.evaluation.evaluate import evaluate_folders

    image = forensynths / "stylegan" / "1_fake" / "0000.png"
    report = evaluate_folders(detector, image)
    (entry,) = report["images"]
    assert entry["label"] == 1 and 0 <= entry["fake_score"] <= 1
    row = report["conditions"]["clean"]["families"]["0000"]
    assert row["count"] == 1 and row["average_precision"] is None
    result = classify_images(detector, image, progress=False)
    assert result.scores[0, 1] == pytest.approx(entry["fake_score"], abs=1e-6)
    assert launch(["classify", str(detector), str(image), "-q"]) == 0
    assert launch(["evaluate", str(detector), str(forensynths / "nowhere"), "-q"]) == 2
    assert "nowhere: not found" in capsys.readouterr().err
    assert launch(["evaluate", str(detector), str(image), "--perturb", "jpeg101", "-q"]) == 2
    assert "--perturb jpeg101: the JPEG quality must lie in (0, 100]" in capsys.readouterr().err


# --- GANDCTAnalysis SavedModels ----------------------------------------------------------------

def _save_gandct_savedmodel(directory, weights):
    """A SavedModel with tf.keras' object graph: ``layer_with_weights-<i>/<attribute>`` variables."""
    import tensorflow as tf

    root = tf.Module()
    for i, layer in enumerate(weights):
        holder = tf.Module()
        for attribute, value in layer.items():
            setattr(holder, attribute, tf.Variable(value, name=attribute))
        setattr(root, f"layer_with_weights-{i}", holder)
    root.call = tf.function(lambda x: x, input_signature=[tf.TensorSpec([None, 1], tf.float32)])
    tf.saved_model.save(root, str(directory))
    return directory


def _np_same_conv(x, kernel, bias):  # NHWC, HWIO, 'same' padding, stride 1
    k = kernel.shape[0]
    padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))  # n,h,w,c,kh,kw
    return np.einsum("nhwckl,klco->nhwo", windows, kernel) + bias


def test_gandct_savedmodel_converts_and_matches_numpy(tmp_path):
    from scipy.fft import dctn

    from tfforensics.cli.main import launch
    from tfforensics.models.wrapped import class_names_of, load_model

    rng = np.random.default_rng(4)
    size, classes = 16, 5
    convs = [(3, 3), (3, 8), (8, 16), (16, 32)]
    weights = [{"kernel": (rng.standard_normal((3, 3, i, o)) / np.sqrt(9 * i)).astype(np.float32),
                "bias": rng.uniform(-0.1, 0.1, o).astype(np.float32)} for i, o in convs]
    weights.append({"kernel": (rng.standard_normal((4 * 4 * 32, classes)) * 0.05).astype(np.float32),
                    "bias": np.zeros(classes, np.float32)})
    model_dir = _save_gandct_savedmodel(tmp_path / "lsun_dct_cnn", weights)
    images = rng.integers(0, 256, (40, size, size, 3)).astype(np.float64)
    logs = np.log(np.abs(dctn(images, type=2, norm="ortho", axes=(1, 2))) + 1e-13)
    (tmp_path / "mean_var").mkdir()
    np.save(tmp_path / "mean_var" / "mean.npy", logs.mean(axis=0))
    np.save(tmp_path / "mean_var" / "var.npy", logs.var(axis=0))
    out = tmp_path / "cnn.keras"
    assert launch(["convert", "gandct", str(model_dir), "--mean-var", str(tmp_path / "mean_var"), "--out", str(out),
                   "--class-names", "real,progan,sngan,cramer,mmd", "-q"]) == 0
    model = load_model(out)
    assert class_names_of(model) == ["real", "progan", "sngan", "cramer", "mmd"]
    # run_classifier.py's DCTLayer, then the original build_simple_cnn, in NumPy
    x = (logs[:4] - logs.mean(axis=0)) / np.sqrt(logs.var(axis=0))
    for i, layer in enumerate(weights[:4]):
        x = np.maximum(_np_same_conv(x, layer["kernel"], layer["bias"]), 0)
        if i in (1, 2):
            n, h, w, c = x.shape
            x = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    logits = x.reshape(4, -1) @ weights[4]["kernel"] + weights[4]["bias"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = np.asarray(model.predict(images[:4].astype(np.float32), verbose=0))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_gandct_errors(tmp_path, capsys):
    from tfforensics.cli.main import launch

    model_dir = _save_gandct_savedmodel(tmp_path / "m", [{"kernel": np.zeros((12, 1), np.float32),
                                                          "bias": np.zeros(1, np.float32)}])
    (tmp_path / "mv").mkdir()
    np.save(tmp_path / "mv" / "mean.npy", np.zeros((4, 4, 3)))
    np.save(tmp_path / "mv" / "var.npy", np.ones((4, 4, 3)))
    for argv, needle in [
        (["convert", "gandct", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a.keras")], "not found"),
        (["convert", "gandct", str(model_dir), "--mean-var", str(tmp_path / "none"), "--out", str(tmp_path / "a.keras")],
         "no mean.npy and var.npy"),
        (["convert", "gandct", str(model_dir), "--mean-var", str(tmp_path / "mv"), "--out", str(tmp_path / "a.keras")],
         "fit none of the architectures"),  # 4x4x3 = 48 inputs, the kernel has 12
    ]:
        capsys.readouterr()
        assert launch(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    np.save(tmp_path / "mv" / "mean.npy", np.zeros((2, 2, 3)))
    np.save(tmp_path / "mv" / "var.npy", np.ones((2, 2, 3)))
    assert launch(["convert", "gandct", str(model_dir), "--mean-var", str(tmp_path / "mv"), "--out",
                   str(tmp_path / "log.keras"), "-q"]) == 0


# --- the official StyleGAN from the command line -----------------------------------------------

def test_gan_sample_from_official_pickle(tmp_path, capsys):
    from PIL import Image

    from test_stylegan import RES, official_pickle
    from tfforensics.benchmark.gans import sample_images
    from tfforensics.cli.main import launch
    from tfforensics.models.stylegan.pkl import build_from_state, find_network, load_pkl

    pkl = tmp_path / "karras2019stylegan-test-32x32.pkl"
    pkl.write_bytes(official_pickle())
    out = tmp_path / "fakes"
    assert launch(["gan", "sample", "--pkl", str(pkl), "--truncation", "0.5", "--count", "3", str(out), "--seed", "2",
                   "-q"]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    expected = sample_images(build_from_state(find_network(load_pkl(pkl), "Gs"), truncation_psi=0.5), 3, seed=2)
    got = np.stack([np.asarray(Image.open(f)) for f in files])
    assert got.shape == (3, RES, RES, 3)
    np.testing.assert_array_equal(got, expected)
    capsys.readouterr()
    assert launch(["gan", "sample", "nearest", str(tmp_path / "x"), "--pkl", str(pkl), "--count", "1"]) == 2
    assert "either FAMILY or --pkl" in capsys.readouterr().err


def test_hostile_checkpoints_are_one_line_on_the_command_line(tmp_path, capsys):
    """Through `convert torch`: exit 2, one line naming the file, no output written."""
    from tfforensics.cli.main import launch

    shared = [1]
    for _ in range(28):  # a DAG of 2**28 leaves in a few hundred bytes (within the depth limit)
        shared = [shared, shared]
    files = {
        "global.pth": _zip_with_pickle(tmp_path / "global.pth", torchfmt.pickle_with_global("subprocess", "Popen")),
        "huge.pth": torchfmt.save_zip({"w": torchfmt.Tensor(np.zeros(2, np.float32), numel=1 << 50)},
                                      tmp_path / "huge.pth"),
        "cut.pth": torchfmt.save_legacy({"w": np.ones(64, np.float32)}, tmp_path / "cut.pth", cut=17),
        "dag.pth": torchfmt.save_zip({"w": np.ones(2, np.float32), "x": shared}, tmp_path / "dag.pth"),
    }
    for name, path in files.items():
        capsys.readouterr()
        out = tmp_path / f"{name}.keras"
        status = launch(["convert", "torch", str(path), "--arch", "npr", "--out", str(out)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert f"{name}: " in err and not out.exists(), (name, err)


def test_any_size_and_logit_detectors(forensynths, tmp_path):
    """A detector of any input size ending in a logit (LGrad's kind): images at their own size, sigmoid applied."""
    import keras
    from PIL import Image
    from sklearn.metrics import average_precision_score

    from tfforensics.evaluation.evaluate import evaluate_folders
    from tfforensics.io.atomic import save_keras
    from tfforensics.models.published import build_npr

    odd = tmp_path / "odd"
    big = forensynths / "stylegan"
    for name in ("0_real", "1_fake"):  # one family whose images have two sizes
        (odd / name).mkdir(parents=True)
        for i, path in enumerate(sorted((big / name).glob("*.png"))):
            image = Image.open(path)
            (image.resize((48, 40)) if i % 2 else image).save(odd / name / path.name)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(keras.layers.Rescaling(1 / 255)(inputs))
    logit = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D()(x))
    path = save_keras(keras.Model(inputs, logit), tmp_path / "lgrad_like.keras")
    report = evaluate_folders(path, odd)
    model = keras.saving.load_model(path)
    files = sorted((odd / "0_real").glob("*.png")) + sorted((odd / "1_fake").glob("*.png"))
    y = np.array([0] * 5 + [1] * 7)
    p = np.array([1 / (1 + np.exp(-float(model(np.asarray(Image.open(f))[None].astype("float32"))[0, 0])))
                  for f in files])
    row = report["conditions"]["clean"]["families"]["odd"]
    assert row["count"] == 12
    assert row["accuracy"] == pytest.approx(np.mean((p > 0.5) == y), abs=1e-9)
    assert row["average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    npr = build_npr((None, None, 3), 1)  # any size, odd sides too
    assert npr(np.zeros((1, 33, 31, 3), "float32")).shape == (1, 1)


def test_evaluate_lgrad_detector_computes_gradients_on_the_fly(forensynths, tmp_path):
    """An LGrad detector scored on the images: each (perturbed) image becomes its D gradient first."""
    import keras
    from PIL import Image

    from tfforensics.evaluation.evaluate import evaluate_folders
    from tfforensics.models import lgrad
    from tfforensics.models.gans import build_stylegan_discriminator
    from tfforensics.preprocess.perturb import jpeg_compress

    keras.utils.set_random_seed(3)
    detector = lgrad.build_detector("small")
    discriminator = build_stylegan_discriminator(32)
    for layer in discriminator.layers:  # as lgrad.load_discriminator: each gradient depends on its image only
        if hasattr(layer, "group_size"):
            layer.group_size = 1
    family = forensynths / "stylegan"
    report = evaluate_folders(detector, family, jpeg=[70], discriminator=discriminator)
    paths = sorted((family / "0_real").glob("*.png")) + sorted((family / "1_fake").glob("*.png"))
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    labels = np.array([0] * len(list((family / "0_real").glob("*.png"))) + [1] * len(list((family / "1_fake").glob("*.png"))))
    from sklearn.metrics import average_precision_score

    for condition, transform in (("clean", None), ("jpeg70", lambda im: jpeg_compress(im, 70))):
        inputs = images if transform is None else np.stack([transform(im) for im in images])
        gradients = lgrad.compute_gradients(discriminator, inputs)
        scores = np.asarray(detector.predict(gradients.astype(np.float32), verbose=0))[:, 0]
        (row,) = report["conditions"][condition]["families"].values()
        assert row["average_precision"] == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
        assert row["accuracy"] == pytest.approx(np.mean((scores > 0.5) == labels), abs=1e-9)
