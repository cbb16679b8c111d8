"""The report of a run: ``report.md`` and ``report.html`` rendered from ``results.json`` alone.

``results.json`` (written by ``reproduce``) holds every number and lists every figure of the
run (``figures``: paths relative to the run directory), so ``tfforensics report RUN_DIR``
re-renders the same two files without re-running anything. The Markdown is the source; the
HTML is that Markdown rendered by Python-Markdown (``tables`` for the tables, ``toc`` for the
section anchors the table of contents links to). With ``embed_images`` every figure goes into
the HTML as a ``data:`` URI, so one file can be sent around.

A figure entry is ``{"section": ..., "path": ..., "caption": ..., "title": ...}``: ``section``
places it next to its table (``classifiers``, ``leave_one_out``, ``lgrad``, ``spectra``); a
section the report does not know (a new method's figures) gets a heading of its own, so a
stage that registers its figures shows up in the report without changes here. ``title``
groups the figures of one model under a sub-heading.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote

from tfforensics.errors import UserError
from tfforensics.io.atomic import atomic_write

RESULTS_FILE = "results.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
TITLE = "tfforensics reproduce — report"


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.2em}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
th{background:#f2f2f2}
img{max-width:100%;height:auto;vertical-align:top}
p>img:not(:only-child){max-width:49%}
code{background:#f4f4f4;padding:0 3px}
a.headerlink{color:#bbb;text-decoration:none;margin-left:0.3em;font-size:0.8em}
"""


# ----------------------------------------------------------------------------- Markdown

def slug(title: str, separator: str = "-") -> str:
    """The anchor of a heading, as GitHub makes it (lower case, punctuation dropped, one
    separator per space), so the table of contents links work in report.md and report.html."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower(), flags=re.ASCII)
    return text.replace(" ", separator)


def _text(value) -> str:
    """``value`` as Markdown text that renders as written (no emphasis, links or tags)."""
    text = str(value)
    text = re.sub(r"([\\`*_\[\]|])", r"\\\1", text)
    return text.replace("<", "&lt;")


def _code(value) -> str:
    text = str(value)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _attribution_sections(results: dict) -> list[dict]:
    """Frank et al.'s attribution table, real vs fake from the same models, and their figures."""
    classifiers = results.get("classifiers") or []
    classes = results.get("classes") or []
    methods = {}
    for row in classifiers + (results.get("baselines") or []):
        methods.setdefault(row["method"], {})[row["input"]] = row["attribution_accuracy"]
    return [dict(
        key="attribution", title="Attribution accuracy (%) on the test split",
        note=f"{len(classes)} sources: {', '.join(classes)} (chance: {100 / max(1, len(classes)):.1f} %). "
             "Laid out like Frank et al.'s attribution table.",
        header=["method", "pixels", "DCT"],
        rows=[[name, _pct(values.get("pixels")), _pct(values.get("dct"))] for name, values in methods.items()],
    ), dict(
        key="real_vs_fake", title="Real vs fake (all GAN sources pooled), from the attribution models",
        note="fake score = 1 − P(real); ACC at the arg-max, AP = average precision.",
        header=["method", "input", "ACC", "AP"],
        rows=[[r["method"], r["input"], _pct(r["real_vs_fake_accuracy"]), _pct(r["real_vs_fake_ap"])]
              for r in classifiers],
    ), dict(key="classifiers", title="Classifiers: confusion matrices and ROC curves",
            note="Per classifier, on the test split: the row-normalised confusion matrix and the "
                 "ROC curves of real vs each fake source.", header=None, rows=None)]


def _leave_one_out_section(results: dict) -> dict | None:
    rows = results.get("leave_one_out")
    if not rows:
        return None
    return dict(
        key="leave_one_out", title="Generalisation: leave one GAN family out (log2 on log-DCT, real vs fake)",
        note="unseen: trained on real vs the other families, tested on real vs the held-out one; "
             "seen: the same test with the held-out family also in training. ACC at threshold 0.5; "
             "cal. ACC at the threshold (in brackets) of best balanced accuracy on the val split, "
             "whose fakes are the training families only.",
        header=["held-out family", "unseen ACC", "unseen cal. ACC", "unseen AP", "seen ACC", "seen cal. ACC",
                "seen AP"],
        rows=[[r["held_out"], *(cell for key in ("unseen", "seen") for cell in (
            _pct(r[f"{key}_accuracy"]), _calibrated(r, key), _pct(r[f"{key}_ap"])))] for r in rows],
    )


def _baselines_section(results: dict) -> dict | None:
    baselines = results.get("baselines")
    if not baselines:
        return None
    grids = "; ".join(sorted({
        f"{r['method']} " + " × ".join(f"{k} {v}" for k, v in (r.get("grid") or {}).items()) for r in baselines}))
    return dict(
        key="baselines", title="Baselines: best grid point (validation) and its test accuracy",
        note=f"grids searched: {grids} (the originals' grids are larger: docs/baselines.md).",
        header=["method", "input", "parameters", "val acc", "test acc"],
        rows=[[r["method"], r["input"], ", ".join(f"{k}={v}" for k, v in (r["params"] or {}).items()),
               _pct(r["val_accuracy"]), _pct(r["attribution_accuracy"])] for r in baselines],
    )


def _lgrad_section(results: dict) -> dict | None:
    lgrad = results.get("lgrad")
    if not lgrad:
        return None
    return dict(
        key="lgrad", title=f"LGrad: detector trained on real vs {lgrad['trained_on']} gradients, tested per family",
        note="gradients of the mini StyleGAN discriminator (img2grad); ForenSynths protocol in miniature.",
        header=["family", "ACC", "real ACC", "fake ACC", "AP"],
        rows=[[name, *(_pct(m.get(key)) for key in ("accuracy", "real_accuracy", "fake_accuracy",
                                                     "average_precision"))]
              for name, m in lgrad["families"].items()],
    )


def _robustness_of(results: dict) -> dict | None:
    robustness = results.get("robustness")
    return _robustness_section(robustness) if robustness and robustness.get("detectors") else None


def _spectra_section(results: dict) -> dict | None:
    spectra = results.get("spectra")
    if not spectra:
        return None
    return dict(
        key="spectra", title="Mean DCT spectra per source",
        note="Top: mean log|DCT| of each source's train images (channels averaged); bottom: its difference "
             "to the real source. High-frequency energy = mean log|DCT| of the highest-frequency quarter.",
        header=["source", "mean abs. difference to real", "high-frequency energy"],
        rows=[[r["source"], f"{r['mean_abs_difference_to_real']:.3f}", f"{r['high_frequency_energy']:.3f}"]
              for r in spectra["sources"]],
    )


def _immunization_section(results: dict) -> dict | None:
    attribution = results.get("attribution") or {}
    immunization = attribution.get("immunization")
    if not immunization:
        return None
    return dict(
        key="yu", title="Immunizability (Yu et al.): attribution accuracy (%) under perturbations",
        note=(f"the attribution network on perturbed test images, before and after fine-tuning "
              f"({immunization['fine_tuning']}, {immunization['epochs']} epochs) on perturbed train images"
              + ("; the fingerprint panel shows input, image fingerprint, model fingerprints and responses."
                 if attribution.get("panel") else ".")),
        header=["perturbation", "before", "after fine-tuning"],
        rows=[[r["perturbation"], _pct(r["before"]), _pct(r["after"])] for r in immunization["rows"]],
    )


def _regularization_section(results: dict) -> dict | None:
    regularization = results.get("regularization")
    if not regularization:
        return None
    from tfforensics.regularization.benchmark import report_table

    title, note, header, rows = report_table(regularization)
    return dict(key="regularization", title=title, note=note, header=header, rows=rows)


def _timings_section(results: dict) -> dict:
    timings = results.get("timings_s") or {}
    lanes = results.get("stage_workers") or 1
    note = f"{results.get('cores')} cores, {results.get('platform')}"
    if lanes > 1:
        note += f"; stages 3-10 ran side by side in {lanes} worker processes, so their times overlap"
    if results.get("robustness_scored_in_stages"):
        note += "; robustness: the seconds stages 3-10 spent scoring their own detectors, once each had trained them"
    wall = results.get("wall_s", sum(timings.values()))
    return dict(key="timings", title="Timings (s)", note=note, header=["stage", "seconds"],
                rows=[[k, f"{v:.1f}"] for k, v in timings.items()] + [["total (wall clock)", f"{wall:.1f}"]])


#: The report's tables after the attribution ones, in order; each returns None when its stage did not run.
_SECTION_BUILDERS = (_leave_one_out_section, _baselines_section, _lgrad_section, _robustness_of, _spectra_section,
                     _immunization_section, _regularization_section)


def _sections(results: dict) -> list[dict]:
    """``{key, title, note, header, rows}`` for every table of the report, in order."""
    sections = _attribution_sections(results)
    sections += [section for build in _SECTION_BUILDERS if (section := build(results)) is not None]
    known = {section["key"] for section in sections}
    for key in dict.fromkeys(f.get("section", "figures") for f in figures_of(results)):
        if key not in known:  # figures of a stage this module has no table for
            sections.append(dict(key=key, title=f"Figures: {key.replace('_', ' ')}", note="", header=None, rows=None))
    sections.append(_timings_section(results))
    return sections


def _calibrated(row: dict, key: str) -> str:
    """``cal. ACC (threshold)`` of a leave-one-out row; a dash in runs from before it was measured."""
    value = row.get(f"{key}_calibrated_accuracy")
    return "–" if value is None else f"{_pct(value)} ({row[f'{key}_threshold']:.2f})"


def _robustness_section(robustness: dict) -> dict:
    """One row per detector, one column per condition, each cell ``ACC / AP`` in %."""
    conditions = robustness["conditions"]
    return dict(
        key="robustness", title="Robustness: real vs fake on perturbed test images (ACC / AP, %)",
        note=(f"{robustness['real']} real and {robustness['fake']} fake test images, each condition applied once "
              "to all of them and scored by every detector: JPEG at quality Q (jpegQ), Gaussian blur of sigma S px "
              "(blurS), shrunk by F and enlarged back (resizeF, bilinear), Gaussian noise of sigma S grey levels "
              "(noiseS). As in the real-vs-fake table: fake score = 1 − P(real), ACC at the arg-max (P(fake) > 0.5 "
              "for a detector), AP with fake as the positive class (a detector at chance gets the share of fakes, "
              f"{_pct(robustness['fake'] / max(1, robustness['count']))} %); the clean column repeats that table."),
        header=["detector", "training", *conditions],
        rows=[[d["name"], d.get("training", ""),
               *(f"{_pct(d['conditions'][c]['accuracy'])} / {_pct(d['conditions'][c]['average_precision'])}"
                 for c in conditions)] for d in robustness["detectors"]],
    )


def figures_of(results: dict) -> list[dict]:
    """The figure entries of ``results`` (``results["figures"]``), checked: each names a
    relative path inside the run directory. Runs from before the list existed show their
    spectra figure."""
    figures = results.get("figures")
    if figures is None:  # a run from before figures were listed: it drew the spectra only
        figure = (results.get("spectra") or {}).get("figure")
        figures = [{"section": "spectra", "path": figure, "caption": "mean spectra"}] if figure else []
    if not isinstance(figures, list):
        raise UserError(f"{RESULTS_FILE}: 'figures' must be a list of {{section, path, caption}} entries; "
                        "re-run reproduce to write a new one.")
    for entry in figures:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            raise UserError(f"{RESULTS_FILE}: figure entry {entry!r} has no 'path'; re-run reproduce.")
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or "\\" in path:
            raise UserError(f"{RESULTS_FILE}: figure path {path!r} must be relative to the run directory "
                            "and stay inside it; fix the entry or re-run reproduce.")
    return figures


def _intro(results: dict) -> list[str]:
    lines = [f"Data: {_text(results.get('data'))}; profile {_code(results.get('profile'))}; "
             f"seed {_text(results.get('seed'))}; tfforensics {_text(results.get('tfforensics_version'))}."]
    if results.get("command"):
        lines.append(f"Command: {_code(results['command'])}")
    benchmark = results.get("benchmark") or {}
    if benchmark.get("real_photos"):
        photos = "; ".join(f"{split}: {len(names)} photos" + (f" ({', '.join(names)})" if len(names) <= 12 else "")
                           for split, names in benchmark["real_photos"].items())
        where = ("shipped crops of photographs from Debian packages (docs/benchmark-photos.md; the GANs were "
                 "trained on the train photos only)" if "real_photo_ids" in benchmark
                 else "bundled with scikit-image, scikit-learn, matplotlib")
        lines.append(f"Real photos ({where}), split by photo — {_text(photos)}; the names are in "
                     f"{_code(RESULTS_FILE)}.")
    counts = results.get("counts") or {}
    if counts:
        lines.append("Images per split and source: " + _text("; ".join(
            f"{split}: " + ", ".join(f"{k} {v}" for k, v in per_class.items()) for split, per_class in counts.items())))
    return lines


def _figure_lines(figures: list[dict]) -> list[str]:
    """Figures grouped by ``title`` (a sub-heading each), one paragraph of images per group."""
    groups = {}
    for entry in figures:
        groups.setdefault(entry.get("title"), []).append(entry)
    lines = []
    for title, entries in groups.items():
        if title:
            lines += [f"### {_text(title)}", ""]
        lines += [" ".join(f"![{_text(e.get('caption') or e['path'])}]({quote(e['path'])})" for e in entries), ""]
    return lines


def to_markdown(results: dict) -> str:
    """``report.md``: tables, figures and a table of contents, all from ``results``."""
    sections = _sections(results)
    figures = figures_of(results)
    by_section = {}
    for entry in figures:
        by_section.setdefault(entry.get("section", "figures"), []).append(entry)
    sections = [s for s in sections if s["rows"] is not None or by_section.get(s["key"])]
    lines = [f"# {TITLE}", ""] + [line + "  " for line in _intro(results)] + [""]
    lines += ["**Contents**", ""] + [f"- [{_text(s['title'])}](#{slug(s['title'])})" for s in sections] + [""]
    for section in sections:
        lines += [f"## {_text(section['title'])}", ""]
        if section["note"]:
            lines += [_text(section["note"]), ""]
        if section["key"] == "spectra":  # the figure first, then its numbers
            lines += _figure_lines(by_section.get(section["key"], []))
        if section["rows"] is not None:
            header = section["header"]
            lines += ["| " + " | ".join(_text(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(_text(cell) for cell in row) + " |" for row in section["rows"]]
            lines.append("")
        if section["key"] != "spectra":
            lines += _figure_lines(by_section.get(section["key"], []))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- HTML

def _embedder(run_dir: Path):
    """A Python-Markdown extension that replaces every relative ``<img src>`` with a data URI."""
    from markdown.extensions import Extension
    from markdown.treeprocessors import Treeprocessor

    class EmbedImages(Treeprocessor):
        def run(self, root):
            for image in root.iter("img"):
                source = image.get("src", "")
                if source.startswith(("data:", "http:", "https:")):
                    continue
                path = run_dir / unquote(source)
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                image.set("src", f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii"))

    class EmbedExtension(Extension):
        def extendMarkdown(self, md):
            md.treeprocessors.register(EmbedImages(md), "tfforensics_embed_images", 0)

    return EmbedExtension()


def to_html(markdown_text: str, *, run_dir=None, embed_images: bool = False, version: str = "") -> str:
    """``report.html``: ``markdown_text`` rendered by Python-Markdown in a small page; with
    ``embed_images`` the figures (read from ``run_dir``) become data URIs."""
    import markdown
    from markdown.extensions.toc import TocExtension

    extensions = ["tables", TocExtension(slugify=slug, permalink=True, permalink_title="link to this section")]
    if embed_images:
        if run_dir is None:
            raise ValueError("to_html(embed_images=True) needs run_dir, where the figures are.")
        extensions.append(_embedder(Path(run_dir)))
    body = markdown.Markdown(extensions=extensions, output_format="html").convert(markdown_text)
    generator = html.escape(f"tfforensics {version}".strip(), quote=True)
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"generator\" content=\"{generator}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(TITLE)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- files

def load_results(run_dir) -> dict:
    """``RUN_DIR/results.json``, checked to be a tfforensics run's results."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found; RUN_DIR must be a directory written by `tfforensics reproduce`.")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error}); re-run reproduce to write it again.") from None
    if not isinstance(results, dict) or "tfforensics_version" not in results:
        raise UserError(f"{path}: not the results of a tfforensics run (no 'tfforensics_version'); "
                        "point RUN_DIR at a directory written by `tfforensics reproduce`.")
    return results


def render_run(run_dir, *, embed_images: bool = False, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir`` from its ``results.json``.

    Nothing is re-run: every number and figure comes from ``results.json`` and the figure
    files it lists, which must all be there. An existing report is replaced only with
    ``overwrite``.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    missing = [entry["path"] for entry in figures_of(results) if not (run_dir / entry["path"]).is_file()]
    if missing:
        raise UserError(f"{run_dir}: figures listed in {RESULTS_FILE} are missing: {', '.join(missing)}; "
                        "re-run reproduce (or restore them) before rendering the report.")
    targets = run_dir / REPORT_MD, run_dir / REPORT_HTML
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise UserError(f"{', '.join(existing)}: exists; pass --overwrite to render the report again.")
    text = to_markdown(results)
    page = to_html(text, run_dir=run_dir, embed_images=embed_images, version=results.get("tfforensics_version", ""))
    atomic_write(targets[0], text)
    atomic_write(targets[1], page)
    return targets
