"""The one process-pool runner: the pool path itself runs (two processes), in order, with its config."""

from __future__ import annotations

import os

import pytest

from tfforensics.io.parallel import WarmPool, process_count, run_pool, thread_count


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


def _started(config):
    import time

    return {"offset": config["offset"], "pid": os.getpid(), "ready": time.monotonic()}


def _work_started(task, state, tick):
    tick(1)
    if task == "bad":
        raise ValueError("a bad task")
    return task + state["offset"], state["pid"], state["ready"]


def test_warm_pool_starts_its_workers_before_the_run_and_runs_every_task():
    """A WarmPool's workers are set up before run_pool is called (their setup ends before it), in
    other processes, with the pool's config; even one task runs there; errors come back."""
    import time

    with WarmPool(workers=2, setup=_started, config={"offset": 7}) as warm:
        time.sleep(2.0)  # this process works on while the workers start
        called = time.monotonic()
        out = list(run_pool(_work_started, [1, 2, 3, 4], pool=warm, progress=False))
    assert [value for value, _, _ in out] == [8, 9, 10, 11]
    assert os.getpid() not in {pid for _, pid, _ in out}
    assert all(ready < called for _, _, ready in out)
    with WarmPool(workers=2, setup=_started, config={"offset": 1}) as warm:
        assert [v for v, _, _ in run_pool(_work_started, [5], pool=warm, progress=False)] == [6]
    with WarmPool(workers=2, setup=_started, config={"offset": 1}) as warm, pytest.raises(ValueError, match="a bad"):
        list(run_pool(_work_started, [1, "bad"], pool=warm, progress=False))


def test_inline_below_the_threshold_and_errors_come_back():
    out = list(run_pool(_work, [1, 2], config={"offset": 1}, setup=_setup, workers=2, inline_below=10,
                        progress=False))
    assert out == [(2, os.getpid()), (3, os.getpid())]
    with pytest.raises(ValueError, match="a bad task"):
        list(run_pool(_work, [1, "bad", 3], config={"offset": 1}, setup=_setup, workers=2, progress=False))


def test_one_rule_for_counts():
    assert thread_count(3) == 3 and process_count(5) == 5
    assert 1 <= thread_count() <= 8 and process_count() == (os.cpu_count() or 1)


def test_pinned_compute_threads_and_too_late_to_pin():
    """In a new process: TensorFlow's intra-op pool and the BLAS take the pinned count; once
    TensorFlow's runtime has started, pinning another count says so instead of failing."""
    import subprocess
    import sys

    script = (
        "import tensorflow as tf\n"
        "from threadpoolctl import threadpool_info\n"
        "from tfforensics.io.parallel import pin_compute_threads\n"
        "assert pin_compute_threads(1)\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "assert all(pool['num_threads'] == 1 for pool in threadpool_info() if pool['user_api'] == 'blas')\n"
        "tf.constant(1.0) + 1.0\n"
        "assert pin_compute_threads(1)\n"  # already that count
        "assert not pin_compute_threads(2)\n"  # changes neither pool
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "assert all(pool['num_threads'] == 1 for pool in threadpool_info() if pool['user_api'] == 'blas')\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
