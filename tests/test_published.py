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
