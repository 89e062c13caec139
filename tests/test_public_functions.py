"""Every public function and class validates its parameters and its data.

In the spirit of imbalanced-learn's ``test_public_functions.py``: the public names are
found automatically (``skrob.__all__`` and ``skrob.torch.__all__``), so a new name cannot
skip these checks; ``VALID`` holds one valid call of each, and the test fails for a public
name without one.

- Parameters: every parameter of a function is declared to scikit-learn's
  ``validate_params`` (of a class: in ``_parameter_constraints``); for each constraint,
  scikit-learn's ``generate_invalid_param_val`` makes a value that violates it, and the
  call must raise ``InvalidParameterError`` (or, for perturbations, their own
  ``PerturbationParameterError``) naming the parameter and the public name, not a
  function it happens to call.
- Data: X with NaN or infinity, of the wrong number of dimensions, sparse, of strings,
  and y of the wrong length must raise a ``ValueError``/``TypeError`` that names the
  argument, never a silent number or an ``IndexError`` from deep inside.
"""

import importlib
import inspect
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)

import skrob
from skrob.perturbations import PerturbationParameterError

try:
    importlib.import_module("skrob.torch")
    HAS_TORCH = True
except ImportError:  # the torch extra is not installed (or blocked by the tests' hook)
    HAS_TORCH = False

_X, _Y = load_iris(return_X_y=True)
X = _X[::3] / 8.0  # 50 samples in [0, 1), 3 classes
Y = _Y[::3]
Y_REG = X[:, 0] + 0.5
CLF = LogisticRegression(max_iter=300).fit(X, Y)
REG = LinearRegression().fit(X, Y_REG)


def _torch_objects():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    Xt = X.astype(np.float32)
    return net, Xt, net(torch.as_tensor(Xt)).argmax(1).numpy()


# name -> function returning (callable taking **kwargs, kwargs of one valid call, data
# arguments: {"X": name, "y": name} of the call's data parameters, or {}).
VALID = {
    "sample_robustness": lambda: (skrob.sample_robustness, {"X": X, "y": Y}, {"X": "X", "y": "y"}),
    "diagnose": lambda: (skrob.diagnose, {"X": X, "y": Y}, {"X": "X", "y": "y"}),
    "label_issues": lambda: (skrob.label_issues, {"X": X, "y": Y}, {"X": "X", "y": "y"}),
    "knn_soft_labels": lambda: (skrob.knn_soft_labels, {"X": X, "y": Y}, {"X": "X", "y": "y"}),
    "label_uncertainty": lambda: (
        skrob.label_uncertainty,
        {"soft_labels": np.full((50, 3), 1 / 3), "y": Y},
        {"X": "soft_labels", "y": "y"},
    ),
    "balanced_nested_subsets": lambda: (
        skrob.balanced_nested_subsets,
        {"y": Y, "sizes": [3, 6]},
        {},
    ),
    "robustness_learning_curve": lambda: (
        skrob.robustness_learning_curve,
        {
            "estimator": LogisticRegression(max_iter=200),
            "X": X,
            "y": Y,
            "X_test": X,
            "y_test": Y,
            "train_sizes": [15, 30],
            "scoring": {"accuracy": "accuracy"},
        },
        {"X": "X", "y": "y"},
    ),
    "subset_scorer": lambda: (skrob.subset_scorer, {"scoring": "accuracy"}, {}),
    "rpr_steps": lambda: (
        skrob.rpr_steps,
        {
            "estimator": CLF,
            "X": X,
            "y": Y,
            "perturbation": skrob.GaussianNoise(0.1),
            "max_steps": 5,
            "random_state": 0,
        },
        {"X": "X", "y": "y"},
    ),
    "rpr_curve": lambda: (skrob.rpr_curve, {"steps": [0, 1, 2], "max_steps": 3}, {}),
    "label_flip_rate": lambda: (
        skrob.label_flip_rate,
        {"estimator": CLF, "X": X, "perturbation": skrob.GaussianNoise(0.1), "n_samples": 5},
        {"X": "X"},
    ),
    "relative_error_distortion": lambda: (
        skrob.relative_error_distortion,
        {"estimator": REG, "X": X[:10], "y": Y_REG[:10], "n_grid": 11, "n_bisect": 3},
        {"X": "X", "y": "y"},
    ),
    "decision_based_distortion": lambda: (
        skrob.decision_based_distortion,
        {"estimator": CLF, "X": X[:10], "y": Y[:10], "max_queries": 200, "random_state": 0},
        {"X": "X", "y": "y"},
    ),
    "exact_distortion": lambda: (
        skrob.exact_distortion,
        {"estimator": CLF, "X": X[:10], "y": Y[:10]},
        {"X": "X", "y": "y"},
    ),
    # model-agnostic (skrob), re-exported by skrob.torch
    "common_correct_mask": lambda: (
        skrob.common_correct_mask,
        {"estimators": [CLF], "X": X, "y": Y},
        {"X": "X", "y": "y"},
    ),
    # Classes: called through the method that validates (fit, split, __call__).
    "DecisionDistortionScorer": lambda: (
        lambda **p: skrob.DecisionDistortionScorer(**p)(CLF, X[:10], Y[:10]),
        {"max_queries": 200},
        {},
    ),
    "SampleRobustnessTransformer": lambda: (
        lambda **p: skrob.SampleRobustnessTransformer(**p).fit(X, Y),
        {},
        {},
    ),
    "RobustSubsetSelector": lambda: (
        lambda **p: skrob.RobustSubsetSelector(**p).fit(X, Y),
        {},
        {},
    ),
    "RobustSubsetEstimator": lambda: (
        lambda **p: skrob.RobustSubsetEstimator(**p).fit(X, Y),
        {"estimator": LogisticRegression(max_iter=200)},
        {},
    ),
    "IntrinsicRobustnessEstimator": lambda: (
        lambda **p: skrob.IntrinsicRobustnessEstimator(**p).fit(X, np.full(50, 0.5)),
        {"epsilon": 0.1, "random_state": 0},
        {},
    ),
    "RPRScorer": lambda: (
        lambda **p: skrob.RPRScorer(**p)(CLF, X, Y),
        {"perturbation": skrob.GaussianNoise(0.1), "max_steps": 3},
        {},
    ),
    "RobustnessSubsetSplit": lambda: (
        lambda **p: list(skrob.RobustnessSubsetSplit(**p).split(X, Y)),
        {"cv": StratifiedKFold(2)},
        {},
    ),
    **{
        name: partial(
            lambda cls, args: (
                lambda **p: cls(**p)(X, np.random.default_rng(0)),
                args,
                {},
            ),
            getattr(skrob, name),
            args,
        )
        for name, args in {
            "GaussianNoise": {"sigma": 0.1},
            "SphereNoise": {"radius": 0.1},
            "UniformNoise": {"epsilon": 0.1},
            "PixelNoise": {},
        }.items()
    },
}

if HAS_TORCH:
    VALID.update(
        {
            "laplacian": lambda: (
                lambda **p: __import__("skrob.torch").torch.laplacian(**p),
                {"model": _torch_objects()[0], "X": _torch_objects()[1]},
                {"X": "X"},
            ),
            "expected_probability_change": lambda: (
                lambda **p: __import__("skrob.torch").torch.expected_probability_change(**p),
                {"model": _torch_objects()[0], "X": _torch_objects()[1], "radius": 0.1},
                {"X": "X"},
            ),
            "minimal_distortion": lambda: (
                lambda **p: __import__("skrob.torch").torch.minimal_distortion(**p),
                {
                    "model": _torch_objects()[0],
                    "X": _torch_objects()[1][:8],
                    "y": _torch_objects()[2][:8],
                    "method": "deepfool",
                },
                {"X": "X", "y": "y"},
            ),
            "certified_radius": lambda: (
                lambda **p: __import__("skrob.torch").torch.certified_radius(**p),
                {
                    "model": _torch_objects()[0],
                    "X": _torch_objects()[1][:8],
                    "y": _torch_objects()[2][:8],
                },
                {"X": "X", "y": "y"},
            ),
            "LaplacianScorer": lambda: (
                lambda **p: __import__("skrob.torch").torch.LaplacianScorer(**p)(
                    _torch_objects()[0], _torch_objects()[1]
                ),
                {},
                {},
            ),
            "AdversarialDistortionScorer": lambda: (
                lambda **p: __import__("skrob.torch").torch.AdversarialDistortionScorer(**p)(
                    _torch_objects()[0], _torch_objects()[1][:8], _torch_objects()[2][:8]
                ),
                {"method": "deepfool"},
                {},
            ),
        }
    )


def _public():
    names = [(skrob, n) for n in skrob.__all__ if n != "__version__"]
    if HAS_TORCH:
        torch_part = importlib.import_module("skrob.torch")
        names += [(torch_part, n) for n in torch_part.__all__]
    return names


PUBLIC = _public()


def _constraints(obj):
    if inspect.isclass(obj):
        return obj._parameter_constraints
    return obj._skl_parameter_constraints


@pytest.mark.parametrize("module, name", PUBLIC, ids=[n for _, n in PUBLIC])
def test_every_public_name_declares_every_parameter(module, name):
    obj = getattr(module, name)
    assert name in VALID, f"{name}: add a valid call to VALID in this file"
    constraints = getattr(obj, "_skl_parameter_constraints", None)
    if inspect.isclass(obj):
        constraints = getattr(obj, "_parameter_constraints", None)
    assert constraints is not None, f"{name} declares no parameter constraints"
    params = [
        p
        for p, v in inspect.signature(obj).parameters.items()
        if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)
    ]
    missing = set(params) - set(constraints)
    assert not missing, f"{name}: parameters without constraints: {sorted(missing)}"


def _invalid_values(constraints):
    """Values violating each constraint of a parameter (one per constraint kind)."""
    made = [make_constraint(c) for c in constraints]
    for constraint in made:
        try:
            bad = generate_invalid_param_val(constraint)
        except NotImplementedError:
            continue
        if any(c.is_satisfied_by(bad) for c in made):
            continue
        yield bad
    if not any(c.is_satisfied_by("__invalid__") for c in made):
        yield "__invalid__"


def _cases():
    for module, name in PUBLIC:
        if name not in VALID:
            continue
        for param, constraint in _constraints(getattr(module, name)).items():
            if constraint == "no_validation":  # validated by its own code (device: torch)
                continue
            yield pytest.param(name, param, id=f"{name}-{param}")


@pytest.mark.parametrize("name, param", list(_cases()))
def test_invalid_parameter_values_are_named(name, param):
    func, valid, _ = VALID[name]()
    obj = dict(_public_objects())[name]
    bad_values = list(_invalid_values(_constraints(obj)[param]))
    if not bad_values:
        pytest.skip(f"{param} accepts anything that generate_invalid_param_val makes")
    for bad in bad_values:
        with pytest.raises((InvalidParameterError, PerturbationParameterError)) as info:
            func(**{**valid, param: bad})
        message = str(info.value)
        assert f"'{param}' parameter" in message, message
        assert name in message, f"the message names another function: {message}"


def _public_objects():
    return [(name, getattr(module, name)) for module, name in PUBLIC]


def _bad_data(kind):
    if kind == "nan":
        Z = X.copy()
        Z[3, 1] = np.nan
        return Z, "NaN"
    if kind == "inf":
        Z = X.copy()
        Z[3, 1] = np.inf
        return Z, "infinity"
    if kind == "1d":
        return X[:, 0], "2D|2-D|one row per sample|dimension|shape"
    if kind == "sparse":
        return sp.csr_matrix(X), "[Ss]parse .*dense"
    if kind == "strings":
        return np.full(X.shape, "a"), "not numbers: column 0 \\(it holds 'a'\\)|numeric|dtype"
    raise ValueError(kind)


# Functions that take CSR X (classification, exact search; sparse_groups in skrob._search.sparse).
SPARSE_OK = {"sample_robustness", "knn_soft_labels", "diagnose", "label_issues"}

# X goes as it is to the user's estimators, which decide what they accept (as in
# scikit-learn's learning_curve and cross_validate): only y is checked here.
DELEGATED_X = {"robustness_learning_curve", "common_correct_mask"}


def _data_cases():
    for name in sorted(VALID):
        _, _, data = VALID[name]()
        if "X" in data and name not in DELEGATED_X:
            for kind in ("nan", "inf", "1d", "sparse", "strings"):
                yield pytest.param(name, kind, id=f"{name}-X-{kind}")
        if "y" in data:
            yield pytest.param(name, "y-length", id=f"{name}-y-length")


@pytest.mark.parametrize("name, kind", list(_data_cases()))
def test_bad_data_is_named(name, kind):
    func, valid, data = VALID[name]()
    if kind == "y-length":
        y = valid[data["y"]]
        args = {**valid, data["y"]: y[:-1]}
        with pytest.raises(ValueError, match="inconsistent|length|one .* per sample|shape"):
            func(**args)
        return
    bad, pattern = _bad_data(kind)
    if kind == "sparse" and name in SPARSE_OK:  # CSR is supported: a finite answer
        out = func(**{**valid, data["X"]: bad})
        assert np.isfinite(np.asarray(out, dtype=float)).all()
        return
    if HAS_TORCH and name in ("laplacian", "expected_probability_change", "minimal_distortion"):
        bad = bad.astype(np.float32) if bad.dtype.kind == "f" else bad
    with pytest.raises((ValueError, TypeError), match=pattern):
        func(**{**valid, data["X"]: bad})


def _with_text_column(X):
    """X as a DataFrame with an ID column of strings and a date column among its numbers."""
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    frame.insert(1, "customer_id", [f"C{i:04d}" for i in range(len(frame))])
    frame["signup"] = pd.date_range("2020-01-01", periods=len(frame))
    return frame


def _text_cases():
    for name in sorted(VALID):
        _, _, data = VALID[name]()
        if data.get("X") == "X" and name not in DELEGATED_X:
            yield name
    yield from (
        "SampleRobustnessTransformer",
        "RobustSubsetSelector",
        "RobustSubsetEstimator",
        "IntrinsicRobustnessEstimator",
        "RPRScorer",
        "DecisionDistortionScorer",
        "RobustnessSubsetSplit",
    )


@pytest.mark.parametrize("name", list(dict.fromkeys(_text_cases())))
def test_text_and_date_columns_are_named(name):
    """A table with an ID column of strings and a date column: the error names both
    columns (numpy's "could not convert string to float" named neither)."""
    func, valid, data = VALID[name]()
    if data.get("X") == "X":
        X_valid = valid["X"]
        call = partial(func, **{k: v for k, v in valid.items() if k != "X"})
        run = lambda Z: call(X=Z)  # noqa: E731
    else:
        X_valid = X[:10] if name == "DecisionDistortionScorer" else X
        y_valid = Y[: len(X_valid)]
        run = {
            "SampleRobustnessTransformer": lambda Z: skrob.SampleRobustnessTransformer().fit(
                Z, y_valid
            ),
            "RobustSubsetSelector": lambda Z: skrob.RobustSubsetSelector().fit(Z, y_valid),
            "RobustSubsetEstimator": lambda Z: skrob.RobustSubsetEstimator(
                LogisticRegression(max_iter=200)
            ).fit(Z, y_valid),
            "IntrinsicRobustnessEstimator": lambda Z: skrob.IntrinsicRobustnessEstimator(
                epsilon=0.1, random_state=0
            ).fit(Z, np.full(len(y_valid), 0.5)),
            "RPRScorer": lambda Z: skrob.RPRScorer(
                perturbation=skrob.GaussianNoise(0.1), max_steps=3
            )(CLF, Z, y_valid),
            "DecisionDistortionScorer": lambda Z: skrob.DecisionDistortionScorer(max_queries=200)(
                CLF, Z, y_valid
            ),
            "RobustnessSubsetSplit": lambda Z: list(
                skrob.RobustnessSubsetSplit(cv=StratifiedKFold(2)).split(Z, y_valid)
            ),
        }[name]
    X_valid = np.asarray(X_valid, dtype=float)
    with pytest.raises(ValueError, match=r"'customer_id' \(.*\), 'signup' \(datetime"):
        run(_with_text_column(X_valid))


def test_columns_of_numbers_stored_as_objects_are_numbers():
    """A column of Python numbers with gaps (object dtype, as JSON gives) or of numeric
    categories is converted as before; text beside them is named."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": pd.Series(list(X[:, 0]), dtype=object),
            "b": pd.Categorical(np.round(X[:, 1], 1)),
            "c": X[:, 2],
        }
    )
    want = skrob.sample_robustness(np.column_stack([X[:, 0], np.round(X[:, 1], 1), X[:, 2]]), Y)
    np.testing.assert_array_equal(skrob.sample_robustness(frame, Y), want)
    frame["note"] = ["fine"] * len(frame)
    with pytest.raises(ValueError, match=r"not numbers: 'note' \("):
        skrob.sample_robustness(frame, Y)
