"""Helpers for tests that check the permissions of what tfforensics writes."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


@contextlib.contextmanager
def umask(mask: int):
    """Run the block under ``mask`` (the process umask), then put the old one back."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def wrong_modes(root, *, file_mode: int = 0o644, dir_mode: int = 0o755, include_root: bool = True) -> list[str]:
    """``"0600 path"`` for every file or directory under ``root`` (and ``root`` itself unless
    ``include_root`` is false: pytest's ``tmp_path`` is 0700) whose permission bits are not
    ``file_mode`` / ``dir_mode``; symbolic links are not followed."""
    root = Path(root)
    wrong = []
    for path in [root] * include_root + sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        expected = dir_mode if stat.S_ISDIR(info.st_mode) else file_mode
        if stat.S_IMODE(info.st_mode) != expected:
            wrong.append(f"{stat.S_IMODE(info.st_mode):04o} {path.relative_to(root)}")
    return wrong


def count_entries(root) -> tuple[int, int]:
    """``(files, directories)`` under ``root``, links not counted."""
    files = dirs = 0
    for path in Path(root).rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            dirs += 1
        else:
            files += 1
    return files, dirs
