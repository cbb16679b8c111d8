"""`tfforensics reproduce --quick`: the main job runs end to end and fills every row from its own run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from _browser import find_chromium, inspect_page
from _filemodes import wrong_modes
from tfforensics.cli.main import launch


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "report"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "tfforensics", "reproduce", "--quick", "--out", str(out), "-q"],
                            capture_output=True, text=True, env=env, timeout=900, umask=0o022)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_report_files_and_every_row_filled(quick_run):
    out, results = quick_run
    report = (out / "report.md").read_text()
    assert (out / "report.html").is_file() and (out / "spectra" / "mean_spectra.png").is_file()
    classes = results["classes"]
    assert classes[0] == "a_real" and len(classes) >= 4
    attribution = {(r["method"], r["input"]): r["attribution_accuracy"] for r in results["classifiers"] + results["baselines"]}
    assert set(attribution) >= {("log2", "pixels"), ("log2", "dct"), ("cnn", "pixels"), ("cnn", "dct"),
                                ("knn", "pixels"), ("knn", "dct"), ("eigenfaces", "pixels"), ("eigenfaces", "dct"),
                                ("prnu", "pixels")}
    assert all(value is not None for value in attribution.values())
    assert len(results["leave_one_out"]) == len(classes) - 1
    assert all(r["unseen_accuracy"] is not None and r["unseen_ap"] is not None for r in results["leave_one_out"])
    families = results["lgrad"]["families"]
    assert set(families) == set(classes[1:]) | {"mean"}
    # every table row of the report has numbers, none left empty (PRNU works on pixels only)
    for line in report.splitlines():
        if line.startswith("| prnu | ") and line.count("|") == 4:  # attribution table: method, pixels, DCT
            assert line.count("–") == 1 and line.endswith("| – |"), line
        elif line.startswith("| ") and not line.startswith("| method"):
            assert "–" not in line, line
    assert set(results["timings_s"]) and sum(results["timings_s"].values()) < 600


def test_frank_et_al_ordering_holds(quick_run):
    """DCT beats pixels for the linear model, and the sources are told apart well above chance."""
    _, results = quick_run
    rows = {(r["method"], r["input"]): r for r in results["classifiers"]}
    chance = 1 / len(results["classes"])
    assert rows[("log2", "dct")]["attribution_accuracy"] > rows[("log2", "pixels")]["attribution_accuracy"] + 0.1
    assert rows[("log2", "dct")]["attribution_accuracy"] > 2 * chance
    assert rows[("log2", "dct")]["real_vs_fake_ap"] > 0.9


def test_outputs_readable_by_others(quick_run):
    """umask 022: every file reproduce writes (records, models, figures, report) is 0644, every
    directory 0755; ``ls -l`` of the run shows no 0600 file."""
    out, _ = quick_run
    assert sum(1 for p in out.rglob("*") if p.is_file() and not p.is_symlink()) > 100
    assert wrong_modes(out) == []


def test_report_lists_every_figure_and_re_renders_the_same_bytes(quick_run, tmp_path):
    out, results = quick_run
    listed = sorted(entry["path"] for entry in results["figures"])
    drawn = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")
                   if not p.is_symlink() and p.relative_to(out).parts[0] not in ("benchmark", "lgrad"))
    assert listed == drawn
    sections = {entry["section"] for entry in results["figures"]}
    assert sections == {"classifiers", "leave_one_out", "lgrad", "spectra"}
    assert sum(entry["path"].endswith("/confusion_matrix.png") for entry in results["figures"]) == 4
    assert sum(entry["path"].endswith("/roc.png") for entry in results["figures"]) == 4
    written = {name: (out / name).read_bytes() for name in ("report.md", "report.html")}
    assert launch(["report", str(out), "--overwrite"]) == 0  # from results.json alone
    assert {name: (out / name).read_bytes() for name in written} == written
    if find_chromium():  # the real report in a real browser: every figure loads, every table is there
        shown = inspect_page(out / "report.html", tmp_path / "browser")
        assert len(shown["images"]) == len(listed) and all(image["width"] > 50 for image in shown["images"])
        assert len(shown["tables"]) == written["report.md"].decode().count("\n|---") >= 7
        assert all(link["found"] for link in shown["links"])
