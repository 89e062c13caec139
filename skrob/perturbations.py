"""Random perturbation schemes for RPR (paper 001) and label-flip rates (paper 003).

A perturbation is any callable ``perturbation(X, rng) -> X_perturbed``: it returns an
array of the same shape, drawn with the :class:`numpy.random.Generator` ``rng``, and
always perturbs the rows it is given (the originals; perturbations are never chained).
Each row is perturbed independently, so a block of ``k`` copies of a sample gives ``k``
independent perturbations of it.
"""

import inspect
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator

from skrob._compat import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from skrob._validation import check_clip


class PerturbationParameterError(ValueError, TypeError):
    """An invalid parameter of a perturbation.

    Not an ``InvalidParameterError``: scikit-learn's ``validate_params`` would rename it
    after the public function that happened to call the perturbation.
    """


def _float_dtype(dtype):
    """float32 and float64 stay; anything else (float16, ints) is perturbed in float64."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _check_rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(
        "rng must be a numpy.random.Generator (or an int seed), got "
        f"{type(rng).__name__}: use np.random.default_rng(seed)."
    )


class Perturbation(BaseEstimator):
    """Base class: a scikit-learn estimator (``get_params``, ``set_params``, ``clone``, so
    ``perturbation__sigma`` can be tuned), validation, ``clip``, a full ``repr``.

    Subclasses implement :meth:`_perturb` and declare ``_parameter_constraints``.
    """

    _parameter_constraints: dict = {}

    def __call__(self, X, rng):
        """Return an independently perturbed copy of every row of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, ...)
        rng : numpy.random.Generator

        Returns
        -------
        X_perturbed : ndarray of the same shape, a float dtype
        """
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
        if X.ndim < 2:
            raise ValueError(f"X must have one row per sample (2-D or more), got shape {X.shape}.")
        out = np.array(X, dtype=_float_dtype(X.dtype), order="C")
        self.perturb_rows(out, _check_rng(rng), np.ones(X.shape[0], dtype=bool))
        return out

    def perturb_rows(self, out, rng, keep, *, check=True):
        """Perturb ``out`` in place: the rows ``keep`` of a block of ``keep.size`` rows.

        The random numbers are drawn for the whole block, so ``out`` gets exactly the
        values that ``self(block, rng)[keep]`` would give, without copying the rows that
        are not kept (RPR drops samples that already failed this way).
        """
        if check:
            self.check_params()
        self._perturb(out, rng, keep)
        clip = getattr(self, "clip", None)
        if clip is not None:
            np.clip(out, clip[0], clip[1], out=out)
        return out

    def check_params(self):
        """Raise :class:`PerturbationParameterError` for an invalid parameter."""
        owner = type(self).__name__
        try:
            validate_parameter_constraints(
                self._parameter_constraints,
                {name: getattr(self, name) for name in self._parameter_constraints},
                caller_name=owner,
            )
        except InvalidParameterError as exc:
            raise PerturbationParameterError(str(exc)) from None
        check_clip(
            getattr(self, "clip", None), owner, open_sides=True, error=PerturbationParameterError
        )
        self._check_params()

    def _check_params(self):
        """Checks beyond the constraints (subclasses)."""

    def _perturb(self, out, rng, keep):
        """Perturb the float array ``out`` in place: its rows ``keep`` of a block whose
        random numbers are drawn for all ``keep.size`` rows (see :meth:`perturb_rows`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _perturb.")

    def __repr__(self, N_CHAR_MAX=700):
        names = inspect.signature(type(self).__init__).parameters
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in names if k != "self")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self):
        return hash(repr(self))


_CLIP = ["array-like", None]
# A finite positive number (an Interval with no upper bound admits inf).
_POSITIVE = Interval(Real, 0, np.finfo(np.float64).max, closed="right")


def _kept(draws, keep):
    """The draws of the kept rows (all of them without a copy when every row is kept)."""
    return draws if keep.all() else draws[keep]


class GaussianNoise(Perturbation):
    """Add independent ``N(0, sigma²)`` noise to every feature.

    Parameters
    ----------
    sigma : float > 0
        Standard deviation of the noise.
    clip : (low, high), default=None
        Clip the result to this box (e.g. ``(0, 1)`` for images).

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.perturbations import GaussianNoise
    >>> GaussianNoise(0.1, clip=(0, 1))(np.full((2, 3), 0.5), np.random.default_rng(0)).shape
    (2, 3)
    """

    _parameter_constraints = {"sigma": [_POSITIVE], "clip": _CLIP}

    def __init__(self, sigma, *, clip=None):
        self.sigma = sigma
        self.clip = clip

    def _perturb(self, out, rng, keep):
        noise = _kept(rng.standard_normal((keep.size,) + out.shape[1:], dtype=out.dtype), keep)
        noise *= out.dtype.type(self.sigma)
        out += noise


class SphereNoise(Perturbation):
    """Add a vector drawn uniformly from the L2 sphere of radius ``radius``.

    The direction is a normalised standard Gaussian vector (uniform on the sphere by
    rotation invariance); every row of the result is at distance exactly ``radius`` from
    the original (before ``clip``).

    Parameters
    ----------
    radius : float > 0
        The L2 length of every perturbation.
    clip : (low, high), default=None
        The box results are clipped to; either side may be None (open).

    Examples
    --------
    >>> import numpy as np
    >>> from skrob import SphereNoise
    >>> X = np.zeros((3, 4))
    >>> moved = SphereNoise(0.5)(X, np.random.default_rng(0))
    >>> np.linalg.norm(moved - X, axis=1).round(6).tolist()
    [0.5, 0.5, 0.5]
    """

    _parameter_constraints = {"radius": [_POSITIVE], "clip": _CLIP}

    def __init__(self, radius, *, clip=None):
        self.radius = radius
        self.clip = clip

    def _perturb(self, out, rng, keep):
        g = _kept(rng.standard_normal((keep.size,) + out.shape[1:]), keep)
        axes = tuple(range(1, out.ndim))
        g *= self.radius / np.sqrt((g * g).sum(axis=axes, keepdims=True))
        out += g.astype(out.dtype, copy=False)


class UniformNoise(Perturbation):
    """Add independent ``Uniform(-epsilon, epsilon)`` noise to every feature (the L∞ box).

    Parameters
    ----------
    epsilon : float > 0
        The half-width of the noise in every feature.
    clip : (low, high), default=None
        The box results are clipped to; either side may be None (open).

    Examples
    --------
    >>> import numpy as np
    >>> from skrob import UniformNoise
    >>> X = np.zeros((3, 4))
    >>> bool(np.abs(UniformNoise(0.1)(X, np.random.default_rng(0))).max() <= 0.1)
    True
    """

    _parameter_constraints = {
        "epsilon": [_POSITIVE],
        "clip": _CLIP,
    }

    def __init__(self, epsilon, *, clip=None):
        self.epsilon = epsilon
        self.clip = clip

    def _perturb(self, out, rng, keep):
        noise = _kept(rng.random((keep.size,) + out.shape[1:], dtype=out.dtype), keep)
        noise *= out.dtype.type(2 * self.epsilon)
        noise -= out.dtype.type(self.epsilon)
        out += noise


class PixelNoise(Perturbation):
    """Replace up to ``n_pixels`` randomly chosen pixels by uniform random values (paper 001).

    Each perturbation draws ``n_pixels`` pixel positions uniformly *with* replacement, so
    at most ``n_pixels`` distinct pixels change (the paper's "at most ⌊√n⌋ pixels"), and
    gives each a value drawn uniformly from ``[low, high)``. With ``image_shape`` (for
    example ``(3, 32, 32)``, channels first, or ``(32, 32, 3)`` with ``channels_last``)
    a pixel is a position of the image and all its channels are replaced together.

    Parameters
    ----------
    n_pixels : int or "sqrt", default="sqrt"
        "sqrt" is ⌊√(number of pixel positions)⌋: 28 for a 28×28 image.
    low, high : float, default=0.0, 1.0
        Range of the new values.
    image_shape : tuple of int, default=None
        Shape of one sample as an image; None treats every feature as one pixel.
    channels_last : bool, default=False
        Whether the channels are the last axis of ``image_shape``.
    clip : (low, high), default=None

    Examples
    --------
    >>> import numpy as np
    >>> from skrob.perturbations import PixelNoise
    >>> X = np.zeros((4, 784))
    >>> changed = (PixelNoise()(X, np.random.default_rng(0)) != X).sum(axis=1)
    >>> bool((changed <= 28).all())
    True
    """

    _parameter_constraints = {
        "n_pixels": [Interval(Integral, 1, None, closed="left"), StrOptions({"sqrt"})],
        "low": [Interval(Real, None, None, closed="neither")],
        "high": [Interval(Real, None, None, closed="neither")],
        "image_shape": ["array-like", None],
        "channels_last": ["boolean"],
        "clip": _CLIP,
    }

    def __init__(
        self,
        n_pixels="sqrt",
        *,
        low=0.0,
        high=1.0,
        image_shape=None,
        channels_last=False,
        clip=None,
    ):
        self.n_pixels = n_pixels
        self.low = low
        self.high = high
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.clip = clip

    def _check_params(self):
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high <= self.low:
            raise PerturbationParameterError(
                f"PixelNoise needs finite low < high, got low={self.low} and high={self.high}."
            )
        if self.image_shape is not None:
            shape = np.asarray(self.image_shape)
            if shape.ndim != 1 or shape.size not in (2, 3) or shape.dtype.kind not in "iu":
                raise PerturbationParameterError(
                    "PixelNoise's image_shape must be (height, width) or an image shape with "
                    f"channels, like (3, 32, 32); got {self.image_shape!r}."
                )
            if (shape <= 0).any():
                raise PerturbationParameterError(
                    f"PixelNoise's image_shape must be positive, got {self.image_shape!r}."
                )

    def _perturb(self, out, rng, keep):
        n = out.shape[0]
        n_features = int(np.prod(out.shape[1:]))
        if self.image_shape is None:
            channels, positions = 1, n_features
        else:
            shape = tuple(int(s) for s in self.image_shape)
            if int(np.prod(shape)) != n_features:
                raise ValueError(
                    f"image_shape {shape} has {int(np.prod(shape))} values, but a sample "
                    f"has {n_features} features."
                )
            channels = 1 if len(shape) == 2 else (shape[-1] if self.channels_last else shape[0])
            positions = n_features // channels
        k = int(np.sqrt(positions)) if self.n_pixels == "sqrt" else int(self.n_pixels)
        where = _kept(rng.integers(0, positions, size=(keep.size, k), dtype=np.intp), keep)
        values = _kept(rng.random((keep.size, k, channels), dtype=out.dtype), keep)
        values *= out.dtype.type(self.high - self.low)
        values += out.dtype.type(self.low)
        if channels == 1:
            cols = where[:, :, None]
        elif self.channels_last:
            cols = where[:, :, None] * channels + np.arange(channels)
        else:
            cols = where[:, :, None] + positions * np.arange(channels)
        cols += (np.arange(n) * n_features)[:, None, None]
        out.reshape(-1)[cols.ravel()] = values.ravel()  # out is C-contiguous: a view
