"""Render the results of ``reproduce`` as Markdown and HTML (same tables, same numbers)."""

from __future__ import annotations

import html
from pathlib import Path

from tfforensics.io.atomic import atomic_write


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _tables(results: dict) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """``(title, note, header, rows)`` for every table of the report."""
    tables = []
    classifiers = results.get("classifiers") or []
    baselines = results.get("baselines") or []
    methods = {}
    for row in classifiers + baselines:
        methods.setdefault(row["method"], {})[row["input"]] = row["attribution_accuracy"]
    tables.append((
        "Attribution accuracy (%) on the test split",
        f"{len(results.get('classes', []))} sources: {', '.join(results.get('classes', []))} "
        "(chance: {:.1f} %). Laid out like Frank et al.'s attribution table.".format(
            100 / max(1, len(results.get("classes", [])))),
        ["method", "pixels", "DCT"],
        [[name, _pct(values.get("pixels")), _pct(values.get("dct"))] for name, values in methods.items()],
    ))
    tables.append((
        "Real vs fake (all GAN sources pooled), from the attribution models",
        "fake score = 1 − P(real); ACC at the arg-max, AP = average precision.",
        ["method", "input", "ACC", "AP"],
        [[r["method"], r["input"], _pct(r["real_vs_fake_accuracy"]), _pct(r["real_vs_fake_ap"])]
         for r in classifiers],
    ))
    if results.get("leave_one_out"):
        tables.append((
            "Generalisation: leave one GAN family out (log2 on log-DCT, real vs fake)",
            "unseen: trained on real vs the other families, tested on real vs the held-out one; "
            "seen: the same test with the held-out family also in training.",
            ["held-out family", "unseen ACC", "unseen AP", "seen ACC", "seen AP"],
            [[r["held_out"], _pct(r["unseen_accuracy"]), _pct(r["unseen_ap"]), _pct(r["seen_accuracy"]),
              _pct(r["seen_ap"])] for r in results["leave_one_out"]],
        ))
    if baselines:
        tables.append((
            "Baselines: best grid point (validation) and its test accuracy",
            "grids searched: " + "; ".join(sorted({
                f"{r['method']} " + " × ".join(f"{k} {v}" for k, v in (r.get("grid") or {}).items())
                for r in baselines})) + " (the originals' grids are larger: docs/baselines.md).",
            ["method", "input", "parameters", "val acc", "test acc"],
            [[r["method"], r["input"], ", ".join(f"{k}={v}" for k, v in (r["params"] or {}).items()),
              _pct(r["val_accuracy"]), _pct(r["attribution_accuracy"])] for r in baselines],
        ))
    lgrad = results.get("lgrad")
    if lgrad:
        families = lgrad["families"]
        rows = [[name, _pct(m.get("acc")), _pct(m.get("real_acc")), _pct(m.get("fake_acc")), _pct(m.get("ap"))]
                for name, m in families.items()]
        tables.append((
            f"LGrad: detector trained on real vs {lgrad['trained_on']} gradients, tested per family",
            "gradients of the mini StyleGAN discriminator (img2grad); ForenSynths protocol in miniature.",
            ["family", "ACC", "real ACC", "fake ACC", "AP"], rows,
        ))
    immunization = (results.get("attribution") or {}).get("immunization")
    if immunization:
        tables.append((
            "Immunizability (Yu et al.): attribution accuracy (%) under perturbations",
            f"the attribution network on perturbed test images, before and after fine-tuning "
            f"({immunization['fine_tuning']}, {immunization['epochs']} epochs) on perturbed train images.",
            ["perturbation", "before", "after fine-tuning"],
            [[r["perturbation"], _pct(r["before"]), _pct(r["after"])] for r in immunization["rows"]],
        ))
    timings = results.get("timings_s") or {}
    tables.append(("Timings (s)", f"{results.get('cores')} cores, {results.get('platform')}", ["stage", "seconds"],
                   [[k, f"{v:.1f}"] for k, v in timings.items()] + [["total", f"{sum(timings.values()):.1f}"]]))
    return tables


def _intro(results: dict) -> list[str]:
    lines = [f"Data: {results.get('data')}; profile `{results.get('profile')}`; seed {results.get('seed')}; "
             f"tfforensics {results.get('tfforensics_version')}."]
    if results.get("command"):
        lines.append(f"Command: `{results['command']}`")
    benchmark = results.get("benchmark") or {}
    if benchmark.get("real_photos"):
        photos = "; ".join(f"{split}: {', '.join(names)}" for split, names in benchmark["real_photos"].items())
        lines.append(f"Real photos (bundled with scikit-image, scikit-learn, matplotlib), split by photo — {photos}.")
    counts = results.get("counts") or {}
    if counts:
        lines.append("Images per split and source: " + "; ".join(
            f"{split}: " + ", ".join(f"{k} {v}" for k, v in per_class.items()) for split, per_class in counts.items()))
    return lines


def to_markdown(results: dict) -> str:
    lines = ["# tfforensics reproduce — report", ""] + [line + "  " for line in _intro(results)] + [""]
    for title, note, header, rows in _tables(results):
        lines += [f"## {title}", "", note, "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    spectra = results.get("spectra")
    if spectra:
        lines += ["## Mean DCT spectra per source", "",
                  "Top: mean log|DCT| of each source's train images (channels averaged); bottom: its "
                  "difference to the real source. High-frequency energy = mean log|DCT| of the "
                  "highest-frequency quarter.", "", f"![mean spectra]({spectra['figure']})", "",
                  "| source | mean abs. difference to real | high-frequency energy |", "|---|---|---|"]
        lines += [f"| {r['source']} | {r['mean_abs_difference_to_real']:.3f} | {r['high_frequency_energy']:.3f} |"
                  for r in spectra["sources"]]
        lines.append("")
    panel = (results.get("attribution") or {}).get("panel")
    if panel:
        lines += ["## GAN fingerprints (visNet)", "",
                  "Input, image fingerprint, the model fingerprints, the response to each and the responses "
                  "as bars (green: true source, red: a wrong prediction).", "", f"![fingerprint panel]({panel})", ""]
    return "\n".join(lines)


def to_html(results: dict) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tfforensics report</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>",
             "</head><body><h1>tfforensics reproduce — report</h1>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in _intro(results)]
    for title, note, header, rows in _tables(results):
        parts.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p><table><tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
    spectra = results.get("spectra")
    if spectra:
        parts.append(f"<h2>Mean DCT spectra per source</h2><img src='{html.escape(spectra['figure'])}' width='720'>")
    panel = (results.get("attribution") or {}).get("panel")
    if panel:
        parts.append(f"<h2>GAN fingerprints (visNet)</h2><img src='{html.escape(panel)}' width='900'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: dict, out) -> tuple[Path, Path]:
    out = Path(out)
    atomic_write(out / "report.md", to_markdown(results))
    atomic_write(out / "report.html", to_html(results))
    return out / "report.md", out / "report.html"
