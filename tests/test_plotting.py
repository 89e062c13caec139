import numpy as np
import pytest

from skrob import SampleRobustnessTransformer
from skrob.plotting import RobustnessDistributionDisplay, plot_image_grid

pytest.importorskip("matplotlib")


@pytest.fixture(autouse=True)
def _agg():
    import matplotlib

    matplotlib.use("Agg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_distribution_display_fractions_sum_to_one():
    rng = np.random.default_rng(0)
    R, y = rng.random(300), rng.integers(0, 3, 300)
    Rt, yt = rng.random(100), rng.integers(0, 3, 100)
    disp = RobustnessDistributionDisplay.from_robustness(
        R, y, robustness_ref=Rt, labels_ref=yt, n_bins=10
    )
    assert len([a for a in disp.axes_ if a.get_visible()]) == 3
    for k, ax in enumerate(disp.axes_[:3]):
        heights = [p.get_height() for p in ax.patches]
        assert np.isclose(sum(heights), 1.0)  # fractions of the class
        assert ax.get_title().startswith(f"{k} (n={(y == k).sum()})")


def test_distribution_display_from_estimator():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    srt = SampleRobustnessTransformer().fit(X[::2], y[::2])
    disp = RobustnessDistributionDisplay.from_estimator(
        srt, X[::2], y[::2], X_ref=X[1::2], y_ref=y[1::2]
    )
    assert disp.robustness_ref.shape == (75,)
    # its own reference set: the robustness it was fitted with
    np.testing.assert_allclose(disp.robustness, srt.robustness_, rtol=1e-12)
    new = RobustnessDistributionDisplay.from_estimator(srt, X[1::2], y[1::2])
    np.testing.assert_array_equal(new.robustness, srt.robustness(X[1::2], y[1::2]))


def test_image_grid():
    fig = plot_image_grid(np.zeros((5, 4, 4)), [str(i) for i in range(5)], n_cols=3)
    assert len(fig.axes) == 6
    assert [a.get_title() for a in fig.axes[:5]] == ["0", "1", "2", "3", "4"]


def test_rpr_curve_display():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from skrob import PixelNoise, rpr_curve, rpr_steps
    from skrob.plotting import RPRCurveDisplay

    steps = np.array([0, 2, 5, 5, 5])
    disp = RPRCurveDisplay.from_steps(steps, 5, name="m")
    x, y = disp.line_.get_data()
    np.testing.assert_array_equal(x, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(y, rpr_curve(steps, 5))
    assert disp.robust_fraction_ == 0.6
    assert "robust: 0.600" in disp.ax_.get_legend().get_texts()[0].get_text()

    X, yd = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=2000).fit(X[:500] / 16, yd[:500])
    kwargs = dict(perturbation=PixelNoise(), max_steps=20, random_state=0)
    disp = RPRCurveDisplay.from_estimator(model, X[500:700] / 16, yd[500:700], **kwargs)
    expected = rpr_steps(model, X[500:700] / 16, yd[500:700], **kwargs)
    np.testing.assert_array_equal(disp.steps, expected)
    RPRCurveDisplay.from_steps(expected, 20, name="again", ax=disp.ax_)
    assert len(disp.ax_.lines) == 2


@pytest.mark.parametrize(
    "robustness, labels, match",
    [
        ([0.5, np.nan], [0, 1], "NaN"),
        ([0.5, 0.4, 0.3], [0, 1], "one entry per sample"),
        ([0.5, 1.5], [0, 1], r"\[0, 1\]"),
        ([[0.5, 0.5]], [0], "1-D"),
    ],
)
def test_distribution_display_rejects_bad_values(robustness, labels, match):
    from skrob.plotting import RobustnessDistributionDisplay

    with pytest.raises(ValueError, match=match):
        RobustnessDistributionDisplay.from_robustness(robustness, labels)
