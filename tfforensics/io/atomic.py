"""Atomic file and directory writes.

A reader must never see a file that looks complete but is not: files are written to a
temporary name in the same directory and renamed into place, and whole outputs are
built in an ``.incomplete`` directory that is renamed only once everything is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tfforensics.errors import UserError

#: Prefix of temporary names; anything that starts with it is unfinished.
INCOMPLETE_PREFIX = ".incomplete-"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, and put it back at once
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 minus the umask (``mkstemp`` gives 0600)."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """The mode ``mkdir`` gives a new directory: 0777 minus the umask (``mkdtemp`` gives 0700)."""
    return 0o777 & ~current_umask()


@contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file next to ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=INCOMPLETE_PREFIX, suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, default_file_mode())  # as any tool creates files, so others can read the output
    os.close(fd)
    try:
        with open(tmp, mode) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path, data) -> None:
    """Write ``data`` (bytes or str) to ``path`` atomically."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_keras(model, path) -> Path:
    """``model.save`` (``save_weights`` for ``*.weights.h5``) to a hidden temporary name, then
    rename: never a half-written model file, and no temporary left behind on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{INCOMPLETE_PREFIX}{os.getpid()}-{path.name}")  # keeps the .keras suffix
    try:
        (model.save_weights if path.name.endswith(".weights.h5") else model.save)(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def replace_dir(src, dst) -> None:
    """Move the finished directory ``src`` to ``dst``, which must not exist or be empty."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        if any(dst.iterdir()):
            raise UserError(f"{dst}: exists and is not empty; pass --overwrite or choose another output.")
        dst.rmdir()
    os.replace(src, dst)


def remove_tree(path) -> None:
    """Remove ``path`` if it exists (a directory tree or a file)."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
