"""``manifest.json``: everything a consumer needs to read a prepared dataset.

Written last, so a manifest exists only for a complete output. Consumers size models
and readers from it (image shape, classes, counts) instead of command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tfforensics.data.encodings import Encoding

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Manifest:
    """Description of a prepared dataset (see ``DESIGN.md``, the TFRecord contract)."""

    class_names: list[str]
    image_shape: list[int]
    encoding: Encoding
    format: str = "tfrecords"  # "tfrecords" | "npy"
    layout: str = "original"  # record layout, see tfforensics.data.records
    compression: str | None = None
    splits: dict = dataclasses.field(default_factory=dict)  # split -> {count, per_class, shards: [{file, count}], num_bytes}
    statistics: dict | None = None  # {"file": "statistics.npz", "sha256": ...}
    skipped: list = dataclasses.field(default_factory=list)  # [{"path", "reason"}]
    seed: int = 0
    source: dict = dataclasses.field(default_factory=dict)  # {"root", "files", "sha256"}
    command: str = ""
    tfforensics_version: str = ""
    format_version: int = FORMAT_VERSION
    root: Path | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def count(self, split: str) -> int:
        return self.splits.get(split, {}).get("count", 0)

    def files(self, split: str) -> list[Path]:
        """Shard (or .npy) files of ``split`` as absolute paths."""
        if split not in self.splits:
            raise KeyError(f"split {split!r} not in this dataset; it has {sorted(self.splits)}.")
        return [self.root / shard["file"] for shard in self.splits[split]["shards"]]

    def load_statistics(self) -> dict | None:
        """``{"mean", "std", "max_abs"}`` arrays of the train split, or None."""
        if not self.statistics:
            return None
        import numpy as np

        with np.load(self.root / self.statistics["file"]) as data:
            return {key: data[key] for key in data.files}

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
        data = dict(data)
        version = data.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"manifest format {version} is newer than this tfforensics understands ({FORMAT_VERSION}); upgrade tfforensics.")
        data["encoding"] = Encoding(**data["encoding"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}, root=Path(root) if root else None)

    @classmethod
    def load(cls, path) -> "Manifest":
        """Load from a dataset directory, its manifest file, or a split directory inside it.

        A :class:`Manifest` passes through unchanged, so every consumer accepts both.
        """
        if isinstance(path, Manifest):
            return path
        path = Path(path)
        candidates = [path] if path.is_file() else [path / MANIFEST_NAME, path.parent / MANIFEST_NAME]
        for candidate in candidates:
            if candidate.is_file():
                with open(candidate) as handle:
                    return cls.from_dict(json.load(handle), root=candidate.parent)
        raise FileNotFoundError(
            f"{path}: no {MANIFEST_NAME} found; point to a directory written by `tfforensics prepare` "
            "(an interrupted prepare has no manifest: run it again to finish)."
        )
