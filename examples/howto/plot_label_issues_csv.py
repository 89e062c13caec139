"""
Find suspicious labels in a CSV
===============================

A table as it arrives: an ID column, a free-text column, a categorical column, features
in different units and missing values, and a few labels that are wrong. We read it with
pandas, prepare the features with a scikit-learn ``ColumnTransformer`` (impute, scale,
one-hot), and ask :func:`skrob.label_issues` which rows to look at first. No model is
trained: the probabilities come from each row's nearest other rows.

From the command line, ``skrob report --data your.csv --target label --index id`` does
the same preparation and writes a page plus a ``diagnosis.csv`` indexed by your IDs.
"""

# %%
# A messy table
# -------------
# The wine data (178 wines, 13 measurements in different units), written to a CSV with
# an ID, a comment, a categorical column, 5 % of the values missing and 10 labels flipped.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skrob import label_issues

rng = np.random.default_rng(0)
wine = load_wine(as_frame=True)
table = wine.data.copy()
table = table.mask(rng.random(table.shape) < 0.05)  # 5 % missing
table.insert(0, "id", [f"W{i:04d}" for i in range(len(table))])
table["comment"] = rng.choice(["fruity", "dry, oaky", "needs air", ""], len(table))
table["cellar"] = rng.choice(["north", "south"], len(table))
label = wine.target_names[wine.target].astype(object)
flipped = rng.choice(len(table), 10, replace=False)
label[flipped] = wine.target_names[(wine.target[flipped] + 1) % 3]
table["label"] = label

folder = Path(tempfile.mkdtemp())  # a scratch folder: nothing of yours is touched
table.to_csv(folder / "wines.csv", index=False)

# %%
# Read it and prepare the features
# --------------------------------
# The ID becomes the index, the comment is dropped, numbers are imputed and scaled
# (distances need comparable units), the category is one-hot encoded.
df = pd.read_csv(folder / "wines.csv", index_col="id")
y = df.pop("label")
df = df.drop(columns="comment")
numeric = df.columns.drop("cellar")
prepare = ColumnTransformer(
    [
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("category", OneHotEncoder(sparse_output=False), ["cellar"]),
    ],
    verbose_feature_names_out=False,
).set_output(transform="pandas")
X = prepare.fit_transform(df)

# %%
# Rows to look at first
# ---------------------
# ``label_issue`` is the flag (confident learning on the neighbours' labels),
# ``label_quality`` the ranking score (low: likely wrong). The index is the CSV's IDs.
found = label_issues(X, y)
worst = found.sort_values("label_quality").head(12)
print(worst)

truth = pd.Series(False, index=df.index)
truth.iloc[flipped] = True
flags = found["label_issue"]
print(f"flagged {flags.sum()} rows; {(flags & truth).sum()} of the 10 flipped labels among them")

# %%
# The label quality of every row, flipped labels marked.
fig, ax = plt.subplots(figsize=(6, 3.5))
order = found["label_quality"].sort_values()
ax.bar(range(len(order)), order, color=np.where(truth[order.index], "tab:red", "tab:gray"))
ax.set_xlabel("rows, from the most suspicious")
ax.set_ylabel("label quality")
ax.set_title("Flipped labels (red) come first")
fig.tight_layout()
plt.show()
