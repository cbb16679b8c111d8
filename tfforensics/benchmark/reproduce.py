"""``tfforensics reproduce``: the whole pipeline on the embedded mini benchmark (or ``--data``).

Stages, each a call into the library, each timed and announced with one progress line:

1. benchmark images: the shipped real photo crops (split by photo) + samples of the
   project's own GANs, one per up-sampling family (``tfforensics.benchmark.build``);
2. ``prepare``: pixels in [-1, 1] and normalised colour log-DCT records;
3. classifiers (``log2`` and ``cnn``) on pixels and on the DCT (the default profile: NPR on pixels
   too): attribution accuracy over all sources (Frank et al.'s table), and real-vs-fake
   accuracy / AP from the same models;
4. generalisation: leave-one-family-out real-vs-fake detection (train on the other
   families, test on the held-out one): ACC at 0.5, AP, and ACC at the threshold of best
   balanced accuracy on the val split (which holds the training families only);
5. baselines: kNN, eigenfaces and PRNU with short grids;
6. LGrad: gradients of the mini StyleGAN discriminator (img2grad), detector trained on
   real vs the nearest-neighbour (ProGAN-like) family, evaluated per family;
7. spectra: mean log-DCT spectra per source;
8. Yu et al.'s attribution network on the pixel records, as published and behind the fixed
   log-DCT front end (``attribute train --input dct``), and, in the default profile, its
   fingerprint-visualisation variant: rows beside the classifier rows, one fingerprint panel, and
   the immunization table (``tfforensics.evaluation.attribution.attribution_rows``);
9. augmentation: ``log2`` and ``cnn`` on the DCT (and NPR where it ran) trained again with
   CNNDetection's blur + JPEG augmentation (p = 0.5) on uint8 pixel records, before the models'
   own encoding;
10. Fourier regularisation of the StyleGAN family: the DCT detector's detection rate before
   and after fine-tuning with and without the Fourier term, same seed and steps, and the
   quality proxy (``tfforensics.regularization.benchmark.regularization_section``);
11. robustness: every detector above (classifiers with and without augmentation, Yu et al.,
   LGrad) on the test split, clean and after JPEG 95 / 75, blur sigma 1 / 2, down-and-up
   resize 0.5 and noise sigma 5 (``tfforensics.evaluation.robustness``), scored by the stage
   that trained it as soon as it has, and put together in table order;
12. report: ``results.json`` (every number, and every figure as a path relative to ``--out``),
   then ``report.md`` and ``report.html`` rendered from it (``tfforensics.benchmark.report``).

Nothing in the report is written by hand: every number comes from this run.

Stages 3-10 need only the records and the benchmark images and write only their own folders,
so they run side by side in ``--workers`` processes (default: every core), longest first;
each prints its own progress lines. With ``--workers 1`` they run one after the other in
this process. Every stage seeds its own training, and every process computes on one thread
(:data:`COMPUTE_THREADS`), so the numbers depend neither on which worker ran a stage, or
when, nor on how many cores the machine has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from tfforensics.io.atomic import atomic_open, atomic_write
from tfforensics.io.outputs import owned_dir
from tfforensics.io.parallel import WarmPool, pin_compute_threads, process_count, run_pool
from tfforensics.regularization.benchmark import SectionProfile

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Profile:
    """Sizes of one run; ``quick`` fits in a few minutes on 2 CPU cores."""

    per_source: int
    epochs: int
    cnn_epochs: int
    lgrad_epochs: int
    knn_grid: tuple
    eigen_grid: dict
    prnu_grid: dict
    #: Yu et al.'s networks: epochs, ``fmap_max``, whether visNet runs, immunization fine-tuning epochs
    yu_epochs: int
    yu_fmap_max: int
    yu_visnet: bool
    yu_immunize_epochs: int
    #: NPR (``npr`` on pixels, without and with augmentation); 0 leaves it out: one NPR training
    #: at the quick profile's sizes costs minutes on 2 cores, not seconds
    npr_epochs: int = 0
    #: Yu et al.'s network again behind these fixed front ends (``attribute train --input``)
    yu_front_ends: tuple = ("dct",)


PROFILES = {
    "quick": Profile(per_source=300, epochs=40, cnn_epochs=20, lgrad_epochs=15, knn_grid=(1, 3, 9),
                     eigen_grid={"pca_variance": [0.5, 0.95], "C": [1e-3, 1e-1]},
                     prnu_grid={"levels": [2], "sigma": [0.5, 0.9]}, yu_epochs=3, yu_fmap_max=8, yu_visnet=False,
                     yu_immunize_epochs=1),
    "default": Profile(per_source=1000, epochs=60, cnn_epochs=30, lgrad_epochs=30, knn_grid=(1, 3, 5, 9, 17, 33, 65),
                       eigen_grid={"pca_variance": [0.25, 0.5, 0.75, 0.95], "C": [1e-4, 1e-3, 1e-2, 1e-1]},
                       prnu_grid={"levels": [1, 2, 3, 4], "sigma": [0.3, 0.6, 0.9]}, yu_epochs=5, yu_fmap_max=8,
                       yu_visnet=True, yu_immunize_epochs=1, npr_epochs=3),
}


#: Sizes of the Fourier-regularisation section per reproduce profile: smaller than the section's
#: own (:data:`tfforensics.regularization.benchmark.PROFILES`, which ``tfforensics regularize``
#: uses), so ``reproduce`` keeps to its time budget.
SECTION_PROFILES = {
    "quick": SectionProfile(per_source=40, detector_epochs=4, pairs=12, inversion_steps=30, epochs=1, n_images=32),
    "default": SectionProfile(per_source=150, detector_epochs=10, pairs=16, inversion_steps=60, epochs=2,
                              n_images=128),
}



class Timer:
    """Announces and times the stages of a run (stages in worker processes announce themselves
    with :func:`announce` and report their seconds to :meth:`record`)."""

    def __init__(self, total: int):
        self.total, self.index, self.seconds = total, 0, {}

    @contextlib.contextmanager
    def stage(self, name: str):
        self.index += 1
        announce(self.index, self.total, name)
        start = time.perf_counter()
        yield
        self.record(name, time.perf_counter() - start)
        announce(self.index, self.total, name, self.seconds[name])

    def record(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(seconds, 1)


def announce(index: int, total: int, name: str, seconds: float | None = None) -> None:
    """The progress line of a stage: ``[i/n] name ...`` when it starts, ``... done in s`` when it ends."""
    if seconds is None:
        logger.info("[%d/%d] %s ...", index, total, name)
    else:
        logger.info("[%d/%d] %s done in %.1f s", index, total, name, seconds)


def gan_sources() -> tuple[dict, int]:
    """``({folder: sample(count, seed)}, image side)`` for every GAN family with shipped weights."""
    from tfforensics.benchmark import gans

    sources, sides = {}, set()
    for index, family in enumerate(gans.GAN_FAMILIES):
        generator = gans.load_generator(family)
        sides.add(int(generator.output_shape[1]))

        def sample(count, seed, generator=generator):
            return gans.sample_images(generator, count, seed=seed)

        sources[f"{chr(ord('b') + index)}_{family}"] = sample
    if len(sides) != 1:
        raise ValueError(f"the shipped generators disagree on the image size: {sorted(sides)}.")
    return sources, sides.pop()


# ----------------------------------------------------------------------------- stages

def _classifiers(profile: Profile, encodings) -> list[tuple[str, str]]:
    """``(model, input)`` of the classifier rows: ``log2`` and ``cnn`` on each encoding (pixels, DCT),
    and NPR on pixels where the profile trains it (its residual is a pixel-domain operation)."""
    rows = [(model_name, encoding) for model_name in ("log2", "cnn") for encoding in encodings]
    return rows + ([("npr", "pixels")] if profile.npr_epochs and "pixels" in encodings else [])


def _recipe(model_name: str, profile: Profile) -> dict:
    """Epochs, early stopping and the model's own training defaults (NPR's Adam 2e-4) of one classifier."""
    from tfforensics.models.classifiers import MODELS

    epochs = {"log2": profile.epochs, "npr": profile.npr_epochs}.get(model_name, profile.cnn_epochs)
    defaults = getattr(MODELS[model_name], "train_defaults", {})
    return {"epochs": epochs, "early_stopping": max(3, epochs // 5),
            **({"learning_rate": defaults["learning_rate"]} if "learning_rate" in defaults else {})}


def _classifier_rows(datasets: dict, out: Path, profile: Profile, seed: int) -> list[dict]:
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.training.fit import train

    rows = []
    for model_name, encoding in _classifiers(profile, datasets):
        dataset = datasets[encoding]
        result = train(model_name, dataset, out=out / "classifiers" / f"{model_name}_{encoding}", seed=seed,
                       overwrite=True, verbose=0, **_recipe(model_name, profile))
        report = evaluate_model(result.model_path, dataset, out=out / "classifiers" / f"{model_name}_{encoding}" / "test",
                                overwrite=True)
        binary = report.get("real_vs_fake") or {}
        rows.append({
            "method": model_name, "input": encoding, "attribution_accuracy": report["accuracy"],
            "real_vs_fake_accuracy": binary.get("accuracy"), "real_vs_fake_ap": binary.get("average_precision"),
            "epochs_run": len(result.run.get("history", {}).get("loss", [])),
        })
    return rows


#: The detectors that ``reproduce`` also trains with augmentation (CNNDetection's recipe: blur
#: σ ~ U[0, 3] and JPEG quality ~ U[30, 100], each with probability 0.5), on uint8 pixel records
#: of the same encoding, so that the robustness table shows the augmentation's effect; NPR only
#: where the profile trains it (:attr:`Profile.npr_epochs`).
AUGMENTATION = "blur_jpg_prob=0.5"
AUGMENTED = (("log2", "dct"), ("cnn", "dct"), ("npr", "pixels"))


def _augmented_rows(source: Path, out: Path, profile: Profile, seed: int, workers, encodings: dict) -> list[dict]:
    """:data:`AUGMENTED` trained like :func:`_classifier_rows` but with :data:`AUGMENTATION` on the
    pixels, before the model's own encoding (``prepare --layout pixels``; ``train --augment``)."""
    from tfforensics.data import prepare
    from tfforensics.data.augment import Augmentation
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.training.fit import train

    augmentation = Augmentation.parse(AUGMENTATION)
    rows, datasets = [], {}
    for model_name, encoding in AUGMENTED:
        if (model_name, encoding) not in _classifiers(profile, encodings):
            continue
        if encoding not in datasets:
            datasets[encoding] = prepare(source, out / "records" / f"{encoding}_pixels", encodings[encoding],
                                         layout="pixels", presplit=True, workers=workers, seed=seed, overwrite=True,
                                         progress=False)
        folder = out / "classifiers_augmented" / f"{model_name}_{encoding}"
        result = train(model_name, datasets[encoding], out=folder, seed=seed, overwrite=True, verbose=0,
                       augmentation=augmentation, **_recipe(model_name, profile))
        report = evaluate_model(result.model_path, datasets[encoding], plots=False)
        binary = report.get("real_vs_fake") or {}
        rows.append({"method": model_name, "input": encoding, "augmentation": augmentation.describe(),
                     "model": folder.relative_to(out).as_posix(), "attribution_accuracy": report["accuracy"],
                     "real_vs_fake_accuracy": binary.get("accuracy"), "real_vs_fake_ap": binary.get("average_precision"),
                     "epochs_run": len(result.run.get("history", {}).get("loss", []))})
    return rows


def _link(folder: Path, sources) -> None:
    """Symlink every file of the ``sources`` folders into ``folder`` as ``<source>_<name>``."""
    folder.mkdir(parents=True)
    for source in sources:
        for path in sorted(source.iterdir()):
            (folder / f"{source.name}_{path.name}").symlink_to(path.resolve())


def _binary_tree(source: Path, target: Path, real: str, train_fakes, test_fakes) -> Path:
    """A ``--presplit`` tree of symlinks: real vs the pooled ``train_fakes`` (test: ``test_fakes``)."""
    with owned_dir(target, "reproduce", fresh=True, sources=[source]):
        for split in ("train", "val", "test"):
            fakes = test_fakes if split == "test" else train_fakes
            for name, members in (("0_real", [real]), ("1_fake", fakes)):
                _link(target / split / name, [source / split / member for member in members])
    return target


def _leave_one_out_rows(source: Path, class_names: list[str], out: Path, profile: Profile, seed: int,
                        workers) -> list[dict]:
    from tfforensics.data import Encoding, prepare
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.models.wrapped import load_model
    from tfforensics.training.fit import train

    def fitted(data, name):
        return train("log2", data, out=out / "lofo" / name, epochs=profile.epochs,
                     early_stopping=max(3, profile.epochs // 5), seed=seed, overwrite=True, verbose=0).model_path

    real, fakes = class_names[0], class_names[1:]
    rows = []
    if len(fakes) < 2:  # one fake source: nothing to hold out
        return rows
    loaded = {}  # model.keras -> model: the seen model is scored once per held-out family

    def model_at(path):
        if path not in loaded:
            loaded[path] = load_model(path)
        return loaded[path]

    seen_model = None  # trained once on real vs every family: the same train and val splits for each held-out family
    for held_out in fakes:
        others = [f for f in fakes if f != held_out]
        tree = _binary_tree(source, out / "lofo" / f"src_{held_out}", real, others, [held_out])
        dataset = prepare(tree, out / "lofo" / f"dct_{held_out}", Encoding(log=True, color=True, normalize=True),
                          presplit=True, workers=workers, seed=seed, overwrite=True, progress=False)
        in_family = _binary_tree(source, out / "lofo" / f"src_{held_out}_seen", real, fakes, [held_out])
        seen = prepare(in_family, out / "lofo" / f"dct_{held_out}_seen", Encoding(log=True, color=True, normalize=True),
                       presplit=True, workers=workers, seed=seed, overwrite=True, progress=False)
        row = {"held_out": held_out, "trained_on": others}
        unseen_model = fitted(dataset, f"log2_{held_out}_unseen")
        seen_model = seen_model or fitted(seen, "log2_seen")
        for key, data, model_path in (("unseen", dataset, unseen_model), ("seen", seen, seen_model)):
            model = model_at(model_path)
            report = evaluate_model(model, data, plots=False)
            binary = report.get("real_vs_fake") or {}
            row[f"{key}_accuracy"] = binary.get("accuracy", report["accuracy"])
            row[f"{key}_ap"] = binary.get("average_precision")
            row.update(_calibrated(model, data, key))
        rows.append(row)
    return rows


def _calibrated(model, dataset, key: str) -> dict:
    """``{key}_calibrated_accuracy`` and ``{key}_threshold``: test ACC at the threshold of best
    balanced accuracy on the val split (whose fakes are the training families only)."""
    from tfforensics.evaluation.evaluate import calibrated_detection

    calibrated = calibrated_detection(model, dataset)
    return {f"{key}_calibrated_accuracy": calibrated["accuracy"], f"{key}_threshold": calibrated["threshold"]}


def _baseline_rows(datasets: dict, out: Path, profile: Profile) -> list[dict]:
    from tfforensics.baselines.search import grid_search

    rows = []
    jobs = [("knn", enc, {"n_neighbors": list(profile.knn_grid)}) for enc in datasets]
    jobs += [("eigenfaces", enc, {"pca__n_components": profile.eigen_grid["pca_variance"],
                                  "svm__C": profile.eigen_grid["C"]}) for enc in datasets]
    jobs += [("prnu", "pixels", dict(profile.prnu_grid))]
    for method, encoding, grid in jobs:
        with owned_dir(out / "baselines" / encoding, "reproduce"):  # kept: a re-run continues its searches
            row = grid_search(method, datasets[encoding], out / "baselines" / encoding, grid=grid, n_jobs=1,
                              progress=False)
        rows.append({"method": method, "input": encoding, "params": row["params"], "grid": grid,
                     "val_accuracy": row["val_accuracy"], "attribution_accuracy": row["test_accuracy"]})
    return rows


def mini_discriminator():
    """The discriminator of the project's mini StyleGAN (shipped weights), set up for img2grad."""
    from tfforensics.benchmark.gans import WEIGHTS_DIR
    from tfforensics.models.lgrad import load_discriminator

    return load_discriminator(weights=WEIGHTS_DIR / "stylegan_discriminator.keras")


def _lgrad_rows(source: Path, class_names: list[str], out: Path, profile: Profile, seed: int) -> dict:
    from tfforensics.models import lgrad

    real, fakes = class_names[0], class_names[1:]
    train_family = next((f for f in fakes if "nearest" in f), fakes[0])
    images = out / "lgrad" / "images"
    # CNNDetection layout: train/<0_real|1_fake>, test/<family>/<0_real|1_fake> (the detector's
    # schedule is fixed, so no val split is needed)
    with owned_dir(images, "reproduce", fresh=True, sources=[source]):
        for name, member in (("0_real", real), ("1_fake", train_family)):
            _link(images / "train" / name, [source / "train" / member])
        for family in fakes:
            for name, member in (("0_real", real), ("1_fake", family)):
                _link(images / "test" / family / name, [source / "test" / member])
    discriminator = mini_discriminator()
    gradients = out / "lgrad" / "gradients"
    lgrad.img2grad(images, gradients, discriminator, overwrite=True, progress=False)
    # original_timing=False: the decay epoch reproduce's numbers were made with
    config = lgrad.TrainConfig(arch="small", epochs=profile.lgrad_epochs, batch_size=16, decay_every=5,
                               original_timing=False,
                               load_size=discriminator.input_shape[1], crop_size=discriminator.input_shape[1] - 8,
                               seed=seed)
    with owned_dir(out / "lgrad" / "detector", "reproduce", fresh=True):
        lgrad.train_detector(gradients / "train", out / "lgrad" / "detector", config, progress=False)
    model = lgrad.load_detector(out / "lgrad" / "detector" / "model.keras")
    results = lgrad.evaluate_detector(model, gradients / "test", progress=False)
    return {"trained_on": train_family, "families": results}


def robustness_detectors(results: dict, out: Path) -> list:
    """The detectors of the robustness table, from the models this run saved: the classifiers
    (``log2``, ``cnn`` on pixels and DCT, NPR on pixels where the profile trains it; fake score
    1 - P(real)), Yu et al.'s network and
    the LGrad detector. Detectors trained with augmentation are one more
    :class:`~tfforensics.evaluation.robustness.Detector` entry each (with their ``training``)."""
    from tfforensics.evaluation.robustness import Detector

    detectors = []
    for row in results.get("classifiers") or []:
        folder = out / "classifiers" / f"{row['method']}_{row['input']}"
        if (folder / "model.keras").is_file():
            detectors.append(Detector(f"{row['method']} on {row['input']}", str(folder)))
    for row in results.get("augmented") or []:  # the same models trained with augmentation
        detectors.append(Detector(f"{row['method']} on {row['input']}", str(out / row["model"]),
                                  training=row["augmentation"]))
    for row in results.get("classifiers") or []:  # the attribution network per front end (visNet: fingerprints)
        if row["method"] != "yu":
            continue
        folder = out / "attribution" / ("yu" if row["input"] == "pixels" else f"yu_{row['input']}")
        if (folder / "model.keras").is_file():
            detectors.append(Detector(f"yu on {row['input']}", str(folder)))
    lgrad = out / "lgrad" / "detector" / "model.keras"
    if lgrad.is_file():
        trained_on = (results.get("lgrad") or {}).get("trained_on", "one family")
        detectors.append(Detector(f"LGrad (real vs {trained_on})", str(lgrad), gradients=True))
    return detectors


def _robustness_rows(key: str, section, *, source: Path, class_names: list[str], out: Path) -> dict:
    """``{detector: row}`` of the robustness table for the detectors stage ``key`` just trained
    (:func:`robustness_detectors` of its section), scored in the stage's own process on the test
    split clean and perturbed (:data:`tfforensics.preprocess.perturb.ROBUSTNESS_CONDITIONS`),
    so that scoring overlaps the stages still training."""
    from tfforensics.evaluation.robustness import detector_row, load_split, perturbed_sets

    detectors = robustness_detectors({"classifiers": section["rows"]} if key == "attribution" else {key: section}, out)
    if not detectors:
        return {}
    images, labels = load_split(source, "test", class_names)
    sets = perturbed_sets(images)
    discriminator = mini_discriminator() if any(d.gradients for d in detectors) else None
    return {detector: detector_row(detector, sets, labels, class_names, discriminator=discriminator)
            for detector in detectors}


def _robustness(scored: dict, source: Path, class_names: list[str], results: dict, out: Path) -> dict:
    """The robustness table: every detector of :func:`robustness_detectors`, in its order, from
    the rows the stages scored (:func:`_robustness_rows`)."""
    from tfforensics.evaluation.robustness import assemble_table, load_split
    from tfforensics.preprocess.perturb import ROBUSTNESS_CONDITIONS, conditions

    _, labels = load_split(source, "test", class_names)
    rows = [scored[detector] for detector in robustness_detectors(results, out)]
    return assemble_table(rows, list(conditions(ROBUSTNESS_CONDITIONS)), labels)


def _spectra(source: Path, class_names: list[str], out: Path) -> dict:
    """Mean log-DCT spectrum (``mean of log|DCT|``, channels averaged) of each source's train
    images, and its difference to the real source, as one figure (Frank et al.'s Fig. 1 view)."""
    from tfforensics.analysis.spectra import dct_moments
    from tfforensics.evaluation.plots import plot_mean_spectra
    from tfforensics.io.images import list_images

    means = {name: dct_moments([str(p) for p in list_images(source / "train" / name)], color=True, log=True)
             .mean.mean(axis=-1) for name in class_names}
    real = means[class_names[0]]
    directory = out / "spectra"
    with owned_dir(directory, "reproduce"):
        plot_mean_spectra(means, directory / "mean_spectra.png", reference=class_names[0], label="mean log|DCT|",
                          title="mean log|DCT| per source (top) and its difference to the real source (bottom)")
        with atomic_open(directory / "mean_log_spectra.npz") as handle:
            np.savez(handle, **means)
    rows = [{"source": name, "mean_abs_difference_to_real": float(np.abs(means[name] - real).mean()),
             "high_frequency_energy": float(means[name][means[name].shape[0] // 2:, means[name].shape[1] // 2:].mean())}
            for name in class_names]
    return {"figure": "spectra/mean_spectra.png", "sources": rows}


def _attribution(dataset, out: Path, profile: Profile, seed: int) -> dict:
    """Yu et al.'s rows (``yu``, and ``yu_visnet`` when the profile trains it), the first
    fingerprint panel and the immunization table, in ``out/attribution``."""
    from tfforensics.evaluation.attribution import attribution_rows

    with owned_dir(out / "attribution", "reproduce", fresh=True):
        result = attribution_rows(dataset, out / "attribution", epochs=profile.yu_epochs, seed=seed,
                                  model_options={"fmap_max": profile.yu_fmap_max}, visnet=profile.yu_visnet,
                                  immunize_epochs=profile.yu_immunize_epochs, front_ends=profile.yu_front_ends,
                                  early_stopping=max(3, profile.yu_epochs // 5), report_dir=out)
    grid = [p for p in (result.get("fingerprints") or {}).get("grid", []) if p.endswith(".png")]
    result["fingerprint_grid"] = Path(os.path.relpath(Path(grid[0]).resolve(), out.resolve())).as_posix() if grid else None
    return result


def _regularization(out: Path, profile_name: str, seed: int, workers) -> dict:
    """The Fourier-regularisation section in ``out/regularization`` (figure paths relative to ``out``)."""
    from tfforensics.regularization.benchmark import regularization_section

    directory = out / "regularization"
    with owned_dir(directory, "reproduce", fresh=True):
        section = regularization_section(directory, profile=SECTION_PROFILES[profile_name], seed=seed,
                                         workers=workers)
    section["figures"] = [(Path("regularization") / f).as_posix() for f in section["figures"]]
    section["detector"]["path"] = Path(os.path.relpath(Path(section["detector"]["path"]).resolve(),
                                                       out.resolve())).as_posix()
    for run in section["runs"].values():
        run["run"] = (Path("regularization") / run["run"]).as_posix()
    return section


def _figures(results: dict, out: Path) -> list[dict]:
    """Every figure of the run for the report, paths relative to ``out``: the plots ``test``
    wrote per classifier, per-family bars of the generalisation and LGrad tables (drawn here),
    and the spectra."""
    from tfforensics.evaluation.plots import plot_family_bars

    figures = []
    for row in results.get("classifiers") or []:
        test = Path("classifiers") / f"{row['method']}_{row['input']}" / "test"
        for name, caption in (("confusion_matrix.png", "confusion matrix"), ("roc.png", "ROC curves")):
            if (out / test / name).is_file():
                model = f"{row['method']} on {row['input']}"
                figures.append({"section": "classifiers", "title": model, "path": (test / name).as_posix(),
                                "caption": f"{model}: {caption}"})
    lofo = results.get("leave_one_out") or []
    if lofo:
        path = plot_family_bars([r["held_out"] for r in lofo],
                                {f"{key} {metric}": [r[f"{key}_{field}"] for r in lofo] for key in ("unseen", "seen")
                                 for metric, field in (("ACC", "accuracy"), ("AP", "ap"))},
                                out / "figures" / "leave_one_out.png",
                                title="real vs fake on the held-out family: unseen in training vs seen")
        figures.append({"section": "leave_one_out", "path": path.relative_to(out).as_posix(),
                        "caption": "leave one family out: ACC and AP per held-out family"})
    lgrad = results.get("lgrad")
    if lgrad:
        names = list(lgrad["families"])
        path = plot_family_bars(names, {label: [lgrad["families"][n].get(key) for n in names]
                                        for label, key in (("ACC", "accuracy"), ("real ACC", "real_accuracy"),
                                                           ("fake ACC", "fake_accuracy"), ("AP", "average_precision"))},
                                out / "figures" / "lgrad.png",
                                title=f"LGrad detector trained on real vs {lgrad['trained_on']}, per test family")
        figures.append({"section": "lgrad", "path": path.relative_to(out).as_posix(),
                        "caption": "LGrad: ACC, real ACC, fake ACC and AP per family"})
    robustness = results.get("robustness") or {}
    if robustness.get("detectors"):
        path = plot_family_bars(robustness["conditions"],
                                {d["name"] + ("" if d["training"] == "no augmentation" else ", augmented"):
                                 [d["conditions"][c]["average_precision"] for c in robustness["conditions"]]
                                 for d in robustness["detectors"]},
                                out / "figures" / "robustness.png", title="AP on the test split, clean and perturbed")
        figures.append({"section": "robustness", "path": path.relative_to(out).as_posix(),
                        "caption": "robustness: AP of every detector per condition"})
    if results.get("spectra"):
        figures.append({"section": "spectra", "path": results["spectra"]["figure"],
                        "caption": "mean log|DCT| per source and its difference to the real source"})
    attribution = results.get("attribution") or {}
    if attribution.get("fingerprint_grid"):
        figures.append({"section": "yu", "path": attribution["fingerprint_grid"],
                        "caption": "visNet: the model fingerprint of each source"})
    if attribution.get("panel"):
        figures.append({"section": "yu", "path": attribution["panel"],
                        "caption": "visNet: input, image fingerprint, model fingerprints, responses and logits"})
    for path in (results.get("regularization") or {}).get("figures", []):
        if path.endswith(".png"):
            figures.append({"section": "regularization", "path": path,
                            "caption": f"Fourier regularisation: {Path(path).stem}"})
    return figures


def _split_tree(data: Path, target: Path, seed: int) -> Path:
    """Symlink a user's class folders into a seeded 70/20/10 ``--presplit`` tree."""
    from tfforensics.data.splits import scan_classes, split_classes

    classes = scan_classes(data)
    names = list(classes)
    with owned_dir(target, "reproduce", fresh=True, sources=[data]):
        for split, items in split_classes(classes, seed=seed).items():
            for path, label in items:
                folder = target / split / names[label]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / Path(path).name).symlink_to(Path(path).resolve())
    return target


# ----------------------------------------------------------------------------- main entry

def claim_reproduce_out(out, *, data=None, overwrite: bool = False) -> Path:
    """Check ``--out`` before any work (see :mod:`tfforensics.io.outputs`).

    A new or empty folder is used; a previous ``reproduce`` output is continued in place (every
    stage replaces only its own outputs, and refuses when a user's file sits in one), or with
    ``overwrite`` removed first, when it holds nothing but files tfforensics wrote. Any other
    non-empty folder is refused.
    """
    from tfforensics.io.outputs import claim_output, is_output, remove_output

    out = Path(out)
    sources = [data] if data is not None else []

    def own(marker):
        return marker.get("command") == "reproduce" and not overwrite

    claim_output(out, overwrite=overwrite, sources=sources, command="reproduce", reuse=own)
    if overwrite and out.is_dir() and is_output(out):
        remove_output(out, sources)
    return out


def reproduce(out, *, data=None, quick: bool = False, seed: int = 0, workers: int | None = None,
              command: str = "", overwrite: bool = False) -> dict:
    """Run every stage and write the report into ``out``; returns the results dict.

    ``out`` must be new, empty or a previous ``reproduce`` output (continued in place; with
    ``overwrite`` removed first): see :func:`claim_reproduce_out`.
    """
    out = claim_reproduce_out(out, data=data, overwrite=overwrite)
    with owned_dir(out, "reproduce"):
        return _reproduce(out, data=data, quick=quick, seed=seed, workers=workers, command=command)


def _reproduce(out: Path, *, data, quick: bool, seed: int, workers, command: str) -> dict:
    # Stages 3-10's workers start now: their start-up (TensorFlow's import) overlaps stages 1-2.
    lanes = min(process_count(workers), len(CONCURRENT_STAGES))
    with contextlib.ExitStack() as stack:
        warm = (stack.enter_context(WarmPool(workers=lanes, setup=_stage_worker, config=logging.getLogger().level))
                if lanes > 1 else None)
        return _run(out, data=data, quick=quick, seed=seed, workers=workers, command=command, lanes=lanes, warm=warm)


def _run(out: Path, *, data, quick: bool, seed: int, workers, command: str, lanes: int, warm) -> dict:
    from tfforensics import __version__
    from tfforensics.benchmark.build import build_benchmark
    from tfforensics.benchmark.report import RESULTS_FILE, render_run
    from tfforensics.data import Encoding, prepare

    started = time.perf_counter()
    if not pin_compute_threads(COMPUTE_THREADS):
        logger.warning("TensorFlow was started before reproduce with its own thread pools: this run's numbers "
                       "may differ from those of `tfforensics reproduce` in a new process.")
    profile = PROFILES["quick" if quick else "default"]
    timer = Timer(12)
    results = {"tfforensics_version": __version__, "command": command, "seed": seed,
               "profile": "quick" if quick else "default", "platform": platform.platform(),
               "cores": os.cpu_count(), "data": str(data) if data else "embedded mini benchmark"}

    with timer.stage("benchmark images"):
        if data is None:
            source = out / "benchmark"
            sources, size = gan_sources()
            info = build_benchmark(source, sources, per_source=profile.per_source, size=size, seed=seed,
                                   overwrite=True, progress=False)
            results["benchmark"] = info
        else:
            source = Path(data)
            if not (source / "train").is_dir():
                source = _split_tree(source, out / "data_split", seed)
            results["benchmark"] = {"config": {"source": str(data)}}

    with timer.stage("prepare records (pixels, log-DCT)"):
        encodings = {"pixels": Encoding(transform="raw", color=True),
                     "dct": Encoding(log=True, color=True, normalize=True)}
        datasets = {name: prepare(source, out / "records" / name, encoding, presplit=True, workers=workers,
                                  seed=seed, overwrite=True, progress=False)
                    for name, encoding in encodings.items()}
        class_names = datasets["dct"].class_names
        results["classes"] = class_names
        results["counts"] = {split: datasets["dct"].splits[split]["per_class"] for split in datasets["dct"].splits}

    # Stages 3-10 read the records and the benchmark images and write only their own folders:
    # they run side by side, one per worker process (nested pools cannot start, so their own
    # prepare calls run inline there), longest first so that the workers finish together.
    inner = workers if lanes == 1 else 1
    arguments = {
        "classifiers": (_classifier_rows, dict(datasets=datasets, out=out, profile=profile, seed=seed)),
        "leave_one_out": (_leave_one_out_rows, dict(source=source, class_names=class_names, out=out,
                                                    profile=profile, seed=seed, workers=inner)),
        "baselines": (_baseline_rows, dict(datasets=datasets, out=out, profile=profile)),
        "lgrad": (_lgrad_rows, dict(source=source, class_names=class_names, out=out, profile=profile, seed=seed)),
        "spectra": (_spectra, dict(source=source, class_names=class_names, out=out)),
        "attribution": (_attribution, dict(dataset=datasets["pixels"], out=out, profile=profile, seed=seed)),
        "augmented": (_augmented_rows, dict(source=source, out=out, profile=profile, seed=seed, workers=inner,
                                            encodings=encodings)),
        "regularization": (_regularization, dict(out=out, profile_name=results["profile"], seed=seed,
                                                 workers=inner)),
    }
    numbers = {key: timer.index + 1 + i for i, key in enumerate(CONCURRENT_STAGES)}
    scoring = dict(source=source, class_names=class_names, out=out)  # each stage scores its own detectors
    tasks = [(numbers[key], timer.total, key, *arguments[key], scoring)
             for key in sorted(CONCURRENT_STAGES, key=LONGEST_FIRST.index)]
    finished = dict(zip((task[2] for task in tasks),  # run_pool yields in task order
                        run_pool(_run_stage, tasks, config=logging.getLogger().level, setup=_stage_worker,
                                 workers=lanes, progress=False, pool=warm)))
    scored, scoring_seconds = {}, 0.0
    for key, title in CONCURRENT_STAGES.items():  # results and timings in stage order
        results[key], seconds, rows, rows_seconds = finished[key]
        timer.record(title, seconds)
        scored.update(rows)
        scoring_seconds += rows_seconds
    timer.index += len(CONCURRENT_STAGES)
    results["classifiers"] += results["attribution"].pop("rows")
    results["stage_workers"] = lanes

    title = "robustness (JPEG, blur, resize, noise)"  # scored inside the stages above, put together here
    timer.index += 1
    start = time.perf_counter()
    results["robustness"] = _robustness(scored, source, class_names, results, out)
    results["robustness_scored_in_stages"] = True  # for the timings' note: its seconds overlap the stages'
    timer.record(title, scoring_seconds + time.perf_counter() - start)
    announce(timer.index, timer.total, title, timer.seconds[title])

    with timer.stage("report"):
        results["figures"] = _figures(results, out)
        results["timings_s"] = dict(timer.seconds)  # the report shows what results.json holds
        results["wall_s"] = round(time.perf_counter() - started, 1)
        atomic_write(out / RESULTS_FILE, json.dumps(results, indent=2, default=_json_default) + "\n")
        render_run(out, overwrite=True)  # from results.json, as `tfforensics report` does
    results["timings_s"] = timer.seconds
    return results


#: Compute threads (TensorFlow's intra-op pool, the BLAS) of every reproduce process: the same
#: count on every machine gives the same numbers on every machine (a reduction split over more
#: threads rounds differently); the cores are used by running stages side by side instead.
COMPUTE_THREADS = 1
#: The stages that run side by side (results key -> title), in the report's order.
CONCURRENT_STAGES = {
    "classifiers": "classifiers (log2, cnn) on pixels and DCT",
    "leave_one_out": "leave-one-family-out detection",
    "baselines": "baselines (kNN, eigenfaces, PRNU)",
    "lgrad": "LGrad (img2grad + detector)",
    "spectra": "mean spectra",
    "attribution": "attribution network (Yu et al.) and immunization",
    "augmented": "classifiers trained with augmentation (blur, JPEG)",
    "regularization": "Fourier regularisation (StyleGAN family)",
}
#: The order they start in: longest first, as measured with the default profile on 2 cores.
LONGEST_FIRST = ("augmented", "attribution", "classifiers", "baselines", "lgrad", "leave_one_out",
                 "regularization", "spectra")


def _stage_worker(level: int) -> None:
    """A stage worker logs like the command that started it (:func:`tfforensics.cli._common.setup_logging`)
    and computes on one thread, as the command's own process does (:data:`COMPUTE_THREADS`)."""
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger().setLevel(level)
    pin_compute_threads(COMPUTE_THREADS)


def _run_stage(task, state, tick):
    """One stage of :data:`CONCURRENT_STAGES` (a :func:`~tfforensics.io.parallel.run_pool` task), then
    its detectors' robustness rows: ``(section, seconds, rows, seconds scoring them)``."""
    number, total, key, function, kwargs, scoring = task
    title = CONCURRENT_STAGES[key]
    announce(number, total, title)
    start = time.perf_counter()
    section = function(**kwargs)
    seconds = time.perf_counter() - start
    announce(number, total, title, seconds)
    start = time.perf_counter()
    rows = _robustness_rows(key, section, **scoring)
    return section, seconds, rows, time.perf_counter() - start


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
