"""Labels and regression targets as the target matrix the loss pairs expect."""

from __future__ import annotations

import numpy as np

from polynn.validate.arrays import check_finite, check_kind, check_rows


def encode_targets(y, output, n_outputs, m, name="y", dtype=None) -> np.ndarray:
    """Labels/targets as the float64 target matrix ``(m, n_outputs)`` the loss pairs expect:
    one-hot rows (softmax), one 0/1 column (sigmoid), a 0/1 indicator matrix (sigmoid with
    several units: multilabel), the values themselves (identity, poisson).

    ``y``: ``(m,)`` or ``(m, 1)`` integer class labels 0..k-1 (whole-number floats and bools
    accepted) for classifiers; ``(m,)`` or ``(m, n_outputs)`` real values for regression
    (non-negative for poisson), finite in the model's ``dtype`` (a ``DType`` record) when
    given."""
    y = check_rows(y, m, name)
    if output in ("identity", "poisson"):
        check_kind(y, name, "numbers for regression")
        T = y.reshape(m, -1).astype(np.float64)
        if T.shape[1] != n_outputs:
            raise ValueError(f"{name} has {T.shape[1]} target column(s) but the model has "
                             f"{n_outputs} output unit(s) (layer_sizes[-1])")
        check_finite(y if y.dtype.kind == "f" else T, name, dtype)
        if output == "poisson" and T.min() < 0:
            raise ValueError(f"{name} has negative values (e.g. {T[T < 0][:3].tolist()}); "
                             "output='poisson' models non-negative targets such as counts")
        return T
    check_kind(y, name, "integer class labels")
    if output == "sigmoid" and n_outputs > 1:
        # Multilabel: a 0/1 indicator matrix, one column per output unit.
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{name} must be a 0/1 indicator matrix of shape ({m}, {n_outputs}) "
                             f"for output='sigmoid' with {n_outputs} units (multilabel), got "
                             f"shape {y.shape}")
        check_finite(y, name)
        T = y.astype(np.float64)
        if not np.all((T == 0) | (T == 1)):
            raise ValueError(f"{name} must hold only 0 and 1 for multilabel output='sigmoid' "
                             f"(e.g. {y[(T != 0) & (T != 1)][:3].tolist()})")
        return T
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind == "f":
        check_finite(y, name)
        fractional = y != np.round(y)
        if fractional.any():
            raise ValueError(f"{name} must hold integer class labels 0..k-1; it has non-integer "
                             f"values such as {y[fractional][:3].tolist()}")
    n_classes = 2 if output == "sigmoid" else n_outputs
    # Compare in y's own dtype (before any int64 cast, which would overflow 1e20 or 2**64-1),
    # and show the values as given.
    outside = (y < 0) | (y >= n_classes)
    if outside.any():
        raise ValueError(f"{name} has labels outside 0..{n_classes - 1} (e.g. "
                         f"{y[outside][:3].tolist()}); output={output!r} with {n_outputs} output "
                         f"unit(s) takes labels 0..{n_classes - 1}")
    labels = y.astype(np.int64)
    if output == "sigmoid":
        return labels.reshape(m, 1).astype(np.float64)
    T = np.zeros((m, n_outputs))
    T[np.arange(m), labels] = 1.0
    return T
