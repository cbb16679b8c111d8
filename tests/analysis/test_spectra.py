"""DCT spectrum statistics and mean/var files on real crops and their up-sampled versions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft
from PIL import Image

from tfforensics.errors import UserError
from tfforensics.analysis.spectra import (
    compute_spectra, load_mean_var, mean_var_from_dataset, mean_var_from_folders, spectrum_stats,
)
from tfforensics.cli.main import launch
from tfforensics.data.splits import scan_classes, split_classes
from tfforensics.io.images import BadImageError, load_image


def _stack(folder, grayscale=True, limit=None):
    return np.stack([load_image(p, grayscale=grayscale) for p in sorted(folder.iterdir())[:limit]]).astype(float)


def _dct(images):
    return scipy.fft.dct(scipy.fft.dct(images, type=2, norm="ortho", axis=1), type=2, norm="ortho", axis=2)


@pytest.fixture(scope="module")
def spectra_dir(tmp_path_factory, three_sources):
    out = tmp_path_factory.mktemp("spectra") / "out"
    result = spectrum_stats([three_sources], out, progress=False)
    return out, result


def test_stats_equal_a_direct_computation(spectra_dir, three_sources):
    _, result = spectra_dir
    assert result.names == ["a_real", "b_nearest", "c_bilinear"] and result.counts == [30, 30, 30]
    for index, name in enumerate(result.names):
        coefficients = _dct(_stack(three_sources / name))
        np.testing.assert_allclose(result.means[index], coefficients.mean(axis=0), atol=1e-9)
        np.testing.assert_allclose(result.stds[index], coefficients.std(axis=0), atol=1e-9)
    np.testing.assert_allclose(result.mean_differences[0],
                               np.log(np.abs(result.means[0]) + 1e-12) - np.log(np.abs(result.means[1]) + 1e-12))


def test_nearest_upsampling_shows_at_the_half_frequency(spectra_dir):
    """Nearest 2x up-sampling repeats pixel pairs, which zeroes DCT row and column N/2 exactly."""
    _, result = spectra_dir
    real, nearest, bilinear = result.stds[..., 0]
    half = real.shape[0] // 2
    assert nearest[half].max() < 1e-6 and nearest[:, half].max() < 1e-6
    assert real[half].min() > 0.05 and bilinear[half].min() > 0.01
    difference = result.mean_differences[0, ..., 0]  # log|mean real| - log|mean nearest|
    others = np.delete(np.delete(difference, half, axis=0), half, axis=1)
    assert difference[half].mean() > 15 and difference[:, half].mean() > 15
    assert np.median(np.abs(others)) < 3
    top = json.loads(json.dumps(result.summary()))["sources"][1]["largest_differences"]
    assert all(entry["row"] == half or entry["col"] == half for entry in top)
    # bilinear interpolation is a low-pass: less energy in the highest frequencies than the real crops
    assert np.log(bilinear[half:, half:]).mean() < np.log(real[half:, half:]).mean() - 1


def test_stats_writes_png_pdf_and_numbers(spectra_dir):
    out, result = spectra_dir
    plots = out / "inferno"
    for stem in ("mean_a_real", "std_c_bilinear", "mean_difference_b_nearest", "mean_difference_abs_c_bilinear",
                 "mean_ratio_b_nearest"):
        assert (plots / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (plots / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (plots / "mean_difference_a_real.png").exists()  # no difference of the reference to itself
    assert Image.open(out / "overview.png").size[0] > 500
    with np.load(out / "spectra.npz") as data:
        np.testing.assert_allclose(data["mean"], result.means)
        assert data["mean_difference"].shape == (2, 32, 32, 1)
    summary = json.loads((out / "spectra.json").read_text())
    assert summary["reference"] == "a_real" and [s["images"] for s in summary["sources"]] == [30, 30, 30]


def test_color_amount_names_and_per_channel_plots(tmp_path, three_sources):
    sources = [f"{three_sources / 'a_real'},REAL", f"{three_sources / 'c_bilinear'},BILINEAR"]
    result = spectrum_stats(sources, tmp_path / "color", amount=7, color=True, formats=("png",), progress=False)
    assert result.names == ["REAL", "BILINEAR"] and result.counts == [7, 7] and result.means.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(result.means[1], _dct(_stack(three_sources / "c_bilinear", False, 7)).mean(axis=0),
                               atol=1e-9)
    names = {p.name for p in (tmp_path / "color" / "inferno").iterdir()}
    assert {"mean_REAL_red.png", "mean_REAL_green.png", "mean_REAL_blue.png", "mean_difference_BILINEAR_blue.png"} <= names
    assert not any(name.endswith(".pdf") for name in names)


def test_mismatched_sizes_are_bad_images(tmp_path, three_sources):
    src = tmp_path / "src"
    src.mkdir()
    for path in sorted((three_sources / "a_real").iterdir())[:5]:
        (src / path.name).write_bytes(path.read_bytes())
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(src / "zz_small.png")
    with pytest.raises(BadImageError, match="zz_small.png: is 20x20 pixels but the first images are 32x32"):
        compute_spectra([src], progress=False)
    result = compute_spectra([src], skip_bad=True, progress=False)
    assert result.counts == [5] and result.skipped[0]["path"].endswith("zz_small.png")


def test_mean_var_of_folders_follows_the_train_split(tmp_path, three_sources):
    info = mean_var_from_folders(three_sources, tmp_path / "mv", log=True, seed=2, progress=False)
    mean, var = load_mean_var(tmp_path / "mv")
    train = split_classes(scan_classes(three_sources), seed=2)["train"]
    images = np.stack([load_image(path) for path, _ in train]).astype(float)
    values = np.log(np.abs(_dct(images)) + 1e-12)
    assert info["count"] == 63 and mean.shape == (32, 32, 3)
    np.testing.assert_allclose(mean, values.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(var, values.var(axis=0), atol=1e-8)
    # the original's form: the first AMOUNT images of each folder, raw DCT of RGB
    mean_var_from_folders([three_sources / "a_real", three_sources / "b_nearest"], tmp_path / "orig", amount=4,
                          progress=False)
    mean, var = load_mean_var(tmp_path / "orig")
    images = np.concatenate([_stack(three_sources / "a_real", False, 4), _stack(three_sources / "b_nearest", False, 4)])
    np.testing.assert_allclose(mean, _dct(images).mean(axis=0), atol=1e-9)
    with pytest.raises(UserError, match="--overwrite"):
        mean_var_from_folders(three_sources, tmp_path / "mv", progress=False)


def test_mean_var_of_a_prepared_dataset(tmp_path, three_sources):
    from tfforensics.data import Encoding, as_numpy, prepare

    plain = prepare(three_sources, tmp_path / "ds", Encoding(log=True), workers=1, progress=False)
    info = mean_var_from_dataset(plain.root, tmp_path / "mv", progress=False)
    x, _ = as_numpy(plain.root, "train")
    mean, var = load_mean_var(tmp_path / "mv")
    assert info["count"] == len(x) == 63
    np.testing.assert_allclose(mean, x.astype(float).mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, x.astype(float).var(axis=0), rtol=1e-4, atol=1e-5)
    normalized = prepare(three_sources, tmp_path / "dsn", Encoding(log=True, normalize=True), workers=1, progress=False)
    mean_var_from_dataset(normalized.root, tmp_path / "mvn", progress=False)
    statistics = normalized.load_statistics()
    mean, var = load_mean_var(tmp_path / "mvn")
    np.testing.assert_allclose(mean, statistics["mean"])
    np.testing.assert_allclose(var, np.square(statistics["std"].astype(float)))
    np.testing.assert_allclose(mean, load_mean_var(tmp_path / "mv")[0], rtol=1e-4, atol=1e-4)  # same train split
    assert launch(["mean-var", str(normalized.root), "-o", str(tmp_path / "cli_mv"), "-q"]) == 0
    assert (tmp_path / "cli_mv" / "var.npy").is_file()


def test_cli_stats_and_mean_var(tmp_path, three_sources, capsys):
    real, nearest = three_sources / "a_real", three_sources / "b_nearest"
    assert launch(["stats", f"{real},REAL", f"{nearest},NN", "-o", str(tmp_path / "st"), "-n", "10", "-q"]) == 0
    assert (tmp_path / "st" / "inferno" / "mean_difference_NN.pdf").is_file()
    assert launch(["mean-var", str(three_sources), "-o", str(tmp_path / "mv"), "--log", "--grayscale", "-q"]) == 0
    assert np.load(tmp_path / "mv" / "mean.npy").shape == (32, 32, 1)
    assert launch(["stats", str(tmp_path / "missing"), "-o", str(tmp_path / "x"), "-q"]) == 2
    assert "missing: source folder not found" in capsys.readouterr().err
    assert launch(["stats", f"{real},REAL", f"{nearest},NN", "-o", str(tmp_path / "five"), "-n", "4", "--cmap",
                   "original", "--format", "png", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "five").iterdir() if p.is_dir()) == sorted(
        ["inferno", "Spectral", "spring", "jet", "coolwarm"])
    assert launch(["stats", f"{real},REAL", "-o", str(tmp_path / "bad"), "--cmap", "nosuchmap", "-q"]) == 2
    assert "unknown matplotlib colour map 'nosuchmap'" in capsys.readouterr().err
