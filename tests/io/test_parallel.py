"""The one process-pool runner: the pool path itself runs (two processes), in order, with its config."""

from __future__ import annotations

import os

import pytest

from tfforensics.io.parallel import process_count, run_pool, thread_count


def _setup(config):
    return {"offset": config["offset"], "pid": os.getpid()}


def _work(task, state, tick):
    tick(1)
    if task == "bad":
        raise ValueError("a bad task")
    return task + state["offset"], state["pid"]


def test_pool_path_keeps_order_and_sends_the_config_once_per_worker():
    tasks = list(range(12))
    out = list(run_pool(_work, tasks, config={"offset": 100}, setup=_setup, workers=2, progress=False))
    assert [value for value, _ in out] == [t + 100 for t in tasks]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # ran in worker processes


def test_inline_below_the_threshold_and_errors_come_back():
    out = list(run_pool(_work, [1, 2], config={"offset": 1}, setup=_setup, workers=2, inline_below=10,
                        progress=False))
    assert out == [(2, os.getpid()), (3, os.getpid())]
    with pytest.raises(ValueError, match="a bad task"):
        list(run_pool(_work, [1, "bad", 3], config={"offset": 1}, setup=_setup, workers=2, progress=False))


def test_one_rule_for_counts():
    assert thread_count(3) == 3 and process_count(5) == 5
    assert 1 <= thread_count() <= 8 and process_count() == (os.cpu_count() or 1)
