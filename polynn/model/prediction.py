"""Inference on a model: ``predict_proba``, ``predict`` and ``score``, in chunks of rows so that
no copy of ``X`` or of every row's activations is held at once. Functions of the model
(``self``), bound as :class:`~polynn.model.MLP` methods (as :mod:`polynn.model.fitting`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from polynn.datasets.labels import encode_targets
from polynn.model import inference
from polynn.nn.losses import CLASSIFIERS

if TYPE_CHECKING:
    from polynn.model.mlp import MLP


def predict_proba(self: MLP, X: Any, *, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities, as a host NumPy array.

    Parameters
    ----------
    X : array, shape (m, n_features)
        Features: NumPy (memmaps included) or the backend's array.
    batch_size : int, optional
        Rows per chunk (see :meth:`predict`).

    Returns
    -------
    numpy.ndarray, shape (m, k) or (m, 2)
        In the model's host dtype (float32 for bfloat16): ``(m, k)`` for softmax;
        ``(m, 2)`` columns [P(0), P(1)] for one sigmoid unit; ``(m, k)`` per-label P(1)
        for multilabel.

    Raises
    ------
    ValueError
        The model is a regressor (``output`` "identity" or "poisson"), or ``X`` is not
        ``(m, n_features)`` of finite numbers.

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(20, 3, seed=0)
    >>> P = pn.MLP([2, 8, 3], seed=0).predict_proba(X)
    >>> P.shape, P.dtype, bool(abs(P.sum(axis=1) - 1).max() < 1e-5)
    ((60, 3), dtype('float32'), True)
    """
    if self.output not in CLASSIFIERS:
        raise ValueError("predict_proba needs a classifier (output='softmax' or 'sigmoid')")
    binary = self.output == "sigmoid" and not self._multilabel
    out = None
    for start, stop, P in self._chunks(X, batch_size, "output"):
        P = inference.host_output(P, self._dtype)
        if out is None:
            out = np.empty((inference.rows_of(X), 2 if binary else P.shape[1]), P.dtype)
        if binary:
            out[start:stop, 0] = 1.0 - P[:, 0]
            out[start:stop, 1] = P[:, 0]
        else:
            out[start:stop] = P
    assert out is not None  # _chunks yields at least one chunk (X has rows)
    return out


def predict(self: MLP, X: Any, *, batch_size: int | None = None) -> np.ndarray:
    """Predicted labels or values, as a host NumPy array.

    Rows are processed in chunks, so predicting on many rows, a memory-mapped file
    included, never holds a copy of ``X`` or every row's activations at once.

    Parameters
    ----------
    X : array, shape (m, n_features)
        Features: NumPy (memmaps included) or the backend's array.
    batch_size : int, optional
        Rows per chunk (default: as many as keep one chunk's activations near 8 MiB).

    Returns
    -------
    numpy.ndarray, shape (m,) or (m, k)
        Labels (int64 ``(m,)``) for classifiers, a 0/1 indicator (int64 ``(m, k)``) for
        multilabel, or values in the model's host dtype for regression (``(m,)`` with
        one output; the predicted means e^z for poisson).

    Raises
    ------
    ValueError
        ``X`` is not ``(m, n_features)`` of finite numbers.

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(20, 3, seed=0)
    >>> labels = pn.MLP([2, 8, 3], seed=0).predict(X)
    >>> labels.shape, labels.dtype
    ((60,), dtype('int64'))
    """
    out: np.ndarray | None = None
    for start, stop, Z in self._chunks(X, batch_size, "forward"):
        part = inference.labels_or_values(inference.host_output(Z, self._dtype),
                                          self.output)
        if out is None:
            out = np.empty((inference.rows_of(X),) + part.shape[1:], part.dtype)
        out[start:stop] = part
    assert out is not None  # _chunks yields at least one chunk (X has rows)
    single = self.output != "softmax" and not self._multilabel and out.shape[1] == 1
    return out[:, 0] if single else out

def score(self: MLP, X: Any, y: Any, *, batch_size: int | None = None) -> float:
    """Accuracy for classifiers, R² for regression.

    Parameters
    ----------
    X : array, shape (m, n_features)
        Features.
    y : array, shape (m,) or (m, k)
        True labels or targets, as :meth:`fit` takes them.
    batch_size : int, optional
        Rows per chunk (see :meth:`predict`).

    Returns
    -------
    float
        The accuracy (subset accuracy for multilabel: every label right), or the
        coefficient of determination R² (identity and poisson; 0.0 for constant ``y``).

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(50, 3, seed=0)
    >>> model = pn.MLP([2, 32, 3], seed=0)
    >>> _ = model.fit(X, y, epochs=200, optimizer="adam", lr=0.05)
    >>> model.score(X, y) > 0.8
    True
    """
    pred = self.predict(X, batch_size=batch_size)
    if self.output in CLASSIFIERS:
        labels = encode_targets(y, self.output, self.n_outputs, pred.shape[0])
        if self._multilabel:
            return float(np.mean(np.all(pred == labels, axis=1)))
        truth = labels.argmax(axis=1) if self.output == "softmax" else labels[:, 0]
        return float(np.mean(pred == truth))
    # Regression targets as fit takes them: (m,) or (m, k), finite (NaN is an error, not 0.0).
    y = encode_targets(y, "identity", self.n_outputs, pred.shape[0]).reshape(pred.shape)
    ss_res = np.sum((y - pred) ** 2)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0

