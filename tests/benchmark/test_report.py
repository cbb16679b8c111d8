"""The report of a run, rendered from results.json: Markdown → HTML with Python-Markdown, a table
of contents, every figure the run lists, embedded images on request, `tfforensics report`, and
the page as a real browser shows it.

The run directory here is built cheaply: a results.json shaped like reproduce's, with figures
drawn by the real plotting functions from small real arrays (spectra of bundled-photo crops,
confusion matrices and ROC curves of seeded scores); reproduce itself runs in test_reproduce.py.
"""

from __future__ import annotations

import html.parser
import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from _browser import find_chromium, inspect_page
from _filemodes import umask, wrong_modes
from tfforensics.analysis.spectra import dct_moments
from tfforensics.benchmark import report
from tfforensics.benchmark.reproduce import _figures
from tfforensics.cli.main import launch
from tfforensics.errors import UserError
from tfforensics.evaluation.metrics import classification_report, roc_curves
from tfforensics.evaluation.plots import plot_confusion_matrix, plot_mean_spectra, plot_roc
from tfforensics.io.images import list_images

CLASSES = ["a_real", "b_nearest", "c_bilinear"]


def _results(spectra_rows) -> dict:
    classifiers = [{"method": m, "input": i, "attribution_accuracy": 0.5 + 0.1 * k, "real_vs_fake_accuracy": 0.8,
                    "real_vs_fake_ap": 0.9, "epochs_run": 3}
                   for k, (m, i) in enumerate([("log2", "pixels"), ("log2", "dct"), ("cnn", "dct")])]
    return {
        "tfforensics_version": "0.test", "command": "tfforensics reproduce --quick --out `run`", "seed": 0,
        "profile": "quick", "platform": "Linux", "cores": 2, "data": "embedded mini benchmark",
        "classes": CLASSES, "counts": {"train": {c: 18 for c in CLASSES}, "test": {c: 6 for c in CLASSES}},
        "classifiers": classifiers,
        "leave_one_out": [{"held_out": f, "trained_on": [g for g in CLASSES[1:] if g != f], "unseen_accuracy": 0.6,
                           "unseen_ap": 0.7, "seen_accuracy": 0.9, "seen_ap": None,
                           # the first row as runs write it now, the second as runs from before the calibration
                           **({"unseen_calibrated_accuracy": 0.75, "unseen_threshold": 0.123,
                               "seen_calibrated_accuracy": 0.95, "seen_threshold": 0.5} if f == CLASSES[1] else {})}
                          for f in CLASSES[1:]],
        "robustness": {"conditions": ["clean", "jpeg75", "blur1"], "count": 18, "real": 6, "fake": 12, "threshold": 0.5,
                       "detectors": [{"name": name, "training": training,
                                      "conditions": {c: {"accuracy": 0.9 - 0.1 * k, "average_precision": 0.95 - 0.1 * k,
                                                         "per_source": {}}
                                                     for k, c in enumerate(["clean", "jpeg75", "blur1"])}}
                                     for name, training in (("log2 on dct", "no augmentation"),
                                                            ("log2 on dct", "blur+JPEG p=0.1"))]},
        "baselines": [{"method": "knn", "input": "dct", "params": {"n_neighbors": 3}, "grid": {"n_neighbors": [1, 3]},
                       "val_accuracy": 0.7, "attribution_accuracy": 0.65},
                      {"method": "eigenfaces", "input": "pixels", "params": {"pca__n_components": 0.5, "svm__C": 0.1},
                       "grid": {"pca__n_components": [0.5], "svm__C": [0.1]}, "val_accuracy": 0.5,
                       "attribution_accuracy": 0.45}],
        "lgrad": {"trained_on": "b_nearest",
                  "families": {**{f: {"accuracy": 0.8, "real_accuracy": 0.9, "fake_accuracy": 0.7,
                                      "average_precision": 0.85, "count": 12}
                                  for f in CLASSES[1:]},
                               "mean": {"accuracy": 0.8, "real_accuracy": 0.9, "fake_accuracy": 0.7,
                                        "average_precision": 0.85, "count": 24}}},
        "spectra": {"figure": "spectra/mean_spectra.png", "sources": spectra_rows},
        "timings_s": {"benchmark images": 1.0, "report": 0.2},
    }


def make_run(three_sources, out: Path) -> Path:
    """A run directory like reproduce's: figures from the real plotting code, then results.json."""
    means = {name: dct_moments([str(p) for p in list_images(three_sources / name)][:12], color=True, log=True)
             .mean.mean(axis=-1) for name in CLASSES}
    plot_mean_spectra(means, out / "spectra" / "mean_spectra.png", reference=CLASSES[0])
    rows = [{"source": n, "mean_abs_difference_to_real": float(np.abs(means[n] - means[CLASSES[0]]).mean()),
             "high_frequency_energy": float(means[n][16:, 16:].mean())} for n in CLASSES]
    results = _results(rows)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 8)
    for row in results["classifiers"]:
        scores = rng.dirichlet(np.ones(3), len(labels)) + 0.8 * np.eye(3)[labels]
        scores /= scores.sum(axis=1, keepdims=True)
        test = out / "classifiers" / f"{row['method']}_{row['input']}" / "test"
        plot_confusion_matrix(classification_report(labels, scores, CLASSES)["confusion_matrix"], CLASSES,
                              test / "confusion_matrix.png")
        plot_roc(roc_curves(labels, scores, CLASSES), test / "roc.png")
    results["figures"] = _figures(results, out)  # reproduce's own registration (draws the bars)
    (out / report.RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    return out


@pytest.fixture(scope="module")
def template_run(three_sources, tmp_path_factory):
    with umask(0o022):
        return make_run(three_sources, tmp_path_factory.mktemp("report") / "run")


@pytest.fixture
def run_dir(template_run, tmp_path):
    """A fresh copy of the run for each test (modes kept)."""
    return Path(shutil.copytree(template_run, tmp_path / "run"))


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.ids, self.links, self.text = [], 0, set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self.tables += 1
        elif tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])

    def handle_data(self, data):
        self.text.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    return page


def test_every_figure_listed_and_shown(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    listed = [entry["path"] for entry in results["figures"]]
    drawn = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.png"))
    assert sorted(listed) == drawn and len(drawn) == 3 * 2 + 4  # 3 classifiers × (CM, ROC), 3 bar charts, spectra
    assert {entry["section"] for entry in results["figures"]} == {"classifiers", "leave_one_out", "lgrad", "robustness",
                                                                  "spectra"}

    markdown_path, html_path = report.render_run(run_dir)
    text = markdown_path.read_text()
    page = _parse(html_path)
    assert page.images == listed and all(f"]({path})" in text for path in listed)
    # one table per section with rows: attribution, real vs fake, LOFO, baselines, LGrad, robustness, spectra,
    # timings
    assert page.tables == 8 and text.count("\n|---") == 8
    # the table of contents links to every section, and each target exists in the HTML
    assert len(page.links) >= 9 and set(page.links) <= page.ids
    assert "classifiers-confusion-matrices-and-roc-curves" in page.links
    # Markdown is rendered, not shown: no literal backticks or escapes; code and names as written
    shown = "".join(page.text)
    assert "`" not in shown.replace("`run`", "") and "\\_" not in shown
    assert "pca__n_components=0.5" in shown and "b_nearest" in shown
    assert "<code>quick</code>" in html_path.read_text()
    assert text.startswith("# tfforensics reproduce — report") and "[Attribution accuracy (%) on the test split]" in text
    assert wrong_modes(run_dir, include_root=False) == []


def test_embedded_images_make_one_file(run_dir, tmp_path):
    report.render_run(run_dir)
    linked_md, linked_html = (run_dir / "report.md").read_bytes(), (run_dir / "report.html").read_bytes()
    report.render_run(run_dir, embed_images=True, overwrite=True)
    assert (run_dir / "report.md").read_bytes() == linked_md  # the Markdown keeps its links
    page = _parse(run_dir / "report.html")
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    figures = sum(p.stat().st_size for p in run_dir.rglob("*.png"))
    assert (run_dir / "report.html").stat().st_size > len(linked_html) + figures
    # the embedded page stands alone: moved away from its figures, it still has all of them
    alone = tmp_path / "mailed" / "report.html"
    alone.parent.mkdir()
    shutil.copy(run_dir / "report.html", alone)
    assert _parse(alone).images == page.images


def test_cli_report_renders_the_same_bytes(run_dir, capsys):
    report.render_run(run_dir)  # what reproduce does after writing results.json
    before = {name: (run_dir / name).read_bytes() for name in ("report.md", "report.html")}
    (run_dir / "report.html").unlink()
    (run_dir / "report.md").write_text("stale")
    assert launch(["report", str(run_dir)]) == 2
    assert "report.md: exists; pass --overwrite" in capsys.readouterr().err
    assert launch(["report", str(run_dir), "--overwrite"]) == 0
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    for name in before:
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~_current_umask()
    assert launch(["report", str(run_dir), "--embed-images", "--overwrite"]) == 0
    assert b"data:image/png;base64," in (run_dir / "report.html").read_bytes()


def _current_umask() -> int:
    from tfforensics.io.atomic import current_umask

    return current_umask()


def test_report_errors_name_the_file_and_the_fix(run_dir, tmp_path, capsys):
    assert launch(["report", str(tmp_path / "nowhere")]) == 2
    assert "results.json: not found; RUN_DIR must be a directory written by `tfforensics reproduce`" in \
        capsys.readouterr().err
    (run_dir / "figures" / "lgrad.png").unlink()
    with pytest.raises(UserError, match=r"missing: figures/lgrad\.png; re-run reproduce"):
        report.render_run(run_dir)
    assert not (run_dir / "report.md").exists()  # nothing half-written
    results = json.loads((run_dir / "results.json").read_text())
    results["figures"] = [{"section": "x", "path": "../outside.png"}]
    (run_dir / "results.json").write_text(json.dumps(results))
    with pytest.raises(UserError, match=r"must be relative to the run directory"):
        report.render_run(run_dir)
    (run_dir / "results.json").write_text("{not json")
    with pytest.raises(UserError, match=r"results.json: not valid JSON"):
        report.render_run(run_dir)


def test_figures_of_a_new_stage_get_a_section(run_dir):
    """A stage this module has no table for (a new method as it lands) only registers its
    figures and they appear, under their own heading and in the contents."""
    results = json.loads((run_dir / "results.json").read_text())
    shutil.copy(run_dir / "figures" / "lgrad.png", run_dir / "figures" / "augmentation.png")
    results["figures"].append({"section": "augmentation", "path": "figures/augmentation.png", "caption": "blur"})
    (run_dir / "results.json").write_text(json.dumps(results))
    markdown_path, html_path = report.render_run(run_dir)
    text = markdown_path.read_text()
    assert "## Figures: augmentation" in text and "- [Figures: augmentation](#figures-augmentation)" in text
    assert "figures/augmentation.png" in _parse(html_path).images


def test_robustness_and_calibrated_columns(run_dir):
    markdown_path, _ = report.render_run(run_dir)
    text = markdown_path.read_text()
    assert "| detector | training | clean | jpeg75 | blur1 |" in text
    assert "| log2 on dct | blur+JPEG p=0.1 | 90.0 / 95.0 | 80.0 / 85.0 | 70.0 / 75.0 |" in text
    assert "6 real and 12 fake test images" in text
    assert "| b\\_nearest | 60.0 | 75.0 (0.12) | 70.0 | 90.0 | 95.0 (0.50) | – |" in text
    assert "| c\\_bilinear | 60.0 | – | 70.0 | 90.0 | – | – |" in text  # a run from before the calibration


def test_run_from_before_the_figure_list_still_renders(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    del results["figures"]
    (run_dir / "results.json").write_text(json.dumps(results))
    _, html_path = report.render_run(run_dir)
    assert _parse(html_path).images == ["spectra/mean_spectra.png"]


@pytest.mark.skipif(find_chromium() is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; "
                                                    ".ci/run installs it when run as root)")
@pytest.mark.parametrize("embed", [False, True], ids=["linked", "embedded"])
def test_report_opens_in_a_headless_browser(run_dir, tmp_path, embed):
    report.render_run(run_dir, embed_images=embed)
    results = json.loads((run_dir / "results.json").read_text())
    page = run_dir / "report.html"
    if embed:  # sent around: no figure files next to it
        page = tmp_path / "mailed" / "report.html"
        page.parent.mkdir()
        shutil.copy(run_dir / "report.html", page)
    shown = inspect_page(page, tmp_path / "browser")
    assert shown["title"] == report.TITLE
    assert len(shown["images"]) == len(results["figures"]) == 10
    assert all(image["complete"] and image["width"] > 50 and image["height"] > 50 for image in shown["images"]), \
        shown["images"]
    headers = [table["header"] for table in shown["tables"]]
    assert headers[:2] == [["method", "pixels", "DCT"], ["method", "input", "ACC", "AP"]]
    assert ["held-out family", "unseen ACC", "unseen cal. ACC", "unseen AP", "seen ACC", "seen cal. ACC",
            "seen AP"] in headers
    assert ["stage", "seconds"] in headers and len(headers) == 8 and all(t["rows"] > 1 for t in shown["tables"])
    assert shown["links"] and all(link["found"] for link in shown["links"])
    assert "`" not in shown["text"].replace("`run`", "")
