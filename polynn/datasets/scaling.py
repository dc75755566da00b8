"""Per-feature standardization with statistics fit on training data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.validate import check_X


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature standardization ``(X - mean) / std`` with statistics fit on training data.

    Build one with :meth:`fit`.

    Attributes
    ----------
    mean : numpy.ndarray of float64, shape (n_features,)
        The training data's per-feature mean.
    std : numpy.ndarray of float64, shape (n_features,)
        The population standard deviation (ddof=0); a constant feature gets std 1, so it maps
        to 0 instead of dividing by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: Any) -> Standardizer:
        """The statistics of training data.

        Parameters
        ----------
        X : array-like of real numbers, shape (m, n_features)
            Finite values, at least one row.

        Returns
        -------
        Standardizer

        Raises
        ------
        ValueError
            ``X`` has no rows, is not 2-D, or holds non-finite or non-real values.
        """
        X = _as_matrix(X, "X")
        if X.shape[0] == 0:
            raise ValueError("cannot fit a Standardizer on 0 rows")
        mean, std = X.mean(axis=0), X.std(axis=0)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        return cls(mean=mean, std=np.where(std <= tiny, 1.0, std))

    def transform(self, X: Any) -> np.ndarray:
        """Standardize: ``(X - mean) / std``.

        Parameters
        ----------
        X : array-like of real numbers, shape (m, n_features)

        Returns
        -------
        numpy.ndarray of float64, shape (m, n_features)
        """
        return (self._check(X) - self.mean) / self.std

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo :meth:`transform`: ``X * std + mean``.

        Parameters
        ----------
        X : array-like of real numbers, shape (m, n_features)

        Returns
        -------
        numpy.ndarray of float64, shape (m, n_features)
        """
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


def standardize(X_train: Any, X_test: Any = None
                ) -> tuple[np.ndarray, np.ndarray | None, Standardizer]:
    """Fit a :class:`Standardizer` on ``X_train`` and apply it to both sets.

    Parameters
    ----------
    X_train : array-like of real numbers, shape (m, n_features)
        The data the statistics come from.
    X_test : array-like of real numbers, shape (m_test, n_features), optional
        Data standardized with the training statistics.

    Returns
    -------
    X_train_std : numpy.ndarray of float64, shape (m, n_features)
    X_test_std : numpy.ndarray of float64, shape (m_test, n_features), or None
        None when ``X_test`` is None.
    scaler : Standardizer
        Apply it later with ``scaler.transform(X_new)``.
    """
    _as_matrix(X_train, "X_train")  # errors name the argument
    if X_test is not None:
        _as_matrix(X_test, "X_test")
    scaler = Standardizer.fit(X_train)
    X_test_std = None if X_test is None else scaler.transform(X_test)
    return scaler.transform(X_train), X_test_std, scaler
