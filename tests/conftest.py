"""Shared fixtures: small real image folders built from bundled photos."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from tfforensics.benchmark.photos import load_photos, random_crops, upsampled


def write_folder(directory, images, suffix=".png"):
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(directory / f"{i:04d}{suffix}")


def make_three_sources(root, count: int = 30, size: int = 32, seed: int = 0):
    """real crops + nearest and bilinear up-sampled crops, one sub-folder each.

    Each class gets its own crops (no content shared between classes), as real and
    generated images never show the same content.
    """
    crops, _ = random_crops(load_photos(), 3 * count, size, seed=seed)
    write_folder(root / "a_real", crops[:count])
    write_folder(root / "b_nearest", upsampled(crops[count:2 * count], "nearest"))
    write_folder(root / "c_bilinear", upsampled(crops[2 * count:], "bilinear"))
    return root


@pytest.fixture(scope="session")
def three_sources(tmp_path_factory):
    return make_three_sources(tmp_path_factory.mktemp("three_sources"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
