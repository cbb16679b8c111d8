"""``prepare``: image folders (one sub-folder per class) to DCT or pixel TFRecords / .npy.

With ``layout="pixels"`` the records hold the uint8 pixels and the encoding is only
described (the statistics are still computed here, from the encoded train split).

Stages (each a plain function, so the local process pool and the Apache Beam pipeline of
:mod:`tfforensics.data.beam` (``--runner beam``) run the same code):

1. plan: scan the class folders, split them (seeded), fix the image size and shards;
2. statistics (only for ``--normalize`` / ``--abs``): per-coefficient moments of the
   train split, merged across workers;
3. write: each shard is encoded and written by one worker (decode, batched DCT,
   hand-encoded protobuf, TFRecord framing) straight to its file;
4. finish: the manifest is written last and the directory is renamed into place.

Everything goes to a hidden ``.<out>.incomplete-<fingerprint>`` directory next to the
output. A shard is renamed to its final name only when complete, so a re-run with the
same inputs and options continues where an interrupted run stopped.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.data import encodings, records
from tfforensics.data.encodings import Encoding
from tfforensics.data.manifest import MANIFEST_NAME, Manifest
from tfforensics.data.splits import SPLITS, presplit_classes, scan_classes, split_classes
from tfforensics.data.stats import RunningMoments
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_open, atomic_write_json, remove_tree
from tfforensics.io.images import BadImageError, load_image, read_size
from tfforensics.io.outputs import (
    check_sources, claim_output, clean_stale, mark_output, read_marker, replace_output,
)
from tfforensics.io.parallel import pool_context

logger = logging.getLogger(__name__)

FORMATS = ("tfrecords", "npy")
#: Target size of one shard; TFDS aims at shards of this order.
SHARD_BYTES = records.SHARD_BYTES
#: Images decoded and transformed together by one vectorised call.
CHUNK_SIZE = 16
STATISTICS_FILE = "statistics.npz"
#: A spawned pool (TensorFlow loaded) costs seconds to start: below this many images run inline.
SPAWN_THRESHOLD = 2000


@dataclasses.dataclass(frozen=True)
class _WorkerConfig:
    encoding: Encoding
    image_size: tuple[int, int]
    format: str
    layout: str
    compression: str | None
    skip_bad: bool
    statistics_path: str | None


# Set in each worker process by _init_worker; read by the stage functions.
_CONFIG: _WorkerConfig | None = None
_STATISTICS: dict | None = None
_PROGRESS = None


def _init_worker(config: _WorkerConfig, progress_queue) -> None:
    global _CONFIG, _STATISTICS, _PROGRESS
    _CONFIG, _PROGRESS = config, progress_queue
    _STATISTICS = None
    if config.statistics_path:
        with np.load(config.statistics_path) as data:
            _STATISTICS = {key: data[key] for key in data.files}


def _tick(count: int) -> None:
    if _PROGRESS is not None:
        _PROGRESS.put(count)


def load_batch(items, config: _WorkerConfig):
    """Decode ``[(path, label), ...]`` to a uint8 batch; returns (images, labels, skipped)."""
    height, width = config.image_size
    channels = config.encoding.channels
    images = np.empty((len(items), height, width, channels), dtype=np.uint8)
    labels, skipped = [], []
    for path, label in items:
        try:
            image = load_image(path, grayscale=not config.encoding.color, size=(height, width),
                               size_of="the dataset's images")
        except BadImageError as error:
            if not config.skip_bad:
                raise
            skipped.append({"path": error.path, "reason": error.reason})
            continue
        images[len(labels)] = image
        labels.append(label)
    return images[: len(labels)], labels, skipped


def _chunks(items, size=CHUNK_SIZE):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def chunk_moments(items, config: _WorkerConfig) -> tuple[RunningMoments, list]:
    """Moments of the transformed images ``[(path, label), ...]`` (one chunk); returns (moments, skipped)."""
    images, _, bad = load_batch(items, config)
    return RunningMoments().update(encodings.transform(images, config.encoding)), bad


def _statistics_task(items) -> tuple[RunningMoments, list]:
    """Stage 2 for one slice of the train split."""
    moments, skipped = RunningMoments(), []
    for chunk in _chunks(items):
        part, bad = chunk_moments(chunk, _CONFIG)
        skipped += bad
        moments.merge(part)
        _tick(len(chunk))
    return moments, skipped


def encode_items(items, config: _WorkerConfig, statistics: dict | None):
    """The pure per-image step over one chunk: ``[(path, label), ...]`` -> ``([(i, value, label)], skipped)``.

    ``i`` is the item's position in ``items``; skipped (bad, with ``skip_bad``) items have none.
    """
    images, labels, bad = load_batch(items, config)
    bad_paths = {entry["path"] for entry in bad}
    good = [i for i, (path, _) in enumerate(items) if str(path) not in bad_paths]
    if config.layout == "pixels":  # the model's preprocessing encodes them at training time
        values = images
    else:
        values = encodings.encode(images, config.encoding, statistics)
    return list(zip(good, values, labels)), bad


def write_records(final: Path, examples, compression: str | None) -> int:
    """Write serialized examples to the shard ``final`` atomically; returns its size in bytes."""
    with atomic_open(final, "wb") as handle:
        writer = records.RecordWriter(handle, compression)
        for example in examples:
            writer.write(example)
        writer.close()
    return final.stat().st_size


def finish_shard(directory: Path, file: str, labels, skipped, num_bytes: int, indices=None) -> dict:
    """A shard's result (counts, skipped, bytes), also written as its ``.done.json`` marker for re-runs."""
    per_class = collections.Counter(labels)
    result = {
        "file": file,
        "count": len(labels),
        "per_class": {str(k): v for k, v in sorted(per_class.items())},
        "skipped": skipped,
        "num_bytes": num_bytes,
        "indices": indices,
    }
    atomic_write_json(directory / f"{INCOMPLETE_PREFIX}{file}.done.json", result)
    return result


def _write_task(task: dict) -> dict:
    """Stage 3 for one shard: encode its images and write them, atomically."""
    config = _CONFIG
    directory = Path(task["directory"])
    labels, skipped = [], []
    if config.format == "tfrecords":
        def examples():
            for chunk in _chunks(task["items"]):
                encoded, bad = encode_items(chunk, config, _STATISTICS)
                skipped.extend(bad)
                for _, value, label in encoded:
                    labels.append(label)
                    yield records.serialize_example(value, label, config.layout)
                _tick(len(chunk))

        num_bytes = write_records(directory / task["file"], examples(), config.compression)
        return finish_shard(directory, task["file"], labels, skipped, num_bytes)
    # npy: one file per image, numbered by its planned position
    num_bytes, indices = 0, []
    for offset, chunk in zip(range(0, len(task["items"]), CHUNK_SIZE), _chunks(task["items"])):
        encoded, bad = encode_items(chunk, config, _STATISTICS)
        skipped += bad
        for i, value, label in encoded:
            index = task["start"] + offset + i
            with atomic_open(directory / f"{index:06d}.npy", "wb") as handle:
                np.save(handle, value)
            indices.append((index, label))
            labels.append(label)
            num_bytes += value.nbytes + 128
        _tick(len(chunk))
    return finish_shard(directory, task["file"], labels, skipped, num_bytes, indices)


def _fingerprint(items_by_split, options: dict) -> str:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for split in SPLITS:
        for path, label in items_by_split[split]:
            stat = os.stat(path)
            # surrogateescape: a file name that is not valid UTF-8 still has a stable fingerprint
            digest.update(f"{split}\0{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _common_size(items, probe: int = 32) -> tuple[int, int]:
    """The most common (height, width) among the first readable headers."""
    sizes = collections.Counter()
    for path, _ in sorted(items):
        try:
            sizes[read_size(path)] += 1
        except BadImageError:
            continue
        if sum(sizes.values()) >= probe:
            break
    if not sizes:
        raise UserError("no readable image found in the source folders; check the paths and file types.")
    return sizes.most_common(1)[0][0]


def _run_stage(function, tasks, config, workers, progress_total, description, progress):
    """Run ``function`` over ``tasks`` in a process pool (or inline) with one progress bar."""
    from tqdm.auto import tqdm

    bar = tqdm(total=progress_total, desc=description, unit="img", disable=not progress, dynamic_ncols=True)
    results = []
    try:
        context = pool_context()
        small = progress_total < SPAWN_THRESHOLD and context.get_start_method() == "spawn"
        if workers <= 1 or len(tasks) <= 1 or small:
            _init_worker(config, None)
            for task in tasks:
                results.append(function(task))
                bar.update(_task_size(task))
            return results
        queue = context.Queue()

        def drain():
            while True:
                value = queue.get()
                if value is None:
                    return
                bar.update(value)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(config, queue)) as pool:
                results = list(pool.imap(function, tasks))
        finally:
            queue.put(None)
            reader.join(timeout=5)
        return results
    finally:
        bar.close()


def _task_size(task) -> int:
    return len(task["items"]) if isinstance(task, dict) else len(task)


RUNNERS = ("local", "beam")


@dataclasses.dataclass(frozen=True)
class Plan:
    """Stage 1's result: what ``prepare`` writes, the same for every runner."""

    source: Path
    classes: list
    items: dict  # split -> [(path, label), ...] in the order of the records
    shape: list
    shard_counts: dict  # split -> number of shards
    fingerprint: str  # inputs and options; names the work directory and makes re-runs reuse
    config: _WorkerConfig
    seed: int

    @property
    def all_items(self) -> list:
        return [item for split in SPLITS for item in self.items[split]]


def plan_dataset(source: Path, encoding: Encoding, *, format, layout, compression, fractions, sizes, presplit,
                 shards, skip_bad, seed) -> Plan:
    """Stage 1: scan and split the class folders, fix the image size and the shards."""
    if presplit:
        if fractions is not None or sizes is not None:
            raise UserError("--presplit takes the splits from the folders; drop --split / --sizes.")
        classes, items = presplit_classes(source, seed=seed)
    else:
        classes = scan_classes(source)
        items = split_classes(classes, fractions=fractions, sizes=sizes, seed=seed)
    all_items = [item for split in SPLITS for item in items[split]]
    if not items["train"]:
        raise UserError(f"{source}: the train split is empty; add images or change --split/--sizes.")
    height, width = _common_size(all_items)
    shape = [height, width, encoding.channels]
    bytes_per_example = records.bytes_per_example(layout, shape)
    shard_counts = {split: records.shard_count(len(items[split]), bytes_per_example, shards) for split in SPLITS}
    options = {
        "encoding": dataclasses.asdict(encoding), "format": format, "layout": layout,
        "compression": compression, "seed": seed, "shards": shard_counts, "skip_bad": skip_bad,
        "shape": shape, "classes": list(classes), "presplit": presplit,
    }
    config = _WorkerConfig(encoding, (height, width), format, layout, compression, skip_bad, None)
    return Plan(source, list(classes), items, shape, shard_counts, _fingerprint(items, options), config, seed)


def shard_tasks(plan: Plan, work: Path) -> tuple[list, dict]:
    """Stage 3's tasks (one per shard not yet written) and the results of shards already written."""
    tasks, done = [], {}
    suffix = ".tfrecord.gz" if plan.config.compression else ".tfrecord"
    for split in SPLITS:
        (work / split).mkdir(exist_ok=True)
        n_shards = plan.shard_counts[split]
        items = plan.items[split]
        bounds = np.linspace(0, len(items), n_shards + 1).astype(int) if n_shards else []
        for index in range(n_shards):
            name = f"{split}-{index:05d}-of-{n_shards:05d}" + (suffix if plan.config.format == "tfrecords" else "")
            marker = work / split / f"{INCOMPLETE_PREFIX}{name}.done.json"
            if marker.exists():
                with open(marker) as handle:
                    done[(split, index)] = json.load(handle)
                continue
            tasks.append({
                "split": split, "index": index, "file": name, "directory": str(work / split),
                "items": items[bounds[index]:bounds[index + 1]], "start": int(bounds[index]),
            })
    if done:
        logger.info("Continuing an interrupted run: %d shards already written.", len(done))
    return tasks, done


def save_statistics(path: Path, moments: RunningMoments, encoding: Encoding) -> None:
    """Stage 2's result, as float32 arrays (what the encoders and the manifest's sha256 see)."""
    stats = moments.finalize(abs_scale=encoding.abs_scale)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **{k: v.astype(np.float32) for k, v in stats.items()})


def prepare(
    source,
    output,
    encoding: Encoding = Encoding(),
    *,
    format: str = "tfrecords",
    layout: str = "original",
    compression: str | None = None,
    fractions=None,
    sizes=None,
    presplit: bool = False,
    shards: int | None = None,
    workers: int | None = None,
    skip_bad: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    command: str = "",
    progress: bool = True,
    runner: str = "local",
    beam_options=None,
) -> Manifest:
    """Encode the class folders of ``source`` into ``output`` and return its manifest.

    Args:
        source: directory with one sub-folder per class; labels follow sorted names.
        output: dataset directory to create (``manifest.json`` + ``train/ val/ test/``).
        encoding: what to compute per image (see :class:`Encoding`).
        format: ``"tfrecords"`` (sharded) or ``"npy"`` (``000000.npy ... labels.npy``).
        layout: record layout, ``"original"`` (GANDCTAnalysis-compatible float list),
            ``"compact"`` (float16 bytes) or ``"pixels"`` (the uint8 pixels, a quarter of the
            original's bytes; the encoding and its train-split statistics go into the manifest
            and are applied by the reader or by the model being trained).
        compression: None or ``"GZIP"``.
        fractions / sizes: split by fractions (default 0.7/0.2/0.1) or by per-class counts.
        presplit: ``source`` is already split into ``train/ val/ test/`` class folders.
        shards: shards per split (default: about 128 MiB each).
        workers: processes (default: all cores) of the local runner.
        skip_bad: skip unreadable images and list them in the manifest instead of failing.
        seed: seed of the splits and shuffles.
        overwrite: replace an existing, different output.
        runner: ``"local"`` (a process pool) or ``"beam"`` (an Apache Beam pipeline, see
            :mod:`tfforensics.data.beam`); both write the same records and manifest.
        beam_options: Beam pipeline options (a string such as ``"--runner=FlinkRunner ..."``
            or a list of flags); DirectRunner when none.
    """
    from tfforensics import __version__

    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    if layout not in records.LAYOUTS:
        raise ValueError(f"`layout` must be one of {records.LAYOUTS}. Received: layout={layout!r}")
    if layout == "pixels" and format != "tfrecords":
        raise UserError("--layout pixels writes TFRecord shards; drop --format npy.")
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int) or shards < 1):
        raise UserError(f"--shards must be a whole number >= 1. Received: --shards {shards}")
    if runner not in RUNNERS:
        raise UserError(f"--runner must be one of {', '.join(RUNNERS)}. Received: --runner {runner}")
    if runner == "beam" and format != "tfrecords":
        raise UserError("--runner beam writes TFRecord shards; drop --format npy or use --runner local.")
    if beam_options and runner != "beam":
        raise UserError("--beam-options configures the Beam runner; add --runner beam or drop --beam-options.")
    check_sources(output, [source])
    source, output = Path(source).resolve(), Path(output).resolve()
    workers = workers or os.cpu_count() or 1
    if runner == "beam":
        from tfforensics.data import beam  # fails with the install hint before any work

        beam.check_available()

    plan = plan_dataset(source, encoding, format=format, layout=layout, compression=compression,
                        fractions=fractions, sizes=sizes, presplit=presplit, shards=shards, skip_bad=skip_bad,
                        seed=seed)
    fingerprint = plan.fingerprint

    if output.is_dir() and (output / MANIFEST_NAME).is_file() and read_marker(output) is not None:
        try:
            existing = Manifest.load(output)
        except UserError as error:  # a damaged output of ours: not reusable; --overwrite may replace it
            if not overwrite:
                raise UserError(f"{error} (or pass --overwrite to prepare it again)") from error
            logger.warning("%s: previous output is damaged (%s); preparing it again.", output, error)
        else:
            if existing.source.get("sha256") == fingerprint:
                logger.info("Reusing %s: same inputs and options.", output)
                return existing
    # Checked before any work: OUT may be new, empty, or (with --overwrite) a previous output of ours.
    claim_output(output, overwrite=overwrite, sources=[source], command="prepare")

    work = output.parent / f".{output.name}{INCOMPLETE_PREFIX}{fingerprint[:12]}"
    clean_stale(output, keep=work)
    work.mkdir(parents=True, exist_ok=True)
    config = plan.config
    try:
        skipped = []
        statistics_path = work / STATISTICS_FILE
        if runner == "beam":
            done = beam.run(plan, work, statistics_path if encoding.needs_statistics else None, beam_options)
        else:
            if encoding.needs_statistics:
                if not statistics_path.exists():
                    train = plan.items["train"]
                    slices = list(_chunks(train, max(CHUNK_SIZE, math.ceil(len(train) / (4 * workers)))))
                    results = _run_stage(_statistics_task, slices, config, workers, len(train),
                                         "statistics (train)", progress)
                    moments = RunningMoments()
                    for part, bad in results:
                        moments.merge(part)
                        skipped += bad
                    save_statistics(statistics_path, moments, encoding)
                config = dataclasses.replace(config, statistics_path=str(statistics_path))
            tasks, done = shard_tasks(plan, work)
            total = sum(len(task["items"]) for task in tasks)
            for task, result in zip(tasks, _run_stage(_write_task, tasks, config, workers, total, "encode + write",
                                                      progress)):
                done[(task["split"], task["index"])] = result
        manifest = _finish(plan, work, done, skipped, runner=runner, command=command, version=__version__)
        replace_output(work, output, [source])
    except (BadImageError, EmptyClassError):
        remove_tree(work)  # bad input: the user must change the inputs, nothing to continue
        raise
    manifest.root = output
    return manifest


def _finish(plan: Plan, work: Path, done: dict, skipped: list, *, runner: str, command: str, version: str) -> Manifest:
    """Stage 4: gather the shard results, write the manifest last and mark the directory ours."""
    classes, items, config = plan.classes, plan.items, plan.config
    # The shard results are all in memory now; drop the markers first, so that an interruption
    # while .npy files are renumbered below redoes the shards instead of trusting old indices.
    for marker in work.glob(f"*/{INCOMPLETE_PREFIX}*.done.json"):
        marker.unlink()
    splits = {}
    for split in SPLITS:
        shard_results = [done[(split, i)] for i in range(plan.shard_counts[split])]
        per_class = collections.Counter()
        for result in shard_results:
            per_class.update({int(k): v for k, v in result["per_class"].items()})
            skipped += result["skipped"]
        entry = {
            "count": sum(r["count"] for r in shard_results),
            "per_class": {classes_name: per_class.get(i, 0) for i, classes_name in enumerate(classes)},
            "num_bytes": sum(r["num_bytes"] for r in shard_results),
        }
        if config.format == "tfrecords":
            entry["shards"] = [{"file": f"{split}/{r['file']}", "count": r["count"]} for r in shard_results if r["count"]]
            for r in shard_results:
                if not r["count"]:
                    (work / split / r["file"]).unlink(missing_ok=True)
        else:
            entry["shards"] = [{"file": split, "count": None}]
            entry["directory"] = split
            _finish_npy(work / split, [pair for r in shard_results for pair in r["indices"]])
        splits[split] = entry
    unique_skipped = list({s["path"]: s for s in skipped}.values())
    _check_classes_kept(classes, items, splits, unique_skipped)
    # Temporary files of shards that a killed run was writing: ours (our prefix), never finished.
    for leftover in sorted(work.glob(f"*/{INCOMPLETE_PREFIX}*")):
        remove_tree(leftover)
        logger.info("removed %s, left unfinished by an interrupted run", leftover.name)
    encoding = config.encoding
    statistics_path = work / STATISTICS_FILE
    manifest = Manifest(
        class_names=list(classes),
        image_shape=plan.shape,
        encoding=encoding,
        format=config.format,
        layout=config.layout if config.format == "tfrecords" else "npy",
        compression=config.compression,
        splits=splits,
        statistics=_statistics_entry(statistics_path) if encoding.needs_statistics else None,
        skipped=unique_skipped,
        seed=plan.seed,
        source={"root": str(plan.source), "files": len(plan.all_items), "sha256": plan.fingerprint,
                "runner": runner},
        command=command,
        tfforensics_version=version,
    )
    manifest.save(work)
    mark_output(work, "prepare", fingerprint=plan.fingerprint)
    return manifest


class EmptyClassError(UserError):
    """``--skip-bad`` skipped every train image of a class."""


def _check_classes_kept(classes, items, splits, skipped) -> None:
    """Stop when ``--skip-bad`` left a class without train images: its label would be useless."""
    planned = collections.Counter(label for _, label in items["train"])
    for label, name in enumerate(classes):
        if planned.get(label, 0) and not splits["train"]["per_class"].get(name, 0):
            raise EmptyClassError(
                f"class {name!r}: --skip-bad skipped all of its {planned[label]} train images as unreadable, "
                "which would leave a class with no training data; fix or replace its images, or remove the "
                "class folder."
            )


def _statistics_entry(path: Path) -> dict:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _finish_npy(directory: Path, indexed_labels) -> None:
    """Renumber per-image files without gaps (skipped images) and write ``labels.npy``."""
    # tuples from this run, lists from the shard markers of an interrupted one: compare as tuples
    indexed_labels = sorted((int(index), int(label)) for index, label in indexed_labels)
    for new, (old, _) in enumerate(indexed_labels):
        if new != old:
            os.replace(directory / f"{old:06d}.npy", directory / f"{new:06d}.npy")
    with atomic_open(directory / "labels.npy", "wb") as handle:
        np.save(handle, np.asarray([label for _, label in indexed_labels], dtype=np.int64))
