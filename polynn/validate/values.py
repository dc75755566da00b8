"""Scalars and layer sizes: ints, reals, bools, choices, seeds (``bool`` is never a number here,
strings are never parsed, NaN is never a value), and the sizes of a network's layers."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from numbers import Integral, Real
from typing import Any, Literal, overload

import numpy as np


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type (a bool or a string where a number belongs, ...).

    Both a TypeError and a ValueError, as scikit-learn's ``InvalidParameterError``, so code
    that catches either keeps working. Raised with one message (``ParameterError(message)``).
    """


# --- scalars -----------------------------------------------------------------------------------
def type_name(value: Any) -> str:
    return type(value).__name__


@overload
def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
              allow_none: Literal[False] = False) -> int: ...
@overload
def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
              allow_none: bool) -> int | None: ...
def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
              allow_none: bool = False) -> int | None:
    """``value`` as a Python int in ``[minimum, maximum]``.

    Parameters
    ----------
    name : str
        The parameter's name, for messages.
    value : object
        What the user gave.
    minimum, maximum : int, optional
        The bounds, inclusive (None: unbounded).
    allow_none : bool, default False
        Let None through unchanged.

    Returns
    -------
    int or None

    Raises
    ------
    ParameterError
        A ``bool``, a float (even a whole one), a string...
    ValueError
        An int out of range.
    """
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


@overload
def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False,
               allow_none: Literal[False] = False) -> float: ...
@overload
def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False,
               allow_none: bool) -> float | None: ...
def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False,
               allow_none: bool = False) -> float | None:
    """``value`` as a finite Python float in the interval from ``low`` to ``high``.

    Parameters
    ----------
    name : str
        The parameter's name, for messages.
    value : object
        What the user gave.
    low, high : float, default -inf, inf
        The interval's ends.
    low_open, high_open : bool, default False
        Exclude that end.
    allow_none : bool, default False
        Let None through unchanged.

    Returns
    -------
    float or None

    Raises
    ------
    ParameterError
        A ``bool``, a string, a complex number...
    ValueError
        NaN, infinity or a value out of range.
    """
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


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a Python bool.

    Parameters
    ----------
    name : str
        The parameter's name, for messages.
    value : object
        ``True``/``False`` (or NumPy's bool).

    Returns
    -------
    bool

    Raises
    ------
    ParameterError
        Anything else, 0 and 1 included.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {value!r} ({type_name(value)})")
    return bool(value)


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    Parameters
    ----------
    name : str
        The parameter's name, for messages.
    value : object
        What the user gave.
    choices : collection of str
        The names allowed.

    Returns
    -------
    str
        ``value`` itself.

    Raises
    ------
    ValueError
        Naming ``value`` and the choices.
    """
    if not (isinstance(value, str) and value in choices):
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
    return value


def check_seed(value: Any, name: str = "seed") -> int | list[int] | None:
    """A seed for ``numpy.random.default_rng``, as polynn's model files record it.

    Parameters
    ----------
    value : None, int >= 0 or non-empty list/tuple of them
        The seed.
    name : str, default "seed"
        The parameter's name, for messages.

    Returns
    -------
    None, int or list of int
        With Python ints.

    Raises
    ------
    ParameterError, ValueError
        Not such a seed.
    """
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


def check_layer_sizes(layer_sizes: Iterable[int], name: str = "layer_sizes") -> list[int]:
    """``[n_features, hidden..., n_outputs]`` checked.

    Parameters
    ----------
    layer_sizes : sequence of int
        At least 2 positive ints. A string is not a sequence of sizes here ("23" is not
        [2, 3]), nor is a bool or a float a size.
    name : str, default "layer_sizes"
        The parameter's name, for messages.

    Returns
    -------
    list of int

    Raises
    ------
    ParameterError, ValueError
        Naming the first wrong size.
    """
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


def check_l2(l2: Any, name: str = "l2") -> float:
    """An L2 penalty: a finite float >= 0.

    Parameters
    ----------
    l2 : float
        The penalty.
    name : str, default "l2"
        The parameter's name, for messages.

    Returns
    -------
    float
    """
    return check_real(name, l2, 0)


def check_layers(params: Iterable[tuple[Any, Any]], name: str = "params") -> list[int]:
    """The layer sizes of a network's parameters.

    Parameters
    ----------
    params : sequence of (W, b)
        ``W`` ``(n_{l-1}, n_l)``, ``b`` ``(n_l,)``: host arrays, or anything with ``shape``
        and ``ndim``.
    name : str, default "params"
        The parameter's name, for messages.

    Returns
    -------
    list of int
        ``[n_0, ..., n_L]``.

    Raises
    ------
    ValueError
        Naming the first layer that does not chain onto the one before it (or no layers).
    """
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
