"""The shuffling stream's state (NumPy's ``bit_generator.state``) checked field by field against
the generator's own invariants before NumPy sees it.

NumPy's state setters trust their input: an MT19937 ``pos`` outside 0..624 or a Philox
``buffer_pos`` outside 0..4 is stored as given and later indexes past the generator's buffer
(reading garbage, or killing the interpreter with SIGSEGV), and a short MT19937 key raises a bare
``IndexError``. So every field is checked here against :data:`LAYOUTS` (exact keys, integer
types, lengths and ranges) and a few invariants NumPy's own states always satisfy (PCG's
increment is odd; an MT19937 key is not all zero), then rebuilt from Python ints into arrays of
the generator's own dtypes, and only then handed to a fresh generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polynn.io.errors import Refused

# Every message starts so: "shuffle_rng" is the field's name in the training JSON.
_WHAT = "the shuffling generator's state (shuffle_rng)"
#: The bit generators whose state a checkpoint may hold.
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")

# A leaf is ("int", low, high) for one integer in [low, high], or ("words", n, bits) for n
# unsigned integers of ``bits`` bits (rebuilt as a uint32/uint64 array).
_FLAG, _UINT32 = ("int", 0, 1), ("int", 0, 2**32 - 1)
_PCG = {"state": {"state": ("int", 0, 2**128 - 1), "inc": ("int", 0, 2**128 - 1)},
        "has_uint32": _FLAG, "uinteger": _UINT32}
#: The shape of each generator's state: keys, integer ranges, array lengths and word sizes.
LAYOUTS: dict[str, dict[str, Any]] = {
    "MT19937": {"state": {"key": ("words", 624, 32), "pos": ("int", 0, 624)}},
    "PCG64": _PCG,
    "PCG64DXSM": _PCG,
    "Philox": {"state": {"counter": ("words", 4, 64), "key": ("words", 2, 64)},
               "buffer": ("words", 4, 64), "buffer_pos": ("int", 0, 4),
               "has_uint32": _FLAG, "uinteger": _UINT32},
    "SFC64": {"state": {"state": ("words", 4, 64)}, "has_uint32": _FLAG, "uinteger": _UINT32},
}


def _integer(value, where: str, low: int, high: int) -> int:
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused(f"{_WHAT} {where} is {_short(value)}, not an integer")
    if not low <= value <= high:
        raise Refused(f"{_WHAT} {where} is {_short(value)}; the generator "
                      f"needs {low} <= {where} <= {high}")
    return value


def _words(value, where: str, n: int, bits: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iu":
            raise Refused(f"{_WHAT} {where} is not a list of integers")
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise Refused(f"{_WHAT} {where} is {_short(value)}, not a list of "
                      f"{n} integers")
    if len(value) != n:
        raise Refused(f"{_WHAT} {where} has {len(value)} words; the generator "
                      f"keeps {n}")
    words = [_integer(word, f"{where}[{i}]", 0, 2**bits - 1) for i, word in enumerate(value)]
    return np.array(words, dtype=np.uint32 if bits == 32 else np.uint64)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rebuild(value, layout: dict[str, Any], where: str) -> dict[str, Any]:
    """``value`` (a dict shaped like ``layout``) with every leaf checked and rebuilt."""
    if not isinstance(value, dict):
        raise Refused(f"{_WHAT}{where and ' ' + where} is not a JSON object")
    if value.keys() != layout.keys():
        raise Refused(f"{_WHAT}{where and ' ' + where} has keys "
                      f"{_short(sorted(map(str, value)))}; expected {sorted(layout)}")
    rebuilt: dict[str, Any] = {}
    for key, spec in layout.items():
        name = f"{where}.{key}" if where else key
        if isinstance(spec, dict):
            rebuilt[key] = _rebuild(value[key], spec, name)
        elif spec[0] == "int":
            rebuilt[key] = _integer(value[key], name, spec[1], spec[2])
        else:
            rebuilt[key] = _words(value[key], name, spec[1], spec[2])
    return rebuilt


def _invariants(name: str, state: dict) -> None:
    """Refuse states no NumPy generator reaches (degenerate streams)."""
    inner = state["state"]
    if name.startswith("PCG64") and inner["inc"] % 2 == 0:
        raise Refused(f"{_WHAT} state.inc is even; PCG64's increment is odd")
    # MT19937's state is key[0]'s top bit and key[1:]: all zero is a stream of zeros forever.
    if name == "MT19937" and not (int(inner["key"][0]) >> 31 or inner["key"][1:].any()):
        raise Refused(f"{_WHAT} state.key is all zero (a stream of zeros)")


def check_shuffle(state) -> dict:
    """The ``bit_generator.state`` (a dict) of one of :data:`BIT_GENERATORS`, every field
    checked against :data:`LAYOUTS` and the generator's invariants, then loaded into a fresh
    generator; returns that generator's state (a new dict: ints and uint32/uint64 arrays).

    Raises :class:`~polynn.io.errors.Refused` naming the field and its allowed range."""
    if not isinstance(state, dict):
        raise Refused(f"{_WHAT} is {_short(state)}, not a JSON object")
    name = state.get("bit_generator")
    if not (isinstance(name, str) and name in LAYOUTS):
        raise Refused(f"{_WHAT} bit_generator is {_short(name)}; polynn "
                      f"restores {list(BIT_GENERATORS)}")
    rebuilt = _rebuild({k: v for k, v in state.items() if k != "bit_generator"},
                       LAYOUTS[name], "")
    _invariants(name, rebuilt)
    bit_generator = getattr(np.random, name)()
    bit_generator.state = {"bit_generator": name, **rebuilt}
    return bit_generator.state


def generator(state: Any) -> np.random.Generator:
    """A NumPy generator continuing a saved shuffling stream.

    Parameters
    ----------
    state : dict
        A ``bit_generator.state`` (as :class:`TrainingRecord` holds it), checked as
        :func:`check_shuffle` checks it.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        Naming the field that is wrong.
    """
    try:
        checked = check_shuffle(state)
    except Refused as err:
        raise ValueError(err.detail) from None
    bit_generator = getattr(np.random, checked["bit_generator"])()
    bit_generator.state = checked
    return np.random.Generator(bit_generator)
