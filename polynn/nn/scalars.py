"""The scalar checks of the math's own objects (optimizers and schedules): plain Python, so that
``nn`` stays the bottom layer (no array library, nothing else of polynn).

Each check returns the value as a Python ``float`` or ``int`` (a NumPy scalar becomes one), or
raises TypeError (not a real number / not an integer) or ValueError (out of range) with a
message naming the object and the parameter: ``"Adam: beta1 must be in [0, 1), got 1"``.
"""

from __future__ import annotations

import math
import numbers


def real(owner: str, name: str, value: object, *, low: float = -math.inf,
         high: float = math.inf, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite Python number in the interval from ``low`` to ``high`` (each end
    closed unless ``low_open`` / ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {_short(value)}")
    number = float(value)
    inside = ((number > low if low_open else number >= low)
              and (number < high if high_open else number <= high))
    if not (math.isfinite(number) and inside):
        interval = (f"{'(' if low_open else '['}{_end(low)}, "
                    f"{_end(high)}{')' if high_open or high == math.inf else ']'}")
        raise ValueError(f"{owner}: {name} must be a finite number in {interval}, "
                         f"got {_short(value)}")
    # A Python number is kept as it is (an int stays an int in files); others become floats.
    if isinstance(value, int) and type(value) is int:
        return value  # (an int, typed as the float it stands for)
    return number


def positive(owner: str, name: str, value: object) -> float:
    """``value`` as a finite Python number > 0."""
    return real(owner, name, value, low=0.0, low_open=True)


def integer(owner: str, name: str, value: object, *, low: int) -> int:
    """``value`` as a Python int >= ``low`` (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {_short(value)}")
    if value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value}")
    return int(value)


def flag(owner: str, name: str, value: object) -> bool:
    """``value`` as a bool (True, False, or a NumPy bool)."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{owner}: {name} must be True or False, got {_short(value)}")
    return bool(value)


def _end(bound: float) -> str:
    return "inf" if bound == math.inf else ("-inf" if bound == -math.inf else f"{bound:g}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
