"""train across workers: MultiWorkerMirroredStrategy from TF_CONFIG, chief-only run directory, resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfforensics.data import Encoding, prepare
from tfforensics.errors import UserError
from tfforensics.training import fit

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import json, sys
from tfforensics.training.fit import train
result = train("log2", sys.argv[1], out=sys.argv[2], epochs=int(sys.argv[3]), batch_size=16, learning_rate=1e-2,
               seed=0, early_stopping=0, verbose=0)
print("RESULT " + json.dumps({"val": result.run["val_metrics"], "strategy": result.run["strategy"],
                              "epochs_run": result.run["epochs_run"], "resumed": result.run["resumed_at_epoch"]}))
"""


@pytest.fixture(scope="module")
def dataset(three_sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("multiworker") / "dct"
    return prepare(three_sources, out, Encoding(log=True, normalize=True), workers=1, progress=False).root


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(dataset, out, epochs, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS="1",
                   TF_NUM_INTEROP_THREADS="1", TMPDIR=str(tmp_path),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / f"worker{index}.log", "a")
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(dataset), str(out), str(epochs)],
                                        stdout=log, stderr=subprocess.STDOUT, env=env))
    return workers


def _results(workers, tmp_path, timeout=600):
    for worker in workers:
        worker.wait(timeout=timeout)
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(log[-3000:] for log in logs)
    return [json.loads(next(line for line in log.splitlines()[::-1] if line.startswith("RESULT "))[7:])
            for log in logs]


@pytest.mark.slow
def test_two_workers_train_like_one(dataset, tmp_path):
    single = fit.train("log2", dataset, out=tmp_path / "single", epochs=4, batch_size=16, learning_rate=1e-2,
                       seed=0, early_stopping=0, verbose=0)
    workers = _start_workers(dataset, tmp_path / "multi", 4, tmp_path)
    chief, other = _results(workers, tmp_path)
    assert chief["strategy"] == {"name": "CollectiveAllReduceStrategy", "replicas": 2}
    assert chief["val"] == other["val"]  # one model, kept in sync
    assert abs(chief["val"]["accuracy"] - single.run["val_metrics"]["accuracy"]) <= 2 / 18 + 1e-6
    assert chief["val"]["accuracy"] > 0.6
    # the chief wrote the run directory; the other worker's temporary one is gone
    run = json.loads((tmp_path / "multi" / "run.json").read_text())
    assert run["epochs_run"] == 4 and (tmp_path / "multi" / "model.keras").is_file()
    assert not (tmp_path / "multi" / "backup").exists()
    assert not list(tmp_path.glob("tfforensics-worker-*"))


@pytest.mark.slow
def test_killed_workers_resume_from_the_chiefs_backup(dataset, tmp_path):
    out = tmp_path / "run"
    workers = _start_workers(dataset, out, 6, tmp_path)
    metadata = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:  # wait until two epochs are backed up, then kill the cluster
        files = list((out / "backup").glob("*/training_metadata.json")) if (out / "backup").is_dir() else []
        if files and json.loads(files[0].read_text()).get("epoch", 0) >= 2:
            metadata = files[0]
            break
        time.sleep(0.5)
    assert metadata is not None, "no backup was written"
    workers[1].send_signal(signal.SIGKILL)
    workers[0].send_signal(signal.SIGKILL)
    for worker in workers:
        worker.wait(timeout=60)
    assert not (out / "run.json").exists()
    chief, _ = _results(_start_workers(dataset, out, 6, tmp_path), tmp_path)
    assert chief["epochs_run"] == 6 and chief["resumed"] >= 2
    assert json.loads((out / "run.json").read_text())["resumed_at_epoch"] == chief["resumed"]


def test_tf_config_is_read_and_checked(monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert fit.cluster_task() == ("worker", 1) and not fit.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["h:1"], **cluster},
                                                "task": {"type": "worker", "index": 0}}))
    assert not fit.is_chief()  # with a chief task, worker 0 is not the chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker"}}))
    assert fit.cluster_task() is None and fit.is_chief()  # one worker: no cluster
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 5}}))
    with pytest.raises(UserError, match="task.index"):
        fit.cluster_task()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not a cluster description"):
        fit.cluster_task()
