"""Class labels: checked as int64 ``(m,)`` arrays, and one-hot encoded."""

from __future__ import annotations

import numpy as np

from polynn.validate import check_finite, check_int, host_array


def as_labels(y, name="y"):
    """Integer class labels as a 1-D int64 array; whole-number floats are accepted."""
    y = host_array(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (m,), got shape {y.shape}")
    if y.dtype.kind not in "iubf":
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        check_finite(y, name)
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold whole-number class labels, got e.g. "
                             f"{y[y != np.round(y)][:3].tolist()}")
    # Range checks in y's own dtype, before the int64 cast that would overflow 1e20.
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0, got {y.min()!r}")
    if y.size and y.max() > _MAX_LABEL:
        raise ValueError(f"{name} has a label {y.max()!r} above {_MAX_LABEL}: not a class index")
    return y.astype(np.int64)


_MAX_LABEL = 2**31 - 1  # class indices beyond this are data errors, not classes


_MAX_ONE_HOT = 2**30  # elements (8 GiB of float64): beyond it, a label is surely a mistake


def one_hot(y, n_classes=None):
    """One-hot encode integer labels ``y`` of shape ``(m,)`` into float64 ``(m, n_classes)``.

    ``n_classes`` defaults to ``max(y) + 1``; a label outside ``0..n_classes-1`` raises ValueError.
    """
    y = as_labels(y)
    if n_classes is None:
        if y.size == 0:
            raise ValueError("n_classes is required when y is empty")
        n_classes = int(y.max()) + 1
    n_classes = check_int("n_classes", n_classes, 1)
    if y.shape[0] * n_classes > _MAX_ONE_HOT:
        raise ValueError(f"one_hot of {y.shape[0]} labels with n_classes={n_classes} would hold "
                         f"{y.shape[0] * n_classes} floats (limit {_MAX_ONE_HOT})")
    if y.size and y.max() >= n_classes:
        raise ValueError(f"label {y.max()} out of range for n_classes={n_classes}")
    out = np.zeros((y.shape[0], n_classes), dtype=np.float64)
    out[np.arange(y.shape[0]), y] = 1.0
    return out
