"""Arrays at the boundary: host copies of any array or table, features, rows, sample weights and
the validation split, checked finite in the model's dtype."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from polynn.backend import DType, to_host
from polynn.validate.values import check_real, type_name


# --- arrays ------------------------------------------------------------------------------------
def is_sparse(x) -> bool:
    return type(x).__module__.startswith("scipy.sparse")


def host_array(x: Any, name: str = "X") -> np.ndarray:
    """``x`` as a host NumPy array, without a copy where possible.

    Parameters
    ----------
    x : array-like
        NumPy arrays, nested sequences, any backend's arrays, and table objects with
        ``to_numpy`` (pandas, polars): pandas' nullable dtypes (``Float64``, ``Int64``, ...)
        become float64 with NaN for missing values (then refused by name where values must
        be finite).
    name : str, default "X"
        The argument's name, for messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    TypeError
        A scipy sparse matrix (polynn computes on dense arrays).
    """
    if isinstance(x, np.ndarray):
        return x
    if is_sparse(x):
        raise TypeError(f"{name} is a scipy sparse {type_name(x)}; polynn needs dense arrays "
                        f"(sparse input is not supported): pass {name}.toarray()")
    if hasattr(x, "to_numpy") and not hasattr(x, "__array_namespace__"):
        array = np.asarray(x.to_numpy())
        if array.dtype == object:
            # pandas' nullable (masked) dtypes come out as objects holding pd.NA.
            try:
                array = np.asarray(x.to_numpy(dtype=np.float64, na_value=np.nan))
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name} must hold numbers; its values cannot be read as "
                                f"float64 ({err})") from None
        return array
    if hasattr(x, "__dlpack__"):  # an array of any backend: copied to the host by its library
        return to_host(x)
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise ValueError(f"{name} cannot be read as an array: {err}") from None


def check_kind(array, name, what="numbers"):
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex values (dtype "
                        f"{array.dtype}); polynn does not drop imaginary parts: pass "
                        f"{name}.real or abs({name}) explicitly")
    if kind not in "biuf":
        got = (f"dtype {array.dtype}" if kind != "O" or array.size == 0 else
               f"dtype object (e.g. {array.flat[0]!r} of type {type_name(array.flat[0])})")
        raise TypeError(f"{name} must hold {what}, got {got}")


def _first_bad(bad) -> str:
    """'row r, column c' (or 'index i') of the first True in a boolean array."""
    where = np.argwhere(bad)[0]
    if where.size == 1:
        return f"index {where[0]}"
    return ", ".join(f"{axis} {i}" for axis, i in zip(("row", "column", "axis 2"), where))


def _nonfinite_name(value) -> str:
    return "NaN (a missing value)" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def check_finite(array: np.ndarray, name: str, dtype: DType | None = None) -> None:
    """Check that every value of a real host array is finite (and stays finite in ``dtype``).

    Parameters
    ----------
    array : numpy.ndarray
        Real values (integers and bools always pass).
    name : str
        The argument's name, for messages.
    dtype : DType, optional
        A backend's dtype record (``.name``, ``.max``): the values must stay finite when cast
        to it.

    Raises
    ------
    ValueError
        Naming the first value that is (or would become) NaN or infinite.
    """
    if array.dtype.kind != "f" or array.size == 0:
        return  # integers and bools are finite, and no integer overflows float32
    # min/max propagate NaN and ±inf without allocating a mask the size of the array
    # (isfinite(X).all() took 0.25 s on 60,000 x 784); masks are built only to name the culprit.
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = ~np.isfinite(array)
        first = array[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"{name} contains NaN or infinity: {_nonfinite_name(first)} first "
                         f"at {_first_bad(bad)} (values must be finite)")
    limit = None if dtype is None else dtype.max
    if dtype is not None and limit is not None and max(-float(low), float(high)) > limit:
        bad = np.abs(array) > limit
        first = array[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"{name} has values beyond the range of the model's dtype {dtype.name} "
                         f"(largest finite value {limit:.4g}): {float(first)!r} at "
                         f"{_first_bad(bad)} would become infinite; rescale {name} (e.g. "
                         f"polynn.datasets.standardize) or use dtype='float64'")


def check_X(X: Any, n_features: int | None, name: str = "X", dtype: DType | None = None, *,
            allow_empty: bool = False) -> np.ndarray:
    """``X`` as a checked host array of real numbers.

    Parameters
    ----------
    X : array-like, shape (m, n_features)
        As :func:`host_array` takes it.
    n_features : int or None
        The width required (None: any).
    name : str, default "X"
        The argument's name, for messages.
    dtype : DType, optional
        The model's dtype record: values must be finite in it (None: as given).
    allow_empty : bool, default False
        Accept ``m == 0``.

    Returns
    -------
    numpy.ndarray, shape (m, n_features)

    Raises
    ------
    ValueError
        Not 2-D, no rows, the wrong width, or non-finite values.
    TypeError
        Not real numbers (complex, text, sparse).
    """
    X = host_array(X, name)
    check_kind(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m examples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's first layer expects "
                         f"{n_features} (layer_sizes[0])")
    check_finite(X, name, dtype)
    return X


def check_resident_X(X: Any, xp: Any, dtype: DType, n_features: int, name: str = "X", *,
                     cast: bool = True) -> Any:
    """A device array ``X`` checked (and cast to ``dtype``) where it lives.

    Parameters
    ----------
    X : array of namespace ``xp``, shape (m, n_features)
        Real numbers, finite after the cast (one reduction when they are).
    xp : array namespace
        ``X``'s namespace.
    dtype : DType
        The model's dtype record.
    n_features : int
        The width required.
    name : str, default "X"
        The argument's name, for messages.
    cast : bool, default True
        False returns ``X`` itself, checked without a cast copy or a mask the size of X (min
        and max, against the dtype's range), for callers that cast rows when they use them.

    Returns
    -------
    array of namespace ``xp``, shape (m, n_features)
        In ``dtype`` (``X`` itself with ``cast=False``).

    Raises
    ------
    ValueError
        Not 2-D, no rows, the wrong width, or non-finite values in ``dtype``.
    TypeError
        Not real numbers.
    """
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m examples, n_features), got shape "
                         f"{tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's first layer expects "
                         f"{n_features} (layer_sizes[0])")
    if xp.isdtype(X.dtype, "complex floating"):
        raise TypeError(f"{name} must hold real numbers, got complex values (dtype {X.dtype})")
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if not cast:
        if xp.isdtype(X.dtype, "real floating") and X.shape[0]:
            low, high = float(xp.min(X)), float(xp.max(X))
            if not (math.isfinite(low) and math.isfinite(high)) or max(-low, high) > dtype.max:
                # Name the culprit on the host: this is the error path only.
                check_finite(to_host(X), name, dtype)
                raise ValueError(f"{name} has values that are not finite in the model's dtype "
                                 f"{dtype.name}")
        return X
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        # An overflow in the cast (NumPy-backed namespaces warn) is reported just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        cast = X if X.dtype == dtype.native else xp.astype(X, dtype.native)
    if not bool(xp.all(xp.isfinite(cast))):
        # Name the culprit on the host: this is the error path only.
        check_finite(to_host(X).astype(np.float64, copy=False) if X.dtype != dtype.native else
                     to_host(cast), name, dtype)
        raise ValueError(f"{name} contains NaN or infinity in the model's dtype {dtype.name}")
    return cast


def check_rows(y: Any, m: int, name: str = "y") -> np.ndarray:
    """``y`` as a host array with ``m`` rows (those of ``X``).

    Parameters
    ----------
    y : array-like, shape (m, ...)
        Labels, targets or weights.
    m : int
        The rows of ``X``.
    name : str, default "y"
        The argument's name, for messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Another number of rows.
    """
    y = host_array(y, name)
    if y.shape[:1] != (m,):
        raise ValueError(f"X has {m} rows but {name} has shape {y.shape}: they must have the "
                         "same number of rows")
    return y


def check_sample_weight(sample_weight: Any, m: int, name: str = "sample_weight") -> np.ndarray:
    """Example weights, checked.

    Parameters
    ----------
    sample_weight : array-like of real numbers, shape (m,)
        Finite, non-negative, with a positive sum.
    m : int
        The rows of ``X``.
    name : str, default "sample_weight"
        The argument's name, for messages.

    Returns
    -------
    numpy.ndarray of float64, shape (m,)

    Raises
    ------
    ValueError
        The wrong shape, a negative or non-finite weight, or a zero sum.
    """
    w = host_array(sample_weight, name)
    check_kind(w, name, "real numbers")
    if w.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},), one weight per row of X, got {w.shape}")
    check_finite(w, name)
    w = w.astype(np.float64)
    # (max, not sum: non-negative weights sum to > 0 exactly when one is > 0, and 1e308 * m
    # must not overflow on the way)
    if w.min() < 0 or not w.max() > 0:
        raise ValueError(f"{name} must be finite and non-negative with a positive sum")
    return w


def normalize_sample_weight(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights divided, exactly, by the power of two that brings their mean into
    [0.25, 1), in float64 on the host, before any cast to the model's dtype.

    A batch's weighted mean Σ wᵢ lᵢ / Σ wᵢ does not depend on that scale, so uniform weights of
    1e300 or 1e-300 train like ones, where a cast first would make them inf or 0. ``e`` is the
    scale's exponent: :meth:`MLP.fit`'s ``l2_per_weight`` (scikit-learn's penalty over the
    batch's sum of weights) divides the L2 term by ``2**e`` too, so it keeps its meaning.

    Parameters
    ----------
    weights : numpy.ndarray of float64, shape (m,)
        Checked by :func:`check_sample_weight`.

    Returns
    -------
    scaled : numpy.ndarray of float64, shape (m,)
        ``weights * 2**-e``.
    e : int
        The exponent.
    """
    # mean = top * relative, each factor written f * 2**e (0.5 <= f < 1): exponents add, so
    # nothing overflows (1e300 * m) or underflows (subnormal weights) on the way.
    top = float(weights.max())
    relative = float((weights / top).mean())  # in [1/m, 1]
    exponent = math.frexp(top)[1] + math.frexp(relative)[1]
    return np.ldexp(weights, -exponent), exponent


def check_validation_split(validation_split: Any, m: int) -> float:
    """``fit``'s ``validation_split``, checked against the number of rows.

    Parameters
    ----------
    validation_split : float in (0, 1)
        The validation set gets ``ceil(validation_split * m)`` rows, as
        :func:`polynn.datasets.train_test_split`.
    m : int
        The rows to split.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Not in (0, 1), or leaving no row on one side.
    """
    split = check_real("validation_split", validation_split, 0, 1, low_open=True,
                       high_open=True)
    n_val = math.ceil(split * m)
    if not 1 <= n_val < m:
        raise ValueError(f"validation_split={validation_split} of {m} rows leaves "
                         f"{m - n_val} training row(s) and {n_val} validation row(s); both need "
                         "at least one")
    return split
