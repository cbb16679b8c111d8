"""``manifest.json``: everything a consumer needs to read a prepared dataset.

Written last, so a manifest exists only for a complete output. Consumers size models
and readers from it (image shape, classes, counts) instead of command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path, PurePosixPath

from tfforensics.data.encodings import Encoding
from tfforensics.errors import MissingInputError, UserError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")

# --- the schema -------------------------------------------------------------------------
#
# Written out field by field, so that a manifest that was edited, truncated or written by
# something else is refused on load with one line naming the field, before any record is
# read. ``TYPES`` lists every top-level field (all are required; no other is allowed).

_INT = "an integer"
_STR = "a string"
TYPES = {
    "class_names": "a non-empty list of distinct class names (strings)",
    "image_shape": "[height, width, channels] with positive integers and 1 or 3 channels",
    "encoding": "an object with exactly the keys transform, log, color, abs_scale, normalize",
    "format": "'tfrecords' or 'npy'",
    "layout": "'original', 'compact' or 'pixels' ('npy' for the npy format)",
    "compression": "null or 'GZIP' (null for the npy format)",
    "splits": f"an object whose keys are among {list(SPLIT_NAMES)}",
    "statistics": "null or {\"file\": name, \"sha256\": hex digest}",
    "skipped": "a list of {\"path\": string, \"reason\": string}",
    "seed": _INT,
    "source": "an object with root (string), files (integer), sha256 (string) and optionally runner (string)",
    "command": _STR,
    "tfforensics_version": _STR,
    "format_version": f"an integer from 1 to {FORMAT_VERSION}",
}
#: Keys of one split entry; ``directory`` only in the npy format.
SPLIT_KEYS = ("count", "per_class", "num_bytes", "shards")
ENCODING_KEYS = {"transform": str, "log": bool, "color": bool, "abs_scale": bool, "normalize": bool}
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _relative_file(value) -> bool:
    """A relative POSIX path that stays inside the dataset directory."""
    if not isinstance(value, str) or not value or "\\" in value:
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts and "." not in path.parts[:1]


class _Checker:
    """``fail`` and ``expect`` for one manifest: errors name the file and the field."""

    def __init__(self, data: dict, source):
        self.data, self.source = data, source

    def fail(self, field, problem):
        raise UserError(
            f"{self.source}: field {field!r} {problem}; this manifest was edited or damaged: re-run "
            "`tfforensics prepare` (with --overwrite) to write the dataset again."
        )

    def expect(self, field, ok):
        if not ok:
            self.fail(field, f"must be {TYPES[field.split('.')[0]]}, found {json.dumps(_get(self.data, field))[:80]}")


def validate(data, source) -> None:
    """Check a manifest's parsed JSON against the schema; raise :class:`UserError` naming the field.

    Beyond types this checks the facts that tie fields together: per-class counts name
    exactly the classes and add up to the split's count, shard counts add up too, shard
    files stay inside the dataset directory, the encoding's channels match the image shape,
    and normalised encodings name their statistics file.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source}: is not a tfforensics manifest (a JSON object is expected, found "
                        f"{type(data).__name__}); point to a directory written by `tfforensics prepare`.")
    version = data.get("format_version")
    if _is_int(version) and version > FORMAT_VERSION:
        raise UserError(f"{source}: manifest format {version} is newer than this tfforensics understands "
                        f"({FORMAT_VERSION}); upgrade tfforensics.")
    check = _Checker(data, source)
    for key in TYPES:
        if key not in data:
            check.fail(key, f"is missing (expected {TYPES[key]})")
    for key in data:
        if key not in TYPES:
            check.fail(key, f"is not a manifest field (known fields: {', '.join(TYPES)})")
    names = data["class_names"]
    check.expect("class_names", isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)
                 and len(set(names)) == len(names))
    parsed = _check_encoding(check, data)
    _check_storage(check, data, parsed)
    npy = data["format"] == "npy"
    splits = data["splits"]
    check.expect("splits", isinstance(splits, dict) and splits and set(splits) <= set(SPLIT_NAMES))
    for split, entry in splits.items():
        _check_split(check, f"splits.{split}", entry, names, npy)


def _check_encoding(check: _Checker, data: dict) -> Encoding:
    """``image_shape`` and ``encoding``: types, known keys, and channels that agree."""
    shape = data["image_shape"]
    check.expect("image_shape", isinstance(shape, list) and len(shape) == 3
                 and all(_is_int(d) and d > 0 for d in shape) and shape[2] in (1, 3))
    encoding = data["encoding"]
    check.expect("encoding", isinstance(encoding, dict))
    for key in ENCODING_KEYS:
        if key not in encoding:
            check.fail(f"encoding.{key}", "is missing")
    for key in encoding:
        if key not in ENCODING_KEYS:
            check.fail(f"encoding.{key}", f"is not an encoding field (known: {', '.join(ENCODING_KEYS)})")
    for key, kind in ENCODING_KEYS.items():
        if not isinstance(encoding[key], kind):
            check.fail(f"encoding.{key}", f"must be {'a boolean' if kind is bool else 'a string'}, found "
                                          f"{json.dumps(encoding[key])[:80]}")
    try:
        parsed = Encoding(**encoding)
    except ValueError as error:
        check.fail("encoding", f"is inconsistent ({error})")
    if parsed.channels != shape[2]:
        check.fail("image_shape", f"has {shape[2]} channel(s) but the encoding is "
                                  f"{'color' if parsed.color else 'gray'} ({parsed.channels})")
    return parsed


def _check_storage(check: _Checker, data: dict, parsed: Encoding) -> None:
    """Format, layout, compression, statistics and the provenance fields."""
    expect = check.expect
    expect("format", data["format"] in ("tfrecords", "npy"))
    npy = data["format"] == "npy"
    expect("layout", data["layout"] == "npy" if npy else data["layout"] in ("original", "compact", "pixels"))
    expect("compression", data["compression"] is None if npy else data["compression"] in (None, "GZIP"))
    statistics = data["statistics"]
    expect("statistics", statistics is None or (
        isinstance(statistics, dict) and set(statistics) == {"file", "sha256"}
        and _relative_file(statistics["file"]) and "/" not in statistics["file"]
        and isinstance(statistics["sha256"], str) and _HEX.match(statistics["sha256"])))
    if parsed.needs_statistics and statistics is None:
        check.fail("statistics", f"is null but the encoding ({parsed.describe()}) needs train-split statistics")
    skipped = data["skipped"]
    expect("skipped", isinstance(skipped, list) and all(
        isinstance(s, dict) and set(s) == {"path", "reason"} and all(isinstance(v, str) for v in s.values())
        for s in skipped))
    expect("seed", _is_int(data["seed"]))
    source_entry = data["source"]
    expect("source", isinstance(source_entry, dict) and set(source_entry) <= {"root", "files", "sha256", "runner"}
           and isinstance(source_entry.get("root", ""), str) and _is_int(source_entry.get("files", 0))
           and isinstance(source_entry.get("sha256", ""), str) and isinstance(source_entry.get("runner", ""), str))
    expect("command", isinstance(data["command"], str))
    expect("tfforensics_version", isinstance(data["tfforensics_version"], str))
    version = data["format_version"]
    expect("format_version", _is_int(version) and version >= 1)


def _check_split(check: _Checker, field: str, entry, names: list, npy: bool) -> None:
    """One split's counts, per-class counts and shards (or ``.npy`` folder)."""
    fail = check.fail
    keys = set(SPLIT_KEYS) | ({"directory"} if npy else set())
    if not isinstance(entry, dict) or set(entry) != keys:
        fail(field, f"must be an object with exactly the keys {sorted(keys)}, found "
                    f"{sorted(entry) if isinstance(entry, dict) else json.dumps(entry)[:80]}")
    count = entry["count"]
    if not _is_int(count) or count < 0:
        fail(f"{field}.count", f"must be a non-negative integer, found {json.dumps(count)[:80]}")
    if not _is_int(entry["num_bytes"]) or entry["num_bytes"] < 0:
        fail(f"{field}.num_bytes", f"must be a non-negative integer, found {json.dumps(entry['num_bytes'])[:80]}")
    per_class = entry["per_class"]
    if not isinstance(per_class, dict) or list(per_class) != names:
        fail(f"{field}.per_class", f"must count exactly the classes {names} in that order, found "
                                   f"{list(per_class) if isinstance(per_class, dict) else json.dumps(per_class)[:80]}")
    if not all(_is_int(n) and n >= 0 for n in per_class.values()) or sum(per_class.values()) != count:
        fail(f"{field}.per_class", f"must be non-negative integers adding up to the split's count {count}, "
                                   f"found {per_class}")
    shards = entry["shards"]
    if npy:
        directory = entry["directory"]
        if not _relative_file(directory) or shards != [{"file": directory, "count": None}]:
            fail(f"{field}.directory", "must be the relative name of the split's .npy folder, listed as its "
                                       "only shard")
        return
    if not isinstance(shards, list) or not all(
            isinstance(s, dict) and set(s) == {"file", "count"} and _relative_file(s["file"])
            and _is_int(s["count"]) and s["count"] > 0 for s in shards):
        fail(f"{field}.shards", "must be a list of {\"file\": relative path inside the dataset, "
                                "\"count\": positive integer}")
    if len({s["file"] for s in shards}) != len(shards):
        fail(f"{field}.shards", "lists a shard file twice")
    if sum(s["count"] for s in shards) != count:
        fail(f"{field}.shards", f"counts add up to {sum(s['count'] for s in shards)}, not the split's count {count}")


def _get(data, field):
    for part in field.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


@dataclasses.dataclass
class Manifest:
    """Description of a prepared dataset (see ``DESIGN.md``, the TFRecord contract)."""

    class_names: list[str]
    image_shape: list[int]
    encoding: Encoding
    format: str = "tfrecords"  # "tfrecords" | "npy"
    layout: str = "original"  # record layout, see tfforensics.data.records ("pixels": encoding applied on reading)
    compression: str | None = None
    splits: dict = dataclasses.field(default_factory=dict)  # split -> {count, per_class, shards: [{file, count}], num_bytes}
    statistics: dict | None = None  # {"file": "statistics.npz", "sha256": ...}
    skipped: list = dataclasses.field(default_factory=list)  # [{"path", "reason"}]
    seed: int = 0
    source: dict = dataclasses.field(default_factory=dict)  # {"root", "files", "sha256", "runner": local|beam}
    command: str = ""
    tfforensics_version: str = ""
    format_version: int = FORMAT_VERSION
    root: Path | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def count(self, split: str) -> int:
        return self.splits.get(split, {}).get("count", 0)

    @property
    def path(self) -> Path | str:
        """The manifest file, for messages."""
        return self.root / MANIFEST_NAME if self.root else MANIFEST_NAME

    def files(self, split: str) -> list[Path]:
        """Shard (or .npy) files of ``split`` as absolute paths."""
        if split not in self.splits:
            raise UserError(f"{self.root}: has no {split!r} split (it has {', '.join(sorted(self.splits))}); "
                            "choose one of those.")
        return [self.root / shard["file"] for shard in self.splits[split]["shards"]]

    def check_files(self) -> None:
        """Raise :class:`UserError` naming the first shard, .npy folder or statistics file that is missing."""
        if self.root is None:
            return
        fix = "the dataset is incomplete: run `tfforensics prepare` again with --overwrite"
        for split, entry in self.splits.items():
            for shard in entry["shards"]:
                path = self.root / shard["file"]
                if self.format == "npy":
                    if not (path / "labels.npy").is_file():
                        raise MissingInputError(f"{path / 'labels.npy'}: listed by {self.path} but missing; {fix}.")
                elif not path.is_file():
                    raise MissingInputError(f"{path}: shard listed by {self.path} is missing; {fix}.")
        if self.statistics and not (self.root / self.statistics["file"]).is_file():
            raise MissingInputError(f"{self.root / self.statistics['file']}: statistics file listed by {self.path} "
                                    f"is missing; {fix}.")

    def load_statistics(self) -> dict | None:
        """``{"mean", "std", "max_abs"}`` arrays of the train split, or None."""
        if not self.statistics:
            return None
        import hashlib

        import numpy as np

        path = self.root / self.statistics["file"]
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != self.statistics["sha256"]:
            raise UserError(f"{path}: does not match the sha256 that {self.path} records (the file was changed); "
                            "run `tfforensics prepare` again with --overwrite.")
        import io

        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                out = {key: data[key] for key in data.files}
        except (ValueError, OSError, EOFError) as error:  # noqa: B014 - np.load raises all three
            raise UserError(f"{path}: not a readable statistics file ({error}); run `tfforensics prepare` "
                            "again with --overwrite.") from error
        keys = {"mean", "std", "max_abs"}
        shape = tuple(self.image_shape)
        if set(out) != keys or any(v.shape != shape for v in out.values()):
            raise UserError(f"{path}: holds {sorted(out)} with shapes {[v.shape for v in out.values()]}, expected "
                            f"mean, std and max_abs of shape {shape}; run `tfforensics prepare` again with --overwrite.")
        return out

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("root")
        return data

    def save(self, directory) -> Path:
        from tfforensics.io.atomic import atomic_write_json

        path = Path(directory) / MANIFEST_NAME
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def from_dict(cls, data: dict, root=None) -> "Manifest":
        """A manifest from its JSON data, validated against the schema (see :func:`validate`)."""
        validate(data, Path(root) / MANIFEST_NAME if root else MANIFEST_NAME)
        data = dict(data)
        data["encoding"] = Encoding(**data["encoding"])
        return cls(**data, root=Path(root) if root else None)

    @classmethod
    def load(cls, path) -> "Manifest":
        """Load from a dataset directory, its manifest file, or a split directory inside it.

        A :class:`Manifest` passes through unchanged, so every consumer accepts both.
        """
        if isinstance(path, Manifest):
            return path
        path = Path(path)
        from tfforensics.data.original import infer_manifest, looks_original

        if path.is_file() and path.name != MANIFEST_NAME and looks_original(path):
            return infer_manifest(path)  # a bare record file, e.g. GANDCTAnalysis' data.tfrecords
        candidates = [path] if path.is_file() else [path / MANIFEST_NAME, path.parent / MANIFEST_NAME]
        for candidate in candidates:
            if candidate.is_file():
                try:
                    with open(candidate, "rb") as handle:
                        data = json.loads(handle.read().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise UserError(f"{candidate}: is not a tfforensics manifest (not valid JSON: {error}); point to "
                                    "a directory written by `tfforensics prepare`, or prepare it again.") from error
                except OSError as error:
                    raise UserError(f"{candidate}: cannot be read ({error.strerror}).") from error
                manifest = cls.from_dict(data, root=candidate.parent)
                manifest.check_files()
                return manifest
        if looks_original(path):  # e.g. GANDCTAnalysis' <stem>_train_tf/ or <stem>_train/ (.npy)
            return infer_manifest(path)
        raise MissingInputError(
            f"{path}: no {MANIFEST_NAME} found; point to a directory written by `tfforensics prepare` "
            "(an interrupted prepare has no manifest: run it again to finish)."
        )
