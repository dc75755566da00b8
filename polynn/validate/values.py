"""Scalars and layer sizes: ints, reals, bools, choices, seeds (``bool`` is never a number here,
strings are never parsed, NaN is never a value), and the sizes of a network's layers."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type (a bool or a string where a number belongs, ...). Both a
    TypeError and a ValueError, as scikit-learn's ``InvalidParameterError``, so code that
    catches either keeps working."""


# --- scalars -----------------------------------------------------------------------------------
def type_name(value) -> str:
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
        raise ParameterError(f"{name} must be {what}, got {value!r} ({type_name(value)})")
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
        raise ParameterError(f"{name} must be {what}, got {value!r} ({type_name(value)})")
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
        raise ParameterError(f"{name} must be True or False, got {value!r} ({type_name(value)})")
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
            raise ValueError(f"{what}, got an empty {type_name(value)}")
        return [_seed_int(s, what) for s in value]
    return _seed_int(value, what)


def _seed_int(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(f"{what}, got {value!r} ({type_name(value)})")
    if value < 0:
        raise ValueError(f"{what}, got {value!r}")
    return int(value)


def check_layer_sizes(layer_sizes, name="layer_sizes") -> list[int]:
    """``[n_features, hidden..., n_outputs]`` as a list of at least 2 positive ints. A string
    is not a sequence of sizes here ("23" is not [2, 3]), nor is a bool or a float a size."""
    what = f"{name} must be a sequence of at least 2 positive integers [n_features, ..., n_outputs]"
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__iter__") or (
            isinstance(layer_sizes, np.ndarray) and layer_sizes.ndim != 1):
        raise ParameterError(f"{what}, got {layer_sizes!r} ({type_name(layer_sizes)})")
    sizes = list(layer_sizes)
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise ParameterError(f"{what}; {name}[{i}] is {n!r} ({type_name(n)})")
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
    sizes = [params[0][0].shape[0] if params[0][0].ndim == 2 else -1]
    for layer, (W, b) in enumerate(params):
        if W.ndim != 2 or tuple(b.shape) != (W.shape[1],) or W.shape[0] != sizes[-1]:
            raise ValueError(f"layer {layer}: W {tuple(W.shape)} and b {tuple(b.shape)} do not "
                             f"chain (expected W ({sizes[-1]}, n_out) and b (n_out,))")
        sizes.append(int(W.shape[1]))
    return [int(n) for n in sizes]
