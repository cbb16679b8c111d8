"""The 004 project's conveniences: a run directory with the model summary, history plots and
result.json; ``test`` on a labelled image folder with --save-errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from tfforensics.cli.main import launch

SIDE = 8


def _images(folder, count, low, high, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(low, high, (SIDE, SIDE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A log (logistic regression) run on dark "real" vs bright "fake" pixel images."""
    root = tmp_path_factory.mktemp("run004")
    _images(root / "src" / "fake", 40, 150, 256, 1)
    _images(root / "src" / "real", 40, 0, 110, 2)
    assert launch(["prepare", str(root / "src"), str(root / "data"), "--raw", "--color", "-q"]) == 0
    assert launch(["train", "log", str(root / "data"), "--out", str(root / "run"), "-e", "3", "-q"]) == 0
    return root


def test_run_directory_holds_summary_plots_and_result(trained):
    run = trained / "run"
    summary = (run / "model_summary.txt").read_text()
    assert "Total params" in summary and "Param #" in summary and "predictions (Dense)" in summary
    result = json.loads((run / "result.json").read_text())
    assert result["epochs_run"] == 3 and result["model"] == "log"
    history = json.loads((run / "run.json").read_text())["history"]
    assert result["final"]["accuracy"] == pytest.approx(history["accuracy"][-1])
    assert result["final"]["val_loss"] == pytest.approx(history["val_loss"][-1])
    for name in ("history_accuracy.png", "history_loss.png"):
        with Image.open(run / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    # the files are listed as ours: --overwrite may replace the finished run
    assert launch(["train", "log", str(trained / "data"), "--out", str(run), "-e", "1", "-q", "--overwrite"]) == 0
    assert json.loads((run / "result.json").read_text())["epochs_run"] == 1


def test_test_on_a_labelled_folder_with_saved_errors(trained, tmp_path, capsys):
    import keras

    folder = tmp_path / "test"
    _images(folder / "real", 6, 0, 110, 3)
    _images(folder / "fake", 6, 150, 256, 4)
    # two mislabelled images each way: sure errors for the detector
    _images(tmp_path / "bright", 2, 150, 256, 5)
    _images(tmp_path / "dark", 2, 0, 110, 6)
    for i, path in enumerate(sorted((tmp_path / "bright").iterdir())):
        path.rename(folder / "real" / f"bright_{i}.png")
    for i, path in enumerate(sorted((tmp_path / "dark").iterdir())):
        path.rename(folder / "fake" / f"dark_{i}.png")
    out = tmp_path / "out"
    model = trained / "run" / "model.keras"
    command = ["test", str(model), str(folder), "--out", str(out), "-q", "--real-class", "real"]
    assert launch(command + ["--save-errors", "1"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["count"] == 16 and metrics["real_folder"] == "real"
    assert "accuracy" in printed and "real" in printed

    # independently: the saved model on the images, P(real) = column 0 ("fake" < "real": label 1 is real)
    classifier = keras.saving.load_model(model, safe_mode=True)
    names = json.loads((trained / "data" / "manifest.json").read_text())["class_names"]
    real = names.index("real")
    truth, called_fake = [], []
    for sub in ("fake", "real"):
        paths = sorted((folder / sub).iterdir())
        batch = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) for p in paths])
        scores = np.asarray(classifier.predict(batch, verbose=0))
        scores = np.concatenate([1 - scores, scores], axis=1) if scores.shape[1] == 1 else scores
        truth += [sub == "fake"] * len(paths)
        called_fake += list(scores.argmax(axis=1) != real)
    truth, called_fake = np.array(truth), np.array(called_fake)
    correct = truth == called_fake
    assert metrics["accuracy"] == pytest.approx(correct.mean())
    assert metrics["real_accuracy"] == pytest.approx(correct[~truth].mean())
    assert metrics["fake_accuracy"] == pytest.approx(correct[truth].mean())
    with open(out / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 16

    false_positives = sorted((out / "false_positives").glob("*.png"))
    false_negatives = sorted((out / "false_negatives").glob("*.png"))
    assert len(false_positives) == min(1, int((~truth & called_fake).sum())) == 1
    assert len(false_negatives) == min(1, int((truth & ~called_fake).sum())) == 1
    fp = false_positives[0]
    assert fp.name.startswith("real__") and fp.read_bytes() == (folder / "real" / fp.name[len("real__"):]).read_bytes()

    # the outputs are never replaced silently; --overwrite replaces our own
    assert launch(command + ["--save-errors", "1"]) == 2
    assert "exists" in capsys.readouterr().err
    assert launch(command + ["--save-errors", "3", "--overwrite"]) == 0
    assert len(list((out / "false_positives").glob("*.png"))) == min(3, int((~truth & called_fake).sum()))
