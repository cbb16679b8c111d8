"""Process pools that are safe next to TensorFlow and cheap without it."""

from __future__ import annotations

import multiprocessing
import sys


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
    import os

    return int(workers) if workers else min(MAX_THREADS, os.cpu_count() or 1)
