"""
Run the exact kernel on a (local) Dask cluster
==============================================

skrob's exact sample-robustness kernel cuts its work into blocks and hands them to
joblib, so ``joblib.parallel_config(backend="dask")`` sends them to a Dask cluster. Here
the cluster is a ``LocalCluster`` on this machine; on a real one, pass the scheduler's
address to ``Client`` instead. The result is the same, bit for bit, as on local threads.

Needs ``pip install "dask[distributed]"`` (``skrob[dask]``).
"""

# %%
import time

import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from skrob import sample_robustness

X, y = make_classification(
    n_samples=20_000, n_features=40, n_informative=20, n_classes=3, random_state=0
)
X = StandardScaler().fit_transform(X)

start = time.perf_counter()
R_threads = sample_robustness(X, y)  # every core of this machine (joblib threads)
print(f"threads: {time.perf_counter() - start:.2f} s")

# %%
# Two single-threaded workers. ``processes=False`` keeps them in this process, so the
# example runs as it is inside a notebook or the docs build; on a cluster, or from a
# script guarded by ``if __name__ == "__main__":``, workers are separate processes.
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
with cluster:
    with Client(cluster):
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            R_dask = sample_robustness(X, y)
        print(f"Dask, 2 workers: {time.perf_counter() - start:.2f} s")

print("identical results:", np.array_equal(R_threads, R_dask))

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for label in np.unique(y):
    ax.hist(R_dask[y == label], bins=40, histtype="step", label=f"class {label}")
ax.set_xlabel("sample robustness R")
ax.set_ylabel("samples")
ax.set_title("20,000 samples, computed on Dask workers")
ax.legend()
fig.tight_layout()
plt.show()
