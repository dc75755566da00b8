"""Per-feature standardization with statistics fit on training data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polynn.validate import check_X


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature standardization ``(X - mean) / std`` with statistics fit on training data.

    ``mean`` and ``std`` are float64 of shape ``(n_features,)``; a constant feature gets std 1,
    so it maps to 0 instead of dividing by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X):
        """Statistics of ``X`` (m, n_features); population std (ddof=0)."""
        X = _as_matrix(X, "X")
        if X.shape[0] == 0:
            raise ValueError("cannot fit a Standardizer on 0 rows")
        mean, std = X.mean(axis=0), X.std(axis=0)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        return cls(mean=mean, std=np.where(std <= tiny, 1.0, std))

    def transform(self, X):
        """``(X - mean) / std`` as float64 of the shape of ``X``."""
        return (self._check(X) - self.mean) / self.std

    def inverse_transform(self, X):
        """Undo :meth:`transform`."""
        return self._check(X) * self.std + self.mean

    def _check(self, X):
        X = _as_matrix(X, "X")
        if X.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, the Standardizer was fit on {self.mean.shape[0]}"
            )
        return X


def _as_matrix(X, name):
    """``X`` as a float64 ``(m, n_features)`` array of finite real numbers (complex and text
    are refused, not cast)."""
    X = check_X(X, None, name, allow_empty=True)
    return X.astype(np.float64, copy=False)


def standardize(X_train, X_test=None):
    """Fit a :class:`Standardizer` on ``X_train`` and apply it to both sets.

    Returns ``(X_train_std, X_test_std, scaler)``: float64 arrays of the input shapes
    (``X_test_std`` is None when ``X_test`` is None) and the fitted scaler, to apply later
    with ``scaler.transform(X_new)``.
    """
    _as_matrix(X_train, "X_train")  # errors name the argument
    if X_test is not None:
        _as_matrix(X_test, "X_test")
    scaler = Standardizer.fit(X_train)
    X_test_std = None if X_test is None else scaler.transform(X_test)
    return scaler.transform(X_train), X_test_std, scaler
