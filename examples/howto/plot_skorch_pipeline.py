"""
A skorch network inside a scikit-learn Pipeline
===============================================

A scaler and a small skorch network in one ``Pipeline``, trained on scikit-learn's
8x8 digits (64 pixel columns, values 0-16 scaled to [0, 1]). Every ``skrob.torch``
function takes the fitted Pipeline as it is: the scaler becomes a torch operation, so
gradients, Laplacians and adversarial distortions are in the Pipeline's *input* units
(here pixels), and the box ``clip`` is the range of those inputs.

Needs ``pip install torch skorch`` (``skrob[torch]``).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skrob.torch import certified_radius, laplacian, minimal_distortion

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=200, stratify=y, random_state=0)

torch.manual_seed(0)
net = NeuralNetClassifier(
    nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
    criterion=nn.CrossEntropyLoss,  # the module returns logits
    optimizer=torch.optim.Adam,
    lr=0.01,
    max_epochs=30,
    batch_size=64,
    iterator_train__shuffle=True,
    train_split=None,
    verbose=0,
)
model = make_pipeline(StandardScaler(), net).fit(X_train, y_train)
print(f"test accuracy {model.score(X_test, y_test):.3f}")

# %%
# The Laplacian LO of the predicted-class probability (paper 003) and the minimal
# L-infinity perturbation that flips each correct prediction (paper 002), within the
# pixel box [0, 1]; the certified radius is a lower bound on that minimum (CROWN).
lo = laplacian(model, X_test)
found = minimal_distortion(model, X_test, y_test, norm=np.inf, clip=(0.0, 1.0))
certified = certified_radius(model, X_test, y_test, norm=np.inf, clip=(0.0, 1.0))
ok = ~np.isnan(found) & ~np.isnan(certified)
print(f"mean |LO| {np.mean(np.abs(lo)):.4f}")
print(f"minimal distortion found: median {np.median(found[ok]):.4f} (pixel units)")
print(f"certified radius:         median {np.median(certified[ok]):.4f}")
print(f"certified <= found on every sample: {bool(np.all(certified[ok] <= found[ok]))}")

# %%
# Between the certified radius (no attack can do better) and the distortion an attack
# found lies the true minimum of each sample.
order = np.argsort(found[ok])
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(found[ok][order], label="found by the attack (upper bound)")
ax.plot(certified[ok][order], label="certified (lower bound)")
ax.set_xlabel("correctly classified test images, by distortion")
ax.set_ylabel("L-inf distortion (pixels)")
ax.set_title("A skorch net in a Pipeline")
ax.legend()
fig.tight_layout()
plt.show()
