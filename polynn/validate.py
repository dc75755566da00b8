"""Checks at polynn's boundary: every argument a user passes is checked here, once, before it
reaches a backend, and refused with a message naming the parameter (or file) and the problem.

Scalars: :func:`check_int`, :func:`check_real`, :func:`check_bool`, :func:`check_choice`,
:func:`check_seed` (``bool`` is never a number here, strings are never parsed, NaN is never a
value). Arrays: :func:`host_array` (pandas and other ``to_numpy`` objects, backend arrays; scipy
sparse and complex are refused), :func:`check_X` / :func:`check_resident_X` (features, checked
finite *after* the cast to the model's dtype, on the host and on the device alike) and
:func:`encode_targets` (labels / regression targets). Nothing here imports a backend library.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np

from polynn.backend import to_host
from polynn.nn.optim import OPTIMIZERS


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type (a bool or a string where a number belongs, ...). Both a
    TypeError and a ValueError, as scikit-learn's ``InvalidParameterError``, so code that
    catches either keeps working."""


# --- scalars -----------------------------------------------------------------------------------
def _type_name(value) -> str:
    return type(value).__name__


def check_int(name, value, minimum=None, maximum=None, *, allow_none=False):
    """``value`` as a Python int in ``[minimum, maximum]`` (None: unbounded); ``bool``, floats
    (even whole ones) and strings are refused with :class:`ParameterError`, out-of-range ints
    with ValueError. ``allow_none`` lets None through unchanged."""
    if value is None and allow_none:
        return None
    if minimum == 1 and maximum is None:
        what = "a positive integer"
    elif minimum == 0 and maximum is None:
        what = "a non-negative integer"
    elif minimum is not None and maximum is not None:
        what = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        what = f"an integer >= {minimum}"
    else:
        what = "an integer"
    what += " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(f"{name} must be {what}, got {value!r} ({_type_name(value)})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_real(name, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False,
               allow_none=False):
    """``value`` as a finite Python float in the interval from ``low`` to ``high`` (open ends
    with ``low_open`` / ``high_open``). ``bool``, strings and complex numbers are refused with
    :class:`ParameterError`; NaN, infinity and out-of-range values with ValueError."""
    if value is None and allow_none:
        return None
    if low == 0 and high == math.inf:
        what = "a positive finite number" if low_open else "a non-negative finite number"
    elif math.isfinite(low) and math.isfinite(high):
        what = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif math.isfinite(low):
        what = f"a finite number {'>' if low_open else '>='} {low}"
    elif math.isfinite(high):
        what = f"a finite number {'<' if high_open else '<='} {high}"
    else:
        what = "a finite number"
    what += " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ParameterError(f"{name} must be {what}, got {value!r} ({_type_name(value)})")
    number = float(value)
    in_range = (number > low if low_open else number >= low) and (
        number < high if high_open else number <= high)
    if not (math.isfinite(number) and in_range):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def check_bool(name, value) -> bool:
    """``True``/``False`` (or NumPy's bool); anything else, 0 and 1 included, is a
    :class:`ParameterError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r} ({_type_name(value)})")
    return bool(value)


def check_choice(name, value, choices):
    """``value`` if it is one of the strings ``choices``, else ValueError naming both."""
    if not (isinstance(value, str) and value in choices):
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
    return value


def check_seed(value, name="seed"):
    """A seed for ``numpy.random.default_rng``: None, a non-negative int or a non-empty
    sequence of them (what polynn's model files record). Returns it with ints as Python ints."""
    what = f"{name} must be None, a non-negative integer or a list of them"
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{what}, got an empty {_type_name(value)}")
        return [_seed_int(s, what) for s in value]
    return _seed_int(value, what)


def _seed_int(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(f"{what}, got {value!r} ({_type_name(value)})")
    if value < 0:
        raise ValueError(f"{what}, got {value!r}")
    return int(value)


def check_layer_sizes(layer_sizes, name="layer_sizes") -> list[int]:
    """``[n_features, hidden..., n_outputs]`` as a list of at least 2 positive ints. A string
    is not a sequence of sizes here ("23" is not [2, 3]), nor is a bool or a float a size."""
    what = f"{name} must be a sequence of at least 2 positive integers [n_features, ..., n_outputs]"
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__iter__") or (
            isinstance(layer_sizes, np.ndarray) and layer_sizes.ndim != 1):
        raise ParameterError(f"{what}, got {layer_sizes!r} ({_type_name(layer_sizes)})")
    sizes = list(layer_sizes)
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise ParameterError(f"{what}; {name}[{i}] is {n!r} ({_type_name(n)})")
        if n < 1:
            raise ValueError(f"{what}; {name}[{i}] is {n!r}")
    if len(sizes) < 2:
        raise ValueError(f"{what}, got {sizes!r}")
    return [int(n) for n in sizes]


def check_l2(l2, name="l2") -> float:
    return check_real(name, l2, 0)


def check_layers(params, name="params") -> list[int]:
    """The layer sizes ``[n_0, ..., n_L]`` of a sequence of ``(W (n_{l-1}, n_l), b (n_l,))``
    pairs (host arrays, or anything with ``shape`` and ``ndim``), else ValueError naming the
    first layer that does not chain onto the one before it."""
    params = tuple(params)
    if not params:
        raise ValueError(f"{name} is empty: need at least one (W, b) layer")
    sizes = [params[0][0].shape[0]] if params[0][0].ndim == 2 else None
    for layer, (W, b) in enumerate(params):
        if W.ndim != 2 or tuple(b.shape) != (W.shape[1],) or W.shape[0] != sizes[-1]:
            raise ValueError(f"layer {layer}: W {tuple(W.shape)} and b {tuple(b.shape)} do not "
                             f"chain (expected W ({sizes[-1]}, n_out) and b (n_out,))")
        sizes.append(int(W.shape[1]))
    return [int(n) for n in sizes]


# --- fit's options: one rule per name, as scikit-learn's ``_parameter_constraints`` ------------
def _real(low=-math.inf, high=math.inf, *, low_open=False, high_open=False, none=False):
    return lambda name, value: check_real(name, value, low, high, low_open=low_open,
                                          high_open=high_open, allow_none=none)


def _int(low, *, none=False):
    return lambda name, value: check_int(name, value, low, allow_none=none)


def _optimizer(name, value):
    """A name of ``polynn.nn.optim.OPTIMIZERS`` or an optimizer object (``init``, ``update``)."""
    if isinstance(value, str) or not (hasattr(value, "init") and hasattr(value, "update")):
        check_choice(name, value, OPTIMIZERS)
    return value


def _callable_or_none(what):
    def check(name, value):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be None or {what}, got {value!r}")
        return value

    return check


def _pair_or_none(name, value):
    if value is not None and not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TypeError(f"{name} must be a pair (X_val, y_val), got {_type_name(value)}")
    return value


#: ``MLP.fit``'s options: name -> rule ``(name, value) -> checked value`` (raises on a bad one).
FIT_OPTIONS = {
    "lr": _real(0, low_open=True, none=True),
    "l2": _real(0),
    "epochs": _int(0),
    "batch_size": _int(1, none=True),
    "shuffle": check_bool,
    "seed": lambda name, value: check_seed(value, name),
    "optimizer": _optimizer,
    "momentum": _real(0, 1),
    "schedule": _callable_or_none("a schedule from polynn.nn.optim (a callable of the step "
                                  "count)"),
    "validation_split": _real(0, 1, low_open=True, high_open=True, none=True),
    "validation_data": _pair_or_none,
    "patience": _int(0, none=True),
    "min_delta": _real(0),
    "restore_best_weights": check_bool,
    "progress": check_bool,
    "callback": _callable_or_none("a callable"),
    "l2_per_weight": check_bool,
    "stream": check_bool,
}


def check_fit_options(options: dict) -> dict:
    """Every option of ``options`` checked by its rule in :data:`FIT_OPTIONS`, in the table's
    order, before any data is touched; returns the checked values (Python numbers)."""
    unknown = set(options) - set(FIT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown fit option(s) {sorted(unknown)}; choose from "
                        f"{list(FIT_OPTIONS)}")
    return {name: rule(name, options[name]) for name, rule in FIT_OPTIONS.items()
            if name in options}


# --- arrays ------------------------------------------------------------------------------------
def _is_sparse(x) -> bool:
    return type(x).__module__.startswith("scipy.sparse")


def host_array(x, name="X") -> np.ndarray:
    """``x`` as a host NumPy array, without a copy where possible.

    Accepts NumPy arrays, nested sequences, any backend's arrays, and table objects with
    ``to_numpy`` (pandas, polars): pandas' nullable dtypes (``Float64``, ``Int64``, ...) become
    float64 with NaN for missing values (then refused by name where values must be finite).
    A scipy sparse matrix is a TypeError (polynn computes on dense arrays)."""
    if isinstance(x, np.ndarray):
        return x
    if _is_sparse(x):
        raise TypeError(f"{name} is a scipy sparse {_type_name(x)}; polynn needs dense arrays "
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


def _check_kind(array, name, what="numbers"):
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex values (dtype "
                        f"{array.dtype}); polynn does not drop imaginary parts: pass "
                        f"{name}.real or abs({name}) explicitly")
    if kind not in "biuf":
        got = (f"dtype {array.dtype}" if kind != "O" or array.size == 0 else
               f"dtype object (e.g. {array.flat[0]!r} of type {_type_name(array.flat[0])})")
        raise TypeError(f"{name} must hold {what}, got {got}")


def _first_bad(bad) -> str:
    """'row r, column c' (or 'index i') of the first True in a boolean array."""
    where = np.argwhere(bad)[0]
    if where.size == 1:
        return f"index {where[0]}"
    return ", ".join(f"{axis} {i}" for axis, i in zip(("row", "column", "axis 2"), where))


def _nonfinite_name(value) -> str:
    return "NaN (a missing value)" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def check_finite(array, name, dtype=None):
    """Raise ValueError unless every value of the real host ``array`` is finite and, when
    ``dtype`` (a backend's ``DType`` record: ``.name``, ``.max``) is given, stays finite when
    cast to it."""
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
    if limit is not None and max(-float(low), float(high)) > limit:
        bad = np.abs(array) > limit
        first = array[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"{name} has values beyond the range of the model's dtype {dtype.name} "
                         f"(largest finite value {limit:.4g}): {float(first)!r} at "
                         f"{_first_bad(bad)} would become infinite; rescale {name} (e.g. "
                         f"polynn.datasets.standardize) or use dtype='float64'")


def check_X(X, n_features, name="X", dtype=None, *, allow_empty=False) -> np.ndarray:
    """``X`` as a host real array of shape ``(m, n_features)`` (any width when ``n_features``
    is None), ``m >= 1`` unless ``allow_empty``, whose values are finite in the model's ``dtype``
    (a ``DType`` record; None: as given)."""
    X = host_array(X, name)
    _check_kind(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m examples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's first layer expects "
                         f"{n_features} (layer_sizes[0])")
    check_finite(X, name, dtype)
    return X


def check_resident_X(X, xp, dtype, n_features, name="X", *, cast=True):
    """``X``, already an array of namespace ``xp``, checked and cast to ``dtype`` (a ``DType``
    record) on its device:
    shape ``(m, n_features)``, real, and finite after the cast (one reduction when it is).
    ``cast=False`` returns ``X`` itself, checked without a cast copy or a mask the size of X
    (min and max, against the dtype's range), for callers that cast rows when they use them."""
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
        _check_kind(y, name, "numbers for regression")
        T = y.reshape(m, -1).astype(np.float64)
        if T.shape[1] != n_outputs:
            raise ValueError(f"{name} has {T.shape[1]} target column(s) but the model has "
                             f"{n_outputs} output unit(s) (layer_sizes[-1])")
        check_finite(y if y.dtype.kind == "f" else T, name, dtype)
        if output == "poisson" and T.min() < 0:
            raise ValueError(f"{name} has negative values (e.g. {T[T < 0][:3].tolist()}); "
                             "output='poisson' models non-negative targets such as counts")
        return T
    _check_kind(y, name, "integer class labels")
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


def check_rows(y, m, name="y") -> np.ndarray:
    """``y`` as a host array with ``m`` rows (those of ``X``), else ValueError."""
    y = host_array(y, name)
    if y.shape[:1] != (m,):
        raise ValueError(f"X has {m} rows but {name} has shape {y.shape}: they must have the "
                         "same number of rows")
    return y


def check_sample_weight(sample_weight, m, name="sample_weight") -> np.ndarray:
    """``sample_weight`` as a host float64 ``(m,)`` array of finite non-negative weights with a
    positive sum."""
    w = host_array(sample_weight, name)
    _check_kind(w, name, "real numbers")
    if w.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},), one weight per row of X, got {w.shape}")
    check_finite(w, name)
    w = w.astype(np.float64)
    if w.min() < 0 or not w.sum() > 0:
        raise ValueError(f"{name} must be finite and non-negative with a positive sum")
    return w


def check_validation_split(validation_split, m) -> float:
    """A fraction in (0, 1) that leaves at least one row on each side of an ``m``-row split
    (the validation set gets ``ceil(validation_split * m)`` rows, as train_test_split)."""
    split = check_real("validation_split", validation_split, 0, 1, low_open=True,
                       high_open=True)
    n_val = math.ceil(split * m)
    if not 1 <= n_val < m:
        raise ValueError(f"validation_split={validation_split} of {m} rows leaves "
                         f"{m - n_val} training row(s) and {n_val} validation row(s); both need "
                         "at least one")
    return split


# === io's block (owner: io; the rest of this file belongs to "core") ===========================
# A model's configuration checked by the rules MLP(...) applies to its arguments, so that a file
# and a constructor call accept exactly the same models (one owner for the rules).
MODEL_CONFIG_KEYS = ("layer_sizes", "activation", "output", "negative_slope", "init", "dtype",
                     "seed")


def check_model_config(config) -> dict:
    """``config`` (a dict with exactly the keys :data:`MODEL_CONFIG_KEYS`, as ``MLP(...)``
    takes them) checked field by field with the constructor's own checks, against the same
    registries (``ACTIVATIONS``, ``OUTPUTS``, ``INITIALIZERS``, ``DTYPES``). Returns a new dict
    with the values normalised (``layer_sizes`` and a sequence ``seed`` as lists of Python
    ints, ``negative_slope`` a float). Raises ValueError or TypeError naming the field."""
    from polynn.backend import DTYPES
    from polynn.init import INITIALIZERS
    from polynn.nn.activations import ACTIVATIONS
    from polynn.nn.losses import OUTPUTS

    if not isinstance(config, dict):
        raise TypeError(f"a model configuration must be a dict, got {_type_name(config)}")
    if set(config) != set(MODEL_CONFIG_KEYS):
        missing = sorted(set(MODEL_CONFIG_KEYS) - set(config))
        unknown = sorted(set(config) - set(MODEL_CONFIG_KEYS), key=str)
        raise ValueError("the model configuration " + "; ".join(
            [f"lacks {missing}"] * bool(missing) + [f"has unknown {unknown}"] * bool(unknown)))
    return {
        "layer_sizes": check_layer_sizes(config["layer_sizes"]),
        "activation": check_choice("activation", config["activation"], ACTIVATIONS),
        "output": check_choice("output", config["output"], OUTPUTS),
        # leaky_relu's slope for negative inputs (0 would be relu; NaN poisons every gradient).
        "negative_slope": check_real("negative_slope", config["negative_slope"], 0,
                                     low_open=True),
        "init": check_choice("init", config["init"], INITIALIZERS),
        "dtype": check_choice("dtype", config["dtype"], DTYPES),
        "seed": check_seed(config["seed"]),
    }
