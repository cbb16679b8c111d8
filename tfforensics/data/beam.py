"""``prepare --runner beam``: the same stages as the local runner, as Apache Beam pipelines.

Nothing here encodes, plans or writes on its own: the plan (:func:`~tfforensics.data.prepare.plan_dataset`),
the per-image step (:func:`~tfforensics.data.prepare.encode_items`), the moments
(:func:`~tfforensics.data.prepare.chunk_moments`, merged with Chan's update), the shard writer
(:func:`~tfforensics.data.prepare.write_records`) and its ``.done.json`` marker are the local
runner's functions. Beam only distributes them:

* statistics (``--normalize`` / ``--abs``): read the train items of the plan, batch them,
  ``CombineGlobally`` with :class:`MomentsCombineFn`, save ``statistics.npz`` in the work directory;
* write: read the plan of the shards still to write, batch, encode (:class:`EncodeFn`), group the
  serialized examples by shard and write each shard, ordered by planned position, with the local
  runner's names into the work directory (:class:`WriteShardFn`).

The driver then writes the manifest and renames the work directory into place, as the local
runner does. The pipelines run on DirectRunner unless ``--beam-options`` names another runner
(``--runner=FlinkRunner``, ``SparkRunner``, ``DataflowRunner`` with their standard options); SRC
and the directory of OUT must then be on a file system that every worker mounts at the same path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
from pathlib import Path

import numpy as np

from tfforensics.data import records
from tfforensics.data.prepare import (
    CHUNK_SIZE, Plan, chunk_moments, encode_items, finish_shard, save_statistics, shard_tasks, write_records,
)
from tfforensics.data.stats import RunningMoments
from tfforensics.errors import UserError
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_write_json
from tfforensics.io.images import BadImageError

logger = logging.getLogger(__name__)

INSTALL = 'pip install "tfforensics[beam]"'
STATISTICS_PLAN = f"{INCOMPLETE_PREFIX}statistics-plan.jsonl"
WRITE_PLAN = f"{INCOMPLETE_PREFIX}write-plan.jsonl"

try:
    import apache_beam as beam
except ImportError:  # the extra is not installed: check_available() says how to install it
    beam = None


def check_available() -> None:
    """Raise a one-line :class:`UserError` when Apache Beam is not installed."""
    if beam is None:
        raise UserError(f"--runner beam needs Apache Beam, which is not installed: {INSTALL} (or use --runner local).")


def pipeline_options(beam_options=None):
    """``PipelineOptions`` from a flag string (``"--runner=FlinkRunner --parallelism=8"``) or a list of flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if isinstance(beam_options, str):
        flags = shlex.split(beam_options)
    else:
        flags = list(beam_options or [])
    return PipelineOptions(flags)


if beam is not None:

    class MomentsCombineFn(beam.CombineFn):
        """Per-coefficient moments of batches of train items, merged with Chan's parallel update."""

        def __init__(self, config):
            # Bad images are the write stage's business (it fails or lists them); here they only drop out.
            self.config = dataclasses.replace(config, skip_bad=True)

        def create_accumulator(self):
            return RunningMoments()

        def add_input(self, accumulator, batch):
            part, _ = chunk_moments([(entry["path"], entry["label"]) for entry in batch], self.config)
            return accumulator.merge(part)

        def merge_accumulators(self, accumulators):
            merged = RunningMoments()
            for accumulator in accumulators:
                merged.merge(accumulator)
            return merged

        def extract_output(self, accumulator):
            return accumulator

    class EncodeFn(beam.DoFn):
        """A batch of planned items -> ``(shard, (position, serialized example | None, label | skipped entry))``.

        Without ``skip_bad`` a bad image fails every shard of its batch: each gets
        ``(-1, None, {path, reason, fix})``, so that none of them is written and the driver raises.
        """

        def __init__(self, config):
            self.config = config
            self.statistics = None

        def setup(self):
            if self.config.statistics_path:
                with np.load(self.config.statistics_path) as data:
                    self.statistics = {key: data[key] for key in data.files}

        def process(self, batch):
            try:
                encoded, bad = encode_items([(entry["path"], entry["label"]) for entry in batch], self.config,
                                            self.statistics)
            except BadImageError as error:
                failure = {"path": error.path, "reason": error.reason, "fix": error.fix}
                for shard in sorted({entry["shard"] for entry in batch}):
                    yield shard, (-1, None, failure)
                return
            for i, value, label in encoded:
                entry = batch[i]
                yield entry["shard"], (entry["position"], records.serialize_example(value, label, self.config.layout),
                                       label)
            by_path = {str(entry["path"]): entry for entry in batch}
            for skipped in bad:
                entry = by_path[skipped["path"]]
                yield entry["shard"], (entry["position"], None, skipped)

    class WriteShardFn(beam.DoFn):
        """One shard's examples -> its file and ``.done.json`` marker, or a ``.failed.json`` naming a bad image."""

        def __init__(self, shards: dict, compression):
            self.shards, self.compression = shards, compression

        def process(self, element):
            key, values = element
            directory, file = Path(self.shards[key]["directory"]), self.shards[key]["file"]
            values = sorted(values, key=lambda value: value[0])
            if values[0][0] < 0:
                atomic_write_json(directory / f"{INCOMPLETE_PREFIX}{file}.failed.json", values[0][2])
                return
            good = [value for value in values if value[1] is not None]
            skipped = [value[2] for value in values if value[1] is None]
            num_bytes = write_records(directory / file, (value[1] for value in good), self.compression)
            finish_shard(directory, file, [value[2] for value in good], skipped, num_bytes)
            yield key

    def _save_statistics(moments, path: str, encoding) -> str:
        save_statistics(Path(path), moments, encoding)
        return path


def _write_plan(path: Path, entries) -> Path:
    with open(path, "w", encoding="ascii") as handle:
        for entry in entries:
            handle.write(json.dumps(entry) + "\n")
    return path


def _read(pipeline, path: Path, label: str):
    return (pipeline
            | f"Read {label} plan" >> beam.io.ReadFromText(str(path))
            | f"Parse {label} plan" >> beam.Map(json.loads)
            | f"Batch {label}" >> beam.BatchElements(min_batch_size=1, max_batch_size=CHUNK_SIZE))


def run(plan: Plan, work: Path, statistics_path: Path | None, beam_options=None) -> dict:
    """Stages 2 and 3 of ``prepare`` as Beam pipelines; returns the shard results, as the local runner has them."""
    check_available()
    if logging.getLogger("apache_beam").level == logging.NOTSET:  # its per-bundle INFO lines drown the progress
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
    options = pipeline_options(beam_options)
    config = plan.config
    if statistics_path is not None:
        if not statistics_path.exists():
            plan_file = _write_plan(work / STATISTICS_PLAN, (
                {"path": str(path), "label": int(label)} for path, label in plan.items["train"]))
            with beam.Pipeline(options=options) as pipeline:
                (_read(pipeline, plan_file, "train")
                 | "Moments (train)" >> beam.CombineGlobally(MomentsCombineFn(config))
                 | "Save statistics" >> beam.Map(_save_statistics, str(statistics_path), config.encoding))
            plan_file.unlink()
            if not statistics_path.exists():
                raise RuntimeError(f"the Beam statistics pipeline finished without writing {statistics_path}")
        config = dataclasses.replace(config, statistics_path=str(statistics_path))

    tasks, done = shard_tasks(plan, work)
    if tasks:
        logger.info("Beam (%s): encoding %d images into %d shards", options.get_all_options().get("runner") or
                    "DirectRunner", sum(len(task["items"]) for task in tasks), len(tasks))
        shards = {task["file"]: {"directory": task["directory"], "file": task["file"]} for task in tasks}
        plan_file = _write_plan(work / WRITE_PLAN, (
            {"shard": task["file"], "position": position, "path": str(path), "label": int(label)}
            for task in tasks for position, (path, label) in enumerate(task["items"])))
        with beam.Pipeline(options=options) as pipeline:
            (_read(pipeline, plan_file, "shards")
             | "Encode" >> beam.ParDo(EncodeFn(config))
             | "Group by shard" >> beam.GroupByKey()
             | "Write shards" >> beam.ParDo(WriteShardFn(shards, config.compression)))
        plan_file.unlink()
        failed = sorted(work.glob(f"*/{INCOMPLETE_PREFIX}*.failed.json"))
        if failed:
            with open(failed[0]) as handle:
                entry = json.load(handle)
            for marker in failed:
                marker.unlink()
            raise BadImageError(entry["path"], entry["reason"], entry["fix"])
        for task in tasks:
            marker = Path(task["directory"]) / f"{INCOMPLETE_PREFIX}{task['file']}.done.json"
            if not marker.exists():
                raise RuntimeError(f"the Beam write pipeline finished without writing {task['file']}")
            with open(marker) as handle:
                done[(task["split"], task["index"])] = json.load(handle)
    return done
