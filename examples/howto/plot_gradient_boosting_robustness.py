"""
Robustness of a gradient-boosting model: decision-based and exact
==================================================================

How far must a sample move before a gradient-boosting classifier changes its answer?
Two answers from skrob, for any box of allowed inputs:

- :func:`skrob.decision_based_distortion` asks only ``predict`` (any classifier): the
  distortion of the closest adversarial point it *finds*, an upper bound;
- :func:`skrob.exact_distortion` solves a mixed-integer program over the trees'
  threshold cells (HiGHS): the *minimum*, with a certificate.

The gap between them is how much the search leaves on the table. Features are
standardised first, so distances are in standard deviations of each feature (raw
units would let the feature with the largest numbers decide).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skrob import decision_based_distortion, exact_distortion

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=40, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
model = GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0)
model.fit(X_train, y_train)
print(f"test accuracy {model.score(X_test, y_test):.3f}")

# %%
# L-infinity distortion of the 40 test samples (NaN: misclassified to begin with).
exact = exact_distortion(model, X_test, y_test, norm=np.inf)
found = decision_based_distortion(
    model, X_test, y_test, norm=np.inf, max_queries=2000, random_state=0
)
correct = ~np.isnan(exact)
print(f"exact minimum: median {np.median(exact[correct]):.3f} standard deviations")
print(f"decision-based: median {np.median(found[correct]):.3f}")
print(f"decision-based / exact: at least {np.min(found[correct] / exact[correct]):.4f}")
print(f"found the minimum (within 1 %) on {np.mean(found[correct] <= 1.01 * exact[correct]):.0%}")

# %%
# Every decision-based value lies on or above the diagonal: no search can beat the
# exact minimum.
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(exact[correct], found[correct])
top = 1.05 * max(exact[correct].max(), found[correct].max())
ax.plot([0, top], [0, top], color="gray", lw=1)
ax.set_xlabel("exact minimal L-inf distortion")
ax.set_ylabel("decision-based distortion")
ax.set_title("Gradient boosting, 40 test samples")
fig.tight_layout()
plt.show()
