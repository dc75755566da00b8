"""``namespace(x)``: ``array_api_compat.array_namespace(x)`` memoised by the array's type.

``array_namespace`` inspects its argument on every call (~1 µs); the math asks for it about six
times per training step, which on an eager backend and a small network is several percent of
the step. The namespace depends only on the array's type (NumPy, CuPy, PyTorch, array-api-strict
arrays, JAX arrays and tracers), so one lookup per type is enough.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from array_api_compat import array_namespace

# An array of any backend (NumPy, CuPy, PyTorch, JAX, array-api-strict): the array API standard
# has no static type that all of them satisfy, so the math is typed against ``Any``-valued
# aliases that name the role of each argument.
Array: TypeAlias = Any
# An array API namespace (``numpy``'s compat wrapper, ``jax.numpy``, ...), a module-like object.
Namespace: TypeAlias = Any

_BY_TYPE: dict[type, Namespace] = {}


def namespace(x: Array) -> Namespace:
    """The array API namespace of an array.

    Parameters
    ----------
    x : array
        An array of any supported backend.

    Returns
    -------
    module
        Its array API namespace (cached per array type).
    """
    kind = type(x)
    xp = _BY_TYPE.get(kind)
    if xp is None:
        xp = _BY_TYPE[kind] = array_namespace(x)
    return xp
