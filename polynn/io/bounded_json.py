"""JSON parsed within limits, and written canonically.

:func:`loads` checks the raw text (nesting depth, number of containers and values, digits per
number) before ``json.loads`` sees it, so that memory and time stay proportional to the text's
length whatever it holds: no RecursionError, no quadratic number parsing. Duplicate keys and
non-finite numbers are refused while parsing. Failures raise :class:`~polynn.io.errors.Refused`.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from polynn.io.errors import Refused

#: Limits on any JSON polynn parses, checked on the raw text before parsing.
MAX_JSON_DEPTH = 32
MAX_JSON_CONTAINERS = 1 << 18
MAX_JSON_VALUES = 1 << 21
MAX_NUMBER_DIGITS = 100

# A JSON string, closing quote optional so that an unterminated one is still consumed in one
# linear pass (a regex that must backtrack from every quote is quadratic on hostile input).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_LONG_NUMBER = re.compile(f"[0-9]{{{MAX_NUMBER_DIGITS + 1}}}")


def _refuse_constant(constant):
    raise ValueError(f"{constant} is not a finite number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _unique_keys(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {duplicate!r} appears twice")
    return obj


def _depth(brackets: str) -> int:
    """The deepest nesting of a string of brackets, counted in chunks (memory independent of
    the text)."""
    depth = level = 0
    for start in range(0, len(brackets), 1 << 16):
        codes = np.frombuffer(brackets[start:start + (1 << 16)].encode("ascii"), np.uint8)
        levels = level + np.cumsum(np.where((codes == 91) | (codes == 123), 1, -1))  # [ {
        depth, level = max(depth, int(levels.max())), int(levels[-1])
    return depth


def loads(text: str, what: str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(text)`` once the text is known to stay within the limits; ``what`` names
    the text in the :class:`Refused` raised otherwise."""
    bare = _JSON_STRING.sub('""', text)
    if _LONG_NUMBER.search(bare):
        raise Refused(f"{what} holds a number longer than {MAX_NUMBER_DIGITS} digits")
    if bare.count(",") > MAX_JSON_VALUES:
        raise Refused(f"{what} has more than {MAX_JSON_VALUES} JSON values")
    brackets = _NOT_BRACKET.sub("", bare)
    del bare  # (peak memory: a few copies of the text at most)
    if len(brackets) > 2 * MAX_JSON_CONTAINERS:
        raise Refused(f"{what} has more than {MAX_JSON_CONTAINERS} JSON arrays and objects")
    depth = _depth(brackets)
    if depth > max_depth:
        raise Refused(f"{what} is nested {depth} deep (polynn reads at most {max_depth})")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise Refused(f"{what} is not valid JSON ({err})", corrupt=True) from err


def dumps(obj) -> str:
    """Canonical JSON (sorted keys, no spaces); NumPy scalars and arrays (MT19937's key in a
    ``bit_generator.state``) as plain numbers and lists. ValueError for NaN or infinity."""

    def default(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(obj, default=default, allow_nan=False, sort_keys=True,
                      separators=(",", ":"))
