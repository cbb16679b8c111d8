"""Image tools on real photos: crop geometry, resize/split counts, perturbation ranges, CLI."""

from __future__ import annotations

import json
import multiprocessing

import cv2
import numpy as np
import pytest
from PIL import Image

from tfforensics.errors import UserError
from tfforensics.benchmark.photos import load_photos
from tfforensics.cli.main import launch
from tfforensics.io.images import BadImageError, load_image
from tfforensics.preprocess import (
    apply_params, crop_celeba, crop_folder, crop_lsun, perturb, perturb_folder, resize_folder, resize_image,
    sample_params, split_folder,
)
from tfforensics.io import parallel
from tfforensics.preprocess import _folder
from tfforensics.preprocess.crop import center_square, crop_window_celeba
from tfforensics.preprocess.perturb import file_rng, read_log


@pytest.fixture(scope="module")
def photos():
    return dict(load_photos())


def _save(array, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _no_leftovers(parent):
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------- crops

def test_celeba_window_is_the_original_one(photos):
    astronaut = photos["astronaut"]  # 512 x 512: window not clipped
    assert crop_window_celeba(512, 512) == (121 + 64 - 128, 89 + 64 - 128, 185, 153)
    np.testing.assert_array_equal(crop_celeba(astronaut), astronaut[57:185, 25:153])
    # CelebA's aligned size 218 x 178: same window
    face = astronaut[:218, :178]
    np.testing.assert_array_equal(crop_celeba(face), astronaut[57:185, 25:153])
    # a 150 x 140 image: the lower-right corner is clipped to the image
    small = astronaut[100:250, 200:340]
    np.testing.assert_array_equal(crop_celeba(small), small[22:150, 12:140])
    # already 128 x 128: unchanged, as the original
    np.testing.assert_array_equal(crop_celeba(astronaut[:128, :128]), astronaut[:128, :128])
    with pytest.raises(ValueError, match="smaller than the 128x128 crop window"):
        crop_celeba(astronaut[:100, :300])


def test_lsun_crop_is_the_centre_square_then_an_anti_aliased_resize(photos):
    chelsea = photos["chelsea"]  # 300 x 451
    # without resizing the crop is the centred 300 x 300 square: columns 75..375
    np.testing.assert_array_equal(crop_lsun(chelsea, size=300), chelsea[:, 75:375])
    tall = np.ascontiguousarray(chelsea.transpose(1, 0, 2))  # 451 x 300
    np.testing.assert_array_equal(crop_lsun(tall, size=300), tall[75:375])
    out = crop_lsun(chelsea)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    square = chelsea[:, 75:375]
    pil = np.asarray(Image.fromarray(square).resize((128, 128), Image.BILINEAR), dtype=float)
    naive = square[::2, ::2][:128, :128].astype(float)  # no filter, wrong scale: far off
    assert np.abs(out - pil).mean() < 2.0
    assert np.abs(out - naive).mean() > 5 * np.abs(out - pil).mean()
    # the original's filter: scikit-image resize, order 1, anti-aliased (OpenCV replica must agree)
    from skimage.transform import resize

    for image in (square, chelsea[:200, 13:213], chelsea[:100, :100], photos["astronaut"][..., :1]):
        side = min(image.shape[:2])
        reference = resize(center_square(image).astype(float), (128, 128), order=1, anti_aliasing=True,
                           preserve_range=True)
        assert side and np.array_equal(crop_lsun(image), np.clip(np.rint(reference), 0, 255).astype(np.uint8))


def test_crop_folder_keeps_names_and_handles_bad_files(tmp_path, photos):
    src = tmp_path / "celeba"
    _save(photos["astronaut"][:218, :178], src / "000001.jpg")
    _save(photos["coffee"][:218, :178], src / "000002.png")
    _save(photos["chelsea"][:100, :100], src / "too_small.png")
    (src / "broken.png").write_bytes(b"not an image")
    with pytest.raises(BadImageError, match="broken.png|too_small.png") as error:
        crop_folder(src, tmp_path / "out", "celeba", progress=False)
    assert "--skip-bad" in str(error.value)
    assert not (tmp_path / "out").exists() and _no_leftovers(tmp_path)

    result = crop_folder(src, tmp_path / "out", "celeba", skip_bad=True, progress=False)
    assert result.written == 2
    assert sorted(s["path"].rsplit("/", 1)[-1] for s in result.skipped) == ["broken.png", "too_small.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == ["000001.png", "000002.png"]
    np.testing.assert_array_equal(load_image(tmp_path / "out" / "000002.png"), photos["coffee"][57:185, 25:153])
    with pytest.raises(UserError, match="--overwrite"):
        crop_folder(src, tmp_path / "out", "celeba", skip_bad=True, progress=False)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_process_pool_gives_the_same_files_and_a_clear_error(tmp_path, photos, monkeypatch, start_method):
    src = tmp_path / "lsun"
    for i, name in enumerate(["coffee", "rocket", "astronaut", "china", "flower", "chelsea"]):
        _save(photos[name], src / f"{i}.png")
    crop_folder(src, tmp_path / "one", "lsun", size=64, workers=1, progress=False)
    monkeypatch.setattr(_folder, "POOL_THRESHOLD", 0)
    monkeypatch.setattr(_folder, "CHUNK_SIZE", 2)
    monkeypatch.setattr(parallel, "pool_context", lambda: multiprocessing.get_context(start_method))
    crop_folder(src, tmp_path / "two", "lsun", size=64, workers=2, progress=False)
    for path in sorted(p for p in (tmp_path / "one").iterdir() if not p.name.startswith(".")):  # the marker is hidden
        np.testing.assert_array_equal(load_image(path), load_image(tmp_path / "two" / path.name))
    (src / "9_empty.png").write_bytes(b"")
    with pytest.raises(BadImageError, match="9_empty.png: is an empty"):
        crop_folder(src, tmp_path / "three", "lsun", size=64, workers=2, progress=False)
    assert not (tmp_path / "three").exists() and _no_leftovers(tmp_path)


# ----------------------------------------------------------------------------- resize / split

def test_resize_image_and_folder(tmp_path, three_sources):
    image = load_image(next((three_sources / "a_real").iterdir()))
    assert resize_image(image, 16).shape == (16, 16, 3)
    assert resize_image(image[..., :1], 16).shape == (16, 16, 1)
    with pytest.raises(ValueError, match="filter"):
        resize_image(image, 16, "cubic-ish")
    result = resize_folder(three_sources, tmp_path / "small", 16, progress=False)
    assert result.written == 90
    files = sorted((tmp_path / "small").rglob("*.png"))
    assert len(files) == 90 and {load_image(f).shape for f in files} == {(16, 16, 3)}
    assert sorted(p.name for p in (tmp_path / "small").iterdir() if not p.name.startswith(".")) == ["a_real", "b_nearest", "c_bilinear"]


def test_split_counts_70_20_10_per_class_and_seeded(tmp_path, three_sources):
    result = split_folder(three_sources, tmp_path / "split", size=16, seed=3, progress=False)
    assert result.details["counts"] == {"train": 63, "dev": 18, "test": 9}
    for cls in ["a_real", "b_nearest", "c_bilinear"]:
        counts = [len(list((tmp_path / "split" / s / cls).iterdir())) for s in ("train", "dev", "test")]
        assert counts == [21, 6, 3]
        names = [{p.name for p in (tmp_path / "split" / s / cls).iterdir()} for s in ("train", "dev", "test")]
        assert set.union(*names) == {p.with_suffix(".png").name for p in (three_sources / cls).iterdir()}
    assert load_image(next((tmp_path / "split" / "dev" / "a_real").iterdir())).shape == (16, 16, 3)
    again = split_folder(three_sources, tmp_path / "again", size=16, seed=3, progress=False)
    other = split_folder(three_sources, tmp_path / "other", size=16, seed=4, progress=False)
    test_files = lambda root: sorted(p.name for p in (root / "test" / "a_real").iterdir())  # noqa: E731
    assert test_files(again.output) == test_files(result.output)
    assert test_files(other.output) != test_files(result.output)


def test_split_flat_folder_copies_files(tmp_path, three_sources):
    result = split_folder(three_sources / "a_real", tmp_path / "flat", fractions=(0.5, 0.3, 0.2), progress=False)
    assert result.details["counts"] == {"train": 15, "dev": 9, "test": 6}
    copied = next((tmp_path / "flat" / "test").iterdir())
    assert copied.read_bytes() == (three_sources / "a_real" / copied.name).read_bytes()


# ----------------------------------------------------------------------------- perturbations

@pytest.fixture(scope="module")
def mid_grey_photo(photos):
    """A 96 x 96 photo crop squeezed into 40..215, so noise is rarely clipped."""
    crop = photos["coffee"][100:196, 200:296].astype(np.float64)
    return np.rint(40 + crop * (175 / 255)).astype(np.uint8)


def test_noise_std_is_drawn_from_5_to_20_and_applied(mid_grey_photo):
    stds = []
    for seed in range(12):
        params = sample_params("noise", np.random.default_rng(seed))
        assert 5.0 <= params["std"] <= 20.0
        out = apply_params(mid_grey_photo, params)
        measured = (out.astype(float) - mid_grey_photo).std()
        assert measured == pytest.approx(params["std"], rel=0.05)
        stds.append(params["std"])
    assert max(stds) - min(stds) > 5  # really drawn, not fixed


def test_blur_kernel_and_sigma(mid_grey_photo):
    kernels = {sample_params("blur", np.random.default_rng(seed))["kernel"] for seed in range(40)}
    assert kernels == {3, 5, 7, 9}
    params = {"kind": "blur", "kernel": 7, "sigma": 4.0}
    out = apply_params(mid_grey_photo, params)
    np.testing.assert_array_equal(out, cv2.GaussianBlur(mid_grey_photo, (7, 7), 4.0))
    sharpness = lambda x: cv2.Laplacian(x.astype(np.float64), cv2.CV_64F).var()  # noqa: E731
    assert sharpness(out) < 0.5 * sharpness(mid_grey_photo)


def test_jpeg_quality_range_and_effect(mid_grey_photo):
    qualities = [sample_params("jpeg", np.random.default_rng(seed))["quality"] for seed in range(200)]
    assert min(qualities) >= 10 and max(qualities) <= 74 and len(set(qualities)) > 30
    errors = []
    for quality in (10, 40, 74):
        out = apply_params(mid_grey_photo, {"kind": "jpeg", "quality": quality})
        assert out.shape == mid_grey_photo.shape and not np.array_equal(out, mid_grey_photo)
        errors.append(np.abs(out.astype(float) - mid_grey_photo).mean())
    assert errors[0] > errors[1] > errors[2] > 0
    # channel order kept: the decoded image is close to the input, not its BGR swap
    out = apply_params(mid_grey_photo, {"kind": "jpeg", "quality": 74})
    assert np.abs(out.astype(float) - mid_grey_photo).mean() < np.abs(out.astype(float) - mid_grey_photo[..., ::-1]).mean()


def test_crop_fraction_and_geometry(mid_grey_photo):
    fractions = [sample_params("crop", np.random.default_rng(seed))["fraction"] for seed in range(50)]
    assert 0.05 <= min(fractions) and max(fractions) <= 0.20
    out = apply_params(mid_grey_photo, {"kind": "crop", "fraction": 0.2})
    assert out.shape == mid_grey_photo.shape
    border = int(96 * 0.2 * 0.5)  # 9 pixels cut on every side
    expected = cv2.resize(mid_grey_photo[border:-border, border:-border], (96, 96), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(out, expected)
    assert np.abs(out.astype(float) - mid_grey_photo).mean() > 3


def test_perturb_is_deterministic_and_combined_steps_are_coin_flips(mid_grey_photo):
    for kind in ("noise", "blur", "jpeg", "crop", "combined", "relight"):
        np.testing.assert_array_equal(perturb(mid_grey_photo, kind, 7), perturb(mid_grey_photo, kind, 7))
    assert not np.array_equal(perturb(mid_grey_photo, "noise", 1), perturb(mid_grey_photo, "noise", 2))
    draws = [sample_params("combined", np.random.default_rng(seed))["steps"] for seed in range(400)]
    for step in ("noise", "blur", "jpeg", "crop"):
        share = np.mean([any(s["kind"] == step for s in steps) for steps in draws])
        assert 0.4 < share < 0.6
    orders = {tuple(s["kind"] for s in steps) for steps in draws if len(steps) == 4}
    assert orders == {("noise", "blur", "jpeg", "crop")}
    with pytest.raises(ValueError, match="kind"):
        perturb(mid_grey_photo, "rotate", 0)


def test_perturb_folder_all_kinds_seeded(tmp_path, three_sources):
    result = perturb_folder(three_sources, tmp_path / "all", "all", probability=1.0, seed=5, limit=4, progress=False)
    assert set(result.details) == {"noise", "blur", "jpeg", "crop", "combined", "relight"}
    for kind in ("noise", "blur", "jpeg", "crop"):
        tree = tmp_path / "all" / kind
        assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == ["a_real", "b_nearest", "c_bilinear"]
        log = read_log(tree)
        assert len(log["files"]) == 12 and all(params["kind"] == kind for params in log["files"].values())
        name = "a_real/0000.png"
        expected = apply_params(load_image(three_sources / name), log["files"][name])
        np.testing.assert_array_equal(load_image(tree / name), expected)
        assert not np.array_equal(expected, load_image(three_sources / name))
    again = perturb_folder(three_sources, tmp_path / "again", "jpeg", probability=1.0, seed=5, limit=4, progress=False)
    for path in sorted((tmp_path / "all" / "jpeg").rglob("*.png")):
        relative = path.relative_to(tmp_path / "all" / "jpeg")
        assert (again.output / relative).read_bytes() == path.read_bytes()
    # a file's parameters depend on its own name, not on the rest of the folder
    assert file_rng(5, "noise", "a/b.png").random() == file_rng(5, "noise", "a/b.png").random()


def test_perturb_probability_half_leaves_the_rest_unchanged(tmp_path, three_sources):
    perturb_folder(three_sources / "a_real", tmp_path / "half", "noise", seed=0, progress=False)
    log = read_log(tmp_path / "half")
    perturbed = [name for name, params in log["files"].items() if params]
    assert 8 <= len(perturbed) <= 22  # 30 coin flips
    untouched = next(name for name, params in log["files"].items() if params is None)
    np.testing.assert_array_equal(load_image(tmp_path / "half" / untouched), load_image(three_sources / "a_real" / untouched))


def _original_script(mode, folders, seed):
    """What ``create_perturbed_imagedata.py MODE DIR...`` writes after ``np.random.seed(seed)``.

    Written here from the original's documented behaviour, independently of the package:
    the global NumPy stream, one coin ``sample() > .5`` per image, ``combined`` rotating its
    four functions, OpenCV's JPEG with the quality passed as a flag id.
    """
    np.random.seed(seed)

    def noise(image):
        variance = np.random.uniform(low=5., high=20.)
        return np.clip(image.astype(np.float64) + variance * np.random.randn(*image.shape), 0., 255.).astype(np.uint8)

    def blur(image):
        k = np.random.choice([3, 5, 7, 9])
        return cv2.GaussianBlur(image, (k, k), sigmaX=cv2.BORDER_DEFAULT)

    def jpeg(image):
        _, data = cv2.imencode(".jpg", image, [np.random.randint(low=10, high=75), 90])
        return cv2.imdecode(data, 1)

    def cropping(image):
        share = np.random.uniform(low=.05, high=.2)
        x, y, _ = image.shape
        return cv2.resize(image[int(x * share * .5):-int(x * share * .5), int(y * share * .5):-int(y * share * .5)],
                          dsize=(x, y), interpolation=cv2.INTER_CUBIC)

    functions = {"noise": [noise], "blur": [blur], "jpeg": [jpeg], "cropping": [cropping],
                 "combined": [noise, blur, jpeg, cropping]}[mode]
    out = {}
    for folder in folders:
        for i, path in enumerate(sorted(folder.glob("*.png"))):
            function = functions.pop(0)
            image = np.asarray(Image.open(path))
            if np.random.sample() > .5:
                image = function(image)
            functions.append(function)
            out[f"{folder.name}/{mode}_{i:06}.png"] = image
    return out


@pytest.fixture(scope="module")
def sources_64(tmp_path_factory):
    """64 px crops: the original's cropping cuts 0 pixels (and fails) below 40 px."""
    from conftest import make_three_sources

    return make_three_sources(tmp_path_factory.mktemp("sources_64"), count=10, size=64, seed=2)


@pytest.mark.parametrize("mode", ["noise", "blur", "jpeg", "cropping", "combined"])
def test_perturb_compat_original_equals_the_original_script(tmp_path, sources_64, mode):
    three_sources = sources_64
    folders = sorted(p for p in three_sources.iterdir() if p.is_dir())
    expected = _original_script(mode, folders, seed=3)
    result = perturb_folder(three_sources, tmp_path / mode, mode, seed=3, compat="original", progress=False)
    written = {p.relative_to(result.output).as_posix(): p for p in result.output.rglob("*.png")}
    assert sorted(written) == sorted(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(np.asarray(Image.open(written[name])), array, err_msg=name)
    changed = sum(not np.array_equal(np.asarray(Image.open(written[n])), np.asarray(Image.open(three_sources / n.split("/")[0] / f"{int(n[-10:-4]):04d}.png")))
                  for n in expected)
    assert 0.25 * len(expected) < changed < 0.75 * len(expected)  # one coin per image
    log = read_log(result.output)
    assert log["compat"] == "original" and len(log["files"]) == len(expected)
    if mode == "jpeg":
        assert {e["params"]["quality"] for e in log["files"].values() if e["params"]} == {95}


def test_perturb_compat_original_all_runs_one_stream_in_the_original_order(tmp_path, sources_64, three_sources):
    result = perturb_folder(sources_64 / "a_real", tmp_path / "all", "all", seed=1, limit=3, compat="original",
                            progress=False)
    assert list(result.details) == ["noise", "blur", "crop", "jpeg", "combined"]
    assert sorted(p.name for p in (result.output / "crop").glob("*.png")) == [f"cropping_{i:06}.png" for i in range(3)]
    with pytest.raises(UserError, match="relight"):
        perturb_folder(three_sources, tmp_path / "r", "relight", compat="original", progress=False)


# ----------------------------------------------------------------------------- CLI

def test_cli_commands_run(tmp_path, three_sources, photos):
    faces = tmp_path / "faces"
    for i, name in enumerate(["astronaut", "grace_hopper", "coffee"]):
        _save(photos[name][:218, :178], faces / f"{i}.jpg")
    assert launch(["crop", "celeba", str(faces), str(tmp_path / "c128"), "-q"]) == 0
    assert {load_image(p).shape for p in (tmp_path / "c128").iterdir() if not p.name.startswith(".")} == {(128, 128, 3)}
    assert launch(["crop", "lsun", str(faces), str(tmp_path / "l32"), "--size", "32", "-q"]) == 0
    assert launch(["resize", str(three_sources), str(tmp_path / "r8"), "--size", "8", "-q"]) == 0
    assert launch(["split", str(three_sources), str(tmp_path / "s"), "--size", "8", "--seed", "1", "-q"]) == 0
    assert len(list((tmp_path / "s" / "train").rglob("*.png"))) == 63
    assert launch(["perturb", "blur", str(three_sources), str(tmp_path / "p"), "--limit", "2", "-p", "1", "-q"]) == 0
    assert json.loads((tmp_path / "p" / "perturbations.json").read_text())["kind"] == "blur"
    assert launch(["perturb", "cropping", str(three_sources), str(tmp_path / "pc"), "--limit", "2", "-q"]) == 0
    assert json.loads((tmp_path / "pc" / "perturbations.json").read_text())["kind"] == "crop"
    assert launch(["perturb", "noise", str(three_sources), str(tmp_path / "po"), "--limit", "2", "--compat",
                   "original", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "po" / "a_real").iterdir()) == ["noise_000000.png", "noise_000001.png"]
    for command in ("crop", "resize", "split", "perturb", "stats", "mean-var"):
        with pytest.raises(SystemExit) as exit_info:
            launch([command, "--help"])
        assert exit_info.value.code == 0


def test_cli_bad_file_is_one_line_or_skipped(tmp_path, three_sources, capsys, caplog):
    src = tmp_path / "src"
    _save(load_image(three_sources / "a_real" / "0000.png"), src / "good.png")
    png = (three_sources / "a_real" / "0001.png").read_bytes()
    (src / "truncated.png").write_bytes(png[: len(png) // 2])
    assert launch(["resize", str(src), str(tmp_path / "out"), "--size", "8", "-q"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "truncated.png" in error and "--skip-bad" in error
    assert not (tmp_path / "out").exists()
    assert launch(["resize", str(src), str(tmp_path / "out"), "--size", "8", "-q", "--skip-bad"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")] == ["good.png"]
    assert "truncated.png" in caplog.text


def test_bad_image_error_survives_pickling():
    """A worker's BadImageError must cross the process boundary (else a Pool hangs)."""
    import pickle

    error = pickle.loads(pickle.dumps(BadImageError("a.png", "is broken", "replace it")))
    assert (error.path, error.reason, error.fix, str(error)) == ("a.png", "is broken", "replace it", "a.png: is broken; replace it.")


def test_root_help_lists_the_image_tools(capsys):
    from tfforensics.cli.main import COMMANDS

    assert {"crop", "resize", "split", "perturb", "stats", "mean_var"} <= set(COMMANDS)
    with pytest.raises(SystemExit):
        launch(["--help"])
    listing = capsys.readouterr().out
    for command in ("crop", "resize", "split", "perturb", "stats", "mean-var"):
        assert f"    {command} " in listing
