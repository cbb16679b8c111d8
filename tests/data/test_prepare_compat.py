"""``prepare --compat gandct``: the same arrays as the original prepare_dataset.py, image by image.

The reference below is written from the original's code (GANDCTAnalysis @ 988c4c3,
``prepare_dataset.py`` and ``src/image_np.py``), independently of tfforensics' encoders:
``np.asarray(Image.open(path))`` (RGB whatever ``-c`` says), ``scale_image`` for ``-rn``,
``fftpack.dct`` along axis 0 then axis 1 with ``norm="ortho"`` and ``log(|x| + 1e-12)`` for ``-l``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import fftpack

from tfforensics.cli.main import launch
from tfforensics.data import Manifest, as_numpy

SIDE = 12
PER_CLASS = 6
SIZES = (3, 2, 1)  # per class: train, val, test


def _original(path, *, raw: bool, normalize: bool, log: bool) -> np.ndarray:
    """The original's per-image computation (convert_images without abs / normalisation of DCTs)."""
    image = np.asarray(Image.open(path))
    if raw:
        if normalize:  # scale_image
            image = image.astype(np.float32)
            image /= 127.5
            image -= 1.0
        return image
    array = fftpack.dct(np.asarray(image), type=2, norm="ortho", axis=0)
    array = fftpack.dct(array, type=2, norm="ortho", axis=1)
    if log:
        array = np.abs(array)
        array += 1e-12
        array = np.log(array)
    return array


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("compat") / "src"
    rng = np.random.default_rng(3)
    for name in ("fake", "real"):
        (root / name).mkdir(parents=True)
        # names chosen so that sorted order differs from creation order
        for index in rng.permutation(PER_CLASS):
            pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"img_{index:02d}.png")
    return root


def _expected(source, split: str, **flags):
    """The original's arrays of ``split``: per class the first files in sorted order."""
    start = {"train": 0, "val": SIZES[0], "test": SIZES[0] + SIZES[1]}[split]
    count = SIZES[("train", "val", "test").index(split)]
    out = []
    for label, name in enumerate(("fake", "real")):
        files = sorted(str(p) for p in (source / name).iterdir())[start:start + count]
        out += [(_original(path, **flags), label) for path in files]
    return out


def _prepare(source, out, flags):
    argv = ["prepare", str(source), str(out), *flags, "--compat", "gandct", "--sizes", *map(str, SIZES), "-q"]
    assert launch(argv) == 0
    return Manifest.load(out)


@pytest.mark.parametrize("flags, reference", [
    (["-r"], {"raw": True, "normalize": False, "log": False}),
    (["-rn"], {"raw": True, "normalize": True, "log": False}),
    (["-l"], {"raw": False, "normalize": False, "log": True}),
    (["-lc"], {"raw": False, "normalize": False, "log": True}),
])
def test_compat_gandct_equals_the_original_per_image(source, tmp_path, flags, reference):
    manifest = _prepare(source, tmp_path / "out", flags)
    assert manifest.image_shape == [SIDE, SIDE, 3]  # RGB, with or without -c
    for split in ("train", "val", "test"):
        values, labels = as_numpy(manifest, split)
        expected = _expected(source, split, **reference)
        assert len(values) == len(expected) == 2 * SIZES[("train", "val", "test").index(split)]
        # the records of a split are shuffled (the original's shuffle had no seed): match each
        # original array to the record of its label closest to it, which must then be equal
        unused = list(range(len(values)))
        for array, label in expected:
            candidates = [i for i in unused if labels[i] == label]
            distance = [np.abs(values[i] - array).max() for i in candidates]
            best = candidates[int(np.argmin(distance))]
            got, want = values[best], array.astype(np.float32)
            # a DCT coefficient that is 0 up to rounding (|x| < 1e-9) has a log that is rounding noise
            # (near log(1e-12)) in both implementations: there, both must be that tiny
            noise = want < np.log(1e-9) if reference["log"] else np.zeros(want.shape, bool)
            np.testing.assert_allclose(got[~noise], want[~noise], rtol=2e-6, atol=2e-5)
            assert (got[noise] < np.log(1e-9)).all()
            unused.remove(best)


def test_compat_raw_alone_is_0_to_255_and_differs_from_the_default(source, tmp_path):
    original = _prepare(source, tmp_path / "original", ["-r"])
    values, _ = as_numpy(original, "train")
    assert values.min() >= 0 and values.max() > 200 and np.array_equal(values, np.round(values))
    assert original.encoding.transform == "raw255"
    ours = tmp_path / "ours"
    assert launch(["prepare", str(source), str(ours), "-r", "--color", "--sizes", *map(str, SIZES), "-q"]) == 0
    scaled, _ = as_numpy(Manifest.load(ours), "train")
    assert scaled.min() >= -1 and scaled.max() <= 1


def test_sorted_split_order_takes_the_first_files(source):
    from tfforensics.data.splits import scan_classes, split_classes

    classes = scan_classes(source)
    items = split_classes(classes, sizes=SIZES, seed=5, order="sorted")
    for split, (start, count) in {"train": (0, 3), "val": (3, 2), "test": (5, 1)}.items():
        for label, name in enumerate(("fake", "real")):
            got = sorted(path for path, lab in items[split] if lab == label)
            want = sorted(str(p) for p in sorted((source / name).iterdir()))[start:start + count]
            assert got == want
    shuffled = split_classes(classes, sizes=SIZES, seed=5)
    assert {p for p, _ in shuffled["train"]} != {p for p, _ in items["train"]}


def test_compat_refuses_what_the_original_could_not_do(source, tmp_path, capsys):
    assert launch(["prepare", str(source), str(tmp_path / "a"), "-a", "--compat", "gandct", "-q"]) == 2
    assert "TypeError" in capsys.readouterr().err
    assert launch(["prepare", str(source), str(tmp_path / "g"), "-l", "-g", "--compat", "gandct", "-q"]) == 2
    assert "loads RGB" in capsys.readouterr().err
    # the original's constants need 150 000 images per class
    assert launch(["prepare", str(source), str(tmp_path / "c"), "-l", "--compat", "gandct", "-q"]) == 2
    assert "150000" in capsys.readouterr().err


def test_models_on_pixels_records_take_the_images_as_they_are(source, tmp_path):
    """Pixels in, encoding in the model: for the original's -r data the model's preprocessing is the identity."""
    from tfforensics.layers.preprocessing import preprocessing_from_manifest

    manifest = _prepare(source, tmp_path / "px", ["-r"])
    path = sorted((source / "fake").iterdir())[0]
    image = np.asarray(Image.open(path), dtype=np.float32)[None]
    np.testing.assert_array_equal(np.asarray(preprocessing_from_manifest(manifest)(image)), image)
