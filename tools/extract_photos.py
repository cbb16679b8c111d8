"""Development-time step: extract real photographs from Debian packages and cut the shipped crops.

Not part of the package and never run by it. It writes
``tfforensics/benchmark/data/photo_crops.npz`` and ``photo_crops.json`` (provenance),
which :func:`tfforensics.benchmark.photos.shipped_crops` reads. Rerun it on a Debian 12
machine (as root or with write access to the work folder)::

    python tools/extract_photos.py --work /tmp/photo_pkgs --sheet /tmp/photo_pkgs/sheets
    # look at the contact sheets, add non-photos to EXCLUDE below, run again

Steps: ``apt-get download`` + ``dpkg -x`` the packages of ``PACKAGES`` into ``--work``;
collect every JPEG/PNG/WebP, also those inside Qt ``.rcc`` resource bundles (read by
:func:`read_rcc`); keep colour images of at least 256 px on the short side that look like
photographs (no transparency, few flat pixels, not grey); drop near-duplicates (64-bit
difference hash, Hamming distance <= 8, keeping the largest); drop the ``EXCLUDE`` list
found by eye on the contact sheets; cut ``--per-photo`` 64x64 crops per photo.

Every crop is cut from the photo after an anti-aliased (Lanczos) down-scaling by a factor
of at least 2, so the JPEG/WebP block grid of the originals does not survive into the
crops (a detector must not tell real from fake by the compression). Three levels per photo:
the whole photo shrunk to a short side of 64 (whole-scene content), to 128, and to half
its size. Crops with little detail (gradient energy under ``MIN_DETAIL``) are dropped.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import pickle
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGES = ("gcompris-qt-data", "tuxpaint-data", "opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers",
            "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE = 256
SIZE = 64
MIN_DETAIL = 4.0  # mean absolute gradient (0..255 scale) below which a crop counts as flat
HASH_DISTANCE = 8
REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tfforensics" / "benchmark" / "data"

#: Patterns (fnmatch, on "package:path") of candidates that pass the automatic filters but are
#: not photographs, or are a second view of a kept scene; found by eye on the contact sheets.
EXCLUDE = (
    "gcompris-qt-data:usr/share/doc/*",  # screenshots
    "gcompris-qt-data:*babyshapes.rcc!*",  # paintings and a drawing
    "gcompris-qt-data:*paintings.rcc!*",
    "gcompris-qt-data:*details.rcc!*Gogh*",  # Van Gogh paintings
    "gcompris-qt-data:*details.rcc!*PortraitOfPereTanguy*",
    "gcompris-qt-data:*details.rcc!*Eglise_dAuvers*",
    "gcompris-qt-data:*lang.rcc!*",  # drawings
    "gcompris-qt-data:*gravity.rcc!*",  # rendered planets
    "gcompris-qt-data:*solar_system.rcc!*",  # composites on black
    "gcompris-qt-data:*weighingMachine.webp",  # a render
    "opencv-doc:*/aero3.jpg",  # second views of aero1, aloeL, left, graf1; ela_original edited
    "opencv-doc:*/aloeR.jpg",
    "opencv-doc:*/right.jpg",
    "opencv-doc:*/graf3.png",
    "opencv-doc:*/ela_modified.jpg",
    "opencv-doc:*/ml.png",  # drawings, synthetic patterns, a painting, a mostly blank shot
    "opencv-doc:*/pic[0-9].png",
    "opencv-doc:*/smarties.png",
    "opencv-doc:*/starry_night.jpg",
    "tuxpaint-data:usr/share/doc/*",  # screenshots
    "tuxpaint-data:*/images/ui/*",
    "mate-backgrounds:*/abstract/*",  # renders
    "mate-backgrounds:*/desktop/*",
    "lomiri-wallpapers-16.04:*/analogpattern_*",  # abstract or unclear
    "lomiri-wallpapers-16.04:*/greentock_*",
    "lomiri-wallpapers-16.04:*/umang_*",
    "lomiri-wallpapers-20.04:*/Infinite-Sea_*",
    "lomiri-wallpapers-20.04:*/Painting-Colors_*",
    # Plasma: renders and drawings; its photos are Autumn, BytheWater, EveningGlow, FallenLeaf,
    # Kite, OneStandsOut, Path and summer_1am
    *(f"plasma-workspace-wallpapers:*/wallpapers/{name}/*" for name in (
        "Altai", "Canopee", "Cascade", "Cluster", "ColorfulCups", "Elarun", "Flow", "FlyingKonqui",
        "Honeywave", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak", "SafeLanding", "Shell",
        "Volna")),
)


# --------------------------------------------------------------------------- Qt .rcc reader
_RCC_COMPRESSED, _RCC_DIRECTORY, _RCC_ZSTD = 0x01, 0x02, 0x04


def read_rcc(path: Path):
    """Yield ``(resource path, bytes)`` for every file in a Qt binary resource (``rcc -binary``).

    Layout (big-endian): ``"qres"``, version, tree offset, payload offset, names offset
    (and, from version 3, a flags word). Tree nodes are 14 bytes (22 from version 2, with
    a 64-bit modification time): name offset, flags, then for a directory the child count
    and index of its first child, for a file locale (2 x 16 bit) and payload offset. A name
    is a 16-bit length, a 32-bit hash and UTF-16BE characters; a payload is a 32-bit size
    and the bytes, which for zlib-compressed files start with the 32-bit uncompressed size.
    """
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt binary resource (no 'qres' magic)")
    version, tree, payload, names = struct.unpack_from(">4I", blob, 4)
    node_size = 14 if version == 1 else 22

    def name_at(offset):
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6
        return blob[start:start + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        at = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, at)
        name = name_at(name_offset) if index else ""
        if flags & _RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, at + 6)
            stack.extend((first + i, f"{prefix}{name}/") for i in range(count))
            continue
        (data_offset,) = struct.unpack_from(">I", blob, at + 10)
        (size,) = struct.unpack_from(">I", blob, payload + data_offset)
        data = blob[payload + data_offset + 4:payload + data_offset + 4 + size]
        if flags & _RCC_ZSTD:
            continue  # not used by the packages above (Qt 5); skip rather than guess
        if flags & _RCC_COMPRESSED:
            data = zlib.decompress(data[4:])
        yield prefix + name, data


# --------------------------------------------------------------------------- packages
def unpack(package: str, work: Path) -> tuple[Path, str]:
    """``apt-get download`` and ``dpkg -x`` a package; returns (root, version)."""
    work.mkdir(parents=True, exist_ok=True)
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=work, check=True)
        debs = sorted(work.glob(f"{package}_*.deb"))
    root = work / "x" / package
    if not root.exists():
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(root)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(debs[-1]), "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return root, version


def copyright_stanzas(root: Path, package: str) -> list[tuple[list[str], tuple[str, str]]]:
    """``[(Files patterns, (License, Copyright))]`` of a machine-readable Debian copyright file, in order."""
    text = (root / "usr/share/doc" / package / "copyright").read_text(errors="replace")
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", block, re.M)
        licence = re.search(r"^License:[ \t]*(.+)$", block, re.M)
        holders = re.search(r"^Copyright:(.*(?:\n[ \t].*)*)", block, re.M)
        if files and licence:
            holder = " ".join(holders.group(1).split()) if holders else ""
            stanzas.append((files.group(1).split(), (licence.group(1).strip(), holder)))
    return stanzas


def licence_of(upstream_path: str, stanzas) -> tuple[str, str]:
    """(licence, copyright) of the last stanza whose Files pattern matches (DEP-5: ``*`` spans folders).

    GCompris converts its JPEG/PNG sources to WebP at build time while its copyright file
    names the sources, so a ``.webp`` path also matches under those suffixes.
    """
    names = [upstream_path]
    if upstream_path.endswith(".webp"):
        names += [upstream_path[:-5] + suffix for suffix in (".jpg", ".jpeg", ".png")]
    found = ("unknown", "")
    for patterns, licence in stanzas:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns):
            found = licence
    return found


def source_path(package: str, path: str) -> str:
    """The path in the upstream source tree that the copyright file's patterns refer to."""
    if package == "gcompris-qt-data" and "!/" in path:  # inside an rcc: "<bundle>.rcc!/gcompris/src/..."
        return path.split("!/", 1)[1].removeprefix("gcompris/")
    markers = {"opencv-doc": ("examples/data/", "samples/data/"), "tuxpaint-data": ("usr/share/tuxpaint/", ""),
               "mate-backgrounds": ("usr/share/backgrounds/mate/", ""),
               "plasma-workspace-wallpapers": ("usr/share/wallpapers/", ""),
               "lomiri-wallpapers-16.04": ("usr/share/backgrounds/", "16.04/"),
               "lomiri-wallpapers-20.04": ("usr/share/backgrounds/", "20.04/")}
    marker, upstream = markers.get(package, ("\0", ""))
    return upstream + path.split(marker, 1)[1] if marker in path else path


def _plasma_pick(root: Path) -> set[Path]:
    """One size per Plasma wallpaper (they ship each at many sizes): the smallest with a side >= 1000."""
    picked = {}
    for file in root.rglob("contents/images/*"):
        size = re.fullmatch(r"(\d+)x(\d+)", file.stem)
        if size and min(int(size[1]), int(size[2])) >= 1000:
            area = int(size[1]) * int(size[2])
            folder = file.parent.parent.parent
            if folder not in picked or area < picked[folder][0]:
                picked[folder] = (area, file)
    return {file for _, file in picked.values()}


def candidates(package: str, root: Path):
    """Yield ``(path inside the package, encoded bytes)`` of every image file, rcc contents included."""
    only = _plasma_pick(root) if package == "plasma-workspace-wallpapers" else None
    for file in sorted(root.rglob("*")):
        if only is not None and file not in only:
            continue
        if not file.is_file():
            continue
        relative = str(file.relative_to(root))
        if package == "opencv-doc" and "examples/data/" not in relative:
            continue
        if file.suffix == ".rcc":
            for inner, data in read_rcc(file):
                if inner.lower().endswith(IMAGE_SUFFIXES):
                    yield f"{relative}!{inner}", data
        elif file.suffix.lower() in IMAGE_SUFFIXES:
            yield relative, file.read_bytes()


# --------------------------------------------------------------------------- photo filters
def decode(data: bytes):
    """``(RGB uint8, opaque mask or None)``; an image more than 70 % transparent gives ``None``."""
    image = Image.open(io.BytesIO(data))
    image.load()
    opaque = None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if (alpha < 255).mean() > 0.001:
            opaque = alpha == 255  # cut-outs: only crops inside the opaque part are used
            if opaque.mean() < 0.3:
                return None
    return np.asarray(image.convert("RGB")), opaque


def looks_like_photo(rgb: np.ndarray, opaque) -> tuple[bool, dict]:
    """Colour and many distinct colours (drawings and screenshots have few); the eye decides the rest."""
    pixels = rgb[::2, ::2] if opaque is None else rgb[::2, ::2][opaque[::2, ::2]]
    pixels = pixels.reshape(-1, 3).astype(np.int16)
    chroma = float(np.abs(pixels[:, 0] - pixels[:, 1]).mean() + np.abs(pixels[:, 1] - pixels[:, 2]).mean())
    colours = len(np.unique(pixels // 4, axis=0))  # 6 bits per channel
    stats = {"chroma": round(chroma, 1), "colours": colours}
    return chroma > 4 and colours > 2000, stats


def dhash(rgb: np.ndarray) -> int:
    grey = np.asarray(Image.fromarray(rgb).convert("L").resize((9, 8), Image.LANCZOS), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


# --------------------------------------------------------------------------- crops
def detail(crop: np.ndarray) -> float:
    grey = crop.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()) / 2


def shrink(rgb: np.ndarray, short: int, resample=Image.LANCZOS) -> np.ndarray:
    height, width = rgb.shape[:2]
    factor = short / min(height, width)
    size = (max(short, round(width * factor)), max(short, round(height * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, resample))


def photo_crops(rgb: np.ndarray, opaque, per_photo: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``per_photo`` crops (or fewer when the photo is flat): levels 0 (whole), 1 (128), 2 (half).

    For a cut-out (``opaque`` mask) only windows that are opaque throughout are kept.
    """
    short = min(rgb.shape[:2])
    levels = [(0, SIZE, 1), (1, 2 * SIZE, max(2, per_photo // 4))]
    if short // 2 > 2 * SIZE:
        levels.append((2, short // 2, per_photo))
    levels[-1] = levels[-1][:2] + (per_photo,)  # the finest level fills up the rest
    crops, tags = [], []
    for level, side, wanted in levels:
        image = shrink(rgb, side)
        mask = None if opaque is None else shrink(opaque.astype(np.uint8) * 255, side, Image.BOX) == 255
        height, width = image.shape[:2]
        stride = SIZE // 2
        grid = [(top, left) for top in range(0, height - SIZE + 1, stride)
                for left in range(0, width - SIZE + 1, stride)]
        if level == 0:  # the centre of the whole scene first
            grid.sort(key=lambda p: abs(p[0] - (height - SIZE) / 2) + abs(p[1] - (width - SIZE) / 2))
        else:
            grid = [grid[i] for i in rng.permutation(len(grid))]
        taken = 0
        for top, left in grid:
            if taken >= wanted or len(crops) >= per_photo:
                break
            crop = image[top:top + SIZE, left:left + SIZE]
            if mask is not None and not mask[top:top + SIZE, left:left + SIZE].all():
                continue
            if detail(crop) >= MIN_DETAIL:
                crops.append(crop)
                tags.append(level)
                taken += 1
    return np.asarray(crops, dtype=np.uint8).reshape(-1, SIZE, SIZE, 3), np.asarray(tags, dtype=np.uint8)


def encode_lossless(crop: np.ndarray) -> bytes:
    """Lossless WebP (about half the bytes of the raw pixels, 3/4 of PNG); checked to decode exactly."""
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, "WEBP", lossless=True, quality=90, method=4)
    data = buffer.getvalue()
    if not np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), crop):
        raise RuntimeError("lossless WebP did not round-trip")
    return data


def contact_sheet(images, labels, path: Path, thumb: int = 96, columns: int = 16):
    from PIL import ImageDraw

    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (rgb, label) in enumerate(zip(images, labels)):
        tile = Image.fromarray(rgb)
        tile.thumbnail((thumb, thumb))
        x, y = (i % columns) * thumb, (i // columns) * (thumb + 12)
        sheet.paste(tile, (x, y))
        draw.text((x + 2, y + thumb), str(label), fill="black")
    sheet.save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/photo_pkgs"))
    parser.add_argument("--sheet", type=Path, help="write contact sheets of the kept photos here")
    parser.add_argument("--per-photo", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="filter and write sheets, no crops")
    args = parser.parse_args(argv)

    kept = []  # photos with their provenance
    for package in PACKAGES:
        cache = args.work / f"{package}.candidates.pickle"  # decoding takes minutes; reused between runs
        if cache.exists():
            kept.extend(pickle.loads(cache.read_bytes()))
            continue
        found = []
        root, version = unpack(package, args.work)
        for path, data in candidates(package, root):
            try:
                decoded = decode(data)
            except Exception:  # noqa: BLE001 - a file PIL cannot read is simply not a candidate
                continue
            if decoded is None or min(decoded[0].shape[:2]) < MIN_SIDE:
                continue
            rgb, opaque = decoded
            ok, stats = looks_like_photo(rgb, opaque)
            if not ok:
                continue
            found.append({"key": f"{package}:{path}", "package": package, "version": version, "path": path,
                         "sha256": hashlib.sha256(data).hexdigest(), "height": rgb.shape[0],
                         "width": rgb.shape[1], "hash": dhash(rgb), "stats": stats, "rgb": rgb,
                         "opaque": opaque})
        cache.write_bytes(pickle.dumps(found))
        kept.extend(found)
    kept = [photo for photo in kept if not any(fnmatch.fnmatchcase(photo["key"], p) for p in EXCLUDE)]
    # near-duplicates: keep the largest of each group
    kept.sort(key=lambda p: -p["height"] * p["width"])
    photos = []
    for photo in kept:
        if all(bin(photo["hash"] ^ other["hash"]).count("1") > HASH_DISTANCE for other in photos):
            photos.append(photo)
    photos.sort(key=lambda p: p["key"])
    print(f"{len(kept)} candidates, {len(photos)} distinct photos")
    if args.sheet:
        args.sheet.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(photos), 128):
            chunk = photos[start:start + 128]
            contact_sheet([p["rgb"] for p in chunk], range(start, start + len(chunk)),
                          args.sheet / f"sheet_{start // 128:02d}.png")
        (args.sheet / "index.txt").write_text(
            "".join(f"{i}\t{p['key']}\t{p['stats']}\n" for i, p in enumerate(photos)))
    if args.dry_run:
        return
    stanzas = {package: copyright_stanzas(unpack(package, args.work)[0], package) for package in PACKAGES}
    for photo in photos:  # here, not in the cached candidates: cheap, and kept up to date
        photo["source_path"] = source_path(photo["package"], photo["path"])
        photo["licence"], photo["copyright"] = licence_of(photo["source_path"], stanzas[photo["package"]])
    rng = np.random.default_rng(args.seed)
    all_crops, all_ids, all_levels, records = [], [], [], []
    for photo in photos:
        crops, levels = photo_crops(photo["rgb"], photo["opaque"], args.per_photo, rng)
        if len(crops) < args.per_photo // 3:
            print(f"skipped (flat): {photo['key']}")
            continue
        index = len(records)
        all_crops.append(crops)
        all_ids.append(np.full(len(crops), index, dtype=np.int16))
        all_levels.append(levels)
        records.append({k: photo[k] for k in ("package", "version", "path", "source_path", "licence",
                                              "copyright", "sha256", "height", "width")} | {"crops": len(crops)})
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    crops = np.concatenate(all_crops)
    encoded = [encode_lossless(crop) for crop in crops]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(item) for item in encoded]).astype(np.int64)
    np.savez(OUT_DIR / "photo_crops.npz", webp=blob, offsets=offsets, photo=np.concatenate(all_ids),
             level=np.concatenate(all_levels))
    provenance = {
        "about": "64x64 RGB crops of real photographs from Debian packages, written by "
                 "tools/extract_photos.py. photo_crops.npz: webp (lossless WebP files, concatenated), "
                 "offsets (crop i is webp[offsets[i]:offsets[i + 1]]), photo (crop i comes from "
                 "photos[photo[i]]), level (0: whole photo shrunk to 64 px on the short side, 1: to "
                 "128 px, 2: to half size; Lanczos). crops_sha256 is over the decoded uint8 crops.",
        "size": SIZE,
        "crops": int(len(crops)),
        "crops_sha256": hashlib.sha256(crops.tobytes()).hexdigest(),
        "photos": records,
    }
    (OUT_DIR / "photo_crops.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"{len(records)} photos, {len(crops)} crops, "
          f"{(OUT_DIR / 'photo_crops.npz').stat().st_size} bytes")


if __name__ == "__main__":
    main()
