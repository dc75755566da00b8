"""TODO(house): stand-ins for what the backend package (branch ``house-backend``) adds: the
``DType`` record, ``Backend.dtype_record``, ``host_memory``, ``owns``, ``spec`` and
``get_backend(None, mesh=...)`` meaning JAX. Installed only where ``polynn.backend`` lacks them;
this file is deleted once main has them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polynn import backend as _backend

if not hasattr(_backend.Backend, "dtype_record"):
    @dataclass(frozen=True)
    class DType:
        name: str
        native: object
        host: np.dtype
        itemsize: int
        max: float

    _HOST = {"float32": ("float32", 4), "float64": ("float64", 8), "bfloat16": ("float32", 2)}
    _MAX = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max),
            "bfloat16": (2.0 - 2.0**-7) * 2.0**127}

    def _dtype_record(self, name):
        native = self.dtype(name)
        host, itemsize = _HOST[name]
        return DType(name, native, np.dtype(host), itemsize, _MAX[name])

    def _owns(self, x):
        if self.name == "numpy" or isinstance(x, np.ndarray):
            return False
        from array_api_compat import array_namespace

        try:
            return array_namespace(x) is self.xp
        except TypeError:
            return False

    def _host_memory(self):
        if self.name == "torch":
            return getattr(self.device, "type", "cpu") == "cpu"
        return self.name in ("numpy", "array_api_strict")

    def _spec(self):
        return (self.name, _backend._device_spec(self.name, self.device),
                _backend.mesh_spec(self.mesh))

    _backend.Backend.dtype_record = _dtype_record
    _backend.Backend.owns = _owns
    _backend.Backend.host_memory = property(_host_memory)
    _backend.Backend.spec = property(_spec)


def dtype_info(name):
    """The host-only ``DType`` record of a dtype name."""
    if hasattr(_backend, "dtype_info"):
        return _backend.dtype_info(name)
    host, itemsize = _HOST[name]
    return DType(name, None, np.dtype(host), itemsize, _MAX[name])


def get_backend(name=None, device=None, mesh=None):
    if name is None and mesh is not None:
        name = "jax"
    return _backend.get_backend(name, device, mesh)
