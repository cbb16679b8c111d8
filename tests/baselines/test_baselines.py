"""Baselines: PRNU against the per-image procedure, sklearn contracts, search, resume, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from tfforensics.baselines import PRNUClassifier, SubsetPCA, load_estimator, make_eigenfaces, make_knn, save_estimator
from tfforensics.baselines import prnu, search
from tfforensics.baselines.knn import knn_grid
from tfforensics.benchmark.photos import load_photos, random_crops
from prnu_reference import fingerprint_loop, residual_single, residuals_loop
from tfforensics.cli.main import launch
from tfforensics.data import Encoding, prepare

REPO = Path(__file__).resolve().parents[2]


@parametrize_with_checks([PRNUClassifier(1, sigma=1.0), SubsetPCA(n_components=0.9, fit_size=20),
                          SubsetPCA(n_components=0.9, fit_size=20, svd_solver="gram")])
def test_sklearn_contract(estimator, check):
    check(estimator)


# ## PRNU residual and fingerprint

@pytest.fixture(scope="module")
def photo_crops():
    crops, _ = random_crops(load_photos(), 24, 48, seed=5)
    return crops[crops.reshape(len(crops), -1).std(axis=1) > 2][:12]  # flat crops have no residual


def _relative_error(actual, expected):
    actual, expected = actual.reshape(len(actual), -1), expected.reshape(len(expected), -1)
    return np.linalg.norm(actual - expected, axis=1) / np.linalg.norm(expected, axis=1)


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("sigma", [0.05, 0.5, 3.0])
def test_residual_equals_per_image_procedure(photo_crops, levels, sigma):
    expected = residuals_loop(photo_crops, levels, sigma)
    actual = prnu.residuals(photo_crops, levels, sigma)
    assert actual.shape == expected.shape == photo_crops.shape[:3]
    assert np.abs(expected).max() > 1e-3  # a real residual, not zeros
    assert _relative_error(actual, expected).max() < 1e-3
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-3 * np.abs(expected).max())


def test_residual_grayscale_and_single_image(photo_crops):
    gray = photo_crops.mean(axis=-1, keepdims=True).round().astype(np.uint8)
    assert _relative_error(prnu.residuals(gray, 2, 0.8), residuals_loop(gray, 2, 0.8)).max() < 1e-3
    single = prnu.residuals(photo_crops[:1], 3, 0.3)[0]
    np.testing.assert_allclose(single, residual_single(photo_crops[0], 3, 0.3), atol=1e-3 * np.abs(single).max())


def test_residual_chunking_does_not_change_values(photo_crops, monkeypatch):
    whole = prnu.residuals(photo_crops, 2, 0.5)
    monkeypatch.setattr(prnu, "CHUNK_VALUES", 1)  # one image per chunk
    np.testing.assert_array_equal(prnu.residuals(photo_crops, 2, 0.5), whole)


def test_mean_fingerprint_is_mean_residual(photo_crops):
    expected = residuals_loop(photo_crops, 2, 0.5).mean(axis=0)
    actual = prnu.fingerprint(photo_crops, 2, 0.5, method="mean", batch_size=5)
    np.testing.assert_allclose(actual, expected, atol=1e-3 * np.abs(expected).max())


def test_mle_fingerprint_equals_per_image_procedure(photo_crops):
    images = photo_crops.copy()
    images[:4, 10:20, 10:30] = 255  # saturated, flat patches are masked out of the estimate
    images[4:6, :, :8, 0] = 253
    expected = fingerprint_loop(images, 3, 0.7)
    actual = prnu.fingerprint(images, 3, 0.7, batch_size=5)
    assert np.linalg.norm(actual - expected) / np.linalg.norm(expected) < 1e-3
    np.testing.assert_allclose(actual, expected, atol=1e-3 * np.abs(expected).max())


def test_intensity_weights_follow_the_toolbox():
    images = np.full((2, 4, 4, 1), 100, dtype=np.uint8)
    images[1] = 255  # flat and saturated: masked out
    images[1, 0, 0, 0] = 10
    weights = prnu.intensity_weights(images)
    np.testing.assert_allclose(weights[0], (100 / 252) ** 2)
    assert weights[1, 1, 1, 0] == 0
    assert weights[1, 0, 0, 0] == pytest.approx((10 / 252) ** 2)


def test_prnu_attributes_synthetic_sensor_patterns():
    """Images multiplied by one of three sensor patterns are attributed to the right one."""
    crops, _ = random_crops(load_photos(), 90, 48, seed=3)
    patterns = np.random.default_rng(0).normal(0, 0.03, size=(3, 48, 48, 1))
    y = np.arange(90) % 3
    X = np.clip(crops * (1 + patterns[y]), 0, 255).astype(np.float32)
    for method in ("mle", "mean"):
        clf = PRNUClassifier(4, sigma=3.0, fingerprint=method).fit(X[:60], y[:60])
        assert clf.fingerprints_.shape == (3, 48, 48)
        assert clf.score(X[60:], y[60:]) >= 0.9
        flat = PRNUClassifier(4, sigma=3.0, fingerprint=method, image_shape=(48, 48, 3)).fit(X[:60].reshape(60, -1), y[:60])
        np.testing.assert_allclose(flat.fingerprints_, clf.fingerprints_)
        np.testing.assert_array_equal(flat.predict(X[60:].reshape(30, -1)), clf.predict(X[60:]))


def test_prnu_rejects_wrong_shapes():
    X = np.random.default_rng(0).uniform(0, 255, size=(6, 8, 8, 1))
    with pytest.raises(ValueError, match=r"`image_shape` must be .* Received: image_shape=\(5, 5\)"):
        PRNUClassifier(1, image_shape=(5, 5)).fit(X.reshape(6, -1), [0, 1] * 3)
    clf = PRNUClassifier(1).fit(X, [0, 1] * 3)
    with pytest.raises(ValueError, match="fitted on"):
        clf.predict(X.reshape(6, 4, 16, 1))


# ## Eigenfaces and kNN

def test_subset_pca_fits_on_balanced_first_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = np.repeat([0, 1], 20)
    pca = SubsetPCA(n_components=3, fit_size=10).fit(X, y)
    rows = np.r_[0:5, 20:25]
    np.testing.assert_allclose(pca.mean_, X[rows].mean(axis=0))
    assert pca.n_samples_ == 10
    assert pca.fit_transform(X, y).shape == (40, 3)
    np.testing.assert_allclose(SubsetPCA(n_components=3, fit_size=10).fit(X).mean_, X[:10].mean(axis=0))


@pytest.mark.parametrize("solver", ["full", "gram"])
@pytest.mark.parametrize("shape", [(60, 200), (200, 30)])  # wide (SVD of the rows) and tall
def test_truncated_pca_equals_a_fit_with_that_target(shape, solver):
    """One fit with all components, cut to each target, is array for array the direct fit."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=shape) * rng.uniform(0.1, 3, size=shape[1])).astype(np.float32)
    y = np.arange(shape[0]) % 3
    full = SubsetPCA(None, fit_size=45, svd_solver=solver).fit(X, y)
    for target in (0.25, 0.5, 0.75, 0.95, 0.999, 5, None):
        direct, cut = SubsetPCA(target, fit_size=45, svd_solver=solver).fit(X, y), full.truncate(target)
        assert vars(direct).keys() == vars(cut).keys()
        for name, value in vars(direct).items():
            if isinstance(value, np.ndarray):
                assert value.dtype == getattr(cut, name).dtype
                np.testing.assert_array_equal(getattr(cut, name), value)
            else:
                assert (getattr(cut, name), type(getattr(cut, name))) == (value, type(value)), name
        np.testing.assert_array_equal(cut.transform(X), direct.transform(X))
    assert full.truncate(0.5).n_components_ < full.truncate(0.95).n_components_ < full.n_components_
    with pytest.raises(ValueError, match="fitted with n_components=None"):
        SubsetPCA(0.5).fit(X, y).truncate(0.25)


@pytest.mark.parametrize("shape", [(80, 300), (300, 40)])
def test_gram_solver_is_the_full_svd(shape):
    """``svd_solver="gram"`` (float64 eigh of the smaller product) gives sklearn's full-SVD PCA:
    the same variances, the same components up to rounding, the same projections."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=shape) * np.geomspace(10, 0.01, shape[1])
    for target in (0.5, 0.95, 12):
        full, gram = PCA(target, svd_solver="full").fit(X), SubsetPCA(target, fit_size=None, svd_solver="gram").fit(X)
        assert gram.n_components_ == full.n_components_
        for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_"):
            np.testing.assert_allclose(getattr(gram, name), getattr(full, name), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gram.components_, full.components_, atol=1e-8)
        np.testing.assert_allclose(gram.transform(X), full.transform(X), atol=1e-8)
        assert gram.noise_variance_ == pytest.approx(full.noise_variance_, rel=1e-9)
    # rows fewer than features: the centred rows' null direction is a zero component, never kept
    wide = SubsetPCA(None, fit_size=None, svd_solver="gram").fit(X[:20] if shape[0] < shape[1] else X[:, :20].T)
    assert not np.any(wide.components_[-1]) and wide.explained_variance_ratio_[-1] == pytest.approx(0, abs=1e-12)


def test_grids_follow_the_original():
    assert knn_grid(10_000)["n_neighbors"] == [1, 3, 5, 9, 17, 33, 65, 129, 257, 513, 1025]
    assert knn_grid(63)["n_neighbors"] == [1, 3, 5, 9, 17, 33]
    assert search.METHODS["prnu"].grid(10)["sigma"] == [round(0.05 * i, 2) for i in range(1, 20)]
    assert search.METHODS["prnu"].grid(10)["levels"] == [1, 2, 3, 4]
    assert search.METHODS["eigenfaces"].grid(10) == {"pca__n_components": [0.25, 0.5, 0.75, 0.95],
                                                     "svm__C": [1e-4, 1e-3, 1e-2, 1e-1]}
    with pytest.raises(ValueError, match="no k"):
        knn_grid(0)


def test_models_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 255, size=(30, 64)).astype(np.float32)
    y = np.array(["real", "gan", "other"] * 10)
    models = {
        "knn": make_knn(3).fit(X, y),
        "eigenfaces": make_eigenfaces(0.9, 0.1, pca_fit_size=20).fit(X, y),
        "prnu": PRNUClassifier(2, sigma=0.5, image_shape=(8, 8)).fit(X, y),
    }
    for name, model in models.items():
        path = save_estimator(tmp_path / f"{name}.npz", model, {"method": name})
        loaded, info = load_estimator(path)
        assert info == {"method": name}
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        with np.load(path, allow_pickle=False) as data:  # loads without pickle
            assert data.files
    with pytest.raises(FileNotFoundError, match="baselines train"):
        load_estimator(tmp_path / "missing.npz")


def test_knn_files_store_pixel_rows_as_uint8_losslessly(tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(200, 192)).astype(np.float32) / np.float32(127.5) - np.float32(1)
    y = rng.integers(0, 3, size=200)
    model = make_knn(3).fit(pixels[:150], y[:150])
    path = save_estimator(tmp_path / "knn.npz", model)
    with np.load(path, allow_pickle=False) as data:
        assert data["fit_X"].dtype == np.uint8 and data["fit_X.table"].dtype == np.float32
    assert path.stat().st_size < 0.3 * pixels[:150].nbytes
    loaded, _ = load_estimator(path)
    assert loaded._fit_X.dtype == np.float32
    np.testing.assert_array_equal(loaded._fit_X, pixels[:150])  # bit for bit
    np.testing.assert_array_equal(loaded.predict(pixels[150:]), model.predict(pixels[150:]))


def test_knn_files_store_float_rows_as_float16(tmp_path):
    """Normalised (DCT-like) rows: float16, half the bytes; predictions agree except where
    two neighbours' distances are within the float16 rounding (none here)."""
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 3, size=(3, 256))
    y = rng.integers(0, 3, size=400)
    X = (centres[y] + rng.normal(0, 4, size=(400, 256))).astype(np.float32)
    model = make_knn(5).fit(X[:300], y[:300])
    path = save_estimator(tmp_path / "knn.npz", model)
    with np.load(path, allow_pickle=False) as data:
        assert data["fit_X"].dtype == np.float16
    assert path.stat().st_size < 0.55 * X[:300].nbytes
    loaded, _ = load_estimator(path)
    assert loaded._fit_X.dtype == np.float32
    assert np.abs(loaded._fit_X - X[:300]).max() <= 2.0**-11 * np.abs(X[:300]).max()
    np.testing.assert_array_equal(loaded.predict(X[300:]), model.predict(X[300:]))
    wide = rng.uniform(-1e6, 1e6, size=(300, 2)).astype(np.float32)  # beyond float16: stored as it is
    save_estimator(tmp_path / "wide.npz", make_knn(1).fit(wide, y[:300]))
    with np.load(tmp_path / "wide.npz", allow_pickle=False) as data:
        assert data["fit_X"].dtype == np.float32
    np.testing.assert_array_equal(load_estimator(tmp_path / "wide.npz")[0]._fit_X, wide)


def test_knn_files_of_format_version_1_still_load(tmp_path):
    """Version 1 stored the float32 rows as they are, with no encoding entry: such files load unchanged."""
    import json

    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(60, 8)).astype(np.float32), rng.integers(0, 2, size=60)
    model = make_knn(3).fit(X, y)
    path = save_estimator(tmp_path / "v2.npz", model)
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    header = json.loads(str(arrays.pop("__header__")))
    header["format_version"] = 1
    state = header["estimator"]["state"]["fit_X"]
    state.pop("encoding")
    arrays["fit_X"] = X  # the float32 rows, as version 1 wrote them
    np.savez(tmp_path / "v1.npz", __header__=np.array(json.dumps(header)), **arrays)
    loaded, _ = load_estimator(tmp_path / "v1.npz")
    np.testing.assert_array_equal(loaded._fit_X, X)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# ## On prepared datasets (the 3-source set)

@pytest.fixture(scope="module")
def prepared(three_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    raw = prepare(three_sources, root / "raw", Encoding(transform="raw", color=True), workers=1, progress=False)
    dct = prepare(three_sources, root / "dct", Encoding(transform="dct", log=True, color=True), workers=1, progress=False)
    return {"raw": raw.root, "dct": dct.root}


def test_to_pixels_inverts_the_raw_encoding(prepared, three_sources):
    X, y, manifest = search.load_split(prepared["raw"], "train", search.METHODS["prnu"])
    assert X.min() >= -1e-3 and X.max() <= 255 + 1e-3
    np.testing.assert_allclose(X, np.round(X), atol=1e-3)  # whole pixel values again
    with pytest.raises(ValueError, match="prepare --raw"):
        search.load_split(prepared["dct"], "train", search.METHODS["prnu"])


@pytest.mark.parametrize("method,encoding", [("knn", "raw"), ("knn", "dct"), ("eigenfaces", "raw"),
                                             ("eigenfaces", "dct"), ("prnu", "raw")])
def test_each_baseline_reports_a_test_accuracy(prepared, tmp_path, method, encoding):
    row = search.grid_search(method, prepared[encoding], tmp_path, n_jobs=1, progress=False)
    assert 0 <= row["val_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
    results = json.loads(search.results_path(tmp_path, method).read_text())
    (entry,) = results["datasets"].values()
    expected_points = {"knn": 6, "eigenfaces": 16, "prnu": 76}[method]  # kNN: k <= 63 training images
    assert len(entry["points"]) == expected_points
    assert entry["best"]["params"] == row["params"]
    assert row["val_accuracy"] == max(p["val_accuracy"] for p in entry["points"].values())
    again = search.test(method, prepared[encoding], tmp_path)  # reload the saved model
    assert again["test_accuracy"] == row["test_accuracy"]
    if encoding == "dct" and method == "knn":
        assert row["test_accuracy"] >= 0.6  # up-sampling leaves DCT peaks that a 1-NN finds (chance: 1/3)
    print(f"{method}/{encoding}: val {row['val_accuracy']:.3f} test {row['test_accuracy']:.3f} {row['params']}")


def test_eigenfaces_search_equals_plain_grid_search(prepared, tmp_path):
    """One SVD per fold gives the scores, best point and refitted model of GridSearchCV
    over the plain pipeline (which fits the PCA for every point)."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    spec = search.METHODS["eigenfaces"]
    X_train, y_train, _ = search.load_split(prepared["dct"], "train", spec)
    X_val, y_val, _ = search.load_split(prepared["dct"], "val", spec)
    X_test, _, _ = search.load_split(prepared["dct"], "test", spec)
    grid = {"pca__n_components": [0.25, 0.5, 0.95], "svm__C": [1e-4, 1e-1]}  # 3 cuts of one SVD
    split = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
    plain = GridSearchCV(make_eigenfaces(), grid, cv=split, refit=False).fit(np.concatenate([X_train, X_val]),
                                                                             np.concatenate([y_train, y_val]))
    row = search.grid_search("eigenfaces", prepared["dct"], tmp_path, grid=grid, n_jobs=2, progress=False)
    (entry,) = json.loads(search.results_path(tmp_path, "eigenfaces").read_text())["datasets"].values()
    scores = plain.cv_results_["mean_test_score"]
    assert len(set(scores)) > 1  # the grid points differ, so the comparison means something
    for params, score in zip(plain.cv_results_["params"], scores):
        point = entry["points"][search.point_key(params)]
        assert point["val_accuracy"] == score, params
        assert point["converged"] is True
    assert row["params"] == plain.best_params_
    assert row["val_accuracy"] == plain.best_score_
    model, _ = load_estimator(row["model"])  # the refit cut the search's SVD: same model as a plain fit
    direct = make_eigenfaces().set_params(**row["params"]).fit(X_train, y_train)
    np.testing.assert_array_equal(model.named_steps["pca"].components_, direct.named_steps["pca"].components_)
    # the search reached the SVM warm-started along C: the same minimiser, other rounding
    scale = np.abs(direct.named_steps["svm"].coef_).max()
    np.testing.assert_allclose(model.named_steps["svm"].coef_, direct.named_steps["svm"].coef_, rtol=0, atol=1e-12 * scale)
    assert model.named_steps["svm"].get_params() == direct.named_steps["svm"].get_params()
    np.testing.assert_array_equal(model.predict(X_test), direct.predict(X_test))


def test_knn_search_equals_plain_grid_search(prepared, tmp_path):
    """One neighbour search at the largest k gives every point's val accuracy and the best
    point of GridSearchCV over plain KNeighborsClassifier fits."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    spec = search.METHODS["knn"]
    X_train, y_train, _ = search.load_split(prepared["raw"], "train", spec)
    X_val, y_val, _ = search.load_split(prepared["raw"], "val", spec)
    grid = {"n_neighbors": [1, 2, 3, 4, 5, 9, 17, 33]}  # even k: tied votes go to the first class
    split = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
    plain = GridSearchCV(make_knn(), grid, cv=split, refit=False).fit(np.concatenate([X_train, X_val]),
                                                                      np.concatenate([y_train, y_val]))
    row = search.grid_search("knn", prepared["raw"], tmp_path, grid=grid, n_jobs=1, progress=False)
    (entry,) = json.loads(search.results_path(tmp_path, "knn").read_text())["datasets"].values()
    scores = plain.cv_results_["mean_test_score"]
    assert len(set(scores)) > 1
    for params, score in zip(plain.cv_results_["params"], scores):
        point = entry["points"][search.point_key(params)]
        assert point["val_accuracy"] == score, params
        assert point["shared_neighbours_k"] == 33
    assert row["params"] == plain.best_params_ and row["val_accuracy"] == plain.best_score_


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_jobs_vote_like_scikit_learn_with_ties(weights):
    """Four classes and small k: many votes tie; each point's accuracy is the plain fit's.
    (Exactly equal distances are another matter: which of two tied neighbours scikit-learn
    keeps depends on k itself, so there the shared search may keep the other one.)"""
    from sklearn.model_selection import PredefinedSplit

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.repeat(np.array([2, 5, 7, 11]), 75)[rng.permutation(300)]  # classes that are not 0..n-1
    cv = PredefinedSplit(np.r_[np.full(200, -1), np.zeros(100, dtype=int)])
    points = [{"n_neighbors": k, "weights": weights} for k in (1, 2, 3, 4, 6, 8)]
    results = [job[0](*job[1], **job[2]) for job in search._knn_jobs(make_knn(), points, X, y, cv, {})]
    assert len(results) == len(points)
    for result in results:
        expected = make_knn().set_params(**result["params"]).fit(X[:200], y[:200]).score(X[200:], y[200:])
        assert result["val_accuracy"] == expected, result["params"]


def test_session_decodes_each_split_once(prepared, monkeypatch):
    from tfforensics.data import reader

    calls = []
    original = reader.as_numpy
    monkeypatch.setattr(reader, "as_numpy", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    with search.session():
        first = search.load_split(prepared["raw"], "train", search.METHODS["knn"])
        pixels = search.load_split(prepared["raw"], "train", search.METHODS["prnu"])  # from the decoded split
        again = search.load_split(prepared["raw"], "train", search.METHODS["knn"])
    assert calls == ["train"]
    assert again[0] is first[0] and not first[0].flags.writeable
    np.testing.assert_allclose(pixels[0], search.to_pixels(first[0], first[2]).reshape(len(first[0]), -1))
    search.load_split(prepared["raw"], "train", search.METHODS["knn"])  # outside: decoded again
    assert calls == ["train", "train"]


def test_grid_search_skips_finished_points_on_any_joblib_backend(prepared, tmp_path):
    import joblib

    search.grid_search("knn", prepared["dct"], tmp_path, grid={"n_neighbors": [1, 3]}, refit=False, progress=False)
    first = json.loads(search.results_path(tmp_path, "knn").read_text())
    search.grid_search("knn", prepared["dct"], tmp_path, grid={"n_neighbors": [1, 3, 5, 9]}, n_jobs=2,
                       refit=False, progress=False)  # loky processes
    with joblib.parallel_backend("threading", n_jobs=2):
        row = search.grid_search("knn", prepared["dct"], tmp_path, grid={"n_neighbors": [1, 3, 5, 9, 17]},
                                 n_jobs=None, refit=False, progress=False)
    last = json.loads(search.results_path(tmp_path, "knn").read_text())
    (before,), (after,) = first["datasets"].values(), last["datasets"].values()
    for key, point in before["points"].items():
        assert after["points"][key] == point
    assert [(r["computed"], r["reused"]) for r in last["runs"]] == [(2, 0), (2, 2), (1, 4)]
    assert len(after["points"]) == 5
    assert row["val_accuracy"] == max(p["val_accuracy"] for p in after["points"].values())


def test_cli_grid_search_resumes_after_kill(prepared, tmp_path):
    """Kill the CLI mid-search, run it again: finished points are kept, not recomputed."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tfforensics", "baselines", "grid-search", "prnu", "--dataset", str(prepared["raw"]),
               "--out", str(out), "--n-jobs", "1", "--no-refit", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    results_file = search.results_path(out, "prnu")
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = 0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if results_file.is_file():
                done = sum(len(e["points"]) for e in json.loads(results_file.read_text())["datasets"].values())
                if done >= 5:
                    break
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    killed = json.loads(results_file.read_text())  # the atomic writes leave valid JSON
    (first,) = killed["datasets"].values()
    finished = dict(first["points"])
    assert 5 <= len(finished) < 76, "the search ended before it could be interrupted"

    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "prnu" in completed.stdout and "levels=" in completed.stdout
    resumed = json.loads(results_file.read_text())
    (entry,) = resumed["datasets"].values()
    assert len(entry["points"]) == 76
    for key, point in finished.items():
        assert entry["points"][key] == point  # same run id and finish time: not recomputed
    first_run, second_run = resumed["runs"]
    assert second_run["reused"] == len(finished)
    assert second_run["computed"] == 76 - len(finished)
    assert {p["run"] for k, p in entry["points"].items() if k not in finished} == {second_run["id"]}


def test_cli_train_and_test(prepared, tmp_path, capsys):
    out = str(tmp_path)
    assert launch(["baselines", "train", "eigenfaces", "--dataset", str(prepared["dct"]), "--pca-variance", "0.95",
                   "--C", "0.01", "--out", out, "-q"]) == 0
    trained = capsys.readouterr().out
    assert "pca__n_components=0.95 svm__C=0.01" in trained
    model = tmp_path / "eigenfaces_dct.npz"
    assert model.is_file()
    assert launch(["baselines", "test", "eigenfaces", "--dataset", str(prepared["dct"]), "--out", out, "-q"]) == 0
    tested = capsys.readouterr().out
    assert trained.splitlines()[-1].split()[-1] == tested.splitlines()[-1].split()[-1]  # same test accuracy
    assert len(json.loads((tmp_path / "test_eigenfaces.json").read_text())) == 2


@pytest.mark.parametrize("argv,message", [
    (["train", "knn", "--sigma", "0.5"], "--sigma is a prnu parameter"),
    (["train", "knn", "--k", "1", "3"], "`train` takes one value"),
    (["grid-search", "prnu", "--dataset", "{dct}"], "prepare --raw"),
    (["test", "knn", "--dataset", "{dct}", "--model", "{tmp}/none.npz"], "baseline model not found"),
])
def test_cli_errors_name_the_fix(prepared, tmp_path, capsys, argv, message):
    argv = [a.format(dct=prepared["dct"], tmp=tmp_path) for a in argv]
    if "--dataset" not in argv:
        argv += ["--dataset", str(prepared["dct"])]
    assert launch(["baselines", *argv, "--out", str(tmp_path), "-q"]) == 2
    assert message in capsys.readouterr().err


def test_npy_and_record_datasets_give_the_same_result(prepared, three_sources, tmp_path):
    npy = prepare(three_sources, tmp_path / "raw_npy", Encoding(transform="raw", color=True), format="npy",
                  workers=1, progress=False)
    rows = [search.train("prnu", dataset, tmp_path / name, params={"levels": 2, "sigma": 0.5})
            for name, dataset in (("records", prepared["raw"]), ("npy", npy.root))]
    assert rows[0]["test_accuracy"] == rows[1]["test_accuracy"]
    a, _ = load_estimator(tmp_path / "records" / "prnu_raw.npz")
    b, _ = load_estimator(tmp_path / "npy" / "prnu_raw_npy.npz")
    np.testing.assert_allclose(a.fingerprints_, b.fingerprints_, atol=1e-4 * np.abs(a.fingerprints_).max())


@pytest.mark.parametrize("classes,C,samples", [(2, 1.0, 240), (3, 0.1, 240), (4, 10.0, 240), (3, 0.1, 25)])
def test_newton_svm_equals_liblinear_run_to_a_tight_tolerance(classes, C, samples):
    """The eigenfaces' SVM: the same squared-hinge minimiser as LinearSVC (penalised intercept, OvR);
    25 samples of 30 features take the Woodbury steps."""
    from sklearn.svm import LinearSVC

    from tfforensics.baselines.svm import NewtonLinearSVC

    rng = np.random.default_rng(classes)
    X = rng.normal(size=(samples, 30)) * np.logspace(0, 1.5, 30)  # unequal scales, like PCA coordinates
    y = rng.integers(0, classes, samples)
    X[:, 0] += 2.0 * y
    reference = LinearSVC(C=C, dual=False, tol=1e-9, max_iter=100_000).fit(X, y)
    ours = NewtonLinearSVC(C=C).fit(X, y)
    assert ours.coef_.shape == reference.coef_.shape and list(ours.classes_) == list(reference.classes_)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=0, atol=1e-5 * np.abs(reference.coef_).max())
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    # the gradient of the objective vanishes at the solution (checked for the first one-vs-rest problem)
    sign = np.where(y == ours.classes_[-1 if classes == 2 else 0], 1.0, -1.0)
    w = np.append(ours.coef_[0], ours.intercept_[0])
    Xb = np.hstack([X, np.ones((len(X), 1))])
    slack = np.maximum(0.0, 1.0 - sign * (Xb @ w))
    assert np.linalg.norm(w - 2 * C * Xb.T @ (sign * slack)) < 1e-6 * np.linalg.norm(2 * C * Xb.T @ sign)


@pytest.mark.parametrize("samples,features,C", [(90, 150, 0.1), (300, 120, 10.0), (200, 190, 1e-3)])
def test_newton_svm_small_margin_set_steps_equal_the_primal_ones(samples, features, C):
    """The Woodbury form of the Newton step (margin sets smaller than d, from the Gram
    matrix) and the complement form (``X^T X`` minus the samples outside the margin) reach
    the primal form's minimiser, in the same iterations."""
    from tfforensics.baselines.svm import _fit_binary

    rng = np.random.default_rng(samples)
    X = np.hstack([rng.normal(size=(samples, features)) * np.logspace(0, 2, features), np.ones((samples, 1))])
    y = np.where(X[:, 0] + 20 * rng.normal(size=samples) > 0, 1.0, -1.0)
    primal, primal_iterations = _fit_binary(X, y, C, 1e-10, 100)
    for kind, products in (("woodbury", {"gram": X @ X.T}), ("complement", {"covariance": X.T @ X}),
                           ("both", {"gram": X @ X.T, "covariance": X.T @ X})):
        w, iterations = _fit_binary(X, y, C, 1e-10, 100, **products)
        np.testing.assert_allclose(w, primal, rtol=0, atol=1e-7 * np.abs(primal).max(), err_msg=kind)
        assert abs(iterations - primal_iterations) <= 1 and primal_iterations > 1, kind


def test_newton_svm_warm_start_along_c_reaches_the_cold_minimisers_in_fewer_steps():
    """warm_start=True starts each fit from the last solution: along growing C the same weights
    as cold fits (to rounding) in fewer Newton iterations; a fit on other classes starts cold."""
    from tfforensics.baselines.svm import NewtonLinearSVC

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 60)) * np.logspace(0, 2, 60)
    y = rng.integers(0, 4, 400)
    X[:, 0] += 30.0 * y
    warm = NewtonLinearSVC(warm_start=True)
    warm_iterations = cold_iterations = 0
    for C in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        cold = NewtonLinearSVC(C=C).fit(X, y)
        warm.set_params(C=C).fit(X, y)
        scale = np.abs(cold.coef_).max()
        np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(warm.intercept_, cold.intercept_, rtol=0, atol=1e-9 * scale)
        np.testing.assert_array_equal(warm.predict(X), cold.predict(X))
        warm_iterations, cold_iterations = warm_iterations + warm.n_iter_, cold_iterations + cold.n_iter_
    assert warm_iterations < cold_iterations
    three = y.clip(0, 2)  # other classes: other problems, so a cold start
    np.testing.assert_array_equal(warm.fit(X, three).coef_, NewtonLinearSVC(C=1.0).fit(X, three).coef_)


def test_eigenfaces_jobs_score_an_svm_without_warm_start_point_by_point():
    """With liblinear's LinearSVC (no warm_start) every point is its own cold fit: the jobs give
    each point the val accuracy and the model of a plain pipeline fit."""
    import joblib
    from sklearn.model_selection import PredefinedSplit

    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 40))
    y = rng.integers(0, 3, 90)
    X[:, 0] += 3.0 * y
    split = PredefinedSplit(np.r_[np.full(60, -1), np.zeros(30, dtype=int)])
    estimator = make_eigenfaces(0.9, 0.1, pca_fit_size=None, solver="liblinear")
    points = [{"pca__n_components": 0.9, "svm__C": C} for C in (1e-2, 1e-1, 1.0)]
    outcomes = list(joblib.Parallel(n_jobs=1)(search._eigenfaces_jobs(estimator, points, X, y, split, {})))
    assert all(isinstance(outcome, list) and len(outcome) == 1 for outcome in outcomes)
    for (result,), params in zip(outcomes, points):
        plain = make_eigenfaces(0.9, 0.1, pca_fit_size=None, solver="liblinear").set_params(**params).fit(X[:60], y[:60])
        assert result["params"] == params and result["warm_started"] is False
        assert result["val_accuracy"] == plain.score(X[60:], y[60:])
        np.testing.assert_allclose(result[search.FITTED].coef_, plain.named_steps["svm"].coef_, atol=1e-10)


def test_newton_svm_eigenfaces_saves_and_loads(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 40))
    y = rng.integers(0, 3, 60)
    X[:, :3] += np.eye(3)[y] * 3
    model = make_eigenfaces(0.9, 0.1, pca_fit_size=None).fit(X, y)
    assert type(model.named_steps["svm"]).__name__ == "NewtonLinearSVC"
    save_estimator(tmp_path / "e.npz", model)
    np.testing.assert_array_equal(load_estimator(tmp_path / "e.npz")[0].predict(X), model.predict(X))
    liblinear = make_eigenfaces(0.9, 0.1, pca_fit_size=None, solver="liblinear")
    assert type(liblinear.named_steps["svm"]).__name__ == "LinearSVC"
    with pytest.raises(ValueError, match="solver"):
        make_eigenfaces(solver="sgd")
