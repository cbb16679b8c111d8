"""prepare: records match SciPy, load with the original's parser, and bad input is handled."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fftpack
import tensorflow as tf
from PIL import Image

from tfforensics.errors import UserError
from tfforensics.data import Encoding, Manifest, as_numpy, load_dataset, prepare
from tfforensics.data.records import serialize_example
from tfforensics.io.images import BadImageError, load_image


def original_deserialize(raw_record, shape):
    """The feature description of GANDCTAnalysis' ``deserialize_data`` (src/dataset.py)."""
    description = {
        "image": tf.io.FixedLenFeature(shape, tf.float32),
        "label": tf.io.FixedLenFeature((), tf.int64),
        "shape": tf.io.FixedLenFeature((3), tf.int64),
    }
    example = tf.io.parse_single_example(raw_record, description)
    return tf.reshape(example["image"], example["shape"]), example["label"]


def scipy_log_dct(path, grayscale=False):
    """The original per-image computation: PIL load, fftpack DCT on axis 0 then 1, log."""
    image = Image.open(path)
    array = np.asarray(image.convert("L"))[..., None] if grayscale else np.asarray(image.convert("RGB"))
    array = scipy.fftpack.dct(array.astype(np.float64), type=2, norm="ortho", axis=0)
    array = scipy.fftpack.dct(array, type=2, norm="ortho", axis=1)
    return np.log(np.abs(array) + 1e-12)


def _paths_by_name(source):
    return {p.name: p for p in Path(source).rglob("*.png")}


def test_log_color_records_load_with_original_parser_and_equal_scipy(three_sources, tmp_path):
    out = tmp_path / "dct_log"
    manifest = prepare(three_sources, out, Encoding(log=True, color=True), workers=2, progress=False, seed=3)
    assert manifest.class_names == ["a_real", "b_nearest", "c_bilinear"]
    assert manifest.image_shape == [32, 32, 3]
    # 30 images per class, 0.7 / 0.2 / 0.1 split per class
    assert {s: manifest.count(s) for s in ("train", "val", "test")} == {"train": 63, "val": 18, "test": 9}
    assert manifest.splits["test"]["per_class"] == {"a_real": 3, "b_nearest": 3, "c_bilinear": 3}

    # Which file went where is not stored in the records; recompute every image of each class
    # and match each record to exactly one of them.
    references = {}
    for label, name in enumerate(manifest.class_names):
        for path in sorted((three_sources / name).glob("*.png")):
            references.setdefault(label, []).append(scipy_log_dct(path))
    matched = 0
    for split in ("train", "val", "test"):
        files = [str(f) for f in manifest.files(split)]
        for raw in tf.data.TFRecordDataset(files):
            image, label = original_deserialize(raw, [32, 32, 3])
            image = image.numpy()
            errors = [np.abs(image - ref).max() for ref in references[int(label)]]
            assert min(errors) < 1e-5
            matched += 1
    assert matched == 90


def test_grayscale_matches_pil_luma(three_sources, tmp_path):
    manifest = prepare(three_sources, tmp_path / "gray", Encoding(log=True), workers=1, progress=False)
    x, y = as_numpy(manifest, "test")
    assert x.shape == (9, 32, 32, 1)
    refs = [scipy_log_dct(p, grayscale=True) for p in sorted((three_sources / "b_nearest").glob("*.png"))]
    for image in x[y == 1]:
        assert min(np.abs(image - r).max() for r in refs) < 1e-5


def test_normalize_uses_train_statistics_only(three_sources, tmp_path):
    manifest = prepare(three_sources, tmp_path / "norm", Encoding(log=True, color=True, normalize=True),
                       workers=2, progress=False)
    train, _ = as_numpy(manifest, "train")
    # standardised with its own statistics: mean 0, std 1 per coefficient
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-3)
    stats = manifest.load_statistics()
    raw = prepare(three_sources, tmp_path / "raw_log", Encoding(log=True, color=True), workers=2, progress=False)
    raw_train, _ = as_numpy(raw, "train")
    np.testing.assert_allclose(stats["mean"], raw_train.mean(axis=0), rtol=1e-4, atol=1e-4)
    # val is not part of the statistics, so it is not exactly standardised
    val, _ = as_numpy(manifest, "val")
    assert np.abs(val.mean(axis=0)).max() > 1e-3


def test_raw_pixels_scaled_and_sizes(three_sources, tmp_path):
    manifest = prepare(three_sources, tmp_path / "raw", Encoding(transform="raw", color=True),
                       sizes=(10, 5, 5), workers=2, progress=False)
    assert {s: manifest.count(s) for s in ("train", "val", "test")} == {"train": 30, "val": 15, "test": 15}
    x, _ = as_numpy(manifest, "train")
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5 and x.max() > 0.5
    with pytest.raises(ValueError, match="has 30 images but --sizes asks for 33"):
        prepare(three_sources, tmp_path / "too_many", sizes=(30, 2, 1), progress=False)


def test_compact_gzip_and_npy_layouts_hold_the_same_values(three_sources, tmp_path):
    encoding = Encoding(log=True, color=True)
    original = as_numpy(prepare(three_sources, tmp_path / "a", encoding, progress=False), "val")
    compact = as_numpy(prepare(three_sources, tmp_path / "b", encoding, layout="compact", compression="GZIP",
                               progress=False), "val")
    npy_manifest = prepare(three_sources, tmp_path / "c", encoding, format="npy", progress=False)
    npy = as_numpy(npy_manifest, "val")
    assert sorted(os.listdir(tmp_path / "c" / "val"))[:2] == ["000000.npy", "000001.npy"]
    assert np.load(tmp_path / "c" / "val" / "labels.npy").tolist() == npy[1].tolist()
    np.testing.assert_array_equal(original[1], compact[1])
    np.testing.assert_array_equal(original[1], npy[1])
    np.testing.assert_allclose(original[0], npy[0], atol=0)
    np.testing.assert_allclose(original[0], compact[0], rtol=1e-3, atol=1e-2)  # float16 storage
    # compact float16 is about half the size even before GZIP
    assert Manifest.load(tmp_path / "b").splits["val"]["num_bytes"] < 0.6 * Manifest.load(tmp_path / "a").splits["val"]["num_bytes"]


def test_serialized_example_equals_tensorflow_proto():
    image = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    ours = serialize_example(image, 7)
    parsed = tf.train.Example.FromString(ours)
    reference = tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(float_list=tf.train.FloatList(value=image.flatten().tolist())),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[7])),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=image.shape)),
    }))
    assert parsed == reference


@pytest.mark.parametrize("layout", ["original", "compact"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 4, 3), (64, 64, 1), (300, 300, 3)])
def test_fast_serializer_equals_field_by_field_encoding(shape, layout):
    from tfforensics.data.records import _serialize_reference

    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    for label in (0, 5, 300):
        assert serialize_example(image, label, layout) == _serialize_reference(image, label, layout)


def test_reader_loads_records_written_the_original_way(tmp_path):
    """A data.tfrecords written like the original prepare_dataset.py (no manifest) loads."""
    rng = np.random.default_rng(1)
    images = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    path = tmp_path / "data.tfrecords"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label, image in enumerate(images):
            feature = {
                "image": tf.train.Feature(float_list=tf.train.FloatList(value=image.flatten().tolist())),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label % 2])),
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=image.shape)),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    x, y = as_numpy(path)
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [0, 1, 0, 1, 0, 1]
    batch = next(iter(load_dataset(path, batch_size=4, shuffle=True)))
    assert batch[0].shape == (4, 8, 8, 1)


def _bad_folder(root: Path, good_source: Path) -> dict[str, Path]:
    """Two classes of good PNGs plus one bad file of each kind in class b."""
    for name in ("a", "b"):
        shutil.copytree(good_source / ("a_real" if name == "a" else "b_nearest"), root / name)
    bad = {
        "zero": root / "b" / "zero.png",
        "truncated_png": root / "b" / "truncated.png",
        "truncated_jpg": root / "b" / "truncated.jpg",
        "text": root / "b" / "text.png",
        "size": root / "b" / "other_size.png",
        "bomb": root / "b" / "bomb.png",
    }
    bad["zero"].write_bytes(b"")
    png = (good_source / "a_real" / "0000.png").read_bytes()
    bad["truncated_png"].write_bytes(png[: len(png) // 2])
    image = load_image(good_source / "a_real" / "0001.png")
    Image.fromarray(image).save(root / "full.jpg", quality=90)
    jpg = (root / "full.jpg").read_bytes()
    (root / "full.jpg").unlink()
    bad["truncated_jpg"].write_bytes(jpg[: len(jpg) // 2])
    bad["text"].write_text("this is not an image\n")
    Image.fromarray(np.zeros((40, 32, 3), np.uint8)).save(bad["size"])
    # a 20000 x 20000 1-bit PNG: a few KB on disk, 400 M pixels when decoded
    Image.new("1", (20000, 20000)).save(bad["bomb"])
    return bad


def test_bad_input_fails_cleanly_then_skips(three_sources, tmp_path):
    root = tmp_path / "bad_src"
    bad = _bad_folder(root, three_sources)
    out = tmp_path / "out"
    with pytest.raises(BadImageError) as info:
        prepare(root, out, Encoding(log=True), workers=2, progress=False)
    message = str(info.value)
    assert any(str(p) in message for p in bad.values()) and "--skip-bad" in message
    # nothing half-written: no output, no leftovers next to it
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    manifest = prepare(root, out, Encoding(log=True), workers=2, skip_bad=True, progress=False)
    skipped = {Path(s["path"]).name: s["reason"] for s in manifest.skipped}
    assert set(skipped) == {p.name for p in bad.values()}
    assert "empty" in skipped["zero.png"] and "image bomb" in skipped["bomb.png"]
    assert "32x40" in skipped["other_size.png"]
    total = sum(manifest.count(s) for s in ("train", "val", "test"))
    assert total == 60
    x, _ = as_numpy(manifest, "train")
    assert len(x) == manifest.count("train") and np.isfinite(x).all()


def test_cli_bad_input_one_line_and_empty_class(three_sources, tmp_path):
    root = tmp_path / "src"
    _bad_folder(root, three_sources)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "tfforensics", "prepare", str(root), str(tmp_path / "o"), "-q"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfforensics: error:")]
    assert len(errors) == 1 and "--skip-bad" in errors[0] and "Traceback" not in result.stderr
    (root / "c_empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "tfforensics", "prepare", str(root), str(tmp_path / "o"),
                             "--skip-bad", "-q"], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "c_empty: class folder has no images" in result.stderr


def test_any_readable_mode_is_converted(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), rgb)
    assert load_image(tmp_path / "palette.png").shape == (16, 16, 3)
    assert load_image(tmp_path / "cmyk.jpg").shape == (16, 16, 3)
    np.testing.assert_array_equal(load_image(tmp_path / "gray.png")[..., 0], rgb[..., 0])
    np.testing.assert_array_equal(load_image(tmp_path / "sixteen.png")[..., 1], rgb[..., 0])
    assert load_image(tmp_path / "sixteen.png", grayscale=True).shape == (16, 16, 1)


def test_rerun_reuses_continues_and_refuses_to_clobber(three_sources, tmp_path):
    out = tmp_path / "ds"
    first = prepare(three_sources, out, Encoding(log=True), shards=3, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    again = prepare(three_sources, out, Encoding(log=True), shards=3, progress=False)
    assert (out / "manifest.json").stat().st_mtime_ns == stamp and again.splits == first.splits
    with pytest.raises(UserError, match="--overwrite"):
        prepare(three_sources, out, Encoding(log=True, color=True), shards=3, progress=False)



def test_interrupted_run_continues_without_redoing_shards(three_sources, tmp_path, monkeypatch):
    prepare_module = importlib.import_module("tfforensics.data.prepare")

    real_task, calls = prepare_module._write_task, []

    def interrupted(task, state, tick):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(task["file"])
        return real_task(task, state, tick)

    monkeypatch.setattr(prepare_module, "_write_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(three_sources, tmp_path / "ds", Encoding(log=True), shards=3, workers=1, progress=False)
    assert not (tmp_path / "ds").exists()
    finished = list(calls)

    def counting(task, state, tick):
        calls.append(task["file"])
        return real_task(task, state, tick)

    calls.clear()
    monkeypatch.setattr(prepare_module, "_write_task", counting)
    resumed = prepare(three_sources, tmp_path / "ds", Encoding(log=True), shards=3, workers=1, progress=False)
    assert len(calls) == 9 - 2 and not set(calls) & set(finished)
    monkeypatch.undo()
    fresh = prepare(three_sources, tmp_path / "fresh", Encoding(log=True), shards=3, workers=2, progress=False)
    assert resumed.splits == fresh.splits
    np.testing.assert_array_equal(as_numpy(resumed, "train")[0], as_numpy(fresh, "train")[0])


def test_pool_path_writes_the_same_records_as_one_process(three_sources, tmp_path, monkeypatch):
    """Both pool stages (statistics, encode + write) run in worker processes of io.parallel.run_pool."""
    from tfforensics.io import parallel

    encoding = Encoding(log=True, color=True, normalize=True)
    inline = prepare(three_sources, tmp_path / "inline", encoding, shards=3, workers=1, progress=False)
    pools = []

    def counted_context():
        pools.append(1)
        return real_context()

    real_context = parallel.pool_context
    monkeypatch.setattr(importlib.import_module("tfforensics.data.prepare"), "SPAWN_THRESHOLD", 0)
    monkeypatch.setattr(parallel, "pool_context", counted_context)
    pooled = prepare(three_sources, tmp_path / "pooled", encoding, shards=3, workers=2, progress=False)
    assert len(pools) == 2  # one pool per stage, so neither ran inline
    assert pooled.splits == inline.splits and pooled.statistics == inline.statistics
    for split in ("train", "val", "test"):
        for a, b in zip(as_numpy(pooled, split), as_numpy(inline, split)):
            np.testing.assert_array_equal(a, b)


def test_presplit_source_keeps_the_users_splits(three_sources, tmp_path):
    root = tmp_path / "presplit"
    for split, count in (("train", 20), ("val", 6), ("test", 4)):
        for name in ("a_real", "b_nearest"):
            files = sorted((three_sources / name).glob("*.png"))
            offset = {"train": 0, "val": 20, "test": 26}[split]
            (root / split / name).mkdir(parents=True)
            for path in files[offset:offset + count]:
                shutil.copy(path, root / split / name / path.name)
    manifest = prepare(root, tmp_path / "out", Encoding(transform="raw", color=True), presplit=True, progress=False)
    assert manifest.class_names == ["a_real", "b_nearest"]
    assert {s: manifest.splits[s]["per_class"] for s in ("train", "val", "test")} == {
        "train": {"a_real": 20, "b_nearest": 20}, "val": {"a_real": 6, "b_nearest": 6},
        "test": {"a_real": 4, "b_nearest": 4}}
    # the test split holds exactly the user's test files
    x_test, y_test = as_numpy(manifest, "test")
    expected = sorted(load_image(p).tobytes() for p in (root / "test").rglob("*.png"))
    got = sorted(np.rint((x + 1) * 127.5).astype(np.uint8).tobytes() for x in x_test)
    assert got == expected
    # the folders `tfforensics split` writes (train/dev/test) are read the same way
    (root / "val").rename(root / "dev")
    from_dev = prepare(root, tmp_path / "out_dev", Encoding(transform="raw", color=True), presplit=True,
                       progress=False)
    assert from_dev.splits["val"]["per_class"] == {"a_real": 6, "b_nearest": 6}
    (root / "extra").mkdir()
    with pytest.raises(ValueError, match="holds only train/, val/"):
        prepare(root, tmp_path / "out3", presplit=True, progress=False)
    (root / "extra").rmdir()
    shutil.rmtree(root / "dev" / "b_nearest")
    with pytest.raises(ValueError, match="every split needs the same class folders"):
        prepare(root, tmp_path / "out2", presplit=True, progress=False)
