"""LO: the Laplacian of the predicted-class probability with respect to the input (paper 003).

For ``f(x) = softmax(module(x))_c``, ``LO(x) = Σ_i ∂²f/∂x_i²``, and the mean change of f over
perturbations of length r is ``E[f(x + Δ) − f(x)] ≈ r²/(2n)·LO`` (n input values).

Exact routes, none of which ever forms the n×n Hessian:

- smooth networks: a forward Laplacian (``_forward_laplacian.py``) over a ``torch.fx``
  trace, with the tangents through the leading affine layers shared by all samples; for
  modules it cannot trace or has no rule for, every ``∂²f/∂x_i²`` as a second directional
  derivative along ``e_i``, forward-over-forward (two nested ``torch.func.jvp``), vmapped
  over chunks of basis vectors and samples; all classes come at once;
- piecewise-linear networks (ReLU, max-pooling, linear layers: the logits' Hessian is 0
  almost everywhere): ``LO = tr(∇²_z s(z) · J Jᵀ)`` with ``J`` the Jacobian of the logits,
  from ``K`` vectorised backward passes instead of ``n`` forward ones. It is chosen when a
  ``torch.fx`` trace of the module finds only piecewise-linear operations.

"hutchinson" estimates the trace with Rademacher probes ``v``: ``E[vᵀ H v] = tr(H)``.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator

from skrob._compat import Interval, StrOptions, validate_params
from skrob._device import full_float32
from skrob._progress import progress_bar
from skrob._scoring import RobustnessScorerMixin
from skrob._validation import entropy, reject_metadata
from skrob.torch._forward_laplacian import forward_laplacian as _forward_laplacian
from skrob.torch._model import (
    as_tensor,
    check_outputs,
    eval_mode,
    parameter_dtype,
    resolve_module,
)
from skrob.torch._ops import Unsupported as _Unsupported
from skrob.torch._ops import basis_chunks, is_piecewise_linear, softmax_laplacian

DEFAULT_BATCH_SIZE = 16  # samples per block
_DIRECTIONS = 64  # directions (basis vectors or probes) evaluated per sample at once


def _probabilities(module, returns_probabilities=False):
    def probs(x):  # one sample, without its batch axis
        out = module(x.unsqueeze(0))[0]
        return out if returns_probabilities else torch.softmax(out, dim=-1)

    return probs


def _second_directional(probs, X, V, per_sample):
    """``vᵀ ∇²s_k(x) v`` for every sample, direction and class: (B, m, K).

    Forward-over-forward: the second derivative of ``t -> s(x + t v)`` at 0.
    """

    def d2(x, v):
        def first(y):
            return torch.func.jvp(probs, (y,), (v,))[1]

        return torch.func.jvp(first, (x,), (v,))[1]

    over_directions = torch.func.vmap(d2, in_dims=(None, 0))
    return torch.func.vmap(over_directions, in_dims=(0, 0 if per_sample else None))(X, V)


def _exact_smooth(module, X, batch_size, returns_probabilities):
    if not returns_probabilities:
        try:
            with torch.no_grad():
                return _forward_laplacian(module, X, batch_size)
        except _Unsupported:
            pass
    probs = _probabilities(module, returns_probabilities)
    total = None
    for E in basis_chunks(X, batch_size):
        part = _second_directional(probs, X, E, False).sum(dim=1)
        total = part if total is None else total + part
    return total


def _exact_piecewise_linear(module, X):
    """``LO_c = s_c [M_cc − 2 (M s)_c + 2 sᵀ M s − Σ_j s_j M_jj]``, ``M = J Jᵀ``."""

    def logits(x):
        return module(x.unsqueeze(0))[0]

    J = torch.func.vmap(torch.func.jacrev(logits))(X)  # (B, K, *shape)
    J = J.reshape(J.shape[0], J.shape[1], -1)
    M = J @ J.transpose(1, 2)
    with torch.no_grad():
        s = torch.softmax(module(X), dim=-1)
    return softmax_laplacian(s, M)


def _hutchinson(module, X, n_probes, seeds, batch_size, returns_probabilities):
    probs = _probabilities(module, returns_probabilities)
    B = X.shape[0]
    shape = X.shape[1:]
    chunk = max(1, batch_size // B)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    total = None
    for start in range(0, n_probes, chunk):
        m = min(chunk, n_probes - start)
        V = torch.stack(
            [2.0 * torch.randint(0, 2, (m,) + shape, generator=g) - 1.0 for g in generators]
        ).to(device=X.device, dtype=X.dtype)
        part = _second_directional(probs, X, V, True).sum(dim=1)
        total = part if total is None else total + part
    return total / n_probes


@validate_params(
    {
        "model": [object],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "target": [StrOptions({"predicted", "all"}), Interval(Integral, 0, None, closed="left")],
        "method": [StrOptions({"exact", "hutchinson"})],
        "n_probes": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device, None],
        "random_state": ["random_state"],
        "input_shape": [tuple, None],
        "piecewise_linear": [StrOptions({"auto"}), "boolean"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def laplacian(
    model,
    X,
    *,
    target="predicted",
    method="exact",
    n_probes=64,
    batch_size=None,
    device=None,
    random_state=None,
    input_shape=None,
    piecewise_linear="auto",
    verbose=0,
):
    """Laplacian (trace of the input Hessian) of a class probability, per sample.

    Parameters
    ----------
    model : fitted skorch NeuralNet or torch.nn.Module
        A plain module must return logits. A skorch net's module returns logits with
        ``criterion=CrossEntropyLoss`` and probabilities with skorch's default
        ``NLLLoss``; both are handled. Evaluated in eval mode.
    X : array-like or tensor of shape (n_samples, ...)
        Inputs as the module takes them (as skorch passes them); ``input_shape`` reshapes
        each row first, e.g. ``(1, 28, 28)`` for flattened images.
    target : "predicted", "all" or int, default="predicted"
        The predicted class of each sample, a given class, or every class (the columns
        then sum to 0, as the probabilities sum to 1).
    method : {"exact", "hutchinson"}, default="exact"
        "exact": all n second derivatives (forward-over-forward, or the Jacobian route for
        piecewise-linear modules); "hutchinson": the unbiased estimate from ``n_probes``
        Rademacher probes per sample.
    n_probes : int, default=64
    batch_size : int, default=None
        Samples per block (16 when None); each is evaluated along 64 directions at once,
        so memory is about ``batch_size * 64`` forward passes.
    device : str or torch.device, default=None
        Where to compute; None: the model's device ("auto": CUDA when present). float32
        products run in full float32 there: TF32 and bfloat16 are switched off while LO
        runs (and restored), so a GPU agrees with the CPU to float32 rounding.
    random_state : int, RandomState instance or None, default=None
        The probes of "hutchinson" (one stream per sample: independent of ``batch_size``).
    input_shape : tuple, default=None
    piecewise_linear : "auto" or bool, default="auto"
        Use the Jacobian route ("auto": when a torch.fx trace finds only piecewise-linear
        operations). For such nets LO is exact almost everywhere but does not predict the
        mean change over a finite radius: the kinks dominate it.
    verbose : int, default=0
        Show a progress bar over the samples when positive.

    Returns
    -------
    lo : ndarray of shape (n_samples,), or (n_samples, n_classes) with target="all"

    References
    ----------
    R. Yang, P. Liu, M. Bilgic. The Analysis of the Expected Change in the Classification
    Probability of the Predicted Label. Transactions on Machine Learning Research
    (paper 003), https://openreview.net/forum?id=guqzvUVPiQ

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import laplacian
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> lo = laplacian(net, torch.randn(5, 4), target="all")
    >>> lo.shape, bool(abs(lo.sum(axis=1)).max() < 1e-5)
    ((5, 3), True)
    """
    module, dev, returns_probabilities = resolve_module(model, device)
    X = as_tensor(X, dev, input_shape, parameter_dtype(module))
    with eval_mode(module):
        n_classes = check_outputs(module, X)
    if isinstance(target, Integral) and target >= n_classes:
        raise ValueError(f"target={target} is not a class index below {n_classes}.")
    if piecewise_linear == "auto":
        piecewise_linear = method == "exact" and is_piecewise_linear(module)
    if piecewise_linear and returns_probabilities:
        raise ValueError("The Jacobian route needs a module that returns logits.")
    seeds = None
    if method == "hutchinson":
        seeds = np.random.SeedSequence(entropy(random_state)).generate_state(X.shape[0])
    rows = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    route = "hutchinson" if method == "hutchinson" else "linear" if piecewise_linear else "smooth"
    # full float32 products (no TF32 or bfloat16 whatever torch's settings): second
    # derivatives lose their digits to a narrower format, on the GPU as on the CPU
    with eval_mode(module), full_float32():
        lo = _all_classes(module, X, route, rows, n_probes, seeds, returns_probabilities, verbose)
        if target == "all":
            return lo.cpu().double().numpy()
        with torch.no_grad():
            if target == "predicted":
                classes = torch.cat(
                    [module(X[i : i + rows]).argmax(dim=1) for i in range(0, X.shape[0], rows)]
                )
            else:  # checked against the model's outputs above
                classes = torch.full((X.shape[0],), target, device=lo.device)
    return lo[torch.arange(X.shape[0]), classes].cpu().double().numpy()


def _all_classes(module, X, route, rows, n_probes, seeds, returns_probabilities, verbose=0):
    """LO of every class, ``rows`` samples at a time (64 directions each: the work shared by
    the directions, the leading affine layers, is amortised)."""
    evaluations = rows * _DIRECTIONS
    out = []
    bar = progress_bar(verbose, X.shape[0], "Laplacian", unit="sample")
    for start in range(0, X.shape[0], rows):
        Xb = X[start : start + rows]
        if route == "hutchinson":
            lo = _hutchinson(
                module,
                Xb,
                n_probes,
                seeds[start : start + rows],
                evaluations,
                returns_probabilities,
            )
        elif route == "linear":
            lo = _exact_piecewise_linear(module, Xb)
        else:
            lo = _exact_smooth(module, Xb, evaluations, returns_probabilities)
        out.append(lo.detach())
        bar.update(Xb.shape[0])
    bar.close()
    return torch.cat(out)


@validate_params(
    {
        "model": [object],
        "X": ["array-like", "sparse matrix", torch.Tensor],
        "radius": [Interval(Real, 0, float(np.finfo(np.float64).max), closed="right")],
    },
    prefer_skip_nested_validation=False,
)
def expected_probability_change(model, X, radius, **kwargs):
    """``radius² / (2n) · LO``: the mean change of the probability under perturbations of
    length ``radius`` (paper 003, Theorem 1), n the number of input values.

    Parameters
    ----------
    model : fitted skorch net, torch.nn.Module or Pipeline ending in one
        As in :func:`laplacian`.
    X : array-like or tensor of shape (n_samples, ...)
    radius : float
        The perturbations' length, finite and positive.
    **kwargs : dict
        Passed to :func:`laplacian`.

    Returns
    -------
    change : ndarray of shape (n_samples,)

    References
    ----------
    R. Yang, P. Liu, M. Bilgic. The Analysis of the Expected Change in the Classification
    Probability of the Predicted Label. Transactions on Machine Learning Research
    (paper 003), https://openreview.net/forum?id=guqzvUVPiQ

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import expected_probability_change, laplacian
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> X = torch.randn(5, 4)
    >>> change = expected_probability_change(net, X, 0.1)
    >>> bool(abs(change - 0.1**2 / 8 * laplacian(net, X)).max() < 1e-12)
    True
    """
    lo = laplacian(model, X, **kwargs)
    shape = kwargs.get("input_shape")
    n = int(np.prod(shape)) if shape is not None else int(np.prod(np.shape(X)[1:]))
    return radius**2 / (2 * n) * lo


class LaplacianScorer(RobustnessScorerMixin, BaseEstimator):
    """``-mean |LO|`` over X as a scorer: a smaller ``|LO|`` is a more robust model (paper 003).

    Parameters
    ----------
    target : "predicted", "all" or int, default="predicted"
        The class whose probability's Laplacian is taken, as in :func:`laplacian`.
    method : {"exact", "hutchinson"}, default="exact"
        All second derivatives, or Hutchinson's estimate from ``n_probes`` probes.
    n_probes : int, default=64
        Rademacher probes per sample of "hutchinson".
    batch_size : int, default=None
        Samples per block (16 when None).
    device : str or torch.device, default=None
        Where to compute; None: the model's device.
    random_state : int, RandomState instance or None, default=None
        The probes of "hutchinson"; None is seed 0, so that every call (every candidate
        of a search) uses the same probes (common random numbers).
    input_shape : tuple, default=None
        The shape each row is reshaped to before the model sees it.
    piecewise_linear : "auto" or bool, default="auto"
        Use the Jacobian route for piecewise-linear modules, as in :func:`laplacian`.
    verbose : int, default=0
        Show a progress bar over the samples when positive.

    References
    ----------
    R. Yang, P. Liu, M. Bilgic. The Analysis of the Expected Change in the Classification
    Probability of the Predicted Label. Transactions on Machine Learning Research
    (paper 003), https://openreview.net/forum?id=guqzvUVPiQ

    Examples
    --------
    >>> import torch
    >>> from skrob.torch import LaplacianScorer
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> LaplacianScorer()(net, torch.randn(5, 4)) <= 0
    True
    """

    def __init__(
        self,
        *,
        target="predicted",
        method="exact",
        n_probes=64,
        batch_size=None,
        device=None,
        random_state=None,
        input_shape=None,
        piecewise_linear="auto",
        verbose=0,
    ):
        self.target = target
        self.method = method
        self.n_probes = n_probes
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.input_shape = input_shape
        self.piecewise_linear = piecewise_linear
        self.verbose = verbose

    _parameter_constraints = {
        k: v for k, v in laplacian._skl_parameter_constraints.items() if k not in ("model", "X")
    }

    def __call__(self, estimator, X, y=None, **kwargs):
        """``-mean |LO|`` of ``estimator`` over ``X`` (``y`` is not used).

        Metadata (``sample_weight``, ...) has no meaning here: it is an error, never
        silently dropped.
        """
        reject_metadata(self, kwargs)
        self._validate_params()  # errors name LaplacianScorer, not laplacian
        params = self.get_params()
        if params["random_state"] is None:  # common random numbers (hutchinson's probes)
            params["random_state"] = 0
        lo = laplacian(estimator, X, **params)
        return -float(np.mean(np.abs(lo)))
