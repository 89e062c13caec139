import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from skrob.perturbations import GaussianNoise, PixelNoise, SphereNoise, UniformNoise

ALL = [GaussianNoise(0.2), SphereNoise(1.5), UniformNoise(0.3), PixelNoise(n_pixels=5)]


@pytest.mark.parametrize("perturbation", ALL, ids=repr)
def test_shape_dtype_and_seed(perturbation):
    X = np.random.default_rng(0).random((40, 3, 5, 5)).astype(np.float32)
    a = perturbation(X, np.random.default_rng(1))
    b = perturbation(X, np.random.default_rng(1))
    c = perturbation(X, np.random.default_rng(2))
    assert a.shape == X.shape and a.dtype == np.float32
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, X)
    assert_array_equal(X, np.random.default_rng(0).random((40, 3, 5, 5)).astype(np.float32))


@pytest.mark.parametrize(
    "perturbation",
    [
        GaussianNoise(5.0, clip=(0, 1)),
        SphereNoise(30.0, clip=(0, 1)),
        UniformNoise(3.0, clip=(0, 1)),
    ]
    + [PixelNoise(low=-2, high=3, clip=(0, 1))],
    ids=repr,
)
def test_clip(perturbation):
    X = np.full((50, 20), 0.5)
    out = perturbation(X, np.random.default_rng(0))
    assert out.min() >= 0 and out.max() <= 1
    assert out.min() == 0 and out.max() == 1  # the box really binds


def test_gaussian_moments():
    noise = GaussianNoise(0.3)(np.zeros((4000, 50)), np.random.default_rng(0))
    assert abs(noise.mean()) < 4 * 0.3 / np.sqrt(noise.size)
    assert abs(noise.std() - 0.3) < 0.003
    assert stats.kstest(noise[:, 0] / 0.3, "norm").pvalue > 1e-3


def test_sphere_is_uniform_on_the_sphere():
    X = np.ones((20000, 3))
    delta = SphereNoise(2.0)(X, np.random.default_rng(0)) - X
    assert_allclose(np.linalg.norm(delta, axis=1), 2.0, rtol=1e-12)
    # Archimedes: on the 2-sphere every coordinate of a uniform point is uniform on [-1, 1].
    for axis in range(3):
        assert stats.kstest(delta[:, axis] / 2.0, "uniform", args=(-1, 2)).pvalue > 1e-3
    # No preferred direction: the mean of the directions vanishes.
    assert np.all(np.abs(delta.mean(axis=0) / 2.0) < 4 / np.sqrt(3 * 20000))


def test_sphere_norm_over_all_axes_of_an_image():
    X = np.zeros((10, 2, 4, 4))
    delta = SphereNoise(0.7)(X, np.random.default_rng(0))
    assert_allclose(np.sqrt((delta**2).sum(axis=(1, 2, 3))), 0.7, rtol=1e-12)


def test_uniform_box():
    noise = UniformNoise(0.25)(np.zeros((5000, 10)), np.random.default_rng(0))
    assert np.abs(noise).max() <= 0.25
    assert stats.kstest(noise.ravel()[:5000], "uniform", args=(-0.25, 0.5)).pvalue > 1e-3


def test_pixel_noise_counts_and_values():
    X = np.full((3000, 784), -1.0)
    out = PixelNoise(low=0.2, high=0.6)(X, np.random.default_rng(0))
    changed = out != X
    per_row = changed.sum(axis=1)
    assert per_row.max() <= 28 and per_row.min() >= 1  # sqrt(784) = 28, with replacement
    # 28 draws with replacement from 784 positions: expected distinct positions.
    expected = 784 * (1 - (1 - 1 / 784) ** 28)
    assert abs(per_row.mean() - expected) < 0.05
    values = out[changed]
    assert values.min() >= 0.2 and values.max() < 0.6
    assert stats.kstest(values[:3000], "uniform", args=(0.2, 0.4)).pvalue > 1e-3
    # Positions are uniform: every column is hit about equally often.
    hits = changed.sum(axis=0)
    assert stats.chisquare(hits).pvalue > 1e-4


@pytest.mark.parametrize("channels_last", [False, True])
def test_pixel_noise_replaces_all_channels_of_a_position(channels_last):
    shape = (4, 4, 3) if channels_last else (3, 4, 4)
    X = np.full((500, 48), -1.0)
    out = PixelNoise(image_shape=shape, channels_last=channels_last)(X, np.random.default_rng(0))
    images = out.reshape(500, *shape)
    changed = images != -1.0
    per_channel = changed if channels_last else np.moveaxis(changed, 1, -1)
    # a position changes in all three channels or in none
    assert np.all(per_channel.all(axis=-1) == per_channel.any(axis=-1))
    assert per_channel.any(axis=-1).sum(axis=(1, 2)).max() <= 4  # sqrt(16) positions


def test_pixel_noise_errors():
    with pytest.raises(ValueError, match="image_shape"):
        PixelNoise(image_shape=(3, 5, 5))(np.zeros((2, 48)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="low < high"):
        PixelNoise(low=1, high=0)(np.zeros((2, 4)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_pixels"):
        PixelNoise(n_pixels=0)(np.zeros((2, 4)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(-1.0)(np.zeros((2, 4)), np.random.default_rng(0))


def test_integer_input_becomes_float_and_repr():
    out = GaussianNoise(0.5)(np.zeros((3, 4), dtype=int), np.random.default_rng(0))
    assert out.dtype == np.float64
    assert repr(SphereNoise(1.0)) == "SphereNoise(radius=1.0, clip=None)"
    assert SphereNoise(1.0) == SphereNoise(1.0) != SphereNoise(2.0)


@pytest.mark.parametrize(
    "perturbation, match",
    [
        (GaussianNoise(0.1, clip=(1, 0)), "low < high"),
        (GaussianNoise(0.1, clip=(0.0,)), "pair"),
        (GaussianNoise(0.1, clip=(np.nan, 1)), "finite"),
        (GaussianNoise(np.inf), "sigma"),
        (GaussianNoise(np.nan), "sigma"),
        (UniformNoise(np.inf), "epsilon"),
        (SphereNoise(-1.0), "radius"),
        (PixelNoise(low=1.0, high=0.0), "low < high"),
        (PixelNoise(image_shape=(2, 2, 2, 2)), "image_shape"),
    ],
)
def test_invalid_parameters_are_named(perturbation, match):
    with pytest.raises(ValueError, match=match):
        perturbation(np.zeros((3, 8)), np.random.default_rng(0))


def test_one_sided_clip():
    out = GaussianNoise(1.0, clip=(None, 0.0))(np.zeros((50, 4)), np.random.default_rng(0))
    assert out.max() <= 0.0 and out.min() < -0.5


@pytest.mark.parametrize("rng", [np.random.RandomState(0), "seed", 1.5])
def test_rng_must_be_a_generator(rng):
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        GaussianNoise(0.1)(np.zeros((2, 3)), rng)
    same = GaussianNoise(0.1)(np.zeros((2, 3)), 7)  # an int is a seed
    assert_array_equal(same, GaussianNoise(0.1)(np.zeros((2, 3)), np.random.default_rng(7)))


@pytest.mark.parametrize("perturbation", [GaussianNoise(0.1), UniformNoise(0.1), PixelNoise()])
def test_float16_and_integer_inputs_are_perturbed_in_float64(perturbation):
    for dtype in (np.float16, np.int64, bool):
        out = perturbation(np.zeros((3, 16), dtype=dtype), np.random.default_rng(0))
        assert out.dtype == np.float64 and np.isfinite(out).all()
