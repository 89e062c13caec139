"""'Exact' and 'certified' for networks, against independent checks: float32 flips found
by bisection on the network as it predicts, a reference IBP written on the torch modules,
and the exact programs started with and without the attacks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, Normalizer  # noqa: E402
from torch import nn  # noqa: E402

import skrob.torch.adversarial as adversarial  # noqa: E402
from skrob.torch import (  # noqa: E402
    AdversarialDistortionScorer,
    certified_radius,
    minimal_distortion,
)
from skrob.torch._verify import margins_lower, relu_layers  # noqa: E402
from tests.torch.test_verify import _blobs, _trained  # noqa: E402


def _float32_flip(net, x, x_adv, y, keep=None):
    """The smallest t in [0, 1] at which the float32 net's prediction on
    x + t (x_adv - x) leaves y, by bisection, checked on the net itself: the distance of a
    verified adversarial point of the model as it predicts.

    Where products are rounded to TF32 or bfloat16, a point on the boundary can flip in
    one batch and not in another (the kernel, and so the order of its sums, depends on
    the batch's shape): ``keep="verified"`` then bisects only the rows flipped in this
    batch and returns ``(point, rows)``."""
    x, x_adv = np.asarray(x, np.float64), np.asarray(x_adv, np.float64)
    device = next(net.parameters()).device
    if keep == "verified":
        point = torch.as_tensor((x + (x_adv - x)).astype(np.float32))
        with torch.no_grad():
            rows = net(point.to(device)).argmax(1).cpu().numpy() != y
        return _float32_flip(net, x[rows], x_adv[rows], y[rows]), rows

    def flipped(t):
        point = torch.as_tensor((x + t[:, None] * (x_adv - x)).astype(np.float32))
        with torch.no_grad():
            return net(point.to(device)).argmax(1).cpu().numpy() != y

    lo, hi = np.zeros(len(x)), np.ones(len(x))
    assert flipped(hi).all()
    for _ in range(60):
        mid = (lo + hi) / 2
        f = flipped(mid)
        hi, lo = np.where(f, mid, hi), np.where(f, lo, mid)
    # the point actually evaluated is the float32 rounding of x + hi (x_adv - x)
    point = (x + hi[:, None] * (x_adv - x)).astype(np.float32).astype(np.float64)
    assert flipped(hi).all()
    return point


@pytest.mark.parametrize("norm", [np.inf, 2])
def test_certificates_hold_for_the_float32_network_as_it_predicts(norm):
    """A linear net: the certificate is the exact float64 minimum, so float32 rounding of
    the logits decides which side of it a flip lands; the certificate must stay below
    every verified float32 flip (it did not, by ~1e-7, before the rounding margin)."""
    torch.manual_seed(0)
    X, y = _blobs(300, 12, 3, 1)
    net = _trained(nn.Linear(12, 3), X.astype(np.float32), y)
    # large offsets make float32 rounding of the logits matter
    with torch.no_grad():
        net.bias += 1000.0
    X32 = torch.as_tensor(X, dtype=torch.float32)
    y_pred = net(X32).argmax(1).numpy()
    cert = certified_radius(net, X32, y_pred, norm=norm)
    d, X_adv, ok = minimal_distortion(net, X32, y_pred, norm=norm, return_adversarial=True)
    assert ok.any()
    points = _float32_flip(net, X[ok], X_adv[ok].reshape(ok.sum(), -1), y_pred[ok])
    diff = points - X[ok]
    flip = np.abs(diff).max(1) if norm == np.inf else np.linalg.norm(diff, axis=1)
    assert np.all(cert[ok] <= flip), np.max(cert[ok] / flip)
    # and the margin (a rigorous bound of float32 rounding, logits near 1000) costs little
    assert np.median(cert[ok] / flip) > 0.98


def _linear_as(kind, net, d):
    """The affine classifier ``net`` as the module of ``kind``: itself, or a convolution
    whose kernel covers the whole (1, 16, d // 16) image (cuDNN then computes it)."""
    if kind == "linear":
        return net
    conv = nn.Sequential(nn.Conv2d(1, 3, (16, d // 16)), nn.Flatten())
    with torch.no_grad():
        conv[0].weight.copy_(net.weight.reshape(3, 1, 16, d // 16))
        conv[0].bias.copy_(net.bias)
    return conv


REDUCED = [("cpu", "medium", "linear")]  # bfloat16 products on CPUs that have them (AMX)
if torch.cuda.is_available():
    REDUCED += [("cuda", "high", "linear"), ("cuda", "highest", "conv")]  # TF32 (cuDNN's own)


@pytest.mark.parametrize("device, precision, kind", REDUCED)
def test_certificates_hold_where_products_are_rounded_to_tf32_or_bfloat16(
    device, precision, kind, restore_precision
):
    """torch may round float32 operands to bfloat16 ("medium") or TF32 ("high", and cuDNN's
    convolutions by default) before their products: the certificate must hold for those
    predictions. Without the products' rounding in the margin, 92 of these 300 linear
    certificates lay beyond a verified bfloat16 flip (on a CPU with AMX)."""
    torch.manual_seed(0)
    d = 256
    X, y = _blobs(300, d, 3, 1)
    net = _trained(nn.Linear(d, 3), X.astype(np.float32), y)
    net = _linear_as(kind, net, d).to(device)
    shape = (d,) if kind == "linear" else (1, 16, d // 16)
    torch.set_float32_matmul_precision(precision)
    X32 = torch.as_tensor(X, dtype=torch.float32, device=device).reshape(-1, *shape)
    with torch.no_grad():
        y_pred = net(X32).argmax(1).cpu().numpy()
    cert = certified_radius(net, X32, y_pred)
    _, X_adv, ok = minimal_distortion(net, X32, y_pred, return_adversarial=True)
    assert ok.sum() > 250

    def net_flat(z):
        return net(z.reshape(-1, *shape))

    net_flat.parameters = net.parameters  # _float32_flip finds the device there
    points, rows = _float32_flip(
        net_flat, X[ok], X_adv[ok].reshape(ok.sum(), -1), y_pred[ok], keep="verified"
    )
    assert rows.sum() > 200
    flip = np.abs(points - X[ok][rows]).max(1)
    cert = cert[ok][rows]
    assert np.all(cert <= flip), int((cert > flip).sum())
    # still a certificate: the rounding margin is a part of it, not all
    assert np.median(cert / flip) > 0.5


def _composed_like(kind, lin, d, seed=0):
    """The affine classifier ``lin`` as a chain whose operations round what the composed
    map's coefficients cancel: ``"linear"``, two Linear layers without a ReLU between
    (one carries rows of size 1000 that the second takes off again); ``"batchnorm"``, a
    bias of 1e5 that batch-norm's running mean takes off."""
    g = torch.Generator().manual_seed(seed)
    if kind == "linear":
        A = torch.randn(3, d, generator=g) * 1000.0
        first, second = nn.Linear(d, 6), nn.Linear(6, 3)
        with torch.no_grad():
            first.weight.copy_(torch.cat([A, A + lin.weight]))
            first.bias.zero_()
            second.weight.copy_(torch.cat([-torch.eye(3), torch.eye(3)], dim=1))
            second.bias.copy_(lin.bias)
        return nn.Sequential(first, second).eval()
    first, norm, last = nn.Linear(d, 3), nn.BatchNorm1d(3), nn.Linear(3, 3)
    with torch.no_grad():
        first.weight.copy_(lin.weight)
        first.bias.copy_(lin.bias + 1e5)
        norm.running_mean.fill_(1e5)
        norm.running_var.fill_(1.0 - norm.eps)
        last.weight.copy_(torch.eye(3))
        last.bias.zero_()
    return nn.Sequential(first, norm, last).eval()


@pytest.mark.parametrize("kind", ["linear", "batchnorm"])
def test_certificates_bound_each_operation_of_a_composed_map(kind):
    """Affine operations between ReLUs are composed into one map, but the float32 network
    rounds each: the certificate's margin must follow the operations (139 and 144 of
    these 300 certificates lay beyond a verified float32 flip when it followed the
    composed map)."""
    torch.manual_seed(0)
    d = 32
    X, y = _blobs(300, d, 3, 1)
    lin = _trained(nn.Linear(d, 3), X.astype(np.float32), y)
    net = _composed_like(kind, lin, d)
    X32 = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        y_pred = net(X32).argmax(1).numpy()
        assert np.mean(y_pred == lin(X32).argmax(1).numpy()) > 0.95  # the same classifier
    cert = certified_radius(net, X32, y_pred)
    _, X_adv, ok = minimal_distortion(net, X32, y_pred, return_adversarial=True)
    points, rows = _float32_flip(net, X[ok], X_adv[ok], y_pred[ok], keep="verified")
    assert rows.sum() > 250
    flip = np.abs(points - X[ok][rows]).max(1)
    cert = cert[ok][rows]
    assert np.all(cert <= flip), int((cert > flip).sum())
    assert np.median(cert / flip) > 0.5


def test_batchnorm_without_running_statistics_is_refused():
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False))
    X = torch.rand(10, 4)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(track_running_stats=False\)"):
        certified_radius(net.eval(), X, np.zeros(10, dtype=int))


def test_weights_are_read_exactly_not_through_the_float32_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        net[0].bias += 1e4  # float32 (x W + b) - b would blur W
    layers = relu_layers(net, (5,))
    with torch.no_grad():
        np.testing.assert_array_equal(layers[0][0], net[0].weight.double().numpy())
        np.testing.assert_array_equal(layers[0][1], net[0].bias.double().numpy())


def test_exact_solves_from_the_box_where_no_attack_succeeded(monkeypatch):
    """'exact' must not depend on the attacks: with every attack failing, the programs
    start from the whole box and reach the same minima; robust_accuracy counts none of
    them as robust unless proven."""
    torch.manual_seed(0)
    X, y = _blobs(40, 4, 3, 2)
    net = _trained(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double(), X, y)
    X, y = X[:8], y[:8]
    with_attacks = minimal_distortion(net, X, y, method="exact", time_limit=1e4)

    def failing(method, f, x, y_, p, lo, hi, tol, **params):
        return x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)

    monkeypatch.setattr(adversarial, "run_attack", failing)
    without = minimal_distortion(net, X, y, method="exact", time_limit=1e4)
    correct = ~np.isnan(with_attacks)
    assert np.isfinite(without[correct]).all()
    np.testing.assert_allclose(without, with_attacks, rtol=1e-5)
    eps = float(np.nanmedian(without))
    scorer = AdversarialDistortionScorer(
        method="exact", statistic="robust_accuracy", epsilon=eps, time_limit=1e4
    )
    robust = correct & (without > eps)
    assert scorer(net, X, y) == pytest.approx(robust.mean())


def _reference_ibp(net, x, y, eps, lo=0.0, hi=1.0):
    """Standard IBP (Gowal et al. 2018), written on the torch modules: intervals through
    Linear/ReLU, the last Linear with the specification e_y - e_j folded in."""
    low = torch.clamp(x - eps[:, None], lo, hi)
    up = torch.clamp(x + eps[:, None], lo, hi)
    layers = list(net)
    for m in layers[:-1]:
        if isinstance(m, nn.Linear):
            mid, rad = (low + up) / 2, (up - low) / 2
            c = mid @ m.weight.T + m.bias
            r = rad @ m.weight.abs().T
            low, up = c - r, c + r
        else:
            low, up = torch.relu(low), torch.relu(up)
    last = layers[-1]
    out = []
    for i in range(len(x)):
        rows = [j for j in range(last.out_features) if j != y[i]]
        W = last.weight[y[i]][None] - last.weight[rows]
        b = last.bias[y[i]] - last.bias[rows]
        mid, rad = (low[i] + up[i]) / 2, (up[i] - low[i]) / 2
        out.append((W @ mid - W.abs() @ rad + b).min())
    return torch.stack(out).numpy()


def test_ibp_is_standard_ibp():
    torch.manual_seed(0)
    X, y = _blobs(60, 6, 4, 3)
    net = _trained(
        nn.Sequential(
            nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)
        ).double(),
        X,
        y,
    )
    layers = relu_layers(net, (6,))
    eps = np.full(len(X), 0.02)
    got = margins_lower(layers, X, y, eps, np.zeros(6), np.ones(6), np.inf, "ibp")
    with torch.no_grad():
        want = _reference_ibp(net, torch.as_tensor(X), y, torch.as_tensor(eps))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


class _NoWidth(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return X


def test_pipeline_steps_and_devices_get_errors_that_name_them():
    torch.manual_seed(0)
    X, y = _blobs(30, 4, 3, 4)
    X32 = X.astype(np.float32)
    net = _trained(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), X32, y, 20)
    log = make_pipeline(FunctionTransformer(np.log1p), net)
    log[0].fit(X32)
    with pytest.raises(ValueError, match=r"'functiontransformer'.*FunctionTransformer\(func=log1p"):
        minimal_distortion(log, X32, y)
    norm = make_pipeline(Normalizer(), net)
    norm[0].fit(X32)
    with pytest.raises(ValueError, match=r"step 'normalizer' is Normalizer\(norm='l2'\)"):
        certified_radius(norm, X32, y)
    with pytest.raises(ValueError, match=r"step 'normalizer' is Normalizer"):
        minimal_distortion(norm, X32, y, method="exact")
    custom = make_pipeline(_NoWidth(), net)
    custom[0].fit(X32)
    with pytest.raises(ValueError, match=r"'_nowidth' \(_NoWidth\) has no n_features_in_"):
        minimal_distortion(custom, X32, y)
    with pytest.raises(ValueError, match=r"device='bogus' is not a torch device"):
        minimal_distortion(net, X32, y, device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA device"):
            minimal_distortion(net, X32, y, device="cuda")


def test_data_outside_a_given_box_gets_the_box_to_pass():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    y = net(torch.as_tensor(X)).argmax(1).numpy()
    for call in (
        lambda: minimal_distortion(net, X, y, clip=(0.0, 1.0)),
        lambda: certified_radius(net, X, y, clip=(0.0, 1.0)),
        lambda: AdversarialDistortionScorer(clip=(0.0, 1.0))(net, X, y),
    ):
        with pytest.raises(ValueError, match=r"values range over .*Pass the box.*clip=\("):
            call()
    lo, hi = float(X.min()), float(X.max())
    assert np.isfinite(minimal_distortion(net, X, y, clip=(lo, hi))).any()


def test_default_box_takes_tabular_data_as_they_are():
    """clip=None (the default of both families): standardised tabular data through a
    scaled Pipeline work as they are; the box is the data's range widened by its width,
    and it does not bind: the exact minimum equals that in a box 100x wider."""
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(0)
    X, y = _blobs(200, 6, 3, 4)
    X = (X - 0.5) * 40.0 + 7.0  # tabular units: far outside (0, 1)
    scaler = StandardScaler().fit(X)
    net = _trained(
        nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)),
        scaler.transform(X).astype(np.float32),
        y,
    )
    model = make_pipeline(scaler, net)
    X32 = X[:15].astype(np.float32)
    with torch.no_grad():
        y_pred = net(torch.as_tensor(scaler.transform(X32), dtype=torch.float32)).argmax(1)
    y_pred = y_pred.numpy()
    score = AdversarialDistortionScorer()(model, X32, y_pred)
    assert np.isfinite(score) and score > 0
    exact = minimal_distortion(model, X32, y_pred, method="exact", time_limit=1e4)
    low, high = float(X32.min()), float(X32.max())
    width = high - low
    same = minimal_distortion(
        model, X32, y_pred, method="exact", clip=(low - width, high + width), time_limit=1e4
    )
    wide = minimal_distortion(
        model,
        X32,
        y_pred,
        method="exact",
        clip=(low - 100 * width, high + 100 * width),
        time_limit=1e4,
    )
    np.testing.assert_array_equal(exact, same)
    assert np.all(np.isfinite(exact)) and np.all(exact < width)
    np.testing.assert_allclose(exact, wide, rtol=1e-6)
    cert = certified_radius(model, X32, y_pred)
    assert np.all(cert <= exact * (1 + 1e-9))
