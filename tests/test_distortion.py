import numpy as np
import pytest
from numpy.testing import assert_allclose
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
