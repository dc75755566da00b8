"""Peer: scikit-learn's ``MLPClassifier`` with plain SGD, the same architecture and step count.

* ``alpha = l2 * rows per batch``: sklearn divides ``alpha * W`` by the rows of the batch being
  processed (README, "scikit-learn's alpha"; read in 1.9.1).
* ``momentum=0`` is plain SGD; ``learning_rate="constant"``, ``tol=0`` and a huge
  ``n_iter_no_change`` keep lr fixed and never stop early; ``shuffle=False`` keeps batches in
  order; ``max_iter`` counts epochs. float32 input stays float32 (the weights then must be too).
* Its own init is Glorot-uniform: ``fit`` initialises once on a small slice (``warm_start=True``),
  then ``coefs_``/``intercepts_`` are replaced by ours; later fits continue from them.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import Contestant, Unavailable, need


class SklearnMLP(Contestant):
    name = "sklearn"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        if device != "cpu" or dtype not in ("float32", "float64"):
            raise Unavailable(f"scikit-learn runs on the CPU in float32/float64 only, not {dtype}")
        self.clf = need("sklearn.neural_network").MLPClassifier(
            hidden_layer_sizes=tuple(self.sizes[1:-1]), activation="relu", solver="sgd",
            learning_rate="constant", learning_rate_init=lr, momentum=0.0,
            nesterovs_momentum=False, max_iter=1, shuffle=False, tol=0.0,
            n_iter_no_change=10**9, early_stopping=False, warm_start=True, random_state=0,
        )  # fmt: skip
        self.fitted = False

    def _fit(self, X, y, epochs: int, batch_rows: int) -> None:
        # alpha = l2 * rows per batch: see the module docstring
        self.clf.set_params(max_iter=epochs, batch_size=batch_rows, alpha=self.l2 * batch_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning; batch_size > rows when set up
            self.clf.fit(X, y)

    def set_data(self, X, y) -> None:
        self.X = np.ascontiguousarray(X, dtype=self.dtype)
        self.y = np.asarray(y, dtype=np.int64)
        if not self.fitted:
            # let sklearn set up its state (label binarizer, layer count, ...) on a small slice
            # that holds every class; load() then replaces its weights by ours
            first = [np.flatnonzero(self.y == c)[:1] for c in range(self.sizes[-1])]
            if any(len(f) == 0 for f in first):
                raise Unavailable("the data does not contain every class")
            idx = np.union1d(np.concatenate(first), np.arange(min(len(self.y), 64)))
            self._fit(self.X[idx], self.y[idx], 1, len(self.y))
            self.fitted = True

    def load(self, params) -> None:
        clf = self.clf
        clf.coefs_ = [np.array(W, dtype=self.dtype) for W, _ in params]
        clf.intercepts_ = [np.array(b, dtype=self.dtype) for _, b in params]
        clf.loss_curve_, clf.best_loss_, clf._no_improvement_count = [], np.inf, 0
        clf.t_ = clf.n_iter_ = 0

    def get_params(self):
        return [(W.astype(np.float64), b.astype(np.float64))
                for W, b in zip(self.clf.coefs_, self.clf.intercepts_)]  # fmt: skip

    def steps(self, n: int) -> None:  # n full-batch steps = n epochs with batch_size = all rows
        self._fit(self.X, self.y, n, self.X.shape[0])

    def epoch(self, batch_size: int) -> None:
        self._fit(self.X, self.y, 1, batch_size)

    def notes(self) -> str:
        return "alpha = l2 * rows per batch (sklearn divides alpha*W by the batch's rows)"
