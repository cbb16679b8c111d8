"""baselines grid-search --backend dask: a Dask LocalCluster gives the local backend's results."""

from __future__ import annotations

import json

import pytest
from dask.distributed import LocalCluster

from tfforensics.baselines import search
from tfforensics.baselines import backends
from tfforensics.cli.main import launch
from tfforensics.data import Encoding, prepare
from tfforensics.errors import UserError


@pytest.fixture(scope="module")
def dct(three_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    return prepare(three_sources, root / "dct", Encoding(log=True), workers=1, progress=False).root


def _points(out, method):
    (entry,) = json.loads(search.results_path(out, method).read_text())["datasets"].values()
    best = {key: value for key, value in entry["best"].items() if key != "model"}
    return {key: point["val_accuracy"] for key, point in entry["points"].items()}, best


@pytest.mark.parametrize("method, grid", [
    ("knn", {"n_neighbors": [1, 3, 5, 9]}),
    ("eigenfaces", {"pca__n_components": [0.5, 0.95], "svm__C": [1e-3, 1e-1]}),
])
def test_local_cluster_equals_local_backend(dct, tmp_path, method, grid):
    local = search.grid_search(method, dct, tmp_path / "local", grid=grid, n_jobs=1, progress=False)
    dask = search.grid_search(method, dct, tmp_path / "dask", grid=grid, n_jobs=2, progress=False, backend="dask")
    assert dask == {**local, "model": dask["model"]}  # best params, val and test accuracy
    assert _points(tmp_path / "dask", method) == _points(tmp_path / "local", method)
    (run,) = json.loads(search.results_path(tmp_path / "dask", method).read_text())["runs"]
    assert run["backend"] == "dask" and run["computed"] == len(_points(tmp_path / "dask", method)[0])


def test_cli_on_a_scheduler_address_resumes(dct, tmp_path, capsys):
    """Worker processes behind a scheduler on 127.0.0.1, as a real cluster is used; a re-run reuses the points."""
    out = tmp_path / "out"
    local = search.grid_search("knn", dct, tmp_path / "local", grid={"n_neighbors": [1, 3, 5]}, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        argv = ["baselines", "grid-search", "knn", "--dataset", str(dct), "--out", str(out), "--k", "1", "3",
                "--backend", "dask", "--scheduler", cluster.scheduler_address, "-q"]
        assert launch(argv) == 0
        assert launch(argv[:argv.index("3") + 1] + ["5"] + argv[argv.index("3") + 1:]) == 0
    points, best = _points(out, "knn")
    assert (points, best["params"], best["val_accuracy"]) == (_points(tmp_path / "local", "knn")[0],
                                                              local["params"], local["val_accuracy"])
    runs = json.loads(search.results_path(out, "knn").read_text())["runs"]
    assert [(r["computed"], r["reused"], r["scheduler"]) for r in runs] == [
        (2, 0, cluster.scheduler_address), (1, 2, cluster.scheduler_address)]


def test_backend_errors_are_one_line(dct, tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(UserError, match="--backend dask"):
        search.grid_search("knn", dct, tmp_path, scheduler="tcp://127.0.0.1:1", progress=False)
    with pytest.raises(UserError, match="cannot connect"):
        search.grid_search("knn", dct, tmp_path, backend="dask", scheduler="tcp://127.0.0.1:1", progress=False)
