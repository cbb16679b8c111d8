"""Shards and manifest for a stage that computes its own arrays (``img2grad``).

The per-image work is a function ``produce(chunk) -> (encoded arrays, labels, skipped)``;
this module cuts a split into shards (:func:`tfforensics.data.records.shard_count`), writes
each one with the one record writer (:func:`tfforensics.data.records.write_shard`) and
summarises the shards for ``manifest.json``. A finished shard leaves a small ``.done.json``
marker, so a re-run of an interrupted stage continues with the next shard.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np

from tfforensics.data import records
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_write_json

#: Images handed to ``produce`` at once.
CHUNK_SIZE = 16


def write_split(directory, split: str, items, produce, *, bytes_per_example: int, layout: str = "original",
                compression: str | None = None, shards: int | None = None, chunk: int = CHUNK_SIZE) -> list[dict]:
    """Write the ``(path, label)`` ``items`` of ``split`` as shards under ``directory/split/``.

    Returns one result per shard: ``{"file", "count", "per_class", "num_bytes", "skipped"}``.
    """
    directory = Path(directory)
    (directory / split).mkdir(parents=True, exist_ok=True)
    n_shards = records.shard_count(len(items), bytes_per_example, shards)
    bounds = np.linspace(0, len(items), n_shards + 1).astype(int)
    results = []
    for index in range(n_shards):
        name = records.shard_name(split, index, n_shards, compression)
        done = directory / split / f"{INCOMPLETE_PREFIX}{name}.done.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            continue
        part, skipped = items[bounds[index]:bounds[index + 1]], []

        def batches(part=part, skipped=skipped):
            for start in range(0, len(part), chunk):
                values, labels, bad = produce(part[start:start + chunk])
                skipped.extend(bad)
                yield values, labels

        result = records.write_shard(directory / split / name, batches(), layout=layout, compression=compression)
        result = {"file": f"{split}/{name}", **result, "skipped": skipped}
        if not result["count"]:
            (directory / split / name).unlink()
        atomic_write_json(done, result)
        results.append(result)
    return results


def split_entry(results, class_names) -> dict:
    """The manifest's entry of one split from the results of :func:`write_split`."""
    per_class = collections.Counter()
    for result in results:
        per_class.update({int(label): n for label, n in result["per_class"].items()})
    return {
        "count": sum(r["count"] for r in results),
        "per_class": {name: per_class.get(i, 0) for i, name in enumerate(class_names)},
        "num_bytes": sum(r["num_bytes"] for r in results),
        "shards": [{"file": r["file"], "count": r["count"]} for r in results if r["count"]],
    }


def drop_markers(directory) -> None:
    """Remove the shard markers once the manifest is about to be written."""
    for marker in Path(directory).glob(f"*/{INCOMPLETE_PREFIX}*.done.json"):
        marker.unlink()


def write_dataset(work, items, produce, *, class_names, image_shape, encoding, layout: str = "original",
                  seed: int = 0, command: str = "", source: dict, chunk: int = CHUNK_SIZE):
    """Every split of ``items`` (``{split: [(path, label)]}``) as shards in ``work``, then
    ``manifest.json`` (last): a dataset like ``prepare``'s. Returns the :class:`Manifest`."""
    from tfforensics import __version__
    from tfforensics.data.manifest import SPLIT_NAMES, Manifest

    bytes_per_example = records.bytes_per_example(layout, image_shape)
    results = {split: write_split(work, split, items[split], produce, bytes_per_example=bytes_per_example,
                                  layout=layout, chunk=chunk) for split in SPLIT_NAMES}
    skipped = [entry for split in SPLIT_NAMES for result in results[split] for entry in result["skipped"]]
    drop_markers(work)
    manifest = Manifest(class_names=list(class_names), image_shape=list(image_shape), encoding=encoding,
                        layout=layout, splits={s: split_entry(results[s], class_names) for s in SPLIT_NAMES},
                        skipped=skipped, seed=seed, source=source, command=command, tfforensics_version=__version__)
    manifest.save(work)
    return manifest
