"""Seeded train/test splits, plain or stratified, by row index or by copying the rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polynn.datasets.labels import as_labels
from polynn.validate import check_bool, check_int, check_real, check_seed, host_array


def _test_count(test_size, m):
    if isinstance(test_size, (float, np.floating)):
        test_size = check_real("test_size as a fraction", test_size, 0, 1, low_open=True,
                               high_open=True)
        n_test = math.ceil(test_size * m)
    else:
        n_test = check_int("test_size", test_size, 1)
    if not 1 <= n_test < m:
        raise ValueError(f"test_size={test_size} leaves an empty train or test set (m={m})")
    return n_test


def _stratified_test_indices(y, n_test, rng):
    """Test indices with each class's share of ``n_test`` by largest remainder."""
    classes, y_idx, counts = np.unique(as_labels(y), return_inverse=True, return_counts=True)
    quota = counts * n_test / len(y)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n_test - take.sum()]] += 1
    members = [rng.permutation(np.flatnonzero(y_idx == k)) for k in range(len(classes))]
    return np.concatenate([idx[:t] for idx, t in zip(members, take, strict=True)])


def split_indices(y: Any, *, test_size: float | int = 0.25, seed: int = 0,
                  stratify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The row numbers of a shuffled train/test split of ``m = len(y)`` examples, as
    :func:`train_test_split` draws them. Splitting by index lets a caller gather the rows
    later instead of copying the data; ``MLP.fit(validation_split=...)`` splits this way.

    Parameters
    ----------
    y : array-like, shape (m,) or (m, k)
        Labels or targets (only their count matters unless ``stratify``).
    test_size : float in (0, 1) or int >= 1, default 0.25
        A fraction (the test set gets ``ceil(test_size * m)`` rows) or a count.
    seed : int, default 0
        Seeds ``numpy.random.default_rng``.
    stratify : bool, default False
        Each class (of integer labels ``y``) gives the test set its share of the test rows
        (by largest remainder), drawn at random within the class.

    Returns
    -------
    train, test : numpy.ndarray of int64
        Row numbers, in shuffled order.

    Raises
    ------
    ValueError
        A ``test_size`` that leaves an empty train or test set, or a 0-d ``y``.
    """
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"y must have one entry per example, got shape {y.shape}")
    m = y.shape[0]
    n_test = _test_count(test_size, m)
    rng = np.random.default_rng(check_seed(seed))
    if stratify:
        test = rng.permutation(_stratified_test_indices(y, n_test, rng))
        train = rng.permutation(np.setdiff1d(np.arange(m), test))
    else:
        perm = rng.permutation(m)
        test, train = perm[:n_test], perm[n_test:]
    return train, test


def train_test_split(X: Any, y: Any, *, test_size: float | int = 0.25, seed: int = 0,
                     stratify: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split ``(X, y)`` into train and test sets (rows of both come out shuffled).

    Parameters
    ----------
    X : array-like, shape (m, ...)
        Features.
    y : array-like, shape (m,) or (m, k)
        Labels or targets.
    test_size : float in (0, 1) or int >= 1, default 0.25
        A fraction (the test set gets ``ceil(test_size * m)`` rows) or an integer count.
    seed : int, default 0
        Seeds the shuffle.
    stratify : bool, default False
        With integer labels ``y``, each class contributes to the test set in proportion to
        its size.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
        With the dtypes of the inputs.

    Raises
    ------
    ValueError
        ``X`` and ``y`` of different lengths, or a ``test_size`` that leaves a set empty.

    Examples
    --------
    >>> import numpy as np
    >>> from polynn.datasets import train_test_split
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=True)
    >>> X_train.shape, X_test.shape, sorted(y_test.tolist())
    ((7, 2), (3, 2), [0, 0, 1])
    """
    X, y = host_array(X, "X"), host_array(y, "y")
    stratify = check_bool("stratify", stratify)
    m = X.shape[0] if X.ndim else 0
    if X.ndim == 0 or y.ndim == 0 or y.shape[0] != m:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape} and {y.shape}")
    train, test = split_indices(y, test_size=test_size, seed=seed, stratify=stratify)
    return X[train], X[test], y[train], y[test]
