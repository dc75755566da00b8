"""Regression targets checked as the target matrix the identity and poisson pairs expect.

Class labels are not numbers to check here: their rules (values, classes, indices 0..k-1, the
one-hot and indicator targets) have one owner, :mod:`polynn.datasets.labels`, whose
``encode_targets`` calls :func:`regression_targets` for regression."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polynn.validate.arrays import check_finite, check_kind

if TYPE_CHECKING:
    from polynn.backend import DType


def regression_targets(y: np.ndarray, output: str, n_outputs: int, m: int, name: str = "y",
                       dtype: DType | None = None) -> np.ndarray:
    """Real targets as the float64 matrix ``(m, n_outputs)``.

    Parameters
    ----------
    y : numpy.ndarray, shape (m,) or (m, n_outputs)
        Numbers, finite in ``dtype`` when given.
    output : str
        The model's output: non-negative targets for "poisson".
    n_outputs : int
        The model's output units.
    m : int
        The rows.
    name : str, default "y"
        The argument's name, for messages.
    dtype : DType, optional
        The model's dtype record.

    Returns
    -------
    numpy.ndarray of float64, shape (m, n_outputs)

    Raises
    ------
    TypeError, ValueError
        Naming ``name``.
    """
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
