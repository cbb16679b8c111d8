"""Which outputs may be written, replaced or deleted: the one ownership check of every command.

Every folder that tfforensics makes holds a small marker, ``.tfforensics-output.json``, that
lists what tfforensics put there (``files``, relative paths; ``dirs``, sub-trees it owns
whole, ``"."`` for all of it). ``--overwrite`` replaces an output only when

- it is a tfforensics output (it holds such a marker), and
- every file under it is one tfforensics wrote (listed by its marker or by the marker of a
  nested output, or named with the ``.incomplete-`` prefix of unfinished files), and
- it is not a source of the command, nor a folder that contains a source.

Anything else is refused with one line (:class:`~tfforensics.errors.UserError`) naming the
folder and why. An output folder inside a source folder is refused up front as well: a
re-run would read the output as input.

Single files (``classify --csv``, a baselines model) are replaced only with ``--overwrite``
and only when their content shows that tfforensics wrote them (see :func:`claim_file`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from pathlib import Path

from tfforensics.errors import UserError
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_write_json, remove_tree

logger = logging.getLogger(__name__)

#: Name of the marker file in every folder that tfforensics writes.
MARKER = ".tfforensics-output.json"
#: Value of the marker's ``producer`` key (and of ``producer`` in JSON files tfforensics writes).
PRODUCER = "tfforensics"
#: How ``--overwrite`` is described in every message and help text.
OVERWRITE_HINT = "--overwrite replaces a previous tfforensics output only"


def _resolve(path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def read_marker(directory) -> dict | None:
    """The marker of ``directory`` if it is a tfforensics output, else None."""
    path = Path(directory) / MARKER
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return _legacy_marker(Path(directory))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("producer") != PRODUCER:
        return None
    return data


def _legacy_marker(directory: Path) -> dict | None:
    """A dataset written by ``prepare`` before markers existed: its manifest names its files."""
    try:
        with open(directory / "run.json", encoding="utf-8") as handle:
            run = json.load(handle)
        if isinstance(run, dict) and isinstance(run.get("versions"), dict) and run["versions"].get("tfforensics"):
            return {"producer": PRODUCER, "command": "train", "files": ["run.json", "model.keras"],
                    "dirs": ["checkpoints", "logs"], "legacy": True}
    except (OSError, ValueError):
        pass
    try:
        with open(directory / "manifest.json", encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not manifest.get("tfforensics_version"):
        return None
    files, dirs = ["manifest.json"], []
    if isinstance(manifest.get("statistics"), dict) and manifest["statistics"].get("file"):
        files.append(str(manifest["statistics"]["file"]))
    for entry in (manifest.get("splits") or {}).values():
        if not isinstance(entry, dict):
            continue
        if entry.get("directory"):
            dirs.append(str(entry["directory"]))
        files += [str(shard.get("file")) for shard in entry.get("shards") or [] if isinstance(shard, dict)]
    return {"producer": PRODUCER, "command": "prepare", "files": files, "dirs": dirs, "legacy": True}


def is_output(directory) -> bool:
    """True when ``directory`` holds a tfforensics marker."""
    return read_marker(directory) is not None


def mark_output(directory, command: str, *, files=None, dirs=(), since: float | None = None, **info) -> Path:
    """Write the marker of ``directory``.

    Args:
        command: what made it (``"prepare"``, ``"crop"``, ``"train"``, ...).
        files: relative paths tfforensics wrote; None lists every file now under
            ``directory`` (for outputs built in a staging folder, where all of it is ours), or
            with ``since`` (a ``time.time()``) the files listed before plus those changed since.
        dirs: relative sub-folders owned whole (``"."``: everything under ``directory``).
        info: more keys to keep (e.g. the fingerprint of the options).
    """
    from tfforensics import __version__

    directory = Path(directory)
    if files is None:
        files = set(_walk_files(directory))
        if since is not None:
            previous = read_marker(directory) or {}
            files = {f for f in files if (directory / f).lstat().st_mtime >= since}
            files |= {f for f in previous.get("files", []) if (directory / f).exists() or (directory / f).is_symlink()}
    marker = {"producer": PRODUCER, "command": command, "tfforensics_version": __version__,
              "files": sorted(str(f) for f in files), "dirs": sorted(str(d) for d in dirs), **info}
    atomic_write_json(directory / MARKER, marker)
    return directory / MARKER


def _walk_files(directory: Path):
    """Relative POSIX paths of the files (and symlinks) under ``directory``, markers excluded."""
    for root, dirnames, filenames in os.walk(directory):
        base = Path(root)
        for name in list(dirnames):
            if (base / name).is_symlink():  # a link to a folder: an entry, never followed
                dirnames.remove(name)
                filenames.append(name)
        for name in filenames:
            if name != MARKER:
                yield (base / name).relative_to(directory).as_posix()


def foreign_files(directory, limit: int = 1) -> list[Path]:
    """Up to ``limit`` files under ``directory`` that tfforensics did not write."""
    directory = Path(directory)
    owned_files, owned_dirs = set(), []
    found = []
    for root, dirnames, filenames in os.walk(directory):
        base = Path(root)
        marker = read_marker(base) if {MARKER, "manifest.json", "run.json"} & set(filenames) else None
        if marker is not None:
            owned_files.update(base / f for f in marker.get("files", []))
            owned_dirs.extend((base / d) for d in marker.get("dirs", []))
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                filenames.append(name)
            elif name.startswith(INCOMPLETE_PREFIX) or INCOMPLETE_PREFIX in name:
                dirnames.remove(name)  # unfinished work of ours, named with our prefix
        for name in filenames:
            path = base / name
            if name == MARKER and marker is not None:
                continue
            if INCOMPLETE_PREFIX in name or path in owned_files:
                continue
            if any(path == d or d in path.parents for d in owned_dirs):
                continue
            found.append(path)
            if len(found) >= limit:
                return found
    return found


def check_sources(output, sources=(), *, inside_ok: bool = False) -> None:
    """Refuse an output that is a source, contains one, or (unless ``inside_ok``) lies inside one."""
    out = _resolve(output)
    for source in sources:
        if source is None:
            continue
        src = _resolve(source)
        if out == src:
            raise UserError(f"{output}: is the source folder {source}; choose another output folder.")
        if out in src.parents:
            raise UserError(f"{output}: contains the source {source}; choose an output folder outside it.")
        if not inside_ok and src in out.parents and src.is_dir():
            raise UserError(
                f"{output}: lies inside the source folder {source}, so a re-run would read the output as "
                "input; choose an output folder outside it."
            )


def check_writable(path) -> None:
    """Refuse an output whose nearest existing parent is a file or not writable."""
    path = Path(path)
    parent = _resolve(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: {parent} is a file, not a folder; choose another output.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write in {parent} (permission denied); choose another output.")


def claim_output(output, *, overwrite: bool = False, sources=(), command: str = "", inside_ok: bool = False,
                 reuse=None) -> Path:
    """Check, before any work, that the folder ``output`` may be written; returns its resolved path.

    The folder may not exist yet or be empty; a non-empty one needs ``overwrite`` and must be a
    tfforensics output with nothing foreign inside (it is removed only later, by
    :func:`replace_output`, once the new output is complete). ``reuse(marker)`` may return True
    to accept an existing output without ``overwrite`` (the caller continues or reuses it).
    """
    path = Path(output)
    check_sources(path, sources, inside_ok=inside_ok)
    if path.exists() and not path.is_dir():
        raise UserError(f"{output}: exists and is a file, not a folder; choose another output folder.")
    check_writable(path)
    if path.is_dir() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise UserError(f"{output}: cannot read or write this folder (permission denied); choose another output.")
    if not path.is_dir() or not any(path.iterdir()):
        return _resolve(path)
    marker = read_marker(path)
    if marker is not None and reuse is not None and reuse(marker):
        return _resolve(path)
    if not overwrite:
        what = f"holds a previous tfforensics {marker.get('command') or 'output'}" if marker else "exists and is not empty"
        raise UserError(f"{output}: {what}; choose another output folder, or pass --overwrite "
                        f"({OVERWRITE_HINT}).")
    check_replaceable(path)
    return _resolve(path)


def check_replaceable(directory) -> None:
    """Refuse to remove ``directory`` unless it is a tfforensics output holding only its own files."""
    directory = Path(directory)
    if not is_output(directory):
        raise UserError(
            f"{directory}: is not a tfforensics output (no {MARKER}), so --overwrite will not delete it; "
            "empty it yourself or choose another output folder."
        )
    foreign = foreign_files(directory)
    if foreign:
        raise UserError(
            f"{directory}: holds {foreign[0]}, which tfforensics did not write, so --overwrite will not "
            "delete the folder; move that file out or choose another output folder."
        )


def remove_output(directory, sources=()) -> None:
    """Delete the tfforensics output ``directory`` (after :func:`check_replaceable`)."""
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return
    if directory.is_symlink() or not directory.is_dir():
        raise UserError(f"{directory}: is not a folder that tfforensics wrote; remove it yourself or choose "
                        "another output.")
    check_sources(directory, sources, inside_ok=True)
    check_replaceable(directory)
    remove_tree(directory)


def replace_output(work, output, sources=()) -> None:
    """Move the finished staging folder ``work`` to ``output``, removing a previous output of ours."""
    from tfforensics.io.atomic import replace_dir

    output = Path(output)
    if output.is_dir() and any(output.iterdir()):
        remove_output(output, sources)
    replace_dir(work, output)


def fresh_dir(directory, command: str, sources=()) -> Path:
    """An empty folder owned whole by tfforensics (a previous one of ours is removed first)."""
    directory = Path(directory)
    if directory.exists():
        remove_output(directory, sources)
    directory.mkdir(parents=True)
    mark_output(directory, command, files=[], dirs=["."])
    return directory


@contextlib.contextmanager
def owned_dir(directory, command: str, *, fresh: bool = False, sources=()):
    """A folder that a stage of a command fills in place (``reproduce`` has several).

    ``fresh``: a previous folder of ours is removed first (refused if it holds anything foreign).
    Otherwise an existing folder must be ours or empty, and is kept (a re-run continues in it).
    While the block runs the folder is owned whole; afterwards its marker lists exactly the files
    it held before (of ours) and those written since the block began, so a file a user adds later
    is never taken for ours.
    """
    directory = Path(directory)
    since = time.time() - 1.0  # margin for file systems with coarse time stamps
    marker = read_marker(directory) if directory.is_dir() else None
    if directory.exists() or directory.is_symlink():
        if fresh:
            remove_output(directory, sources)
        elif marker is None and (not directory.is_dir() or any(directory.iterdir())):
            raise UserError(f"{directory}: exists and was not written by tfforensics, so it is left alone; "
                            "move it away or choose another output folder.")
    directory.mkdir(parents=True, exist_ok=True)
    if fresh or marker is None:
        mark_output(directory, command, files=[], dirs=["."], complete=False)
    else:
        mark_output(directory, command, files=marker.get("files", []), dirs=["."], complete=False)
    yield directory
    mark_output(directory, command, since=since)


def clean_stale(output, keep=None) -> list[Path]:
    """Remove the ``.<name>.incomplete-*`` staging folders of ``output`` left by earlier runs.

    Only names with tfforensics' prefix are touched; ``keep`` (the current one) stays.
    """
    output = Path(output)
    parent = output.parent
    removed = []
    if not parent.is_dir():
        return removed
    for candidate in parent.glob(f".{output.name}{INCOMPLETE_PREFIX}*"):
        if keep is not None and candidate.resolve() == Path(keep).resolve():
            continue
        remove_tree(candidate)
        removed.append(candidate)
        logger.info("removed %s, left by an interrupted run with other inputs or options", candidate)
    return removed


def claim_file(path, *, overwrite: bool = False, ours=None, what: str = "file") -> Path:
    """Check, before any work, that the file ``path`` may be written.

    An existing file needs ``overwrite`` and ``ours(path)`` must confirm tfforensics wrote it.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a {what} name (e.g. {path / 'out'}).")
    check_writable(path)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise UserError(f"{path}: exists; pass --overwrite to replace it ({OVERWRITE_HINT}) or choose "
                            "another name.")
        if ours is not None and not ours(path):
            raise UserError(f"{path}: exists and is not a {what} that tfforensics wrote, so --overwrite will "
                            "not replace it; choose another name.")
    return path


def json_is_ours(path) -> bool:
    """True for a JSON object with ``producer: tfforensics`` or a ``tfforensics_version`` key."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("producer") == PRODUCER or "tfforensics_version" in data)


def claim_files(folder, names, *, record: str, command: str, previous: str, contents: str, instead: str,
                overwrite: bool = False) -> None:
    """Check, before any work, that the files ``names`` may be written into ``folder``.

    ``folder`` must not be a file and must be writable. Files of a previous run of ``command``
    are replaced only with ``overwrite`` and only when its JSON ``record`` (one of ``names``) is
    one tfforensics wrote. ``previous``, ``contents`` and ``instead`` word the messages
    (e.g. "test results", "metrics.json, predictions.csv, plots", "--out").
    """
    folder = Path(folder)
    flag = instead if instead.startswith("--") else "--out"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is a file; {flag} takes a folder (for {contents}).")
    check_writable(folder)
    existing = [folder / name for name in names if (folder / name).exists() or (folder / name).is_symlink()]
    if existing:
        if not overwrite:
            raise UserError(f"{existing[0]}: exists; pass --overwrite to replace the previous {previous} "
                            f"({OVERWRITE_HINT}) or choose another {instead}.")
        if not json_is_ours(folder / record):
            raise UserError(f"{existing[0]}: exists and was not written by `tfforensics {command}`, so --overwrite "
                            f"will not replace it; choose another {instead}.")


@contextlib.contextmanager
def staged_output(output, *, overwrite: bool = False, sources=(), command: str = "output"):
    """Yield a hidden work directory that becomes ``output`` when the block succeeds.

    ``output`` is checked first (:func:`claim_output`): it must be new,
    empty, or (with ``overwrite``) a previous tfforensics output, and neither a source nor a folder
    around or inside one. The finished folder gets a marker listing its files. On any error the
    work directory is removed, so nothing half-written remains.
    """
    output = claim_output(output, overwrite=overwrite, sources=sources, command=command)
    clean_stale(output)
    work = output.parent / f".{output.name}{INCOMPLETE_PREFIX}{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        yield work
        mark_output(work, command)
        replace_output(work, output, sources)
    finally:
        remove_tree(work)
