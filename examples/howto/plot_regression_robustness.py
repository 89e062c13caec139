"""
Robustness for a regression target
==================================

For a numeric target, the sample robustness of paper 000 is
``R = 1 / (1 + Q / max|y|)`` with ``Q`` the largest ratio ``|y - y'| / d(x, x')`` over
the other samples: how steeply the target changes around each sample. Low R marks
samples whose neighbours in feature space have very different targets (noisy targets,
or a missing feature). On the model side,
:func:`skrob.relative_error_distortion` measures the smallest change of one feature that
pushes a regressor's relative error above a tolerance.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skrob import sample_robustness
from skrob.distortion import relative_error_distortion

X, y = load_diabetes(return_X_y=True)  # 442 patients, 10 features, disease progression
X = StandardScaler().fit_transform(X)  # distances in standard deviations
R = sample_robustness(X, y, task="regression")
print(f"sample robustness: median {np.median(R):.3f}, 10 % quantile {np.quantile(R, 0.1):.3f}")
least = np.argsort(R)[:5]
print("least robust samples:", least.tolist(), "targets", y[least].tolist())

# %%
# A random forest, and per test sample the smallest single-feature change (in standard
# deviations, at most 3) that makes its prediction more than 10 % wrong. NaN: already
# more than 10 % wrong; inf: no change up to 3 breaks it.
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=80, random_state=0)
model = RandomForestRegressor(n_estimators=100, random_state=0).fit(X_train, y_train)
d = relative_error_distortion(model, X_test, y_test, tolerance=0.10, max_distortion=3.0)
right = ~np.isnan(d)
print(f"{right.sum()} of {len(d)} test predictions within 10 %")
broken = np.isfinite(d[right]).mean()
print(f"of those, broken by one feature within 3 standard deviations: {broken:.0%}")
print(f"median distortion that breaks them: {np.median(d[right & np.isfinite(d)]):.3f}")

# %%
fig, (left, right_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
left.scatter(y, R, s=8)
left.set_xlabel("target")
left.set_ylabel("sample robustness R")
left.set_title("Data: robustness of each sample")
right_ax.hist(d[right & np.isfinite(d)], bins=20)
right_ax.set_xlabel("one-feature change (standard deviations)")
right_ax.set_ylabel("test samples")
right_ax.set_title("Model: change that breaks 10 %")
fig.tight_layout()
plt.show()
