"""Outputs a colleague can read: under umask 022 every file tfforensics writes is 0644 and every
directory 0755 (atomic writes included: ``mkstemp`` alone would give 0600, ``mkdtemp`` 0700).

``reproduce --quick`` gets the same check in test_reproduce.py (its run is too long to repeat here)."""

from __future__ import annotations

import json

from _filemodes import count_entries, umask, wrong_modes
from tfforensics.cli.main import launch


def test_prepare_train_test_write_0644_files_and_0755_dirs(three_sources, tmp_path):
    with umask(0o022):
        for fmt in ("tfrecords", "npy"):
            assert launch(["prepare", str(three_sources), str(tmp_path / f"data_{fmt}"), "--log", "--normalize",
                           "--format", fmt, "--sizes", "18", "6", "6", "--workers", "1", "-q"]) == 0
        assert launch(["train", "log2", str(tmp_path / "data_tfrecords"), "--epochs", "2",
                       "--out", str(tmp_path / "run"), "-q"]) == 0
        assert launch(["test", str(tmp_path / "run"), str(tmp_path / "data_tfrecords"),
                       "--out", str(tmp_path / "test"), "-q"]) == 0
        # image folders copied (split copies the files) and spectra plotted straight to PNG
        assert launch(["split", str(three_sources / "a_real"), str(tmp_path / "split")]) == 0
        assert launch(["stats", str(three_sources / "a_real"), str(three_sources / "b_nearest"), "--amount", "6",
                       "--format", "png", "-o", str(tmp_path / "spectra")]) == 0
    # what the commands wrote is all there, so the check below saw real outputs
    assert (tmp_path / "data_tfrecords" / "manifest.json").is_file()
    assert (tmp_path / "data_npy" / "train" / "labels.npy").is_file()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["epochs_run"] == 2
    assert (tmp_path / "run" / "model.keras").is_file() and any((tmp_path / "run" / "logs").rglob("*.tfevents*"))
    assert {p.name for p in (tmp_path / "test").iterdir()} >= {"metrics.json", "predictions.csv",
                                                               "confusion_matrix.png", "roc.png"}
    assert len(list((tmp_path / "split").rglob("*.png"))) == 30 and any((tmp_path / "spectra").rglob("*.png"))
    files, dirs = count_entries(tmp_path)
    assert files > 15 and dirs > 8
    assert wrong_modes(tmp_path, include_root=False) == []


def test_modes_follow_another_umask(three_sources, tmp_path):
    """Not a fixed 0644: the user's umask decides (027 → 0640 files, 0750 directories)."""
    with umask(0o027):
        assert launch(["prepare", str(three_sources), str(tmp_path / "data"), "--sizes", "6", "3", "3",
                       "--workers", "1", "-q"]) == 0
    assert (tmp_path / "data" / "manifest.json").is_file()
    assert wrong_modes(tmp_path / "data", file_mode=0o640, dir_mode=0o750) == []
