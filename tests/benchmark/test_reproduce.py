"""`tfforensics reproduce --quick`: the main job runs end to end and fills every row from its own run."""

from __future__ import annotations

import fcntl
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
    """One quick reproduce run per test session, shared by the xdist workers.

    Each worker that runs tests of this module builds the fixture; the first one to take
    the lock runs reproduce (with the machine to itself), the others wait and read its output.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # pytest-N/, one per session
    out = shared / "reproduce_quick" / "report"
    with open(shared / "reproduce_quick.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "results.json").is_file():
            out.parent.mkdir(exist_ok=True)
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            result = subprocess.run([sys.executable, "-m", "tfforensics", "reproduce", "--quick", "--out", str(out),
                                     "-q"], capture_output=True, text=True, env=env, timeout=2400, umask=0o022)
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
    # every table row of the report has numbers, none left empty (PRNU and the visNet work on
    # pixels only; Yu et al.'s network has a pixels and a DCT row)
    pixel_only = tuple(f"| {method} | " for method in ("prnu", "yu_visnet"))
    for line in report.splitlines():
        if line.startswith(pixel_only) and line.count("|") == 4:  # attribution table: method, pixels, DCT
            assert line.count("–") == 1 and line.endswith("| – |"), line
        elif line.startswith("| ") and not line.startswith("| method"):
            assert "–" not in line, line
    # every stage timed (how long they take is benchmarks/reproduce_stages.py's business, not a test's)
    assert set(results["timings_s"]) and all(seconds > 0 for seconds in results["timings_s"].values())
    assert results["wall_s"] > 0 and results["stage_workers"] == min(os.cpu_count(), 8)


def _numbers(value, out):
    """``value`` with the run's own folder and its run facts taken out: what must not depend on how it ran."""
    if isinstance(value, dict):
        return {k: _numbers(v, out) for k, v in value.items()
                if k not in ("timings_s", "wall_s", "stage_workers", "command")}
    if isinstance(value, list):
        return [_numbers(v, out) for v in value]
    return value.replace(str(out), "OUT") if isinstance(value, str) else value


@pytest.mark.slow
def test_same_numbers_with_one_worker(quick_run, tmp_path):
    """Stages side by side (the fixture's run, one process per core) and one after the other in one
    process (--workers 1) give every number equal: each stage seeds its own training."""
    out, results = quick_run
    serial = tmp_path / "serial"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "tfforensics", "reproduce", "--quick", "--workers", "1", "--out",
                             str(serial), "-q"], capture_output=True, text=True, env=env, timeout=2400)
    assert result.returncode == 0, result.stderr[-3000:]
    one = json.loads((serial / "results.json").read_text())
    assert one["stage_workers"] == 1
    assert _numbers(one, serial) == _numbers(results, out)


def test_attribution_network_rows_and_immunization(quick_run):
    """Yu et al.'s network sits beside the classifiers (as published on pixels, and behind the
    log-DCT front end), with its immunization table."""
    out, results = quick_run
    report = (out / "report.md").read_text()
    yu = {r["input"]: r for r in results["classifiers"] if r["method"] == "yu"}
    assert sorted(yu) == ["dct", "pixels"]
    for row in yu.values():
        assert 0.0 <= row["attribution_accuracy"] <= 1.0 and 0.0 <= row["real_vs_fake_ap"] <= 1.0
        assert row["epochs_run"] >= 1
    assert not any(r["method"] == "yu_visnet" for r in results["classifiers"])  # visNet: default profile only
    # one attribution-table row (pixels and DCT columns) and one real-vs-fake row per input
    assert report.count("| yu | ") == 3 and "| yu | pixels | " in report and "| yu | dct | " in report
    immunization = results["attribution"]["immunization"]
    rows = {r["perturbation"]: r for r in immunization["rows"]}
    assert set(rows) == {"clean", "noise", "blur", "jpeg", "crop", "relight"}
    assert all(0.0 <= r["before"] <= 1.0 and 0.0 <= r["after"] <= 1.0 for r in rows.values())
    assert abs(rows["clean"]["before"] - yu["pixels"]["attribution_accuracy"]) <= 0.02  # same model, same test split
    assert "## Immunizability (Yu et al.)" in report and "| relight | " in report


def test_robustness_table_and_calibrated_leave_one_out(quick_run):
    """Every detector on the test split clean and perturbed; the clean column is the real-vs-fake
    table again (same models, same images); leave-one-out rows carry a val-chosen threshold."""
    from tfforensics.preprocess.perturb import ROBUSTNESS_CONDITIONS

    out, results = quick_run
    robustness = results["robustness"]
    assert robustness["conditions"] == ["clean", *ROBUSTNESS_CONDITIONS]
    assert robustness["count"] == sum(results["counts"]["test"].values())
    names = [d["name"] for d in robustness["detectors"]]
    assert names[:4] == ["log2 on pixels", "log2 on dct", "cnn on pixels", "cnn on dct"]
    assert {"yu on pixels", "yu on dct"} <= set(names) and any(name.startswith("LGrad") for name in names)
    for detector in robustness["detectors"]:
        for condition in robustness["conditions"]:
            cell = detector["conditions"][condition]
            assert 0.0 <= cell["accuracy"] <= 1.0 and 0.0 <= cell["average_precision"] <= 1.0, (detector, condition)
            assert set(cell["per_source"]) == set(results["classes"][1:])
    rows = {f"{r['method']} on {r['input']}": r for r in results["classifiers"]}
    for detector in robustness["detectors"]:
        if detector["name"] in rows and detector["training"] == "no augmentation":  # PNGs here, records in `test`
            clean, row = detector["conditions"]["clean"], rows[detector["name"]]
            assert abs(clean["accuracy"] - row["real_vs_fake_accuracy"]) <= 0.02, detector["name"]
            assert abs(clean["average_precision"] - row["real_vs_fake_ap"]) <= 0.02, detector["name"]
    for row in results["leave_one_out"]:
        for key in ("unseen", "seen"):
            assert 0.0 <= row[f"{key}_calibrated_accuracy"] <= 1.0 and -1e-3 <= row[f"{key}_threshold"] <= 1 + 1e-3
    report = (out / "report.md").read_text()
    assert "## Robustness: real vs fake on perturbed test images" in report and "figures/robustness.png" in report
    assert "| held-out family | unseen ACC | unseen cal. ACC |" in report


def test_fourier_regularization_section(quick_run):
    """Detection rate before/after with and without the Fourier term, same steps, and the quality proxy."""
    out, results = quick_run
    section = results["regularization"]
    runs = section["runs"]
    assert set(runs) == {"fourier", "no_fourier"}
    assert runs["fourier"]["fourier_weight"] > 0 and runs["no_fourier"]["fourier_weight"] == 0
    assert runs["fourier"]["steps"] == runs["no_fourier"]["steps"] > 0
    assert runs["fourier"]["detection_rate_before"] == runs["no_fourier"]["detection_rate_before"]  # same generator
    for run in runs.values():
        for key in ("detection_rate_before", "detection_rate_after"):
            assert 0.0 <= run[key] <= 1.0
        assert run["kid_before"] is not None and run["spectral_distance_after"] >= 0
        assert (out / run["run"] / "run.json").is_file()
    assert section["lowered_by_fourier"] == (runs["fourier"]["detection_rate_after"]
                                             < runs["no_fourier"]["detection_rate_after"])
    assert (out / section["detector"]["path"]).is_file()
    report = (out / "report.md").read_text()
    assert "## Fourier artifact regularisation" in report
    assert report.count("fourier (adv 1, λ ") == 2  # both runs (Markdown escapes no_fourier's underscore)


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
    # image data, not figures: the benchmark, LGrad's inputs, the regularisation's benchmark, pairs
    # and per-epoch samples
    data = ("benchmark/", "lgrad/", "regularization/benchmark/", "regularization/pairs/", "regularization/runs/")
    from tfforensics.training.run_files import RUN_FILES

    # ... and every training run's own history plots (run files, not the report's figures)
    drawn = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")
                   if not p.is_symlink() and not p.relative_to(out).as_posix().startswith(data)
                   and p.name not in RUN_FILES)
    assert listed == drawn
    sections = {entry["section"] for entry in results["figures"]}
    assert sections == {"classifiers", "leave_one_out", "lgrad", "robustness", "spectra", "regularization"}
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
