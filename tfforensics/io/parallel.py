"""The one process-pool runner, safe next to TensorFlow and cheap without it, and the thread-count rule.

:func:`run_pool` maps a module-level function over tasks in a process pool (or inline for
small jobs) with one progress bar. What the workers need (options, statistics, a model
path) goes in explicitly as ``config``; ``setup(config)`` turns it into the worker's state
once per process, and each call gets ``function(task, state, tick)``, where ``tick(n)``
advances the bar from inside the worker. Nothing is kept in module globals of the caller.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading


def pool_context():
    """A multiprocessing context: ``fork`` (instant start) unless TensorFlow is loaded here.

    TensorFlow's runtime threads make a forked child unsafe, so once it is imported the
    pool is spawned instead (slower to start, about a second, but safe).
    """
    if "tensorflow" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("fork")


#: Most threads one loop uses for reading images (decoding releases the GIL; more threads only contend).
MAX_THREADS = 8


def thread_count(workers: int | None = None) -> int:
    """The one rule for thread pools: ``workers`` when given, else the cores, at most :data:`MAX_THREADS`."""
    return int(workers) if workers else min(MAX_THREADS, os.cpu_count() or 1)


def process_count(workers: int | None = None) -> int:
    """The one rule for process pools: ``workers`` when given, else every core."""
    return int(workers) if workers else os.cpu_count() or 1


def pin_compute_threads(threads: int = 1) -> bool:
    """Run TensorFlow's kernels and the BLAS on ``threads`` threads in this process.

    How many threads split a reduction changes its rounding: a model trained with TensorFlow's
    default (one intra-op thread per core) learns other weights on a 2-core laptop than on a
    16-core server. A job whose numbers should not depend on the machine (``reproduce``) pins
    the count and runs processes side by side instead. Call it before TensorFlow's runtime
    starts (its first op); returns False, changing nothing in TensorFlow, when it already has.
    """
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime has started: its pools keep their size
            return False
    threadpool_limits(threads, user_api="blas")  # for this process, until changed again
    return True


# The state of this worker process, built by _start_worker from the config the runner sends.
_WORKER = {}


def _start_worker(setup, config, queue) -> None:
    _WORKER["state"] = setup(config) if setup is not None else config
    _WORKER["tick"] = queue.put if queue is not None else (lambda count: None)


def _call_in_worker(payload):
    function, task = payload
    return function(task, _WORKER["state"], _WORKER["tick"])


class WarmPool:
    """A process pool started ahead of the :func:`run_pool` call that uses it (``pool=``), so that
    its workers' start-up (a spawned worker imports TensorFlow: seconds) overlaps work done here.

        with WarmPool(workers=2, setup=setup, config=config) as warm:
            ...  # this process works on while the workers start
            results = list(run_pool(function, tasks, pool=warm, progress=False))

    One ``run_pool`` call per pool; leaving the ``with`` block ends the workers. The workers are
    spawned unless ``context`` says otherwise: this process may load TensorFlow before it hands
    them work.
    """

    def __init__(self, *, workers: int, setup=None, config=None, context=None):
        self.workers = process_count(workers)
        context = context or multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        self.pool = context.Pool(self.workers, initializer=_start_worker, initargs=(setup, config, self.queue))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.terminate()
        self.pool.join()


def run_pool(function, tasks, *, config=None, setup=None, workers: int | None = None, inline_below: int = 0,
             total: int | None = None, description: str = "", unit: str = "img", progress: bool = True,
             pool: WarmPool | None = None):
    """Yield ``function(task, state, tick)`` for every task, in task order.

    Args:
        function: a module-level (picklable) function.
        tasks: a list of picklable tasks.
        config: what every worker needs, sent once per worker process.
        setup: ``setup(config) -> state`` run once per worker (default: the state is ``config``).
        workers: processes (:func:`process_count`).
        inline_below: run inline, in this process, when ``total`` is below this (a pool's
            start costs more than it saves), as with one worker or one task.
        total: units of work for the bar (default: the number of tasks); ``tick(n)``
            inside ``function`` advances it.
        pool: a :class:`WarmPool` to run in (its own ``setup``, ``config`` and ``workers``
            apply, and the tasks run there even if they are few).

    The pool is forked, or spawned once TensorFlow is loaded (:func:`pool_context`). An
    exception in a task is raised here, and closing the generator early ends the pool.
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    total = len(tasks) if total is None else total
    workers = process_count(workers)
    with tqdm(total=total, desc=description, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        if pool is None and (workers <= 1 or len(tasks) <= 1 or total < inline_below):
            state = setup(config) if setup is not None else config
            for task in tasks:
                yield function(task, state, bar.update)
            return
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(WarmPool(workers=min(workers, len(tasks)), setup=setup, config=config,
                                                    context=pool_context()))
            reader = threading.Thread(target=_drain, args=(pool.queue, bar), daemon=True)
            reader.start()
            try:
                yield from pool.pool.imap(_call_in_worker, [(function, task) for task in tasks])
            finally:
                pool.queue.put(None)
                reader.join(timeout=5)


def _drain(queue, bar) -> None:
    """Move the workers' ticks to the progress bar until the runner sends ``None``."""
    while True:
        count = queue.get()
        if count is None:
            return
        bar.update(count)
