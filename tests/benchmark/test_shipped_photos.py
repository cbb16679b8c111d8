"""The real photo crops shipped in tfforensics/benchmark/data: loadable, diverse, split by photo."""

from __future__ import annotations

import fnmatch
import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tfforensics.benchmark import photos as photos_module
from tfforensics.benchmark.photos import (DATA_DIR, SHIPPED_CROPS, SHIPPED_PROVENANCE, shipped_crops,
                                          shipped_provenance, shipped_split, split_shipped_photos)
from tfforensics.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_crops_load_with_shapes_dtypes_and_photo_ids():
    crops, photo = shipped_crops()
    info = shipped_provenance()
    assert crops.dtype == np.uint8 and crops.shape[1:] == (64, 64, 3) and len(crops) == info["crops"]
    assert photo.shape == (len(crops),) and photo.dtype == np.int64
    assert len(np.unique(photo)) == len(info["photos"]) >= 200
    assert not crops.flags.writeable  # the cached arrays cannot be changed by a caller
    # several crops per photo, and (almost) no flat ones
    per_photo = np.bincount(photo)
    assert per_photo.min() >= 4 and np.median(per_photo) >= 12
    grey = crops.astype(np.float32).mean(axis=3)
    detail = (np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))) / 2
    assert detail.min() >= 3.9


def test_provenance_names_package_version_path_and_licence_of_every_photo():
    info = shipped_provenance()
    for record in info["photos"]:
        assert record["package"] and record["version"] and record["path"] and record["licence"] != "unknown"
        assert len(record["sha256"]) == 64 and min(record["height"], record["width"]) >= 256
    keys = {(record["package"], record["path"]) for record in info["photos"]}
    assert len(keys) == len(info["photos"])  # distinct files
    docs = (ROOT / "docs" / "benchmark-photos.md").read_text()
    for licence in {record["licence"] for record in info["photos"]}:
        assert licence in docs, f"licence {licence} of shipped photos is not listed in docs/benchmark-photos.md"


def test_split_is_by_photo_deterministic_and_has_40_test_photos():
    split = split_shipped_photos()
    assert set(split) == {"train", "val", "test"}
    sets = {name: set(ids.tolist()) for name, ids in split.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert len(sets["train"] | sets["val"] | sets["test"]) == len(shipped_provenance()["photos"])
    assert len(sets["test"]) >= 40 and len(sets["val"]) >= 40 and len(sets["train"]) > len(sets["test"])
    again = split_shipped_photos()
    assert all(np.array_equal(split[name], again[name]) for name in split)
    other = split_shipped_photos(seed=1)
    assert not np.array_equal(split["test"], other["test"])
    # every source package of 5 photos or more is in every split
    packages = [record["package"] for record in shipped_provenance()["photos"]]
    larger = {package for package in packages if packages.count(package) >= 5}
    for ids in split.values():
        assert {packages[i] for i in ids} >= larger


def test_shipped_split_returns_the_crops_of_its_photos_only():
    crops, photo = shipped_crops()
    total = 0
    for name, ids in split_shipped_photos().items():
        part, part_photo = shipped_split(name)
        assert set(part_photo.tolist()) == set(ids.tolist())
        assert part.shape[1:] == (64, 64, 3) and part.dtype == np.uint8
        total += len(part)
    assert total == len(crops)
    with pytest.raises(ValueError, match="split"):
        shipped_split("dev")


def test_a_damaged_crops_file_is_refused(tmp_path, monkeypatch):
    with np.load(DATA_DIR / SHIPPED_CROPS) as archive:
        arrays = dict(archive)
    arrays["webp"] = arrays["webp"].copy()
    arrays["webp"][arrays["offsets"][-2] + 40:] ^= 0x5A  # the last crop damaged
    np.savez(tmp_path / SHIPPED_CROPS, **arrays)
    (tmp_path / SHIPPED_PROVENANCE).write_text((DATA_DIR / SHIPPED_PROVENANCE).read_text())
    monkeypatch.setattr(photos_module, "DATA_DIR", tmp_path)
    shipped_crops.cache_clear()
    shipped_provenance.cache_clear()
    try:
        with pytest.raises(UserError, match="damaged install"):
            shipped_crops()
    finally:
        shipped_crops.cache_clear()
        shipped_provenance.cache_clear()


def test_package_data_ships_the_crops():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["tfforensics.benchmark"]
    for name in (SHIPPED_CROPS, SHIPPED_PROVENANCE):
        assert (DATA_DIR / name).is_file()
        assert any(fnmatch.fnmatch(f"data/{name}", pattern) for pattern in patterns), name


def test_rcc_reader_reads_a_resource_bundle(tmp_path):
    """The extraction tool's Qt .rcc reader, on a bundle written here by hand (version 3, zlib)."""
    import struct
    import zlib

    spec = importlib.util.spec_from_file_location("extract_photos", ROOT / "tools" / "extract_photos.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def name(text):
        encoded = text.encode("utf-16-be")
        return struct.pack(">HI", len(text), 0) + encoded

    plain, packed = b"hello", b"x" * 100
    payload = struct.pack(">I", len(plain)) + plain
    compressed = struct.pack(">I", len(packed)) + zlib.compress(packed)
    payload += struct.pack(">I", len(compressed)) + compressed
    names = name("dir") + name("a.txt")
    second = len(names)
    names += name("b.bin")
    header = 24
    tree_at = header + len(payload) + len(names)
    # nodes: root dir (child 1), dir (children 2, 3), two files
    nodes = [struct.pack(">IHII", 0, 2, 1, 1), struct.pack(">IHII", 0, 2, 2, 2),
             struct.pack(">IHHHI", len(name("dir")), 0, 0, 0, 0),
             struct.pack(">IHHHI", second, 1, 0, 0, 4 + len(plain))]
    tree = b"".join(node + b"\0" * 8 for node in nodes)
    blob = b"qres" + struct.pack(">5I", 3, tree_at, header, header + len(payload), 0) + payload + names + tree
    (tmp_path / "x.rcc").write_bytes(blob)
    assert dict(tool.read_rcc(tmp_path / "x.rcc")) == {"/dir/a.txt": plain, "/dir/b.bin": packed}
    (tmp_path / "bad.rcc").write_bytes(b"nope" + blob[4:])
    with pytest.raises(ValueError, match="qres"):
        list(tool.read_rcc(tmp_path / "bad.rcc"))
