import pytest


@pytest.fixture(params=[0, 1, 2])
def global_random_seed(request):
    """A few fixed seeds, in the spirit of scikit-learn's fixture."""
    return request.param


def make_tricky_data(rng, n=300, d=6, n_classes=3):
    """Gaussian data with exact duplicates, near-duplicates and an offset far from 0."""
    X = rng.normal(size=(n, d)) + 50.0
    y = rng.integers(0, n_classes, n)
    # Differently labelled exact duplicates and near-duplicates at distance ~1e-7.
    X[1] = X[0]
    y[1] = (y[0] + 1) % n_classes
    X[3] = X[2] + 1e-7
    y[3] = (y[2] + 1) % n_classes
    # Equally labelled exact duplicates.
    X[5] = X[4]
    y[5] = y[4]
    # A near-duplicate cluster: many rows within 1e-6 of each other, mixed labels.
    X[10:20] = X[10] + 1e-6 * rng.normal(size=(10, d))
    return X, y
