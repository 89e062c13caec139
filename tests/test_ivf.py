"""The inverted-list backend (algorithm="approximate", Euclidean): an upper bound on the
exact reach, exact when every list is probed, high recall at the default nprobe."""

import importlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skrob import SampleRobustnessTransformer, sample_robustness
from skrob._search.ivf import ivf_nearest_other_label
from skrob._search.neighbors import nearest_other_label
from skrob._validation import encode_classes
from tests.conftest import make_tricky_data

# the module (the package's attribute of this name is the function)
sr = importlib.import_module("skrob.sample_robustness")
ivf = importlib.import_module("skrob._search.ivf")


def _clustered(n, d, seed):
    """Clustered data of low intrinsic dimension with overlapping classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    centers = rng.normal(size=(5, 8)) * 1.2
    Z = centers[y] + rng.normal(size=(n, 8))
    X = Z @ rng.normal(size=(8, d)) + 0.3 * rng.normal(size=(n, d))
    return X, y


def _check_bound(X, codes, reach, partner, exact):
    """Every reach is the float64 distance to a differently labelled partner, >= exact."""
    assert np.all(codes[partner] != codes)
    diff = np.asarray(X, dtype=np.float64) - X[partner]  # float32 data: exact in float64
    m = np.abs(diff).max(axis=1)
    direct = m * np.linalg.norm(diff / np.where(m > 0, m, 1.0)[:, None], axis=1)
    np.testing.assert_allclose(reach, direct, rtol=1e-12, atol=0)
    assert np.all(reach >= exact * (1 - 1e-12))


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_probing_every_list_is_exact(scale, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    X, y = make_tricky_data(rng, n=600)
    X = X * scale
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    # lists of 16 samples: ~13 per class, 38 lists in all; nprobe=64 probes all of them
    reach, partner = ivf_nearest_other_label(
        X, codes, nprobe=64, list_size=16, random_state=global_random_seed
    )
    np.testing.assert_array_equal(reach, exact)
    _check_bound(X, codes, reach, partner, exact)


def test_few_probes_give_an_upper_bound_and_high_recall(global_random_seed):
    X, y = _clustered(6000, 30, global_random_seed)
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    reach, partner = ivf_nearest_other_label(X, codes, nprobe=1, random_state=global_random_seed)
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) < 1.0  # one list is not enough here: a real test
    reach, partner = ivf_nearest_other_label(X, codes, random_state=global_random_seed)
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) >= 0.99


def test_public_approximate_is_the_inverted_lists_for_euclidean():
    X, y = load_digits(return_X_y=True)
    exact = sample_robustness(X, y, algorithm="exact")
    approx = sample_robustness(X, y, algorithm="approximate", random_state=0)
    # digits: ~2 lists per class, all probed at nprobe=32
    np.testing.assert_array_equal(approx, exact)
    srt = SampleRobustnessTransformer(algorithm="approximate", nprobe=2, random_state=0)
    R = srt.fit(X, y).robustness_
    assert np.all(R >= exact - 1e-15)  # a reach at least the exact one
    np.testing.assert_array_equal(
        R, sample_robustness(X, y, algorithm="approximate", nprobe=2, random_state=0)
    )


def test_auto_takes_the_inverted_lists_from_the_threshold(monkeypatch):
    X, y = _clustered(3000, 20, 0)
    monkeypatch.setattr(sr, "AUTO_APPROXIMATE_MIN_SAMPLES", 3000)
    auto = sample_robustness(X, y, nprobe=1, random_state=0)
    np.testing.assert_array_equal(
        auto, sample_robustness(X, y, algorithm="approximate", nprobe=1, random_state=0)
    )
    assert not np.array_equal(auto, sample_robustness(X, y, algorithm="exact"))
    # regression, another metric and sparse X stay exact
    monkeypatch.setattr(sr, "AUTO_APPROXIMATE_MIN_SAMPLES", 10)
    np.testing.assert_array_equal(
        sample_robustness(X[:200], y[:200], metric="manhattan"),
        sample_robustness(X[:200], y[:200], metric="manhattan", algorithm="exact"),
    )
    t = X[:200, 0]
    np.testing.assert_array_equal(
        sample_robustness(X[:200], t), sample_robustness(X[:200], t, algorithm="exact")
    )


def test_nprobe_is_validated():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="nprobe"):
        sample_robustness(X, y, algorithm="approximate", nprobe=0)
    with pytest.raises(ValueError, match="classification only"):
        sample_robustness(X, X[:, 10] + 0.5, task="regression", algorithm="approximate")


# --- the projected scan (many features, few components) ---------------------------------


def _low_rank(X, d, seed):
    """``X`` embedded in ``d`` features by a fixed random map: as many components as ``X``
    has features, so the inverted lists take the projected scan."""
    return X @ np.random.default_rng(seed).normal(size=(X.shape[1], d))


def _taken(X, codes, **kw):
    steps = {}
    out = ivf_nearest_other_label(X, codes, steps=steps, **kw)
    return out, steps["projected"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_projected_scan_measuring_every_member_is_exact(scale, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    X6, y = make_tricky_data(rng, n=600)
    X = _low_rank(X6, 160, 1)
    if dtype == np.float32:  # exact duplicates stay duplicates; 1e-7 apart at 50 do not
        X = X.astype(np.float32)
    else:
        X = X * scale
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    # every list probed, every member kept and measured: the estimate ranks nothing out
    monkeypatch.setattr(ivf, "_TOP_PER_LIST", 600)
    monkeypatch.setattr(ivf, "_RERANK", 600)
    (reach, partner), projected = _taken(X, codes, nprobe=64, list_size=16, random_state=0)
    assert projected
    np.testing.assert_array_equal(reach, exact)
    _check_bound(X, codes, reach, partner, exact)


def test_projected_scan_upper_bound_recall_and_determinism(global_random_seed):
    X, y = _clustered(6000, 8, global_random_seed)
    X = _low_rank(X, 200, global_random_seed)
    _, codes = encode_classes(y)
    exact, _ = nearest_other_label(X, codes)
    (reach, partner), projected = _taken(X, codes, nprobe=1, random_state=global_random_seed)
    assert projected
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) < 1.0  # one list is not enough here: a real test
    (reach, partner), _ = _taken(X, codes, random_state=global_random_seed)
    _check_bound(X, codes, reach, partner, exact)
    assert np.mean(reach == exact) >= 0.99
    # the same with one job
    again, _ = _taken(X, codes, random_state=global_random_seed, n_jobs=1)
    np.testing.assert_array_equal(again[0], reach)
    np.testing.assert_array_equal(again[1], partner)


def test_projection_only_where_few_components_hold_the_variance(monkeypatch):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    _, codes = encode_classes(y)
    isotropic = rng.normal(size=(2000, 200))
    assert not _taken(isotropic, codes, random_state=0)[1]
    low_rank = _low_rank(rng.normal(size=(2000, 20)), 200, 0)
    assert _taken(low_rank, codes, random_state=0)[1]
    # below _MIN_PROJECTED and beyond _MAX_PROJECTED features: the full scan
    assert not _taken(low_rank[:, : ivf._MIN_PROJECTED - 1], codes, random_state=0)[1]
    monkeypatch.setattr(ivf, "_MAX_PROJECTED", 199)
    assert not _taken(low_rank, codes, random_state=0)[1]


def test_selection_kernels_against_numpy():
    kernels = ivf._kernels()
    rng = np.random.default_rng(0)
    # ties everywhere (values in 0..9), lists shorter and longer than 8 k
    for n_cols in (3, 8, 40, 130, 1500):
        D = rng.integers(0, 10, size=(50, n_cols)).astype(np.float32)
        ids = rng.permutation(1000)[:n_cols].astype(np.int32)
        order = np.argsort(D, axis=1, kind="stable")  # ties: the first column
        for k in (1, 4, 8, 48):
            want = np.full((50, k), -1)
            want[:, : min(k, n_cols)] = ids[order[:, :k]]
            want_v = np.full((50, k), np.inf, dtype=np.float32)
            want_v[:, : min(k, n_cols)] = np.sort(D, axis=1)[:, :k]
            out = rng.permutation(50)  # row r's into row out[r]
            for smallest in [kernels.smallest] + [kernels.few_smallest] * (k <= 16):
                top, top_v = np.empty((50, k), np.int32), np.empty((50, k), np.float32)
                smallest(D, ids, top, top_v, out)
                np.testing.assert_array_equal(top[out], want)
                np.testing.assert_array_equal(top_v[out], want_v)
            # each row's candidates after as many of none
            cand = np.hstack([np.full_like(top, -1), top[out]])
            cand_v = np.hstack([np.full_like(top_v, np.inf), top_v[out]])
            best = np.empty((50, min(k, 3)), np.int32)
            kernels.merge_best(cand, cand_v, best)
            np.testing.assert_array_equal(best, want[:, : min(k, 3)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scaled_squares_within_their_bound(dtype):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(40, 300)) * 1e3 + 5e3).astype(dtype)
    best = rng.integers(-1, 40, size=(40, 6)).astype(np.int32)
    v = np.empty(best.shape)
    g, h = 2.0**-13, 2.0**2
    ivf._kernels().scaled_sq(X, best, np.arange(40), g, h, v)
    Xg = X.astype(np.float64) * g
    ref = np.full(best.shape, np.inf)
    for i, c in zip(*np.nonzero(best >= 0), strict=True):
        ref[i, c] = np.sum(((Xg[i] - Xg[best[i, c]]) * h) ** 2)
    assert np.array_equal(np.isinf(v), best < 0)
    ok = best >= 0
    np.testing.assert_allclose(
        v[ok], ref[ok], rtol=2 * (300 + 4) * np.finfo(np.float64).eps, atol=0
    )
