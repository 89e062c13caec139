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
    disp = RobustnessDistributionDisplay.from_estimator(srt, y[::2], X_ref=X[1::2], y_ref=y[1::2])
    assert disp.robustness_ref.shape == (75,)
    np.testing.assert_array_equal(disp.robustness, srt.robustness_)


def test_image_grid():
    fig = plot_image_grid(np.zeros((5, 4, 4)), [str(i) for i in range(5)], n_cols=3)
    assert len(fig.axes) == 6
    assert [a.get_title() for a in fig.axes[:5]] == ["0", "1", "2", "3", "4"]
