"""Image perturbations of Frank et al.'s robustness experiments (create_perturbed_imagedata).

Ranges as in the original: Gaussian noise with a standard deviation drawn from U[5, 20];
Gaussian blur with a kernel of 3, 5, 7 or 9 pixels (the original passes
``cv2.BORDER_DEFAULT``, i.e. 4, as sigma, so every kernel uses sigma 4); JPEG with a
quality drawn from the integers 10..74 (the original's ``randint(10, 75)``); a crop of
5-20 % of each side length (half on each side) resized back with bicubic interpolation.
``combined`` applies noise, blur, JPEG and crop in that order, each with probability 0.5.
``relight`` (Yu et al.'s fifth attack, not in Frank et al.) changes the illumination: a
gamma drawn from U[0.7, 1.4] and a directional light, a linear gain ramp across the image
in a random direction from U[0.6, 1.0] at one border to U[1.0, 1.4] at the other. Yu et al.
relit faces with SfSNet, which needs trained weights; this stand-in changes the same
global, low-frequency property of an image.

Where this differs from the original code, on purpose:

- JPEG: the original hands ``[quality, 90]`` to ``cv2.imencode``, i.e. the quality as a
  flag id that OpenCV ignores, so its JPEG step always used OpenCV's default quality 95
  (and encoded RGB as if it were BGR). Here the drawn quality is used, as the paper says.
- combined: the original gives each image one of the four perturbations in turn (with
  probability 0.5); here each of the four is applied with probability 0.5 (the paper's
  "combination").

Parameters are drawn first (:func:`sample_params`) and then applied
(:func:`apply_params`), so a folder run can log exactly what each file received.

``compat="original"`` (:func:`original_perturbation`) rebuilds the paper's perturbed sets
instead: one legacy ``np.random.RandomState(seed)`` stream consumed in the original's call
order, each image perturbed when ``random_sample() > 0.5``, ``combined`` rotating through
noise, blur, JPEG, cropping image by image, JPEG at OpenCV's default quality 95 on the RGB
array passed as BGR, noise truncated (not rounded) to uint8, images read as PIL gives them,
and the original's file names (``<mode>_<i:06>.png``).
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.io.atomic import atomic_write_json
from tfforensics.io.images import load_image
from tfforensics.io.outputs import staged_output
from tfforensics.preprocess._folder import (
    FolderResult, log_skipped, planned_pngs, run_jobs, write_png,
)

logger = logging.getLogger(__name__)

KINDS = ("noise", "blur", "jpeg", "crop", "combined", "relight")
#: The original's spellings of the kinds (``create_perturbed_imagedata.py``).
ALIASES = {"cropping": "crop"}
#: The order of the original's ``all`` (one RNG stream runs through all of them).
ORIGINAL_ALL = ("noise", "blur", "crop", "jpeg", "combined")
#: ``combined`` of the original: one of these per image, in turn.
ORIGINAL_ROTATION = ("noise", "blur", "jpeg", "crop")
COMPAT_MODES = ("original",)
NOISE_STD_RANGE = (5.0, 20.0)
BLUR_KERNELS = (3, 5, 7, 9)
#: sigma the original ends up using (``cv2.BORDER_DEFAULT`` passed as ``sigmaX``).
BLUR_SIGMA = 4.0
#: JPEG quality: integers low..high-1, as ``np.random.randint(10, 75)``.
JPEG_QUALITY_RANGE = (10, 75)
CROP_FRACTION_RANGE = (0.05, 0.20)
#: Chance that each step of ``combined`` is applied.
COMBINED_PROBABILITY = 0.5
RELIGHT_GAMMA_RANGE = (0.7, 1.4)
RELIGHT_LOW_RANGE = (0.6, 1.0)
RELIGHT_HIGH_RANGE = (1.0, 1.4)
LOG_NAME = "perturbations.json"


def canonical_kind(kind: str) -> str:
    """``kind`` with the original's spellings (``cropping``) mapped to ours."""
    return ALIASES.get(kind, kind)


def _check_kind(kind: str, allowed=KINDS) -> None:
    if kind not in allowed:
        raise ValueError(f"`kind` must be one of {allowed}. Received: kind={kind!r}")


def sample_params(kind: str, rng: np.random.Generator, *, probability: float = COMBINED_PROBABILITY) -> dict:
    """Draw the parameters of one perturbation of ``kind``.

    For ``combined`` the result lists the steps that were drawn (each with ``probability``).
    """
    _check_kind(kind)
    if kind == "noise":
        return {"kind": "noise", "std": float(rng.uniform(*NOISE_STD_RANGE)),
                "seed": int(rng.integers(2**63 - 1))}
    if kind == "blur":
        return {"kind": "blur", "kernel": int(rng.choice(BLUR_KERNELS)), "sigma": BLUR_SIGMA}
    if kind == "jpeg":
        return {"kind": "jpeg", "quality": int(rng.integers(*JPEG_QUALITY_RANGE))}
    if kind == "crop":
        return {"kind": "crop", "fraction": float(rng.uniform(*CROP_FRACTION_RANGE))}
    if kind == "relight":
        return {"kind": "relight", "gamma": float(rng.uniform(*RELIGHT_GAMMA_RANGE)),
                "angle": float(rng.uniform(0.0, 2.0 * np.pi)), "low": float(rng.uniform(*RELIGHT_LOW_RANGE)),
                "high": float(rng.uniform(*RELIGHT_HIGH_RANGE))}
    steps = []
    for step in ("noise", "blur", "jpeg", "crop"):
        if rng.random() < probability:
            steps.append(sample_params(step, rng))
    return {"kind": "combined", "steps": steps}


def add_noise(image: np.ndarray, std: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(image.shape, dtype=np.float32) * np.float32(std)
    return np.clip(np.rint(image.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def gaussian_blur(image: np.ndarray, kernel: int, sigma: float = BLUR_SIGMA) -> np.ndarray:
    import cv2

    out = cv2.GaussianBlur(np.ascontiguousarray(image), (kernel, kernel), sigmaX=sigma)
    return out.reshape(image.shape)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` (OpenCV; channels kept in RGB order)."""
    import cv2

    gray = image.ndim == 2 or image.shape[-1] == 1
    array = image.reshape(image.shape[:2]) if gray else np.ascontiguousarray(image[..., ::-1])  # RGB -> BGR
    ok, data = cv2.imencode(".jpg", array, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode an image of shape {image.shape}.")
    decoded = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    return decoded.reshape(image.shape) if gray else decoded[..., ::-1].copy()


def crop_and_resize(image: np.ndarray, fraction: float) -> np.ndarray:
    """Cut ``fraction`` of each side length (half per border), resize back (bicubic)."""
    import cv2

    height, width = image.shape[:2]
    rows = max(1, int(height * fraction * 0.5))
    cols = max(1, int(width * fraction * 0.5))
    cropped = np.ascontiguousarray(image[rows:height - rows, cols:width - cols])
    out = cv2.resize(cropped, dsize=(width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(image.shape)


def relight(image: np.ndarray, gamma: float, angle: float, low: float, high: float) -> np.ndarray:
    """Gamma, then a directional gain ramp from ``low`` to ``high`` along ``angle`` (radians)."""
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    along = np.cos(angle) * (cols / max(width - 1, 1) - 0.5) + np.sin(angle) * (rows / max(height - 1, 1) - 0.5)
    along = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    gain = low + (high - low) * along
    values = 255.0 * (image.astype(np.float32) / 255.0) ** np.float32(gamma)
    values = values * gain.reshape(height, width, *([1] * (image.ndim - 2)))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def apply_params(image: np.ndarray, params: dict) -> np.ndarray:
    """Apply parameters drawn by :func:`sample_params` to a uint8 (H, W, C) image."""
    image = np.asarray(image, dtype=np.uint8)
    kind = params["kind"]
    if kind == "noise":
        return add_noise(image, params["std"], params["seed"])
    if kind == "blur":
        return gaussian_blur(image, params["kernel"], params.get("sigma", BLUR_SIGMA))
    if kind == "jpeg":
        return jpeg_compress(image, params["quality"])
    if kind == "crop":
        return crop_and_resize(image, params["fraction"])
    if kind == "relight":
        return relight(image, params["gamma"], params["angle"], params["low"], params["high"])
    if kind == "combined":
        for step in params["steps"]:
            image = apply_params(image, step)
        return image.copy()
    raise ValueError(f"`params['kind']` must be one of {KINDS}. Received: kind={kind!r}")


def perturb(image: np.ndarray, kind: str, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``image`` with one random perturbation of ``kind`` (noise|blur|jpeg|crop|combined).

    ``rng`` is a NumPy Generator or a seed; the same seed gives the same output.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return apply_params(image, sample_params(kind, rng))


def original_perturbation(image: np.ndarray, kind: str, rs: np.random.RandomState) -> tuple[np.ndarray, dict]:
    """One step of the original script on ``image``, drawing from the legacy stream ``rs``.

    The draws and the arithmetic follow ``create_perturbed_imagedata.py``: noise
    ``uniform(5, 20) * randn(*shape)`` in float64, clipped and truncated to uint8; blur
    ``choice([3, 5, 7, 9])`` with sigma ``cv2.BORDER_DEFAULT`` (4); JPEG ``randint(10, 75)``
    handed to OpenCV as a flag id, so the quality stays 95; cropping ``uniform(.05, .2)``
    with ``int(side * fraction * .5)`` cut per border and the bicubic resize given
    ``dsize=(rows, cols)``, as the original does.
    """
    import cv2

    if kind == "noise":
        std = rs.uniform(low=5.0, high=20.0)
        values = np.array(image, dtype=np.float64) + std * rs.randn(*image.shape)
        return np.clip(values, 0.0, 255.0).astype(np.uint8), {"kind": "noise", "std": float(std)}
    if kind == "blur":
        kernel = int(rs.choice([3, 5, 7, 9]))
        return cv2.GaussianBlur(image, (kernel, kernel), sigmaX=cv2.BORDER_DEFAULT), {"kind": "blur", "kernel": kernel}
    if kind == "jpeg":
        ignored = int(rs.randint(low=10, high=75))
        ok, data = cv2.imencode(".jpg", image, [ignored, 90])
        if not ok:
            raise UserError(f"OpenCV could not JPEG-encode an image of shape {image.shape}.")
        return cv2.imdecode(data, 1), {"kind": "jpeg", "quality": 95, "drawn_quality": ignored}
    if kind == "crop":
        fraction = float(rs.uniform(low=0.05, high=0.2))
        rows, cols = image.shape[:2]
        cut_rows, cut_cols = int(rows * fraction * 0.5), int(cols * fraction * 0.5)
        if not cut_rows or not cut_cols:
            raise UserError(f"an image of {rows}x{cols} pixels is too small for the original's cropping "
                            "(it cuts int(side * 0.05..0.2 / 2) pixels, here 0); use it without --compat original.")
        cropped = np.ascontiguousarray(image[cut_rows:-cut_rows, cut_cols:-cut_cols])
        return (cv2.resize(cropped, dsize=(rows, cols), interpolation=cv2.INTER_CUBIC),
                {"kind": "crop", "fraction": fraction})
    raise UserError(f"--compat original knows {ORIGINAL_ALL}. Received: {kind!r}")


def _perturb_original(planned, work: Path, kind: str, *, seed: int, probability: float, skip_bad: bool,
                      progress: bool, kinds) -> tuple[int, list, dict]:
    """The original script over ``planned`` in one process: each folder is one of its DATASETS.

    The stream is one ``RandomState(seed)`` through every kind (in the original's ``all``
    order) and every folder, in sorted order, so the run equals the original invoked as
    ``create_perturbed_imagedata.py MODE DIR1 DIR2 ...`` after ``np.random.seed(seed)``.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    rs = np.random.RandomState(seed)
    written, skipped, details = 0, [], {}
    for current in kinds:
        root = work / current if kind == "all" else work
        rotation = list(ORIGINAL_ROTATION if current == "combined" else (current,))
        mode = {v: k for k, v in ALIASES.items()}.get(current, current)
        index_in_folder, files, perturbed = {}, {}, 0
        for path, relative, _ in tqdm(planned, desc=f"perturb {current} (original)", disable=not progress):
            try:
                with Image.open(path) as opened:
                    image = np.asarray(opened)
            except (OSError, ValueError) as error:
                if not skip_bad:
                    raise UserError(f"{path}: cannot be read as an image ({error}); fix or remove it, "
                                    "or pass --skip-bad.") from None
                if current == kinds[0]:
                    skipped.append({"path": str(path), "reason": str(error)})
                continue
            step = rotation.pop(0)
            rotation.append(step)
            params = None
            if rs.random_sample() > 1.0 - probability:
                image, params = original_perturbation(image, step, rs)
                perturbed += 1
            folder = relative.parent
            index = index_in_folder.get(folder, 0)
            index_in_folder[folder] = index + 1
            name = folder / f"{mode}_{index:06d}.png"
            write_png(image, root / name)
            files[name.as_posix()] = {"source": relative.as_posix(), "params": params}
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / LOG_NAME, {
            "kind": current, "compat": "original", "seed": seed, "probability": probability,
            "skipped": skipped, "files": files,
        })
        written += len(files)
        details[current] = {"written": len(files), "perturbed": perturbed}
    return written, skipped, details


def file_rng(seed: int, kind: str, relative) -> np.random.Generator:
    """Generator of one file: depends on the seed, the kind and the file's relative path only,
    so the result does not change with the worker count or with other files in the folder."""
    key = zlib.crc32(Path(relative).as_posix().encode())
    return np.random.default_rng([seed, KINDS.index(kind), key])


def _perturb_job(job):
    source, destination, relative, kind, seed, probability = job
    image = load_image(source)
    rng = file_rng(seed, kind, relative)
    if kind == "combined":
        params = sample_params(kind, rng, probability=probability)
    else:
        params = sample_params(kind, rng) if rng.random() < probability else None
    write_png(apply_params(image, params) if params else image, destination)
    return relative, params


def perturb_folder(source, output, kind: str, *, probability: float = 0.5, seed: int = 0,
                   limit: int | None = None, workers: int | None = None, skip_bad: bool = False,
                   overwrite: bool = False, progress: bool = True, compat: str | None = None) -> FolderResult:
    """Write a perturbed PNG copy of every image under ``source`` (class sub-folders kept).

    Args:
        kind: one of ``noise blur jpeg crop combined``, or ``all`` for one output tree per
            kind (``output/<kind>/...``).
        probability: chance that an image is perturbed (the rest are copied unchanged), as the
            original's 0.5; for ``combined`` the chance of each of its four steps.
        seed: with the same seed and inputs the output is identical (any worker count).
        limit: at most this many images per folder (the original's ``--size``).
        compat: ``"original"`` rebuilds the original script's output (module docstring;
            one process, ``workers`` is ignored; ``relight`` is not part of it).

    ``perturbations.json`` in each output tree records the parameters of every file.
    """
    kind = canonical_kind(kind)
    _check_kind(kind, KINDS + ("all",))
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"`probability` must be between 0 and 1. Received: probability={probability}")
    if compat not in (None,) + COMPAT_MODES:
        raise UserError(f"--compat must be one of {COMPAT_MODES}. Received: {compat!r}")
    if compat and kind not in ORIGINAL_ALL + ("all",):
        raise UserError(f"perturb {kind} is not part of the original script; drop --compat original.")
    planned = planned_pngs(source, limit=limit)
    kinds = (ORIGINAL_ALL if compat else KINDS) if kind == "all" else (kind,)
    skipped, written, details = [], 0, {}
    with staged_output(output, overwrite=overwrite, sources=[source], command="perturb") as work:
        if compat:
            written, skipped, details = _perturb_original(planned, work, kind, seed=seed, probability=probability,
                                                          skip_bad=skip_bad, progress=progress, kinds=kinds)
            kinds = ()
        for current in kinds:
            root = work / current if kind == "all" else work
            jobs = [(str(path), str(root / name), relative.as_posix(), current, seed, probability)
                    for path, relative, name in planned]
            results, bad = run_jobs(_perturb_job, jobs, workers=workers, skip_bad=skip_bad,
                                    progress=progress, description=f"perturb {current}")
            if kind == "all":
                skipped += [entry for entry in bad if entry["path"] not in {s["path"] for s in skipped}]
            else:
                skipped = bad
            written += len(results)
            perturbed = sum(1 for _, params in results if params and (params["kind"] != "combined" or params["steps"]))
            details[current] = {"written": len(results), "perturbed": perturbed}
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(root / LOG_NAME, {
                "kind": current, "seed": seed, "probability": probability, "source": str(Path(source).resolve()),
                "skipped": bad, "files": {relative: params for relative, params in results},
            })
    log_skipped(skipped)
    return FolderResult(Path(output).resolve(), written, skipped, details)


def read_log(directory) -> dict:
    """The ``perturbations.json`` of a perturbed tree."""
    with open(Path(directory) / LOG_NAME) as handle:
        return json.load(handle)


# --- named test-time conditions: one vocabulary for `evaluate --perturb` and reproduce's robustness table

#: The robustness table's conditions (JPEG 95 / 75, blur sigma 1 / 2, down-and-up resize 0.5, noise sigma 5).
ROBUSTNESS_CONDITIONS = ("jpeg95", "jpeg75", "blur1", "blur2", "resize0.5", "noise5")
#: ``name prefix: (what the number is, valid range (low, high], integer?)``.
CONDITION_KINDS = {
    "jpeg": ("JPEG quality", (0, 100), True),
    "blur": ("Gaussian blur sigma in pixels", (0, 50), False),
    "resize": ("down-and-up resize factor", (0, 1), False),
    "noise": ("Gaussian noise sigma in grey levels", (0, 255), False),
}
CONDITION_HELP = ("jpegQ (JPEG at quality Q, 1..100), blurS (Gaussian blur of sigma S px, truncated at 4 sigma), "
                  "resizeF (shrink by F in (0, 1), bilinear, and back), noiseS (Gaussian noise of sigma S "
                  "grey levels, seeded by the image)")


def condition_name(spec: str) -> str:
    """The canonical name of a condition (``jpeg75``, ``blur1``, ``resize0.5``, ``noise5``); a UserError if bad."""
    spec = str(spec).strip().lower()
    if spec == "clean":
        return spec
    for prefix, (what, (low, high), integer) in CONDITION_KINDS.items():
        if spec.startswith(prefix):
            try:
                value = float(spec[len(prefix):])
            except ValueError:
                break
            if not low < value <= high or (integer and value != int(value)):
                raise UserError(f"--perturb {spec}: the {what} must lie in ({low}, {high}]"
                                f"{' and be a whole number' if integer else ''}.")
            return f"{prefix}{int(value) if integer else f'{value:g}'}"
    raise UserError(f"--perturb {spec!r}: not a condition; use clean or {CONDITION_HELP}, e.g. jpeg75 blur1.")


def condition_transform(spec: str):
    """``image uint8 (H, W, C) -> uint8`` of one named condition (``None`` for ``clean``).

    JPEG: :func:`jpeg_compress`; blur: :func:`gaussian_blur` of standard deviation sigma with
    a kernel of ``2 * round(4 sigma) + 1`` (SciPy's truncation, as CNNDetection's
    ``blur_jpg`` evaluation); resize: PIL bilinear to ``round(F * side)`` and back; noise:
    :func:`add_noise` seeded by a hash of the image, so the same image always gets the same noise.
    """
    name = condition_name(spec)
    if name == "clean":
        return None
    prefix = next(p for p in CONDITION_KINDS if name.startswith(p))
    value = float(name[len(prefix):])
    if prefix == "jpeg":
        return lambda image: jpeg_compress(image, int(value))
    if prefix == "blur":
        kernel = 2 * int(4 * value + 0.5) + 1
        return lambda image: gaussian_blur(image, kernel, value)
    if prefix == "resize":
        return lambda image: down_and_up(image, value)
    return lambda image: add_noise(image, value, zlib.crc32(np.ascontiguousarray(image).tobytes()))


def down_and_up(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` shrunk by ``factor`` (PIL bilinear, anti-aliased) and enlarged back to its size."""
    from tfforensics.io.images import resize_image

    height, width = image.shape[:2]
    small = resize_image(image, (max(1, round(factor * height)), max(1, round(factor * width))), "bilinear")
    return resize_image(small, (height, width), "bilinear")


def conditions(specs=(), *, clean: bool = True) -> dict:
    """``{name: transform or None}``: ``clean`` first (unless ``clean=False``), then each spec once, in order."""
    out = {"clean": None} if clean else {}
    for spec in specs:
        name = condition_name(spec)
        out.setdefault(name, condition_transform(name))
    return out
