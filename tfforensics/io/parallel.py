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
