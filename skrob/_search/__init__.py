"""The nearest-differently-labelled-sample search: one kernel, its backends, its helpers.

- :mod:`~skrob._search.neighbors`: the entry points (sort by class, choose a backend,
  merge the candidates into exact minima) for classification;
- :mod:`~skrob._search.euclidean`: the float32-GEMM Euclidean backend with float64
  re-scoring and its outlier path; :mod:`~skrob._search.cdist`: exact ``cdist`` blocks for
  every other metric; :mod:`~skrob._search.sparse`: CSR data without densifying;
- :mod:`~skrob._search.ivf` and :mod:`~skrob._search.approximate`: the approximate
  backends (class-pure inverted lists; pynndescent);
- :mod:`~skrob._search.lipschitz`: regression (the blockwise maximum of
  ``|y - y'| / d(x, x')``);
- :mod:`~skrob._search.blocks`: the block tasks, their runner (joblib, Dask) and block
  reductions; :mod:`~skrob._search.exact`: float64 scaling helpers (powers of two,
  difference-then-norm distances).

Public functions live in :mod:`skrob.sample_robustness` and :mod:`skrob.diagnosis`.
"""
