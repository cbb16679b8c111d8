"""Hostile inputs on the read side: damaged shards, edited manifests, crafted pickles, .keras and .npz files.

Every case runs the command a user would run, in process (``launch``), and checks three
things: exit status 2, exactly one stderr line ``tfforensics: error: ...`` that names the
file (no traceback), and that no file of the user's tree changed (hashes before and after).
The inputs are made here: shards written by ``prepare`` and then cut or flipped, manifests
edited, pickles written opcode by opcode, ``.keras`` archives rebuilt with an edited config.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_folder
from _dnnlib import Network, dnnlib_dumps
from tfforensics.benchmark.photos import load_photos, random_crops, upsampled
from tfforensics.cli.main import launch
from tfforensics.data.encodings import Encoding
from tfforensics.data.prepare import prepare
from tfforensics.errors import UserError

SHARD = "test/test-00000-of-00001.tfrecord"
TRAIN_SHARD = "train/train-00000-of-00001.tfrecord"


# --- helpers ------------------------------------------------------------------------------------

def tree_hashes(*roots) -> dict:
    """sha256 of every file under ``roots`` (the user's tree), to compare before and after."""
    out = {}
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def fails_with_one_line(capsys, argv, *needles, unchanged=()):
    """Run ``tfforensics argv``; assert exit 2, one error line holding ``needles``, ``unchanged`` intact."""
    before = tree_hashes(*unchanged)
    capsys.readouterr()
    status = launch([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("tfforensics: error: "), err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    assert tree_hashes(*unchanged) == before, "a user file changed"
    return lines[0]


def edit_manifest(root: Path, change) -> Path:
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    return path


# --- fixtures: tiny real datasets ----------------------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two- and three-class image folders (16x16 crops of bundled photos) and datasets prepared from them."""
    root = tmp_path_factory.mktemp("hostile")
    crops, _ = random_crops(load_photos(), 20, 16, seed=3)
    write_folder(root / "src" / "a_real", crops[:8])
    write_folder(root / "src" / "b_fake", upsampled(crops[8:16], "nearest"))
    write_folder(root / "src3" / "a", crops[:4])
    write_folder(root / "src3" / "b", upsampled(crops[4:8], "nearest"))
    write_folder(root / "src3" / "c", upsampled(crops[16:20], "bilinear"))
    split = dict(fractions=(0.5, 0.25, 0.25), workers=1, progress=False)
    prepare(root / "src", root / "plain", Encoding(), **split)
    prepare(root / "src", root / "gzip", Encoding(), compression="GZIP", **split)
    prepare(root / "src", root / "norm", Encoding(log=True, normalize=True), **split)
    prepare(root / "src", root / "npy", Encoding(), format="npy", **split)
    prepare(root / "src3", root / "three", Encoding(), compression="GZIP", **split)
    return root


@pytest.fixture(scope="module")
def model(base):
    """A model trained (one epoch) on the plain dataset: what `test` scores."""
    from tfforensics.training.fit import train

    return train("log", base / "plain", out=base / "run", epochs=1, verbose=0).model_path


@pytest.fixture
def dataset(base, tmp_path):
    """A fresh copy of a prepared dataset, to damage."""
    def copy(name="plain"):
        target = tmp_path / f"{name}_copy"
        shutil.copytree(base / name, target)
        return target
    return copy


# --- 1. shards: truncated, flipped, re-compressed -------------------------------------------------

def _cut_after(path: Path, records: int, extra: int = 0) -> None:
    """Keep the first ``records`` framed records (+ ``extra`` bytes of the next)."""
    data, offset = path.read_bytes(), 0
    for _ in range(records):
        offset += 16 + int.from_bytes(data[offset:offset + 8], "little")
    path.write_bytes(data[:offset + extra])


@pytest.mark.parametrize("records,extra,needle", [
    (2, 0, "holds 2 records but"),             # cut exactly between records: TF reads 2 of 4 silently
    (2, 6, "truncated inside record 3"),       # cut inside the next header
    (2, 100, "truncated inside record 3"),     # cut inside the next payload
])
def test_truncated_shard_is_named_not_half_read(capsys, dataset, model, records, extra, needle):
    data = dataset()
    _cut_after(data / SHARD, records, extra)
    fails_with_one_line(capsys, ["test", model, data, "-q"], data / SHARD, needle, "prepare",
                        unchanged=[data, model])


def test_flipped_byte_is_named(capsys, dataset, model):
    data = dataset()
    raw = bytearray((data / SHARD).read_bytes())
    raw[len(raw) // 2 + 40] ^= 0x10  # inside the payload of a record
    (data / SHARD).write_bytes(bytes(raw))
    fails_with_one_line(capsys, ["test", model, data, "-q"], data / SHARD, "corrupt", unchanged=[data, model])


@pytest.mark.parametrize("damage,needle", [
    ("cut", "truncated or corrupt"),
    ("flip", "corrupt"),
    ("shorter", "holds 2 records but"),  # a valid gzip stream of half the records: found while reading
])
def test_damaged_gzip_shard_is_named(capsys, dataset, model, damage, needle):
    data = dataset("gzip")
    path = data / (SHARD + ".gz")
    raw = path.read_bytes()
    if damage == "cut":
        path.write_bytes(raw[: len(raw) * 3 // 4])
    elif damage == "flip":
        flipped = bytearray(raw)
        flipped[len(raw) * 3 // 4] ^= 0x04
        path.write_bytes(bytes(flipped))
    else:
        plain = gzip.decompress(raw)
        offset = 0
        for _ in range(2):
            offset += 16 + int.from_bytes(plain[offset:offset + 8], "little")
        path.write_bytes(gzip.compress(plain[:offset]))
    fails_with_one_line(capsys, ["test", model, data, "-q"], path, needle, unchanged=[data, model])


def test_train_on_a_truncated_shard_fails_before_saving(capsys, dataset, tmp_path):
    data = dataset()
    _cut_after(data / TRAIN_SHARD, 4)
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        data / TRAIN_SHARD, "holds 4 records but", unchanged=[data])
    assert not (tmp_path / "run" / "model.keras").exists()


def test_train_on_a_shortened_gzip_shard_fails_while_reading(capsys, dataset, tmp_path):
    data = dataset("gzip")
    path = data / (TRAIN_SHARD + ".gz")
    plain = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(plain[: len(plain) // 2]))  # 4 of 8 whole records, a valid stream
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        path, "holds 4 records but", unchanged=[data])
    assert not (tmp_path / "run" / "model.keras").exists()


def test_labels_outside_the_classes_fail_training(capsys, dataset, tmp_path):
    """Three-class records under a manifest edited to two classes (counts kept consistent)."""
    data = dataset("three")

    def two_classes(manifest):
        manifest["class_names"] = ["a", "b"]
        for entry in manifest["splits"].values():
            counts = entry["per_class"]
            entry["per_class"] = {"a": counts["a"] + counts["c"], "b": counts["b"]}

    manifest = edit_manifest(data, two_classes)
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        "label", "class_names", unchanged=[data])
    assert not (tmp_path / "run" / "model.keras").exists()
    assert manifest.is_file()


def test_npy_labels_outside_the_classes(capsys, dataset, tmp_path):
    data = dataset("npy")
    np.save(data / "train" / "labels.npy", np.array([0, 1, 2, 1, 0, 1, 0, 1], dtype=np.int64))
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        data / "train" / "labels.npy", "outside the 2 classes", unchanged=[data])


def test_library_read_errors_are_user_errors(dataset):
    """The same checks hold for library callers (as_numpy), as UserError (a ValueError)."""
    from tfforensics.data.reader import as_numpy, verify_shards
    from tfforensics.data.manifest import Manifest

    data = dataset("gzip")
    path = data / (SHARD + ".gz")
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:100]))
    with pytest.raises(UserError, match="truncated"):
        as_numpy(data, "test")
    with pytest.raises(UserError, match="truncated"):
        verify_shards(Manifest.load(data))
    x, y = as_numpy(data, "train")  # the intact split still reads
    assert len(y) == 8 and x.shape == (8, 16, 16, 1)


# --- 2. manifest.json against its schema ----------------------------------------------------------

def _shard(m, split="test"):
    return m["splits"][split]["shards"][0]


MANIFEST_EDITS = {
    "missing key": (lambda m: m.pop("class_names"), "'class_names' is missing"),
    "extra key": (lambda m: m.update(notes="hi"), "'notes' is not a manifest field"),
    "wrong shape": (lambda m: m.update(image_shape=[16, 16]), "'image_shape'"),
    "negative shape": (lambda m: m.update(image_shape=[16, -16, 1]), "'image_shape'"),
    "wrong type": (lambda m: m.update(seed="0"), "'seed'"),
    "classes vs counts": (lambda m: m.update(class_names=["a_real"]), "per_class"),
    "per-class sum": (lambda m: m["splits"]["test"]["per_class"].update(a_real=5), "'splits.test.per_class'"),
    "shard sum": (lambda m: _shard(m).update(count=3), "'splits.test.shards'"),
    "missing shard": (lambda m: _shard(m).update(file="test/gone.tfrecord"), "gone.tfrecord"),
    "shard outside": (lambda m: _shard(m).update(file="../../etc/passwd"), "'splits.test.shards'"),
    "absolute shard": (lambda m: _shard(m).update(file="/etc/passwd"), "'splits.test.shards'"),
    "unknown split": (lambda m: m["splits"].update(extra=m["splits"]["test"]), "'splits'"),
    "layout": (lambda m: m.update(layout="compact"), "layout"),
    "bad layout": (lambda m: m.update(layout="zip"), "'layout'"),
    "compression": (lambda m: m.update(compression="GZIP"), "not GZIP-compressed"),
    "encoding key": (lambda m: m["encoding"].update(wavelet=True), "'encoding.wavelet'"),
    "encoding type": (lambda m: m["encoding"].update(log="yes"), "'encoding.log'"),
    "encoding rule": (lambda m: m["encoding"].update(transform="raw", log=True), "'encoding'"),
    "channels": (lambda m: m["encoding"].update(color=True), "'image_shape'"),
    "newer format": (lambda m: m.update(format_version=99), "upgrade tfforensics"),
    "statistics": (lambda m: m.update(statistics={"file": "s.npz", "sha256": "0" * 64}), "s.npz"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_EDITS))
def test_edited_manifest_is_one_line_naming_the_field(capsys, dataset, model, case):
    change, needle = MANIFEST_EDITS[case]
    data = dataset()
    edit_manifest(data, change)
    fails_with_one_line(capsys, ["test", model, data, "-q"], needle, unchanged=[data, model])


def test_image_shape_that_the_records_contradict(capsys, dataset, tmp_path):
    data = dataset()
    edit_manifest(data, lambda m: m.update(image_shape=[8, 32, 1]))
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        "[16, 16, 1]", "image_shape", unchanged=[data])


def test_gzip_records_under_a_manifest_without_compression(capsys, dataset, model):
    data = dataset("gzip")
    edit_manifest(data, lambda m: m.update(compression=None))
    fails_with_one_line(capsys, ["test", model, data, "-q"], "is GZIP-compressed", "compression",
                        unchanged=[data, model])


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe"])
def test_manifest_that_is_not_json(capsys, dataset, model, text):
    data = dataset()
    (data / "manifest.json").write_bytes(text.encode("latin-1"))
    fails_with_one_line(capsys, ["test", model, data, "-q"], data / "manifest.json", unchanged=[data, model])


def test_statistics_file_that_changed(capsys, dataset, tmp_path):
    data = dataset("norm")
    np.savez(data / "statistics.npz", mean=np.zeros((16, 16, 1)), std=np.ones((16, 16, 1)),
             max_abs=np.ones((16, 16, 1)))
    fails_with_one_line(capsys, ["train", "log", data, "-e", "1", "-q", "--out", tmp_path / "run"],
                        data / "statistics.npz", "sha256", unchanged=[data])


def test_missing_dataset_still_one_line(capsys, model, tmp_path):
    fails_with_one_line(capsys, ["test", model, tmp_path / "nowhere", "-q"], "manifest.json", "prepare")


def test_intact_datasets_pass_every_check(base):
    """The checks never refuse what prepare wrote (all formats), and cost no extra pass."""
    from tfforensics.data.manifest import Manifest
    from tfforensics.data.reader import as_numpy, verify_shards

    for name in ("plain", "gzip", "norm", "npy", "three"):
        manifest = Manifest.load(base / name)
        verify_shards(manifest)
        x, y = as_numpy(manifest, "train")
        assert len(y) == manifest.count("train")
    assert Manifest.load(base / "norm").load_statistics()["mean"].shape == (16, 16, 1)


# --- 3. StyleGAN pickles: bounded before allocating, one line with the file name -----------------



def _network_pickle(static_kwargs, variables=()) -> bytes:
    d = Network({"version": 3, "name": "D", "static_kwargs": static_kwargs, "components": {},
                 "build_module_src": "", "build_func_name": "D_basic", "variables": list(variables)})
    return dnnlib_dumps((d,), 2)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_ARRAY = pickle.dumps(np.zeros((4, 4), np.float32), protocol=2)
HOSTILE_PICKLES = {
    # 30 bytes that ask bytearray() for 1.5 GB of zeros
    "bytearray": (b"\x80\x02" + _global("builtins", "bytearray") + b"J\x00\x2f\x68\x59\x85R.", "bytearray"),
    "huge array": (b"\x80\x02" + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
                   + b"J\x00\xe1\xf5\x05J\x00\xe1\xf5\x05\x86C\x01b\x87R.", "larger than the file"),
    "set of a range": (b"\x80\x02" + _global("builtins", "set") + _global("builtins", "range")
                       + b"J\x00\xe1\xf5\x05\x85R\x85R.", "out of bounds"),
    "bytes8 length": (b"\x80\x04\x8e" + (2 ** 33).to_bytes(8, "little") + b"ab.", "truncated"),
    "frame length": (b"\x80\x04\x95" + (2 ** 33).to_bytes(8, "little") + b"K\x01.", "frame"),
    "eof": (_network_pickle({"resolution": 32})[:-20], "truncated"),
    "garbage": (b"\x80\x02this is not a pickle", "not a readable StyleGAN pickle"),
    "shape lie": (_ARRAY.replace(b"K\x04K\x04\x86", b"J\x00\x00\x01\x00K\x04\x86"), "not a readable"),
    "object dtype": (pickle.dumps(np.array([None, 1], dtype=object), protocol=2), "dtype"),
    "fmap 2^16": (_network_pickle({"resolution": 32, "num_channels": 3, "fmap_base": 2 ** 15, "fmap_max": 2 ** 12}),
                  "imply at least"),
    "fmap out of range": (_network_pickle({"resolution": 32, "fmap_base": 2 ** 17, "fmap_max": 2 ** 16}),
                          "fmap_base=131072"),
    "not networks": (pickle.dumps({"a": 1}, protocol=2), "expected a tuple of StyleGAN networks"),
    "os.system": (b"\x80\x02" + _global("os", "system") + b"X\x02\x00\x00\x00ls\x85R.", "os.system"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PICKLES))
def test_hostile_pickle_is_one_line_and_allocates_nothing(capsys, base, tmp_path, case):
    import tfforensics.models.lgrad  # noqa: F401  (TensorFlow imported before memory is traced)

    data, needle = HOSTILE_PICKLES[case]
    path = tmp_path / f"{case.replace(' ', '_')}.pkl"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        line = fails_with_one_line(capsys, ["img2grad", base / "src", tmp_path / "grads", "--pkl", path, "-q"],
                                   path, needle, unchanged=[path, base / "src"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{case}: {peak / 2 ** 20:.0f} MiB allocated for a {len(data)}-byte file"
    assert not (tmp_path / "grads").exists()
    assert line.count(str(path)) == 1


# --- 4. crafted .keras files ----------------------------------------------------------------------

def _rebuild(source: Path, target: Path, *, config=None, drop=None) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as out:
        for name in original.namelist():
            if name == drop:
                continue
            data = original.read(name)
            if name == "config.json" and config is not None:
                data = config(json.loads(data)) if callable(config) else config
                data = data if isinstance(data, bytes) else json.dumps(data).encode()
            out.writestr(name, data)
    return target


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


KERAS_CASES = {
    "not a zip": (dict(raw=b"this is not a zip"), "not a Keras model file"),
    "empty": (dict(raw=b""), "not a Keras model file"),
    "no config": (dict(drop="config.json"), "corrupt or was edited"),
    "no weights": (dict(drop="model.weights.h5"), "corrupt or was edited"),
    "config not json": (dict(config=b"{nope"), "corrupt or was edited"),
    "config a string": (dict(config="x"), "corrupt or was edited"),
    "foreign function": (dict(config=lambda c: _set(_set(c, ["module"], "os"), ["class_name"], "system")),
                         "refused"),
    "layers not a list": (dict(config=lambda c: _set(c, ["config", "layers"], 5)), "corrupt or was edited"),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_crafted_keras_file_is_one_line(capsys, base, model, tmp_path, case):
    spec, needle = KERAS_CASES[case]
    path = tmp_path / "model.keras"
    if "raw" in spec:
        path.write_bytes(spec["raw"])
    else:
        _rebuild(model, path, **spec)
    fails_with_one_line(capsys, ["test", path, base / "plain", "-q"], path, needle,
                        unchanged=[path, base / "plain"])
    fails_with_one_line(capsys, ["classify", path, base / "src" / "a_real", "-q"], path, needle, unchanged=[path])


# --- 5. baselines model files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline_model(base):
    from sklearn.neighbors import KNeighborsClassifier

    from tfforensics.baselines.persist import save_estimator

    rng = np.random.default_rng(0)
    return save_estimator(base / "knn.npz", KNeighborsClassifier(3).fit(rng.normal(size=(10, 256)), np.arange(10) % 2))


def _with_header(source: Path, target: Path, change) -> Path:
    with np.load(source) as data:
        arrays = {key: data[key] for key in data.files}
    header = json.loads(str(arrays["__header__"]))
    change(header)
    np.savez(target, **{**arrays, "__header__": np.array(json.dumps(header))})
    return target


BASELINE_CASES = {
    "injected parameter": (lambda src, dst: _with_header(src, dst, lambda h: h["estimator"]["params"].update(
        evil="__import__('os')")), "has no parameter(s) ['evil']"),
    "bad parameter value": (lambda src, dst: _with_header(src, dst, lambda h: h["estimator"]["params"].update(
        n_neighbors=-4)), "parameters are invalid"),
    "unknown class": (lambda src, dst: _with_header(src, dst, lambda h: h["estimator"].update({"class": "Popen"})),
                      "unknown estimator"),
    "extra header key": (lambda src, dst: _with_header(src, dst, lambda h: h.update(code="x")), "header"),
    "pickled npz": (lambda src, dst: np.savez(dst, __header__=np.array([{"a": 1}], dtype=object)),
                    "pickled Python objects"),
    "plain pickle": (lambda src, dst: dst.write_bytes(pickle.dumps({"a": 1})), "pickled Python objects"),
    "npy file": (lambda src, dst: np.save(open(dst, "wb"), np.zeros(3)), "not an .npz archive"),
    "not a zip": (lambda src, dst: dst.write_bytes(b"PK\x03\x04 not really"), "not a readable .npz"),
    "no header": (lambda src, dst: np.savez(dst, x=np.zeros(3)), "no tfforensics header"),
}


@pytest.mark.parametrize("case", sorted(BASELINE_CASES))
def test_hostile_baseline_model_is_one_line(capsys, base, baseline_model, tmp_path, case):
    make, needle = BASELINE_CASES[case]
    path = tmp_path / "model.npz"
    make(baseline_model, path)
    line = fails_with_one_line(
        capsys, ["baselines", "test", "knn", "--dataset", base / "plain", "--model", path, "--out", tmp_path / "out",
                 "-q"], path, needle, unchanged=[path, base / "plain"])
    assert "allow_pickle" not in line and "unsafe" not in line
    assert "is not a tfforensics baselines model" in line or "newer" in line


# --- 6. images: the pixel limit has an option; odd file names are named ---------------------------

def test_pixel_limit_names_its_option(capsys, model, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    Image.new("L", (9000, 9000)).save(folder / "huge.png")
    line = fails_with_one_line(capsys, ["classify", model, folder, "-q"], folder / "huge.png", "--max-pixels 81000000",
                               unchanged=[folder])
    assert "9000x9000" in line
    # Raised, the limit lets the image through to the next check (its size), and the
    # limit does not stick to the next command.
    fails_with_one_line(capsys, ["classify", model, folder, "-q", "--max-pixels", "81000000"],
                        "is 9000x9000 pixels but", unchanged=[folder])
    fails_with_one_line(capsys, ["classify", model, folder, "-q"], "--max-pixels", unchanged=[folder])


@pytest.mark.parametrize("command", ["prepare", "classify", "crop", "resize", "perturb", "stats", "mean-var"])
def test_every_image_command_takes_max_pixels(capsys, command):
    argv = [command, "celeba", "--help"] if command == "crop" else [command, "--help"]
    with pytest.raises(SystemExit):
        launch(argv)
    assert "--max-pixels N" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_non_utf8_file_name_is_named(capsys, model, tmp_path):
    folder = tmp_path / "odd"
    write_folder(folder, random_crops(load_photos(), 2, 16, seed=0)[0])
    with open(os.fsencode(folder) + b"/bad\xff.png", "wb") as handle:
        handle.write(b"not an image")
    line = fails_with_one_line(capsys, ["classify", model, folder, "-q"], "bad\\xff.png", "--skip-bad",
                               unchanged=[folder])
    assert "\udcff" not in line


def test_other_readers_name_the_shard(capsys, dataset, tmp_path):
    """mean-var reads the records through the same boundary: a flipped byte is one line there too."""
    data = dataset("gzip")
    path = data / (TRAIN_SHARD + ".gz")
    plain = bytearray(gzip.decompress(path.read_bytes()))
    plain[len(plain) // 2 + 40] ^= 0x10  # payload of a record; the gzip stream itself is valid
    path.write_bytes(gzip.compress(bytes(plain)))
    fails_with_one_line(capsys, ["mean-var", data, "--out", tmp_path / "mv", "-q"], path, "fails its CRC", unchanged=[data])
