"""Blocks through joblib's backends: the data travel as task arguments (shipped once per
worker), results equal the sequential run, and ``n_jobs=None`` uses every core."""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

import skrob._search.blocks as blocks
from skrob import PixelNoise, RPRScorer, SampleRobustnessTransformer, sample_robustness
from skrob._search.blocks import resolve_n_jobs


def _data(seed=0, n=3000, d=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, 4, n)
    return X, y, y + 0.1 * rng.normal(size=n)


def test_resolve_n_jobs():
    assert resolve_n_jobs(None) == -1
    assert resolve_n_jobs(3) == 3
    with joblib.parallel_config(n_jobs=2):
        assert resolve_n_jobs(None) == 2
        assert resolve_n_jobs(1) == 1
    with joblib.parallel_config(backend="threading"):
        assert resolve_n_jobs(None) == -1


def test_data_are_replicated_to_every_dask_worker(monkeypatch):
    distributed = pytest.importorskip("distributed")
    X, y, _ = _data(2, n=4000, d=64)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        joblib.parallel_config(backend="dask"),
    ):
        replicated = []
        real = client.replicate

        def spy(futures, **kwargs):
            real(futures, **kwargs)
            replicated.append(
                {
                    f.key: len(w)
                    for f, w in zip(futures, client.who_has(futures).values(), strict=True)
                }
            )

        monkeypatch.setattr(client, "replicate", spy)
        np.testing.assert_array_equal(
            sample_robustness(X, y, batch_size=256), sample_robustness(X, y, n_jobs=1)
        )
    assert replicated and all(n == 2 for r in replicated for n in r.values())


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tasks_share_their_arrays_instead_of_closing_over_them(monkeypatch, task):
    """What lets loky memory-map the data and Dask scatter it once: a module-level task
    function, the big arrays passed as the same objects to every task."""
    calls = []
    real = blocks.delayed

    def recording(func):
        def record(*args, **kwargs):
            calls.append((func, args))
            return real(func)(*args, **kwargs)

        return record

    monkeypatch.setattr(blocks, "delayed", recording)
    X, y, t = _data(n=5000)
    sample_robustness(X, y if task == "classification" else t, n_jobs=2, batch_size=256)
    assert len(calls) > 10
    funcs = {f for f, _ in calls}
    assert len(funcs) == 1
    (func,) = funcs
    assert "<" not in func.__qualname__  # no lambda, no closure
    big = [i for i, a in enumerate(calls[0][1]) if isinstance(a, np.ndarray) and a.nbytes > 1000]
    assert big  # the data are arguments...
    for _, args in calls[1:]:
        for i in big:
            assert args[i] is calls[0][1][i]  # ...the same objects in every task
        small = [a for j, a in enumerate(args) if j not in big and isinstance(a, np.ndarray)]
        assert all(a.nbytes <= 1000 for a in small)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_joblib_backends_match_the_sequential_run(backend):
    X, y, t = _data()
    ref_c = sample_robustness(X, y, n_jobs=1, batch_size=256)
    ref_r = sample_robustness(X, t, task="regression", n_jobs=1, batch_size=256)
    srt = SampleRobustnessTransformer(batch_size=256, n_jobs=1).fit(X, y)
    ref_t = srt.transform(X[:500] + 0.01)
    with joblib.parallel_config(backend=backend, n_jobs=2):
        np.testing.assert_array_equal(sample_robustness(X, y, batch_size=256), ref_c)
        np.testing.assert_allclose(
            sample_robustness(X, t, task="regression", batch_size=256), ref_r, rtol=1e-12
        )
        np.testing.assert_array_equal(srt.set_params(n_jobs=None).transform(X[:500] + 0.01), ref_t)


def test_dask_cluster_matches_the_sequential_run():
    distributed = pytest.importorskip("distributed")
    X, y, t = _data(1)
    ref_c = sample_robustness(X, y, n_jobs=1, batch_size=256)
    ref_r = sample_robustness(X, t, task="regression", n_jobs=1, batch_size=256)
    Xd, yd = load_digits(return_X_y=True)
    Xd, yd = Xd[:400] / 16, yd[:400]
    scorer = RPRScorer(PixelNoise(), max_steps=20, random_state=0)
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [2, 6]}, scoring=scorer, cv=2
    )
    ref_grid = search.fit(Xd, yd).cv_results_["mean_test_score"]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        np.testing.assert_array_equal(sample_robustness(X, y, batch_size=256), ref_c)
        np.testing.assert_allclose(
            sample_robustness(X, t, task="regression", batch_size=256), ref_r, rtol=1e-12
        )
        # a search scored by RPR: each candidate's fit and scoring is one Dask task
        search = GridSearchCV(
            DecisionTreeClassifier(random_state=0), {"max_depth": [2, 6]}, scoring=scorer, cv=2
        )
        np.testing.assert_array_equal(
            search.set_params(n_jobs=-1).fit(Xd, yd).cv_results_["mean_test_score"], ref_grid
        )


@pytest.mark.slow  # each loky worker compiles the kernels with numba
@pytest.mark.parametrize("d", [12, 200])  # the full scan, the projected scan
def test_inverted_lists_under_loky_match_the_sequential_run(d):
    """The tasks return their results (a worker process cannot write the caller's
    arrays), and the caller puts them in place."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 10)) @ rng.normal(size=(10, d))
    y = rng.integers(0, 4, 3000)
    kw = dict(algorithm="approximate", nprobe=4, random_state=0)
    ref = sample_robustness(X, y, n_jobs=1, **kw)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        np.testing.assert_array_equal(sample_robustness(X, y, **kw), ref)
