import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.testing import assert_allclose  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from skrob.torch import LaplacianScorer, expected_probability_change, laplacian  # noqa: E402
from skrob.torch._ops import is_piecewise_linear  # noqa: E402

nn = torch.nn


def tanh_net(seed, d=6, k=4, hidden=12):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, k)).double()


def relu_cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 5),
    ).double()


def tanh_cnn(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 5),
    ).double()


def hessian_traces(net, X):
    """The paper's approach: the full input Hessian of each class probability, its trace."""
    out = np.zeros((len(X), net(X[:1]).shape[1]))
    for i in range(len(X)):
        for c in range(out.shape[1]):
            H = torch.autograd.functional.hessian(
                lambda x, c=c: torch.softmax(net(x[None]), -1)[0, c], X[i]
            )
            out[i, c] = H.reshape(X[i].numel(), -1).trace().item()
    return out


@pytest.mark.parametrize(
    "make, shape", [(tanh_net, (6,)), (tanh_cnn, (1, 8, 8)), (relu_cnn, (1, 8, 8))]
)
def test_exact_equals_the_full_hessian_trace(global_random_seed, make, shape):
    net = make(global_random_seed)
    X = torch.randn((4,) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lo = laplacian(net, X, target="all")
    assert_allclose(lo, hessian_traces(net, X), rtol=1e-9, atol=1e-12)
    assert_allclose(lo.sum(axis=1), 0, atol=1e-12)  # the probabilities sum to 1
    predicted = net(X).argmax(1).numpy()
    assert_allclose(laplacian(net, X), lo[np.arange(4), predicted])
    assert_allclose(laplacian(net, X, target=2), lo[:, 2])


def test_exact_equals_central_finite_differences(global_random_seed):
    net = tanh_net(global_random_seed, d=5)
    X = torch.randn(3, 5, dtype=torch.float64)
    h = 1e-4
    c = net(X).argmax(1)

    def f(x):
        return torch.softmax(net(x), -1)[torch.arange(len(x)), c]

    fd = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for i in range(5):
            e = torch.zeros(5, dtype=torch.float64)
            e[i] = h
            fd += (f(X + e) - 2 * f(X) + f(X - e)) / h**2
    assert_allclose(laplacian(net, X), fd.numpy(), rtol=1e-5, atol=1e-8)


def test_piecewise_linear_route_equals_forward_over_forward(global_random_seed):
    net = relu_cnn(global_random_seed)
    assert is_piecewise_linear(net) and not is_piecewise_linear(tanh_cnn(0))
    X = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    fast = laplacian(net, X, target="all")
    slow = laplacian(net, X, target="all", piecewise_linear=False)
    assert_allclose(fast, slow, rtol=1e-9, atol=1e-14)


def test_functional_nonlinearity_is_not_mistaken_for_piecewise_linear():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))  # tanh as a function, not a module

    class Product(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)

        def forward(self, x):
            return self.a(x) * self.a(x)

    assert not is_piecewise_linear(Hidden())
    assert not is_piecewise_linear(Product())
    net = Hidden().double()
    X = torch.randn(3, 4, dtype=torch.float64)
    assert_allclose(laplacian(net, X, target="all"), hessian_traces(net, X), rtol=1e-9)


def test_expected_change_matches_monte_carlo_on_the_sphere():
    """Paper 003, Theorem 1, on a smooth net: mean f(x + Δ) − f(x) over |Δ| = r."""
    net = tanh_net(3, d=8, hidden=16)
    x = torch.randn(1, 8, dtype=torch.float64)
    r = 0.05
    predicted = net(x).argmax(1).item()
    g = torch.Generator().manual_seed(0)
    D = torch.randn(200000, 8, dtype=torch.float64, generator=g)
    D *= r / D.norm(dim=1, keepdim=True)
    with torch.no_grad():
        f = lambda z: torch.softmax(net(z), -1)[:, predicted]  # noqa: E731
        # antithetic pairs cancel the first-order term exactly
        mc = ((f(x + D) + f(x - D)) / 2 - f(x)).mean().item()
    predicted_change = expected_probability_change(net, x, r)[0]
    assert predicted_change == pytest.approx(mc, rel=0.03)
    assert abs(predicted_change) > 1e-7


def test_hutchinson_is_unbiased():
    net = tanh_net(1, d=6)
    X = torch.randn(2, 6, dtype=torch.float64)
    exact = laplacian(net, X)
    c = net(X).argmax(1)
    n_probes = 20000
    estimate = laplacian(net, X, method="hutchinson", n_probes=n_probes, random_state=0)
    for i in range(2):
        H = torch.autograd.functional.hessian(
            lambda x, i=i: torch.softmax(net(x[None]), -1)[0, c[i]], X[i]
        ).numpy()
        var = 2 * (H**2).sum() - 2 * (np.diag(H) ** 2).sum()  # Rademacher probes
        assert abs(estimate[i] - exact[i]) < 4.5 * np.sqrt(var / n_probes)
    again = laplacian(net, X, method="hutchinson", n_probes=n_probes, random_state=0, batch_size=7)
    assert_allclose(again, estimate)
    other = laplacian(net, X, method="hutchinson", n_probes=50, random_state=1)
    assert not np.allclose(
        other, laplacian(net, X, method="hutchinson", n_probes=50, random_state=2)
    )


def test_batch_size_does_not_change_exact_results():
    net = tanh_cnn(0)
    X = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    assert_allclose(laplacian(net, X, batch_size=3), laplacian(net, X, batch_size=4096))


def test_skorch_nets_flat_input_and_probability_outputs():
    skorch = pytest.importorskip("skorch")

    class FlatCNN(nn.Module):
        def __init__(self, softmax=False):
            super().__init__()
            self.body = tanh_cnn(0).float()
            self.softmax = softmax

        def forward(self, X):
            out = self.body(X.reshape(-1, 1, 8, 8))
            return torch.softmax(out, -1) if self.softmax else out

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 64)).astype(np.float32)
    y = rng.integers(0, 5, 40)
    logits_net = skorch.NeuralNetClassifier(
        FlatCNN, criterion=nn.CrossEntropyLoss, max_epochs=2, train_split=None, verbose=0
    ).fit(X, y)
    proba_net = skorch.NeuralNetClassifier(
        FlatCNN, module__softmax=True, max_epochs=2, train_split=None, verbose=0
    ).fit(X, y)  # skorch's default NLLLoss: the module returns probabilities
    for net in (logits_net, proba_net):
        module = net.module_.body.double()
        expected = hessian_traces(
            module, torch.as_tensor(X[:3], dtype=torch.float64).reshape(3, 1, 8, 8)
        )
        got = laplacian(net, X[:3].astype(np.float64), target="all")
        assert_allclose(got, expected, rtol=1e-7, atol=1e-12)
    with pytest.raises(NotFittedError):
        laplacian(skorch.NeuralNetClassifier(FlatCNN), X)


def test_input_shape_scorer_and_errors():
    net = tanh_cnn(0)
    X = torch.randn(4, 64, dtype=torch.float64)
    lo = laplacian(net, X, input_shape=(1, 8, 8))
    assert_allclose(lo, laplacian(net, X.reshape(4, 1, 8, 8)))
    assert LaplacianScorer(input_shape=(1, 8, 8))(net, X) == -np.abs(lo).mean()
    assert_allclose(
        expected_probability_change(net, X, 0.5, input_shape=(1, 8, 8)), 0.25 / 128 * lo
    )
    with pytest.raises(ValueError, match="NaN"):
        laplacian(net, torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="not a class index"):
        laplacian(net, X, input_shape=(1, 8, 8), target=9)
    with pytest.raises(ValueError, match="method"):
        laplacian(net, X, method="full")
    with pytest.raises(TypeError, match="skorch NeuralNet, a torch.nn.Module"):
        laplacian(object(), X)
    with pytest.raises(ValueError, match="radius"):
        expected_probability_change(net, X, -1.0, input_shape=(1, 8, 8))
    net.train()
    laplacian(net, X, input_shape=(1, 8, 8))
    assert net.training  # the mode is restored


@pytest.fixture
def forward_over_forward(monkeypatch):
    """Route every module through forward-over-forward (no forward Laplacian)."""
    import sys

    lap_module = sys.modules["skrob.torch.laplacian"]

    def unsupported(*args, **kwargs):
        raise lap_module._Unsupported("forced by the test")

    monkeypatch.setattr(lap_module, "_forward_laplacian", unsupported)


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Sigmoid(), nn.MaxPool2d(2)],
        lambda: [nn.Conv2d(1, 3, 3, padding=1), nn.ELU(0.7), nn.AvgPool2d(2), nn.Tanh()],
        lambda: [nn.Conv2d(1, 3, 3), nn.Softplus(), nn.MaxPool2d(3, stride=2), nn.LeakyReLU(0.1)],
    ],
)
def test_forward_laplacian_equals_forward_over_forward(global_random_seed, layers, request):
    torch.manual_seed(global_random_seed)
    body = layers()
    net = nn.Sequential(*body, nn.Flatten(), nn.LazyLinear(4)).double()
    X = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    net(X)  # materialise the lazy layer
    bn = [m for m in net if isinstance(m, nn.BatchNorm2d)]
    for m in bn:  # non-trivial running statistics
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
    fast = laplacian(net, X, target="all", batch_size=64)
    request.getfixturevalue("forward_over_forward")
    slow = laplacian(net, X, target="all", batch_size=64)
    assert_allclose(fast, slow, rtol=1e-8, atol=1e-13)
    assert_allclose(fast, hessian_traces(net.eval(), X), rtol=1e-8, atol=1e-13)


class Residual(nn.Module):
    """Functional activations, a residual sum, reshapes by batch size, scalar arithmetic."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.head = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        x = x.view(-1, 2, 4, 4)
        h = torch.tanh(x + 0.5 * self.conv2(torch.sigmoid(self.conv1(x))))
        return self.head(h.reshape(h.size(0), -1)) - 1.0


def test_forward_laplacian_through_a_traced_graph(global_random_seed, request):
    torch.manual_seed(global_random_seed)
    net = Residual().double()
    X = torch.randn(4, 32, dtype=torch.float64)
    fast = laplacian(net, X, target="all", batch_size=40)
    assert_allclose(fast, hessian_traces(net, X), rtol=1e-8, atol=1e-13)
    direct = sys.modules["skrob.torch.laplacian"]._forward_laplacian(net.eval(), X, 40)
    assert_allclose(direct.detach().numpy(), fast)  # the traced route ran, no fallback
    request.getfixturevalue("forward_over_forward")
    assert_allclose(laplacian(net, X, target="all"), fast, rtol=1e-8, atol=1e-13)


def test_laplacian_display():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skrob.plotting import LaplacianDisplay

    net = tanh_cnn(0)
    X = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    disp = LaplacianDisplay.from_estimator(net, {"clean": X, "noisy": X + 0.5})
    assert disp.means_["clean"] == pytest.approx(np.abs(laplacian(net, X)).mean())
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["clean", "noisy"]
    signed = LaplacianDisplay.from_values({"a": [-1.0, 1.0]}, absolute=False)
    assert signed.means_["a"] == 0.0


def test_inputs_that_do_not_fit_get_errors_naming_them():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"maps 2 rows of shape \(3, 3\)"):
        laplacian(mlp, np.repeat(X[:, None, :], 3, axis=1))
    with pytest.raises(ValueError, match=r"input_shape \(2, 2\) holds 4 values"):
        laplacian(mlp, X, input_shape=(2, 2))
    with pytest.raises(ValueError, match="cannot take X"):
        laplacian(mlp, np.zeros((4, 5), dtype=np.float32))
    for radius in (np.nan, np.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="'radius' parameter"):
            expected_probability_change(mlp, X, radius)
    with pytest.raises(ValueError, match="'method' parameter of LaplacianScorer"):
        LaplacianScorer(method="exactly")(mlp, X)
    with pytest.raises(ValueError, match="target=5 is not a class index below 3"):
        laplacian(mlp, X, target=5)


def test_module_without_parameters():
    """No StopIteration: a parameter-free module computes in float32."""

    class Fixed(nn.Module):
        def forward(self, x):
            return torch.stack([x.sum(1), (x**2).sum(1), -x.sum(1)], 1)

    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    lo = laplacian(Fixed(), X, target="all")
    assert lo.shape == (4, 3) and np.isfinite(lo).all()


def test_devices_are_left_alone_and_modules_never_moved_in_place():
    """device=None evaluates where the module is; a move goes to a copy."""
    from skrob.torch._model import resolve_module

    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    module, device, _ = resolve_module(net)
    assert module is net and device.type == "cpu"
    module, device, _ = resolve_module(net, device="meta")
    assert module is not net and next(net.parameters()).device.type == "cpu"
    assert next(module.parameters()).device.type == "meta"


def test_scorers_take_every_parameter_and_reject_metadata():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    scorer = LaplacianScorer(piecewise_linear=False)
    assert "piecewise_linear" in scorer.get_params()
    assert scorer(net, X) == -np.mean(np.abs(laplacian(net, X, piecewise_linear=False)))
    with pytest.raises(TypeError, match="takes no metadata"):
        scorer(net, X, sample_weight=np.ones(4))
