"""The exact Euclidean kernel on a torch device (a GPU): the float32 GEMM and the choice of
candidates there, the float64 re-scoring on the host.

The blocks are those of :func:`skrob._search.euclidean.euclidean_task`, with the same augmented
float32 data and the same per-pair error bounds, so results are the float64 brute force
to rounding, as on the CPU. The bound holds for any summation order, but not for
TensorFloat-32 products: they are switched off while the kernel runs.
"""

from contextlib import contextmanager

import numpy as np

from skrob._progress import progress_bar
from skrob._search.euclidean import row_layout


def resolve_device(device):
    """``torch.device(device)`` for a device this torch can use, with an error that says
    what to install or fix (never torch's traceback from deep inside a kernel);
    ``"auto"``: CUDA when available, else CPU."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is in the [torch] extra
        raise ImportError(
            f"device={device!r} runs the kernel through torch: pip install torch (or the "
            "[torch] extra), or leave device=None for the CPU kernel."
        ) from exc
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:0', "
            "'auto' (CUDA when available) or None."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r}, but this torch sees no CUDA device "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA devices exist."
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available; use device='cpu'.")
    return dev


# torch's per-operation float32 precision settings (torch >= 2.9: ``fp32_precision``,
# "none" inheriting from the backend, then from ``torch.backends``); older torch has only
# the global matmul precision and the two ``allow_tf32`` flags
_OPERATIONS = {
    "cuda": (("cuda", "matmul"), ("cudnn", "conv")),
    "cpu": (("mkldnn", "matmul"), ("mkldnn", "conv")),
}
# the relative error of rounding a float32 operand to these formats (p significant bits:
# below 2**(1 - p) whether the hardware rounds to nearest or truncates)
_REDUCED_UNITS = {"tf32": 2.0**-10, "bf16": 2.0**-7}


def _precision_objects():
    """The per-operation settings objects (empty on torch without ``fp32_precision``)."""
    import torch

    out = []
    for backend, op in _OPERATIONS["cuda"] + _OPERATIONS["cpu"]:
        leaf = getattr(getattr(torch.backends, backend, None), op, None)
        if leaf is not None and hasattr(leaf, "fp32_precision"):
            out.append(leaf)
    return out


def _effective_precision(backend, op):
    """The operation's ``fp32_precision`` after inheritance ("ieee" when none is set)."""
    import torch

    parent = getattr(torch.backends, backend)
    for obj in (getattr(parent, op), parent, torch.backends):
        value = getattr(obj, "fp32_precision", "none")
        if value != "none":
            return value
    return "ieee"


@contextmanager
def full_float32():
    """float32 matrix products and convolutions in full float32 (no TF32, no bfloat16) on
    every device, as the kernel's error bound and LO's float32 accuracy assume; every
    setting is restored afterwards.

    Newer torch refuses to read its legacy flags once the new per-operation settings
    were used, so there only those are set (the legacy flags write them too)."""
    import torch

    leaves = [(leaf, leaf.fp32_precision) for leaf in _precision_objects()]
    if leaves:
        for leaf, _ in leaves:
            leaf.fp32_precision = "ieee"
    else:  # pragma: no cover - torch < 2.9
        precision = torch.get_float32_matmul_precision()
        cuda_tf32 = torch.backends.cuda.matmul.allow_tf32
        cudnn_tf32 = torch.backends.cudnn.allow_tf32
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        if leaves:
            for leaf, value in leaves:
                leaf.fp32_precision = value
        else:  # pragma: no cover - torch < 2.9
            torch.set_float32_matmul_precision(precision)
            torch.backends.cuda.matmul.allow_tf32 = cuda_tf32
            torch.backends.cudnn.allow_tf32 = cudnn_tf32


def reduced_float32_unit(device, convolutions=True):
    """The relative error with which torch may round float32 operands of matrix products
    (and, with ``convolutions``, of convolutions) on ``device`` under the current
    settings: 2**-10 where TF32 is allowed, 2**-7 where bfloat16 is, 0 for full float32.

    Certificates for a network that predicts in float32 add this error to every product
    (:func:`skrob.torch._verify.rounding_bound`), so that they hold for the network as it
    predicts there, TF32 included (the default of cuDNN's convolutions).
    """
    import torch

    kind = torch.device(device).type
    if kind not in _OPERATIONS:
        return 0.0
    operations = [(b, op) for b, op in _OPERATIONS[kind] if convolutions or op != "conv"]
    if _precision_objects():
        formats = {_effective_precision(b, op) for b, op in operations}
    else:  # pragma: no cover - torch < 2.9
        formats = {{"high": "tf32", "medium": "bf16"}.get(torch.get_float32_matmul_precision())}
        if kind == "cuda" and torch.backends.cuda.matmul.allow_tf32:
            formats.add("tf32")
        if kind == "cuda" and convolutions and torch.backends.cudnn.allow_tf32:
            formats.add("tf32")
    return max((_REDUCED_UNITS[f] for f in formats if f in _REDUCED_UNITS), default=0.0)


def _row_candidates(D, run, tol, r0, c0, out):
    """Torch twin of :func:`skrob._search.euclidean._row_candidates`."""
    import torch

    v, j = D.min(dim=1)
    competitive = v <= run + 2 * tol
    torch.minimum(run, v, out=run)
    thr = run + 2 * tol
    ar = torch.arange(D.shape[0], device=D.device)
    D[ar, j] = float("inf")
    m2 = D.min(dim=1).values
    ambiguous = competitive & (m2 <= thr)
    if bool(ambiguous.any()):
        rows = torch.nonzero(ambiguous).flatten()
        ii, jj = torch.nonzero(D[rows] <= thr[rows, None], as_tuple=True)
        out.append((r0 + rows[ii], c0 + jj, D[rows[ii], jj]))
    D[ar, j] = v
    rows = torch.nonzero(competitive).flatten()
    out.append((r0 + rows, c0 + j[rows], v[rows]))


def _col_candidates(D, run, tol, r0, c0, out):
    """Torch twin of :func:`skrob._search.euclidean._col_candidates`."""
    import torch

    v, i = D.min(dim=0)
    competitive = v <= run + 2 * tol
    torch.minimum(run, v, out=run)
    cols = torch.nonzero(competitive).flatten()
    if cols.numel() == 0:
        return
    thr = run[cols] + 2 * tol[cols]
    vc, ic = v[cols], i[cols]
    D[ic, cols] = float("inf")
    ambiguous = D[:, cols].min(dim=0).values <= thr
    if bool(ambiguous.any()):
        acols = cols[ambiguous]
        ii, jj = torch.nonzero(D[:, acols] <= thr[ambiguous], as_tuple=True)
        out.append((r0 + ii, c0 + acols[jj], D[ii, acols[jj]]))
    D[ic, cols] = vc
    out.append((r0 + ic, c0 + cols, vc))


def device_candidates(data, tasks, both, col_block, self_col, device, verbose=0, desc=""):
    """Run the blocks ``tasks`` of :class:`skrob._search.euclidean.EuclideanData` ``data`` on
    ``device``; return the candidate pairs ``(i, j, value)`` as host arrays."""
    import torch

    progress = progress_bar(verbose, len(tasks), desc, unit="block", iterable=tasks)
    with torch.no_grad(), full_float32():
        B = torch.from_numpy(data.B).to(device)
        A = None if data.A is None else torch.from_numpy(data.A).to(device)
        # float64 bounds, as on the CPU: thresholds are not rounded down
        tolA = torch.from_numpy(data.tolA).to(device)
        tolB = torch.from_numpy(data.tolB).to(device)
        col_run = torch.full((B.shape[0],), float("inf"), device=device) if both else None
        excl = None if self_col is None else torch.from_numpy(self_col).to(device)
        out = []
        for r0, r1, c0, c1 in progress:
            a = row_layout(B[r0:r1]) if A is None else A[r0:r1]
            run = torch.full((r1 - r0,), float("inf"), device=device)
            for cs in range(c0, c1, col_block):
                ce = min(cs + col_block, c1)
                D = a @ B[cs:ce].T
                if excl is not None:
                    e = excl[r0:r1]
                    r = torch.nonzero((e >= cs) & (e < ce)).flatten()
                    D[r, e[r] - cs] = float("inf")
                _row_candidates(D, run, tolA[r0:r1], r0, cs, out)
                if both:
                    _col_candidates(D, col_run[cs:ce], tolB[cs:ce], r0, cs, out)
        if not out:
            return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float32)
        return tuple(torch.cat([o[k] for o in out]).cpu().numpy() for k in range(3))
