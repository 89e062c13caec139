"""One way to call HiGHS (:func:`scipy.optimize.milp`) for the exact programs, and to read
what it says.

Both exact families, tree ensembles (:mod:`skrob.distortion._model_exact`) and ReLU networks
(:mod:`skrob.torch._verify`), solve one mixed-integer program per (sample, other class).
scipy folds several HiGHS outcomes into one status: a *model error* (HiGHS refuses the
numbers, e.g. coefficients beyond its range) comes back with the status of an infeasible
program. Taking that for "no point of this class" would silently drop a class and give a
distance far above the minimum. :func:`solve` therefore names the outcome from the
message as well: ``"optimal"``, ``"infeasible"`` (proven: HiGHS model status 8),
``"limit"`` (time or node limit) and ``"failed"`` (anything else). Only the first two
prove something; callers turn the others into a bracket and a warning.
"""

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

# HiGHS' own tolerance on the relative MIP gap is 1e-4; exact means closer than that.
MIP_REL_GAP = 1e-9


@dataclass
class Outcome:
    """What one program proved: ``status`` in {"optimal", "infeasible", "limit",
    "failed"}, the point ``x`` (None when none was found), its objective ``fun``, the
    proven lower bound ``bound`` of the objective (``-inf`` when none) and HiGHS'
    ``message``."""

    status: str
    x: np.ndarray | None
    fun: float
    bound: float
    message: str


# A minimum proven with presolve is confirmed down to this relative margin.
CONFIRM_MARGIN = 1e-6


def confirmed_minimum(run, start):
    """The minimum over every other class, confirmed: ``(upper, lower)``, equal when
    proven. Both exact families call it, each with its own programs.

    ``run(cap, presolve)`` solves one program per other class over the points closer
    than ``cap`` and returns ``(best, low)``: the best verified value found (``cap``
    when none) and the lowest bound it proved. HiGHS' presolve has returned suboptimal
    points marked optimal (upstream bugs), so a minimum proven with presolve is confirmed
    by programs without it, capped just below it (and scaled to it): each must be proven
    empty, else the bracket stays open.
    """
    best, low = run(start, True)
    if np.isfinite(best) and low >= best * (1 - CONFIRM_MARGIN):
        cap = best * (1 - CONFIRM_MARGIN)
        found, low2 = run(cap, False)
        if found < cap:
            best = found
        low = min(low2, best) if low2 < best * (1 - CONFIRM_MARGIN) else best
    return best, min(low, best)


def classify(res):
    """The :class:`Outcome` of a :func:`scipy.optimize.milp` result."""
    message = str(getattr(res, "message", ""))
    if res.status == 0:
        status = "optimal"
    elif res.status == 2 and "infeasible" in message.lower():
        status = "infeasible"
    elif res.status == 1:
        status = "limit"
    else:  # model error, unbounded, solver error, ...
        status = "failed"
    x = getattr(res, "x", None)
    fun = float(res.fun) if x is not None and res.fun is not None else np.inf
    bound = getattr(res, "mip_dual_bound", None)
    if bound is None or not np.isfinite(bound):
        bound = fun if status == "optimal" else -np.inf
    return Outcome(status, x, fun, float(bound), message)


def solve(cost, integrality, lower, upper, A, row_lower, row_upper, deadline, presolve=True):
    """Minimise ``cost · v`` over ``lower <= v <= upper``, ``row_lower <= A v <= row_upper``
    with the integer variables ``integrality``; stop at the ``deadline`` (time.monotonic).
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Outcome("limit", None, np.inf, -np.inf, "time limit reached before the solve")
    res = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(A, row_lower, row_upper),
        options={"time_limit": remaining, "mip_rel_gap": MIP_REL_GAP, "presolve": presolve},
    )
    return classify(res)
