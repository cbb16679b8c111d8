"""``test`` on a labelled image folder (the 004 project's evaluate.py): one sub-folder per class,
real vs fake accuracy overall and per folder, and the misclassified images copied out for a look.

The folder whose name is the model's real class (or ``real``, ``0_real``) holds the real
images; every other sub-folder counts as fake. A false positive is a real image called fake,
a false negative a fake image called real (fake is the positive class, as for AP).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

METRICS_FILE, PREDICTIONS_FILE = "metrics.json", "predictions.csv"
ERROR_DIRS = {"false_positives": "real images called fake", "false_negatives": "fake images called real"}
FOLDER_TEST_FILES = (METRICS_FILE, PREDICTIONS_FILE, *ERROR_DIRS)


def is_labelled_folder(path) -> bool:
    """True for a folder of class sub-folders without a manifest (not a prepared dataset)."""
    from tfforensics.data.manifest import MANIFEST_NAME
    from tfforensics.data.original import looks_original

    path = Path(path)
    if not path.is_dir() or (path / MANIFEST_NAME).is_file() or looks_original(path):
        return False
    return any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())


def folder_items(root, real_name: str) -> tuple[str, dict]:
    """``(real folder, {folder: [paths]})`` of the class sub-folders of ``root`` (sorted)."""
    from tfforensics.io.images import list_images

    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = [p.name for p in folders]
    real = next((name for name in (real_name, "real", "0_real") if name in names), None)
    if real is None:
        raise UserError(f"{root}: no sub-folder of real images among {names}; name it like the model's real class "
                        f"({real_name!r}) or `real` (every other sub-folder counts as fake).")
    items = {p.name: list_images(p) for p in folders}
    empty = [name for name, paths in items.items() if not paths]
    if empty:
        raise UserError(f"{root / empty[0]}: holds no images; add some or move the folder away.")
    return real, items


def _claim(out, save_errors: int, overwrite: bool) -> None:
    """Before any work: ``out`` may receive the files (a previous folder test of ours only with ``overwrite``)."""
    from tfforensics.io.outputs import claim_files

    names = [METRICS_FILE, PREDICTIONS_FILE] + (list(ERROR_DIRS) if save_errors else [])
    claim_files(out, names, record=METRICS_FILE, command="test", previous="folder test",
                contents=", ".join(names), instead="--out", overwrite=overwrite)


def _save_errors(out: Path, rows: list, count: int) -> dict:
    """Copy up to ``count`` false positives and false negatives (the most confident first) into
    ``out/false_positives`` and ``out/false_negatives``; files are never overwritten."""
    from tfforensics.io.outputs import fresh_dir

    saved = {}
    for name, wanted in (("false_positives", "real"), ("false_negatives", "fake")):
        errors = [row for row in rows if row["truth"] == wanted and not row["correct"]]
        errors.sort(key=lambda row: -abs(row["fake_score"] - 0.5))
        folder = fresh_dir(out / name, "test")  # ours whole; a previous one (ours) is replaced
        copied = []
        for row in errors[:count]:
            source = Path(row["path"])
            target = folder / f"{row['folder']}__{source.name}"
            with open(source, "rb") as reader, open(target, "xb") as writer:  # "x": never overwrite
                shutil.copyfileobj(reader, writer)
            copied.append(target.name)
        saved[name] = {"found": len(errors), "copied": copied}
    return saved


def _csv(rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "folder", "truth", "fake_score", "predicted", "correct"])
    for row in rows:
        writer.writerow([row["path"], row["folder"], row["truth"], f"{row['fake_score']:.6g}", row["predicted"],
                         int(row["correct"])])
    return buffer.getvalue()


def evaluate_labelled_folder(model, root, *, real_class=None, batch_size: int = 64, out=None, save_errors: int = 0,
                overwrite: bool = False, skip_bad: bool = False, progress: bool = False) -> dict:
    """Real-vs-fake accuracy of ``model`` on the labelled folder ``root``: overall, on the real
    and on the fake images, and per sub-folder; ``out`` receives metrics.json, predictions.csv and,
    with ``save_errors`` N, up to N false positives and N false negatives."""
    from tfforensics.evaluation.classify import score_paths
    from tfforensics.evaluation.metrics import real_vs_fake, resolve_real_class
    from tfforensics.io.atomic import atomic_write, atomic_write_json
    from tfforensics.io.outputs import PRODUCER
    from tfforensics.models.wrapped import class_names_of, load_model

    if save_errors and out is None:
        raise UserError("--save-errors copies images into --out; give --out FOLDER.")
    if out is not None:
        _claim(out, save_errors, overwrite)
    model_path = str(model) if isinstance(model, (str, Path)) else None
    model = load_model(model) if model_path else model
    class_names = class_names_of(model)
    real = resolve_real_class(class_names, real_class)
    real_folder, items = folder_items(root, class_names[real])
    rows, folders = [], {}
    for folder, paths in items.items():
        kept, scores, skipped = score_paths(model, paths, batch_size=batch_size, skip_bad=skip_bad,
                                            progress=progress, desc=folder)
        fake = folder != real_folder
        labels = np.full(len(kept), 1 if real == 0 else 0) if fake else np.full(len(kept), real)
        folders[folder] = {"truth": "fake" if fake else "real", **real_vs_fake(labels, scores, real),
                           "skipped": skipped}
        predicted_fake = scores.argmax(axis=1) != real
        rows += [{"path": str(path), "folder": folder, "truth": "fake" if fake else "real",
                  "fake_score": float(1.0 - score[real]), "predicted": "fake" if guess else "real",
                  "correct": bool(guess == fake)} for path, score, guess in zip(kept, scores, predicted_fake)]
    is_fake = np.array([row["truth"] == "fake" for row in rows])
    correct = np.array([row["correct"] for row in rows])
    report = {
        "model": model_path or model.name, "root": str(root), "real_class": class_names[real],
        "real_folder": real_folder, "count": len(rows),
        "accuracy": float(correct.mean()) if len(rows) else None,
        "real_accuracy": float(correct[~is_fake].mean()) if (~is_fake).any() else None,
        "fake_accuracy": float(correct[is_fake].mean()) if is_fake.any() else None,
        "folders": folders,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if save_errors:
            report["saved_errors"] = _save_errors(out, rows, save_errors)
        atomic_write(out / PREDICTIONS_FILE, _csv(rows))
        atomic_write_json(out / METRICS_FILE, {"producer": PRODUCER, **report})
    return report


def format_folder_report(report: dict) -> str:
    """Overall / real / fake accuracy, then one line per sub-folder."""
    def pct(value):
        return "n/a" if value is None else f"{value:.2%}"

    lines = [f"{report['root']}: {report['count']} images, accuracy {pct(report['accuracy'])} "
             f"(real {pct(report['real_accuracy'])}, fake {pct(report['fake_accuracy'])}; real folder: "
             f"{report['real_folder']})"]
    for folder, row in report["folders"].items():
        share = row["real_accuracy"] if row["truth"] == "real" else row["fake_accuracy"]
        lines.append(f"  {folder:<20} {row['truth']:<4} {row['count']:>6} images, {pct(share)} called {row['truth']}")
    for name, saved in report.get("saved_errors", {}).items():
        lines.append(f"  {name}: {len(saved['copied'])} of {saved['found']} copied")
    return "\n".join(lines)
