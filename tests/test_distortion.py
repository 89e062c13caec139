import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

from skrob import relative_error_distortion

# Paper 002, §2: the worked linear-regression example.
S1 = np.array([(1.35, 9.52), (2.42, 16.7), (4.02, 28.03)])
S2 = np.vstack([S1, [(8.59, 60.22), (3.85, 25.74), (6.71, 47.2)]])
T = np.array([(4.78, 33.24), (9.71, 67.78)])


def closed_form(model, X, y, tol):
    """Smallest |δ| with |w (x ± δ) + b − y| > tol |y|: both directions, exactly."""
    w = model.coef_[0]
    r = model.predict(X) - y
    up = (tol * np.abs(y) - r) / abs(w)
    down = (tol * np.abs(y) + r) / abs(w)
    return np.minimum(up, down)


@pytest.mark.parametrize("train, mse", [(S1, 0.0450), (S2, 0.0396)])
def test_paper_example(train, mse):
    model = LinearRegression().fit(train[:, :1], train[:, 1])
    pred = model.predict(T[:, :1])
    assert np.mean((pred - T[:, 1]) ** 2) == pytest.approx(mse, abs=5e-5)
    d = relative_error_distortion(model, T[:, :1], T[:, 1], tolerance=0.025)
    assert_allclose(d, closed_form(model, T[:, :1], T[:, 1], 0.025), rtol=1e-9)


def test_the_more_accurate_model_is_less_robust():
    """The paper's conclusion holds with our values (0.1599 and 0.1564, not 0.2194/0.2125)."""
    m1 = LinearRegression().fit(S1[:, :1], S1[:, 1])
    m2 = LinearRegression().fit(S2[:, :1], S2[:, 1])
    d1 = relative_error_distortion(m1, T[:, :1], T[:, 1]).mean()
    d2 = relative_error_distortion(m2, T[:, :1], T[:, 1]).mean()
    assert d1 == pytest.approx(0.15988, abs=1e-4) and d2 == pytest.approx(0.15638, abs=1e-4)
    assert d1 > d2


def test_incorrect_immune_and_multi_feature():
    X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.5]])
    y = np.array([2.0, 4.5, 6.0])
    model = LinearRegression().fit(X, y)
    d = relative_error_distortion(model, X, y * 1.5, tolerance=0.01)
    assert np.isnan(d).all()  # none is within 1 % of the scaled targets
    constant = DummyRegressor(strategy="constant", constant=4.0).fit(X, y)
    d = relative_error_distortion(constant, X[1:2], np.array([4.0]))
    assert d[0] == np.inf  # no input change moves a constant prediction
    # several features: the smallest over single-feature moves, checked in closed form
    w, r = model.coef_, model.predict(X) - y
    tol = 0.05 * np.abs(y)
    expected = np.min([(tol - r) / abs(wj) for wj in w] + [(tol + r) / abs(wj) for wj in w], axis=0)
    correct = np.abs(r) <= tol
    got = relative_error_distortion(model, X, y, tolerance=0.05, max_distortion=5.0)
    assert_allclose(got[correct], expected[correct], rtol=1e-9)
    with pytest.raises(ValueError, match="inconsistent"):
        relative_error_distortion(model, X, y[:2])


def _loop_reference(estimator, X, y, tolerance, max_distortion, n_grid, n_bisect):
    """The search one sample, one feature, one sign at a time (the vectorised one's spec)."""

    def rel(Z, t):
        return np.abs(estimator.predict(Z) - t) / np.abs(t)

    out = np.full(len(y), np.nan)
    grid = np.linspace(0.0, max_distortion, n_grid)[1:]
    for i in np.flatnonzero(rel(X, y) <= tolerance):
        best = np.inf
        for j in range(X.shape[1]):
            for sign in (1.0, -1.0):
                Z = np.repeat(X[i : i + 1], len(grid), axis=0)
                Z[:, j] += sign * grid
                broken = np.flatnonzero(rel(Z, y[i]) > tolerance)
                if broken.size == 0:
                    continue
                k = broken[0]
                lo, hi = (grid[k - 1] if k > 0 else 0.0), grid[k]
                for _ in range(n_bisect):
                    mid = (lo + hi) / 2
                    z = X[i : i + 1].copy()
                    z[0, j] += sign * mid
                    lo, hi = (lo, mid) if rel(z, y[i])[0] > tolerance else (mid, hi)
                best = min(best, hi)
        out[i] = best
    return out


def test_vectorised_search_equals_the_loop(global_random_seed):
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(global_random_seed)
    X = rng.normal(size=(40, 3))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 3
    model = KNeighborsRegressor(3).fit(X, y)
    params = dict(tolerance=0.05, max_distortion=0.8, n_grid=51, n_bisect=20)
    got = relative_error_distortion(model, X, y, **params)
    assert_array_equal(got, _loop_reference(model, X, y, **params))
    assert np.isfinite(got).any() and np.isnan(got).any()


def test_dataframe_model_and_invalid_targets():
    import warnings

    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
    y = df.a.to_numpy() + 4
    model = LinearRegression().fit(df, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" storm
        relative_error_distortion(model, df, y)
    for bad in (np.nan, np.inf):
        y_bad = y.copy()
        y_bad[3] = bad
        with pytest.raises(ValueError, match="y"):
            relative_error_distortion(model, df, y_bad)
    with pytest.raises(ValueError, match="max_distortion"):
        relative_error_distortion(model, df, y, max_distortion=np.inf)


def test_polars_model_gets_polars_frames():
    """The sibling of RPR's polars seam: blocks go back as polars DataFrames."""
    pl = pytest.importorskip("polars")

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = X[:, 0] + 4
    frame = pl.DataFrame(X, schema=["a", "b"], orient="row")

    class PolarsOnly(LinearRegression):
        def predict(self, Z):
            assert isinstance(Z, pl.DataFrame) and Z.columns == ["a", "b"]
            return super().predict(Z.to_numpy())

    model = PolarsOnly().fit(X, y)
    got = relative_error_distortion(model, frame, y, n_grid=21, n_bisect=5)
    expected = relative_error_distortion(LinearRegression().fit(X, y), X, y, n_grid=21, n_bisect=5)
    assert_array_equal(got, expected)
