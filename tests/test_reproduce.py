"""`tfforensics reproduce --quick`: the main job runs end to end and fills every row from its own run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "report"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "tfforensics", "reproduce", "--quick", "--out", str(out), "-q"],
                            capture_output=True, text=True, env=env, timeout=900)
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
