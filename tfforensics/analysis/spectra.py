"""DCT spectrum statistics per image source (Frank et al.'s compute_statistics / compute_mean_var).

``spectrum_stats`` computes, for each source folder, the per-coefficient mean and standard
deviation of the 2-D DCT over up to ``amount`` images, and compares every source with the
first one (the reference, usually the real images): ``log|mean_ref| - log|mean|``, its
absolute value and the ratio ``log|mean_ref| / log|mean|``. As in the original, the
statistics are taken over the raw DCT and log-scaled only for display. Heat maps are
written as PNG and PDF with colour scales shared across sources, so sources compare by eye.

``mean_var_from_folders`` / ``mean_var_from_dataset`` write ``mean.npy`` and ``var.npy``
(population variance, as the original's Welford) for a DCT input layer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tfforensics.data.encodings import dct2, log_scale
from tfforensics.data.stats import RunningMoments
from tfforensics.errors import MissingInputError, UserError
from tfforensics.io.atomic import atomic_open, atomic_write_json
from tfforensics.io.images import BadImageError, list_images, load_image
from tfforensics.io.parallel import thread_count

logger = logging.getLogger(__name__)

BATCH_SIZE = 64
CHANNEL_NAMES = ("red", "green", "blue")
DEFAULT_CMAPS = ("inferno",)
#: The five colour maps ``compute_statistics.py`` writes (``stats --cmap original``).
ORIGINAL_CMAPS = ("inferno", "Spectral", "spring", "jet", "coolwarm")
FORMATS = ("png", "pdf")


# ----------------------------------------------------------------------------- sources

def parse_source(spec) -> tuple[Path, str]:
    """``PATH``, ``PATH,NAME`` (the original's form) or ``NAME=PATH`` to ``(path, name)``."""
    text = str(spec)
    if "," in text:
        path, name = text.rsplit(",", 1)
    elif "=" in text and not Path(text).exists():
        name, path = text.split("=", 1)
    else:
        path, name = text, Path(text).name
    path = Path(path)
    if not path.is_dir():
        raise MissingInputError(f"{path}: source folder not found.")
    return path, name or path.name


def expand_sources(specs) -> list[tuple[Path, str]]:
    """Source folders and names; one folder holding only class sub-folders expands to them (sorted)."""
    specs = list(specs)
    if not specs:
        raise UserError("no source folders given; pass the reference (real) folder first, then the others.")
    if len(specs) == 1:
        path, _ = parse_source(specs[0])
        sub = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if sub and not list_images(path):
            return [(p, p.name) for p in sub]
    sources = [parse_source(spec) for spec in specs]
    names = [name for _, name in sources]
    if len(set(names)) != len(names):
        raise UserError(f"source names must differ, got {names}; name them with PATH,NAME.")
    return sources


def iter_batches(paths, *, color: bool, batch_size: int = BATCH_SIZE, skip_bad: bool = False,
                 workers: int | None = None, shape=None, skipped=None, progress=None):
    """Yield uint8 batches ``(B, H, W, C)`` of equally sized images, decoded by a thread pool.

    An image of another size than the first (or than ``shape``) is a bad image.
    """
    skipped = [] if skipped is None else skipped

    def load(path, size):
        try:
            return load_image(path, grayscale=not color, size=size, size_of="the first images")
        except BadImageError as error:
            return error

    with ThreadPoolExecutor(max_workers=thread_count(workers)) as pool:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            images = []
            size = tuple(shape[:2]) if shape is not None else None
            for path, image in zip(chunk, pool.map(load, chunk, [size] * len(chunk))):
                if not isinstance(image, BadImageError) and shape is not None and image.shape != tuple(shape):
                    image = BadImageError(path, f"is {image.shape[1]}x{image.shape[0]} pixels but the first images "
                                          f"are {shape[1]}x{shape[0]}", "crop or resize first, or pass --skip-bad")
                if isinstance(image, BadImageError):
                    if not skip_bad:
                        raise image
                    skipped.append({"path": image.path, "reason": image.reason})
                    continue
                shape = shape or image.shape
                images.append(image)
            if progress is not None:
                progress.update(len(chunk))
            if images:
                yield np.stack(images)


def dct_moments(paths, *, color: bool, log: bool = False, batch_size: int = BATCH_SIZE, skip_bad: bool = False,
                workers: int | None = None, shape=None, skipped=None, progress=None) -> RunningMoments:
    """Per-coefficient moments of the (optionally log-scaled) DCT over ``paths``, batch by batch."""
    moments = RunningMoments()
    for batch in iter_batches(paths, color=color, batch_size=batch_size, skip_bad=skip_bad, workers=workers,
                              shape=shape, skipped=skipped, progress=progress):
        coefficients = dct2(batch)
        moments.update(log_scale(coefficients) if log else coefficients)
    return moments


# ----------------------------------------------------------------------------- stats

@dataclasses.dataclass
class SpectraResult:
    """Mean and std of the DCT per source; index 0 is the reference."""

    names: list[str]
    paths: list[str]
    counts: list[int]
    means: np.ndarray  # (S, H, W, C), raw DCT
    stds: np.ndarray  # (S, H, W, C)
    color: bool
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def log_means(self) -> np.ndarray:
        return log_scale(self.means)

    @property
    def log_stds(self) -> np.ndarray:
        return log_scale(self.stds)

    @property
    def mean_differences(self) -> np.ndarray:
        """``log|mean_ref| - log|mean_s|`` for every source after the first, ``(S-1, H, W, C)``."""
        return self.log_means[:1] - self.log_means[1:]

    @property
    def mean_ratios(self) -> np.ndarray:
        """``log|mean_ref| / log|mean_s|`` (the original's "mean_div")."""
        log_means = self.log_means
        with np.errstate(divide="ignore", invalid="ignore"):
            return log_means[:1] / log_means[1:]

    def summary(self) -> dict:
        """Numbers for reports: per source, the mean |difference| to the reference and its largest positions."""
        out = {"reference": self.names[0], "color": self.color, "sources": []}
        differences = self.mean_differences
        for index, name in enumerate(self.names):
            entry = {"name": name, "path": self.paths[index], "images": self.counts[index],
                     "mean_log_spectrum": float(self.log_means[index].mean()),
                     "mean_log_std": float(self.log_stds[index].mean())}
            if index:
                diff = differences[index - 1]
                magnitude = np.abs(diff).max(axis=-1)
                top = np.argsort(magnitude, axis=None)[::-1][:5]
                entry["mean_abs_difference"] = float(np.abs(diff).mean())
                entry["largest_differences"] = [
                    {"row": int(r), "col": int(c), "value": float(diff[r, c].mean())}
                    for r, c in zip(*np.unravel_index(top, magnitude.shape))
                ]
            out["sources"].append(entry)
        return out


def compute_spectra(sources, *, amount: int | None = None, color: bool = False, batch_size: int = BATCH_SIZE,
                    skip_bad: bool = False, workers: int | None = None, progress: bool = True) -> SpectraResult:
    """Mean and std of the DCT of up to ``amount`` images (sorted names) of each source.

    ``sources``: folder paths or specs (see :func:`expand_sources`); the first is the reference.
    """
    from tqdm.auto import tqdm

    sources = expand_sources(sources)
    plans = []
    for path, name in sources:
        files = [str(p) for p in list_images(path)][:amount]
        if not files:
            raise UserError(f"{path}: source folder has no images; add images or drop it.")
        plans.append((path, name, files))
    total = sum(len(files) for _, _, files in plans)
    names, paths, counts, means, stds, skipped = [], [], [], [], [], []
    shape = None
    with tqdm(total=total, desc="DCT spectra", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for path, name, files in plans:
            bad = []
            moments = dct_moments(files, color=color, batch_size=batch_size, skip_bad=skip_bad, workers=workers,
                                  shape=shape, skipped=bad, progress=bar)
            skipped += bad
            if moments.count < 2:
                raise UserError(f"{path}: needs at least 2 readable images for a standard deviation, found {moments.count}.")
            shape = moments.mean.shape
            names.append(name)
            paths.append(str(path))
            counts.append(moments.count)
            means.append(moments.mean)
            stds.append(np.sqrt(moments.variance))
    return SpectraResult(names, paths, counts, np.stack(means), np.stack(stds), color, skipped)


def heatmap(path_stem: Path, data: np.ndarray, *, cmap: str, formats, vmin=None, vmax=None, dpi: int = 150) -> list[Path]:
    """One heat map of ``data`` with a colour bar, saved as ``path_stem.<format>`` for each format."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3.4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    image = axis.matshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
    axis.set_xticks([])
    axis.set_yticks([])
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    written = []
    for extension in formats:
        target = path_stem.with_name(f"{path_stem.name}.{extension}")
        figure.savefig(target, dpi=dpi)
        written.append(target)
    return written


def _plot_group(directory: Path, prefix: str, names, arrays, *, align: bool, cmap: str, formats) -> list[Path]:
    """One heat map per source (per channel when colour), on a common scale when ``align``."""
    finite = [a[np.isfinite(a)] for a in arrays]
    limits = {}
    if align and any(f.size for f in finite):
        limits = {"vmin": min(float(f.min()) for f in finite if f.size), "vmax": max(float(f.max()) for f in finite if f.size)}
    written = []
    for name, array in zip(names, arrays):
        if array.shape[-1] == 3:
            for channel, channel_name in enumerate(CHANNEL_NAMES):
                written += heatmap(directory / f"{prefix}_{name}_{channel_name}", array[..., channel],
                                    cmap=cmap, formats=formats, **limits)
        else:
            written += heatmap(directory / f"{prefix}_{name}", array[..., 0], cmap=cmap, formats=formats, **limits)
    return written


def plot_spectra(result: SpectraResult, output, *, cmaps=DEFAULT_CMAPS, formats=FORMATS) -> list[Path]:
    """Heat maps of means, stds, differences, |differences| and ratios into ``output/<cmap>/``."""
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        raise ValueError(f"`formats` must be png, pdf or svg. Received: formats={list(formats)}")
    written = []
    others = result.names[1:]
    for cmap in cmaps:
        directory = Path(output) / cmap
        directory.mkdir(parents=True, exist_ok=True)
        written += _plot_group(directory, "mean", result.names, result.log_means, align=True, cmap=cmap, formats=formats)
        written += _plot_group(directory, "std", result.names, result.log_stds, align=True, cmap=cmap, formats=formats)
        if others:
            differences = result.mean_differences
            written += _plot_group(directory, "mean_difference", others, differences, align=True, cmap=cmap, formats=formats)
            written += _plot_group(directory, "mean_difference_abs", others, np.abs(differences), align=True,
                                   cmap=cmap, formats=formats)
            written += _plot_group(directory, "mean_ratio", others, result.mean_ratios, align=False, cmap=cmap,
                                   formats=formats)
    written += plot_overview(result, Path(output) / "overview", cmap=cmaps[0], formats=formats)
    return written


def plot_overview(result: SpectraResult, path_stem: Path, *, cmap: str = "inferno", formats=FORMATS) -> list[Path]:
    """One figure: a row per source with log mean, log std and the difference to the reference
    (channel average when colour)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(result.names)
    figure = Figure(figsize=(9, 2.8 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 3, squeeze=False)
    log_means, log_stds = result.log_means.mean(axis=-1), result.log_stds.mean(axis=-1)
    differences = np.concatenate([np.zeros_like(log_means[:1]), result.mean_differences.mean(axis=-1)])
    panels = [("log |mean DCT|", log_means, cmap), ("log std DCT", log_stds, cmap),
              (f"log|mean {result.names[0]}| - log|mean|", differences, "coolwarm")]
    for column, (title, data, colormap) in enumerate(panels):
        if column == 2:
            bound = float(np.nanmax(np.abs(differences))) or 1.0
            limits = {"vmin": -bound, "vmax": bound}
        else:
            limits = {"vmin": float(data.min()), "vmax": float(data.max())}
        for row in range(rows):
            axis = axes[row, column]
            image = axis.matshow(data[row], cmap=colormap, **limits)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"{result.names[row]}: {title}" if column == 0 else title, fontsize=8)
            figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    written = []
    for extension in formats:
        target = path_stem.with_name(f"{path_stem.name}.{extension}")
        figure.savefig(target, dpi=120)
        written.append(target)
    return written


def save_spectra(result: SpectraResult, output) -> tuple[Path, Path]:
    """``spectra.npz`` (the arrays) and ``spectra.json`` (names, counts, summary) in ``output``."""
    output = Path(output)
    npz = output / "spectra.npz"
    arrays = {"names": np.asarray(result.names), "counts": np.asarray(result.counts),
              "mean": result.means, "std": result.stds, "log_mean": result.log_means, "log_std": result.log_stds}
    if len(result.names) > 1:
        arrays["mean_difference"] = result.mean_differences
        arrays["mean_ratio"] = result.mean_ratios
    with atomic_open(npz, "wb") as handle:
        np.savez(handle, **arrays)
    summary = result.summary()
    summary["skipped"] = result.skipped
    atomic_write_json(output / "spectra.json", summary)
    return npz, output / "spectra.json"


def spectrum_stats(sources, output, *, amount: int | None = None, color: bool = False, cmaps=DEFAULT_CMAPS,
                   formats=FORMATS, batch_size: int = BATCH_SIZE, skip_bad: bool = False,
                   workers: int | None = None, overwrite: bool = False, progress: bool = True) -> SpectraResult:
    """Compute the spectra of ``sources`` (reference first) and write plots and numbers to ``output``."""
    from tfforensics.io.outputs import claim_output
    from tfforensics.io.outputs import staged_output

    given = [parse_source(spec)[0] for spec in ([sources] if isinstance(sources, (str, Path)) else sources)]
    folders = given + [path for path, _ in expand_sources(sources)]
    claim_output(output, overwrite=overwrite, sources=folders, command="stats")  # before the work
    result = compute_spectra(sources, amount=amount, color=color, batch_size=batch_size, skip_bad=skip_bad,
                             workers=workers, progress=progress)
    with staged_output(output, overwrite=overwrite, sources=folders, command="stats") as work:
        save_spectra(result, work)
        plot_spectra(result, work, cmaps=cmaps, formats=formats)
    return result


# ----------------------------------------------------------------------------- mean / var

MEAN_VAR_FILES = ("mean.npy", "var.npy", "mean_var.json")


def claim_mean_var(output, overwrite: bool = False, sources=(), inside_ok: bool = False) -> None:
    """Check, before any work, that ``mean.npy``/``var.npy``/``mean_var.json`` may be written into ``output``:
    files of a previous ``mean-var`` are replaced only with ``overwrite`` and only when its
    ``mean_var.json`` is one tfforensics wrote."""
    from tfforensics.io.outputs import check_sources, claim_files

    check_sources(Path(output), sources, inside_ok=inside_ok)
    claim_files(output, MEAN_VAR_FILES, record="mean_var.json", command="mean-var", previous="mean/var",
                contents="mean.npy, var.npy", instead="output folder", overwrite=overwrite)


def _write_mean_var(output, mean, var, info: dict, overwrite: bool) -> dict:
    from tfforensics import __version__
    from tfforensics.io.outputs import PRODUCER

    output = Path(output)
    claim_mean_var(output, overwrite, inside_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    for name, array in (("mean.npy", mean), ("var.npy", var)):
        with atomic_open(output / name, "wb") as handle:
            np.save(handle, np.asarray(array, dtype=np.float64))
    info = dict(info, shape=list(np.shape(mean)), output=str(output.resolve()), producer=PRODUCER,
                tfforensics_version=__version__)
    atomic_write_json(output / "mean_var.json", info)
    return info


def mean_var_from_folders(sources, output, *, amount: int | None = None, color: bool = True, log: bool = False,
                          fractions=None, seed: int = 0, train_only: bool = True, batch_size: int = BATCH_SIZE,
                          skip_bad: bool = False, workers: int | None = None, overwrite: bool = False,
                          progress: bool = True) -> dict:
    """``mean.npy`` / ``var.npy`` of the DCT of image folders (compute_mean_var.py).

    Several folders (or one flat folder): the first ``amount`` images of each, as the original.
    One folder of class sub-folders: the train split that ``prepare`` draws with the same
    ``fractions`` and ``seed`` (``train_only=False``: every image), ``amount`` per class.
    The original stores the raw DCT of RGB images; ``log`` and ``color=False`` change that.
    """
    from tqdm.auto import tqdm

    from tfforensics.data.splits import scan_classes, split_classes

    specs = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    for path in specs:
        if not path.is_dir():
            raise UserError(f"{path}: source folder not found.")
    claim_mean_var(output, overwrite, sources=specs)  # before the work
    if len(specs) == 1 and not list_images(specs[0]) and any(p.is_dir() for p in specs[0].iterdir()):
        classes = scan_classes(specs[0])
        if train_only:
            items = split_classes(classes, fractions=fractions, seed=seed)["train"]
            per_class = {}
            for path, label in items:
                per_class.setdefault(label, []).append(path)
        else:
            per_class = {label: [str(p) for p in files] for label, files in enumerate(classes.values())}
        paths = [p for label in sorted(per_class) for p in sorted(per_class[label])[:amount]]
        mode = "train split" if train_only else "all images"
    else:
        paths = []
        for folder in specs:
            files = [str(p) for p in list_images(folder)][:amount]
            if not files:
                raise UserError(f"{folder}: source folder has no images; add images or drop it.")
            paths += files
        mode = "first images of each folder"
    skipped = []
    with tqdm(total=len(paths), desc="mean/var", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        moments = dct_moments(paths, color=color, log=log, batch_size=batch_size, skip_bad=skip_bad,
                              workers=workers, skipped=skipped, progress=bar)
    if moments.count < 2:
        raise UserError(f"mean/var needs at least 2 readable images; found {moments.count} in {[str(s) for s in specs]}.")
    info = {"count": moments.count, "mode": mode, "sources": [str(s) for s in specs], "color": color, "log": log,
            "transform": "dct", "seed": seed, "fractions": list(fractions) if fractions else None,
            "skipped": skipped, "variance": "population (M2 / n)"}
    return _write_mean_var(output, moments.mean, moments.variance, info, overwrite)


def mean_var_from_dataset(dataset, output, *, limit: int | None = None, overwrite: bool = False,
                          progress: bool = True) -> dict:
    """``mean.npy`` / ``var.npy`` of a prepared dataset's train split, as stored.

    A dataset prepared with ``--normalize`` already holds standardised values, so its
    recorded train statistics (the values before standardisation) are written instead.
    """
    from tqdm.auto import tqdm

    from tfforensics.data.manifest import Manifest
    from tfforensics.data.reader import load_dataset, read_errors

    manifest = Manifest.load(dataset)
    claim_mean_var(output, overwrite, sources=[manifest.root], inside_ok=True)  # before the work
    info = {"dataset": str(manifest.root), "encoding": dataclasses.asdict(manifest.encoding), "split": "train"}
    if manifest.encoding.normalize:
        statistics = manifest.load_statistics()
        info.update(count=manifest.count("train"), mode="manifest statistics (before standardisation)")
        return _write_mean_var(output, statistics["mean"], np.square(statistics["std"]), info, overwrite)
    moments = RunningMoments()
    total = min(manifest.count("train"), limit) if limit else manifest.count("train")
    with read_errors(manifest, ("train",)), tqdm(total=total, desc="mean/var (train)", unit="img",
                                                 disable=not progress, dynamic_ncols=True) as bar:
        for images, _ in load_dataset(manifest, "train", batch_size=256, shuffle=False).as_numpy_iterator():
            if limit is not None:
                images = images[: max(0, limit - moments.count)]
            moments.update(images)
            bar.update(len(images))
            if limit is not None and moments.count >= limit:
                break
    if moments.count < 2:
        raise UserError(f"{manifest.root}: the train split has {moments.count} records; mean/var needs at least 2.")
    info.update(count=moments.count, mode="train split records")
    return _write_mean_var(output, moments.mean, moments.variance, info, overwrite)


def load_mean_var(directory) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, var)`` written by ``mean-var`` (or the original compute_mean_var.py)."""
    directory = Path(directory)
    return np.load(directory / "mean.npy"), np.load(directory / "var.npy")


def describe(directory) -> dict:
    """The ``mean_var.json`` next to the arrays, if any."""
    path = Path(directory) / "mean_var.json"
    return json.loads(path.read_text()) if path.exists() else {}
