"""A scikit-learn Pipeline ending in a net: LO and distortion on the raw features."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skorch = pytest.importorskip("skorch")

from numpy.testing import assert_allclose  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.decomposition import PCA, TruncatedSVD  # noqa: E402
from sklearn.feature_selection import SelectKBest  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)
from torch import nn  # noqa: E402

from skrob.torch import (  # noqa: E402
    AdversarialDistortionScorer,
    LaplacianScorer,
    laplacian,
    minimal_distortion,
)

RNG = np.random.default_rng(0)
X = (RNG.uniform(size=(80, 6)) * [1, 2, 5, 10, 0.5, 3] + [0, 1, -2, 3, 0, 1]).astype(np.float32)
Y = (X[:, 0] * 3 + X[:, 1] > 2.5).astype(np.int64) + (X[:, 3] > 8).astype(np.int64)


def _net(n_in):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 16), nn.Tanh(), nn.Linear(16, 3))


def _by_hand(step, Z):
    """The step's transform written in torch by hand, from its fitted attributes."""
    if isinstance(step, StandardScaler):
        return (Z - torch.as_tensor(step.mean_)) / torch.as_tensor(step.scale_)
    if isinstance(step, MinMaxScaler):
        return Z * torch.as_tensor(step.scale_) + torch.as_tensor(step.min_)
    if isinstance(step, MaxAbsScaler):
        return Z / torch.as_tensor(step.scale_)
    if isinstance(step, RobustScaler):
        return (Z - torch.as_tensor(step.center_)) / torch.as_tensor(step.scale_)
    if isinstance(step, Normalizer):
        return Z / Z.norm(dim=1, keepdim=True)
    if isinstance(step, PCA):
        return (Z - torch.as_tensor(step.mean_)) @ torch.as_tensor(step.components_).T
    if isinstance(step, TruncatedSVD):
        return Z @ torch.as_tensor(step.components_).T
    if isinstance(step, FunctionTransformer):
        return step.func(Z)
    raise AssertionError(step)


def soft_sign(Z):
    """Works on numpy arrays (for fit) and on torch tensors (for the gradients)."""
    return Z / (1 + abs(Z))


STEPS = [
    [StandardScaler()],
    [MinMaxScaler()],
    [MaxAbsScaler()],
    [RobustScaler()],
    [Normalizer()],
    [StandardScaler(), PCA(4)],
    [TruncatedSVD(4)],
    [FunctionTransformer(soft_sign), StandardScaler()],
]


@pytest.mark.parametrize("steps", STEPS, ids=lambda s: "+".join(type(t).__name__ for t in s))
def test_pipeline_equals_the_model_composed_by_hand(steps):
    pipe = make_pipeline(*steps).fit(X.astype(np.float64))
    width = pipe.transform(X.astype(np.float64)).shape[1]
    net = _net(width)
    full = make_pipeline(*pipe.steps and [s for _, s in pipe.steps], net)

    class ByHand(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, Z):
            Z = Z.double()
            for step in steps:
                Z = _by_hand(step, Z)
            return self.net(Z.float())

    reference = ByHand()
    lo = laplacian(full, X, target="all")
    assert_allclose(lo, laplacian(reference, X, target="all"), rtol=2e-3, atol=1e-6)
    y = reference(torch.as_tensor(X)).argmax(1).numpy()
    box = (float(X.min()) - 1, float(X.max()) + 1)
    d_pipe, adv, ok = minimal_distortion(
        full, X, y, method="deepfool", clip=box, return_adversarial=True
    )
    d_hand = minimal_distortion(reference, X, y, method="deepfool", clip=box)
    # Distances in raw units: the same as the hand-built model's up to float32 rounding
    # along the attack's path (a few samples may end in another nearby minimum).
    close = np.abs(d_pipe / d_hand - 1) < 1e-3
    assert np.median(np.abs(d_pipe / d_hand - 1)) < 1e-4 and close.mean() >= 0.9
    assert_allclose(np.abs(adv - X)[ok].max(axis=1), d_pipe[ok], rtol=1e-5)


def test_column_transformer_of_scalers_and_a_normalizer():
    import pandas as pd

    df = pd.DataFrame(X, columns=list("abcdef"))
    ct = ColumnTransformer(
        [("s", StandardScaler(), ["a", "b", "c"]), ("m", MinMaxScaler(), [3, 4])],
        remainder="drop",
    )
    affine = make_pipeline(ct).fit(df)
    net = _net(5)
    mean, scale = (
        affine[0].named_transformers_["s"].mean_,
        affine[0].named_transformers_["s"].scale_,
    )
    mm = affine[0].named_transformers_["m"]

    def by_hand(Z):
        left = (Z[:, :3].double() - torch.as_tensor(mean)) / torch.as_tensor(scale)
        right = Z[:, 3:5].double() * torch.as_tensor(mm.scale_) + torch.as_tensor(mm.min_)
        return net(torch.cat([left, right], 1).float())

    class ByHand(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, Z):
            return by_hand(Z)

    full = make_pipeline(affine[0], net)
    assert_allclose(
        laplacian(full, X, target="all"), laplacian(ByHand(), X, target="all"), rtol=2e-3, atol=1e-6
    )
    with_normalizer = ColumnTransformer([("n", Normalizer(), [0, 1]), ("p", "passthrough", [2])])
    full = make_pipeline(with_normalizer.fit(X), _net(3))
    assert laplacian(full, X).shape == (len(X),)


def test_undifferentiable_step_is_named():
    pipe = make_pipeline(SelectKBest(k=3), _net(3))
    pipe[0].fit(X, Y)
    with pytest.raises(ValueError, match="'selectkbest'.*SelectKBest.*supported"):
        laplacian(pipe, X)
    bad = make_pipeline(FunctionTransformer(np.log1p), _net(6))
    bad[0].fit(X)
    with pytest.raises(ValueError, match=r"FunctionTransformer\(func=log1p\) must take and return"):
        laplacian(bad, X)


def test_skorch_net_in_a_pipeline_tuned_by_distortion_in_raw_units():
    """The README's story: scale, train a net, tune it by distortion in raw pixel units."""
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)),
        criterion=nn.CrossEntropyLoss,
        max_epochs=5,
        lr=0.1,
        train_split=None,
        verbose=0,
    )
    pipe = make_pipeline(StandardScaler(), net)
    box = (float(X.min()), float(X.max()))
    search = GridSearchCV(
        pipe,
        {"neuralnetclassifier__max_epochs": [2, 5]},
        scoring=AdversarialDistortionScorer(method="deepfool", clip=box),
        cv=2,
        error_score="raise",
    ).fit(X, Y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    fitted = search.best_estimator_
    d, adv, ok = minimal_distortion(
        fitted, X, fitted.predict(X), method="deepfool", clip=box, return_adversarial=True
    )
    assert ok.any()
    # the points and the distances are in the raw units, inside the raw box
    assert_allclose(np.abs(adv - X)[ok].max(axis=1), d[ok], rtol=1e-5)
    assert adv.min() >= box[0] and adv.max() <= box[1]
    assert LaplacianScorer()(fitted, X) <= 0
