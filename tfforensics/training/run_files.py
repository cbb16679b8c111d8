"""The human-readable part of a ``train`` run directory, written after the model is saved.

The 004 project left beside every trained model its summary, accuracy / loss plots and a
``result.json``; so does ``train``: ``model_summary.txt``, ``history_accuracy.png``,
``history_loss.png`` and ``result.json`` (the numbers a reader looks for first; ``run.json``
keeps everything).
"""

from __future__ import annotations

from pathlib import Path

from tfforensics.io.atomic import atomic_write, atomic_write_json

SUMMARY_FILE = "model_summary.txt"
RESULT_FILE = "result.json"
HISTORY_PLOTS = {"accuracy": "history_accuracy.png", "loss": "history_loss.png"}
#: Every file :func:`write_run_files` may write (the run directory's marker lists them as ours).
RUN_FILES = (SUMMARY_FILE, RESULT_FILE, *HISTORY_PLOTS.values())


def model_summary(model) -> str:
    """``model.summary()`` as plain text (Keras prints it through ``print_fn``)."""
    lines = []
    model.summary(print_fn=lambda text, *args, **kwargs: lines.append(str(text)))  # a wider line_length cuts columns
    return "\n".join(lines).rstrip() + "\n"


def _last(history: dict, key: str):
    values = history.get(key) or []
    return float(values[-1]) if values else None


def result_summary(run: dict, parameters: int) -> dict:
    """The short ``result.json``: final and best numbers of a run (``run`` is its run.json)."""
    from tfforensics.io.outputs import PRODUCER

    history = run.get("history", {})
    return {
        "producer": PRODUCER,
        "model": run["model"],
        "dataset": run["dataset"],
        "class_names": run["class_names"],
        "parameters": int(parameters),
        "epochs_run": run["epochs_run"],
        "best_epoch": run["best_epoch"],
        "final": {key: _last(history, key) for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
        "val_metrics": run["val_metrics"],
        "train_seconds": run["train_seconds"],
    }


def write_run_files(run_dir, classifier, run: dict) -> list[Path]:
    """Write :data:`RUN_FILES` into ``run_dir`` (atomically); returns the paths written."""
    from tfforensics.evaluation.plots import plot_history

    run_dir = Path(run_dir)
    atomic_write(run_dir / SUMMARY_FILE, model_summary(classifier))
    written = [run_dir / SUMMARY_FILE]
    for metric, name in HISTORY_PLOTS.items():
        path = plot_history(run.get("history", {}), metric, run_dir / name, title=f"{run['model']}: {metric}")
        if path is not None:
            written.append(path)
    atomic_write_json(run_dir / RESULT_FILE, result_summary(run, classifier.count_params()))
    written.append(run_dir / RESULT_FILE)
    return written
