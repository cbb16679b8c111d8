"""The one image loader of tfforensics.

Every command that reads an image file goes through :func:`load_image`, so every
command converts modes the same way and rejects broken files with the same clear
message. Images are returned as ``uint8`` arrays of shape ``(H, W, C)`` with
``C = 3`` (RGB) or ``C = 1`` (gray, PIL's ITU-R 601-2 luma as in the original
GANDCTAnalysis code).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfforensics.errors import MissingInputError, UserError

#: File name endings treated as images (lower case), as read by PIL.
IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
)

#: Refuse images with more pixels than this (decompression bombs); 8192 x 8192.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Environment variable that carries the limit set by ``--max-pixels`` (so that worker
#: processes, forked or spawned, apply the same limit).
MAX_PIXELS_ENV = "TFFORENSICS_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel limit in force: ``--max-pixels`` / ``set_max_pixels``, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_PIXELS


def set_max_pixels(value: int | None) -> None:
    """Set the pixel limit for this process and the workers it starts (``None``: the default)."""
    if value is None:
        os.environ.pop(MAX_PIXELS_ENV, None)
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"--max-pixels must be a positive integer. Received: {value!r}")
    os.environ[MAX_PIXELS_ENV] = str(value)


def display_path(path) -> str:
    """``path`` for messages: a file name that is not valid UTF-8 shows its bytes as ``\\xff``
    escapes (instead of failing to print, or printing lone surrogates)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class BadImageError(UserError):
    """An image file that cannot be used; the message names the file and the fix."""

    def __init__(self, path, reason: str, fix: str = "remove or replace the file, or pass --skip-bad"):
        self.path = str(path)
        self.reason = reason
        self.fix = fix
        super().__init__(f"{display_path(path)}: {reason}; {fix}.")

    def __reduce__(self):
        # Rebuild from the three fields: the default (message only) fails to unpickle, which
        # hangs a multiprocessing pool whose worker raised it.
        return (type(self), (self.path, self.reason, self.fix))


def list_images(directory, *, recursive: bool = False) -> list[Path]:
    """Image files of ``directory`` in sorted order (hidden files ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingInputError(f"{display_path(directory)}: not a directory.")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in directory.glob(pattern)
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def _raise_limit_fix(pixels: int) -> str:
    suggested = -(-pixels // 1_000_000) * 1_000_000
    return f"shrink it first, or raise the limit with --max-pixels {suggested} if you trust the file"


def _open(path, limit: int | None) -> Image.Image:
    path = Path(path)
    limit = max_pixels() if limit is None else limit
    try:
        size = path.stat().st_size
    except OSError as error:
        raise BadImageError(path, f"cannot be read ({error.strerror})") from error
    if size == 0:
        raise BadImageError(path, "is an empty (zero-byte) file")
    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS (our check below says more) and fails at twice it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limit
            image = Image.open(path)
    except UnidentifiedImageError as error:
        raise BadImageError(path, "is not an image PIL can decode") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else 2 * limit
        raise BadImageError(path, f"has {pixels} pixels, more than the limit of {limit} (image bomb?)",
                            _raise_limit_fix(pixels)) from error
    except OSError as error:
        raise BadImageError(path, f"cannot be opened ({error})") from error
    width, height = image.size
    if width * height > limit:
        image.close()
        raise BadImageError(
            path,
            f"has {width}x{height} pixels, more than the limit of {limit} (image bomb?)",
            _raise_limit_fix(width * height),
        )
    return image


def read_size(path, *, max_pixels: int | None = None) -> tuple[int, int]:
    """``(height, width)`` from the file header, without decoding the pixels."""
    with _open(path, max_pixels) as image:
        return image.size[1], image.size[0]


def _to_uint8(image: Image.Image) -> np.ndarray:
    """Pixels of a PIL image as uint8 RGB, whatever its mode (16-bit, float, CMYK, ...)."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        array = np.asarray(image).astype(np.float64)
        if mode == "F" and array.size and array.max() <= 1.0:
            array = array * 255.0
        elif mode != "F" and array.size and array.max() > 255:
            array = array / 257.0  # 16-bit range to 8-bit
        gray = np.clip(np.rint(array), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode != "RGB":
        image = image.convert("RGB")  # drops alpha; converts P, CMYK, YCbCr, L, 1, LA
    return np.asarray(image, dtype=np.uint8)


def load_image(
    path,
    *,
    grayscale: bool = False,
    size: tuple[int, int] | None = None,
    size_of: str = "the other images",
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode ``path`` to a ``uint8`` array of shape ``(H, W, 3)`` or ``(H, W, 1)``.

    Any readable mode is converted (RGBA, LA, P, CMYK, 16-bit, float); unreadable,
    truncated or oversized files raise :class:`BadImageError` naming the file, and so does
    an image whose ``(height, width)`` differs from ``size`` (``size_of`` names what sets
    that size in the message, e.g. "the model's input"). ``max_pixels`` defaults to the
    limit in force (:func:`max_pixels`, set by ``--max-pixels``).
    """
    image = _open(path, max_pixels)
    try:
        with image:
            image.load()
            rgb = _to_uint8(image)
    except BadImageError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        # PIL reports truncated and corrupt data as OSError ("image file is truncated").
        raise BadImageError(path, f"is truncated or corrupt ({error})") from error
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise BadImageError(path, f"decoded to an unexpected shape {rgb.shape}")
    if size is not None and rgb.shape[:2] != tuple(size):
        raise BadImageError(
            path, f"is {rgb.shape[1]}x{rgb.shape[0]} pixels but {size_of} are {size[1]}x{size[0]}",
            "crop or resize the images to one size first (tfforensics crop / resize), or pass --skip-bad",
        )
    if grayscale:
        # PIL's own RGB -> L conversion (ITU-R 601-2), as the original tools used.
        gray = np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.uint8)
        return gray[..., None]
    return rgb


def save_image(array: np.ndarray, path, **params) -> None:
    """Write a ``uint8`` (H, W, C) array as an image, atomically; format from the file name."""
    from tfforensics.io.atomic import atomic_open

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise UserError(f"{display_path(path)}: unknown image file extension; use .png, .jpg, ...")
    with atomic_open(path, "wb") as handle:
        Image.fromarray(array.astype(np.uint8)).save(handle, format=image_format, **params)


#: The one resize-filter vocabulary: name -> PIL filter (PIL's default for ``resize`` is bicubic).
RESIZE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def resize_image(image: np.ndarray, size, filter: str = "bilinear") -> np.ndarray:
    """``image`` (H, W[, C]) uint8 resized with a PIL filter (aspect not kept).

    ``size``: one int (a square) or ``(height, width)``; ``filter``: a key of
    :data:`RESIZE_FILTERS`. An image already at ``size`` comes back as a copy.
    """
    if filter not in RESIZE_FILTERS:
        raise ValueError(f"`filter` must be one of {sorted(RESIZE_FILTERS)}. Received: filter={filter!r}")
    height, width = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    image = np.asarray(image, dtype=np.uint8)
    if image.shape[:2] == (height, width):
        return image.copy()
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.resize((width, height), RESIZE_FILTERS[filter]), dtype=np.uint8)
    return out[..., None] if squeeze else out
