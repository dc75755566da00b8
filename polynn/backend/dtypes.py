"""The dtype record: one place that knows a dtype's name, the backend's dtype object, how it is
stored on the host, its size and its range.

NumPy has no bfloat16: host copies of bfloat16 data are float32 (exact widening), while a
bfloat16 element takes 2 bytes on the device. That rule is spelled here and nowhere else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = ("float32", "float64", "bfloat16", "mixed_bfloat16")

# Backends whose library has bfloat16 arithmetic.
_BFLOAT16_BACKENDS = ("jax", "torch")

# Mixed-precision policies (Keras's): name -> (the dtype parameters, optimizer state and data
# are kept in, the dtype the step's matmuls and activations compute in).
MIXED = {"mixed_bfloat16": ("float32", "bfloat16")}

# name -> (host storage dtype, bytes per element when computing, largest finite value)
_HOST: dict[str, tuple[np.dtype, int, float]] = {
    "float32": (np.dtype(np.float32), 4, float(np.finfo(np.float32).max)),
    "float64": (np.dtype(np.float64), 8, float(np.finfo(np.float64).max)),
    # 8 exponent bits as float32, 8 significand bits: (2 - 2**-7) * 2**127.
    "bfloat16": (np.dtype(np.float32), 2, (2 - 2.0**-7) * 2.0**127),
}
_HOST["mixed_bfloat16"] = _HOST["float32"]  # what it stores: float32


@dataclass(frozen=True)
class DType:
    """Everything polynn needs to know about one floating-point dtype.

    Attributes
    ----------
    name : str
        "float32", "float64", "bfloat16" or "mixed_bfloat16".
    native : object or None
        The backend's dtype object (``jnp.bfloat16``, ``torch.float32``, ...) of the
        parameters and data (float32 for "mixed_bfloat16"); None in a host-only record
        (:func:`dtype_info`).
    host : numpy.dtype
        The NumPy dtype data of this dtype is stored in on the host (float32 for bfloat16).
    itemsize : int
        Bytes per element when computing (2 for bfloat16).
    max : float
        The largest finite value.
    compute : object or None
        For a mixed-precision policy, the backend's dtype object the training step computes in
        (``bfloat16``); None when it computes in ``native``.
    """

    name: str
    native: Any
    host: np.dtype
    itemsize: int
    max: float
    compute: Any = None

    @property
    def mixed(self) -> bool:
        """True for a mixed-precision policy (parameters in ``native``, steps in ``compute``)."""
        return self.name in MIXED

    @property
    def compute_name(self) -> str:
        """The name of the dtype the training step computes in ("bfloat16" for
        "mixed_bfloat16")."""
        return MIXED[self.name][1] if self.name in MIXED else self.name


def _check_name(name) -> None:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {DTYPES}")


def dtype_info(name: str) -> DType:
    """The host-only record of dtype ``name`` (no backend is imported).

    Parameters
    ----------
    name : str
        "float32", "float64" or "bfloat16".

    Returns
    -------
    DType
        With ``native=None``.

    Raises
    ------
    ValueError
        For a name other than "float32", "float64" or "bfloat16" (the message names them).
    """
    _check_name(name)
    host, itemsize, largest = _HOST[name]
    return DType(name, None, host, itemsize, largest)


def cast_on_device(name: str) -> bool:
    """True when dtype ``name`` has no NumPy dtype (bfloat16): data is cast to it on the
    device, from its host storage dtype."""
    info = dtype_info(name)
    return info.itemsize != info.host.itemsize


def supports(backend_name: str, name: str) -> bool:
    """True when backend ``backend_name`` computes in dtype ``name`` (bfloat16 and
    mixed_bfloat16: JAX, PyTorch)."""
    return name in DTYPES and (name not in ("bfloat16", *MIXED)
                               or backend_name in _BFLOAT16_BACKENDS)


def native_record(backend_name: str, xp, name: str) -> DType:
    """The record of dtype ``name`` on backend ``backend_name`` (namespace ``xp``), with
    ``native`` filled. Enables x64 on JAX for float64. ValueError for an unknown name or one
    the backend lacks."""
    _check_name(name)
    if not supports(backend_name, name):
        why = ": it computes in bfloat16, which only JAX and PyTorch have (use float32 here)" \
            if name in MIXED else ""
        raise ValueError(f"dtype {name!r} is not supported by backend {backend_name!r}{why}")
    if name == "float64" and backend_name == "jax":
        _enable_jax_x64()
    host, itemsize, largest = _HOST[name]
    if name in MIXED:
        store, compute = MIXED[name]
        return DType(name, getattr(xp, store), host, itemsize, largest, getattr(xp, compute))
    return DType(name, getattr(xp, name), host, itemsize, largest)


_x64_announced = False


def _enable_jax_x64() -> None:
    """float64 on JAX needs x64 mode, which is global: turn it on and say so, once."""
    global _x64_announced
    import jax

    if not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        jax.config.update("jax_enable_x64", True)
        if not _x64_announced:
            warnings.warn(
                "dtype='float64' on JAX: enabled jax_enable_x64 for this process "
                "(JAX computes in float32 otherwise)",
                stacklevel=5,
            )
            _x64_announced = True
