"""prepare --runner beam: the DirectRunner writes what the local runner writes, example by example."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfforensics.cli.main import launch
from tfforensics.data import Encoding, Manifest, prepare
from tfforensics.errors import UserError
from tfforensics.io.images import BadImageError

import apache_beam  # noqa: F401  (the "beam" extra, installed by the README's test command)


def _examples(manifest: Manifest, split: str):
    """(arrays, labels) of a split, in shard order, parsed with the original feature layout."""
    spec = {
        "image": tf.io.FixedLenFeature(manifest.image_shape, tf.float32),
        "label": tf.io.FixedLenFeature((), tf.int64),
        "shape": tf.io.FixedLenFeature((3,), tf.int64),
    }
    images, labels = [], []
    for raw in tf.data.TFRecordDataset([str(f) for f in manifest.files(split)],
                                       compression_type=manifest.compression or ""):
        example = tf.io.parse_single_example(raw, spec)
        images.append(example["image"].numpy())
        labels.append(int(example["label"]))
    return np.stack(images), labels


def test_direct_runner_equals_local_runner(three_sources, tmp_path):
    encoding = Encoding(log=True, color=True, normalize=True)
    local = prepare(three_sources, tmp_path / "local", encoding, shards=2, workers=1, seed=5, progress=False)
    beam = prepare(three_sources, tmp_path / "beam", encoding, shards=2, seed=5, progress=False, runner="beam")

    assert local.source["runner"] == "local" and beam.source["runner"] == "beam"
    assert beam.splits == local.splits  # counts, per class, shard names and lengths, bytes
    for split in ("train", "val", "test"):
        assert [f.name for f in beam.files(split)] == [f.name for f in local.files(split)]
        local_x, local_y = _examples(local, split)
        beam_x, beam_y = _examples(beam, split)
        assert beam_y == local_y  # same images in the same order: same split membership
        np.testing.assert_allclose(beam_x, local_x, rtol=0, atol=1e-6)
    local_stats, beam_stats = local.load_statistics(), beam.load_statistics()
    for key in ("mean", "std", "max_abs"):
        np.testing.assert_allclose(beam_stats[key], local_stats[key], rtol=1e-6, atol=1e-6)
    # the same manifest but for the runner; no work files left behind
    local_json = json.loads((tmp_path / "local" / "manifest.json").read_text())
    beam_json = json.loads((tmp_path / "beam" / "manifest.json").read_text())
    for data in (local_json, beam_json):
        data["source"].pop("runner"), data.pop("statistics")
    assert beam_json == local_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beam", "local"]
    assert not list((tmp_path / "beam").rglob(".incomplete-*"))


def test_direct_runner_bad_images_fail_or_are_listed(three_sources, tmp_path):
    root = tmp_path / "src"
    for name in ("a_real", "b_nearest"):
        shutil.copytree(three_sources / name, root / name)
    (root / "b_nearest" / "zero.png").write_bytes(b"")
    (root / "b_nearest" / "text.png").write_text("not an image\n")
    with pytest.raises(BadImageError, match="--skip-bad"):
        prepare(root, tmp_path / "out", Encoding(log=True), progress=False, runner="beam")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing half-written

    local = prepare(root, tmp_path / "local", Encoding(log=True), workers=1, skip_bad=True, progress=False)
    beam = prepare(root, tmp_path / "out", Encoding(log=True), skip_bad=True, progress=False, runner="beam",
                   beam_options="--direct_num_workers=1")
    assert sorted(s["path"] for s in beam.skipped) == sorted(s["path"] for s in local.skipped)
    assert len(beam.skipped) == 2 and beam.splits == local.splits
    np.testing.assert_array_equal(_examples(beam, "train")[0], _examples(local, "train")[0])


def test_runner_options_are_checked(three_sources, tmp_path):
    with pytest.raises(UserError, match="--format npy"):
        prepare(three_sources, tmp_path / "o", format="npy", runner="beam", progress=False)
    with pytest.raises(UserError, match="--runner beam"):
        prepare(three_sources, tmp_path / "o", beam_options="--runner=DirectRunner", progress=False)
    with pytest.raises(UserError, match="--runner must be one of"):
        prepare(three_sources, tmp_path / "o", runner="spark", progress=False)
    assert not (tmp_path / "o").exists()


def test_cli_runner_beam(three_sources, tmp_path, capsys):
    out = tmp_path / "ds"
    assert launch(["prepare", str(three_sources), str(out), "--log", "--shards", "2", "--runner", "beam",
                   "--beam-options=--direct_num_workers=1", "-q"]) == 0
    manifest = Manifest.load(out)
    assert manifest.source["runner"] == "beam" and manifest.count("train") == 63
    assert launch(["prepare", str(three_sources), str(tmp_path / "o"), "--beam-options=--direct_num_workers=1",
                   "-q"]) == 2
    assert "add --runner beam" in capsys.readouterr().err
