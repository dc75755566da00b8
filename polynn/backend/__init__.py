"""The only package that knows backends (array libraries), split by concern:

- :mod:`~polynn.backend.namespaces`: the libraries, importing them, why one cannot run here;
- :mod:`~polynn.backend.devices`: naming devices on every library, their picklable specs,
  :func:`backend_of` an array;
- :mod:`~polynn.backend.dtypes`: the :class:`DType` record (name, backend dtype, host storage,
  itemsize, range);
- :mod:`~polynn.backend.transfer`: host <-> device copies;
- :mod:`~polynn.backend.mesh`: JAX meshes and placement on them;
- :mod:`~polynn.backend.compiled`: compile, repeat, call, sync;
- :mod:`~polynn.backend.core`: the :class:`Backend` record and :func:`get_backend`.

Everything else in polynn talks to arrays through ``backend.xp`` and the names exported here.
"""

from __future__ import annotations

import sys
import types

from polynn.backend import dtypes as _dtypes
from polynn.backend import transfer as _transfer
from polynn.backend.core import Backend, available_backends, get_backend
from polynn.backend.devices import backend_of, device_spec
from polynn.backend.dtypes import DTYPES, DType, dtype_info
from polynn.backend.mesh import MESH_AXES, mesh_spec, resolve_mesh
from polynn.backend.namespaces import (  # noqa: F401
    BACKENDS,
    ENV_VAR,
    BackendUnavailableError,
    _namespace,
    default_backend_name,
)
from polynn.backend.transfer import to_host

# Until polynn.sklearn imports the public name.
_device_spec = device_spec

__all__ = [
    "BACKENDS", "DTYPES", "ENV_VAR", "MESH_AXES", "Backend", "BackendUnavailableError", "DType",
    "available_backends", "backend_of", "default_backend_name", "device_spec", "dtype_info",
    "get_backend", "mesh_spec", "resolve_mesh", "to_host",
]

# Private state that tests outside tests/test_backend.py patch on this package (written when
# it was one module): reads and writes go to the submodule that owns it, and deleting the name
# (pytest's monkeypatch undoing a patch) restores the owner's value from before the first
# write. Remove once those tests patch the submodules.
_FORWARDED = {
    "_x64_announced": _dtypes,
    "_PUT_CHUNK_BYTES": _transfer,
    "_jax_write_rows": _transfer,
}
_before_patch: dict = {}


class _Package(types.ModuleType):
    def __getattr__(self, name):
        if name in _FORWARDED:
            return getattr(_FORWARDED[name], name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name not in _FORWARDED:
            return super().__setattr__(name, value)
        _before_patch.setdefault(name, getattr(_FORWARDED[name], name))
        setattr(_FORWARDED[name], name, value)

    def __delattr__(self, name):
        if name not in _FORWARDED:
            return super().__delattr__(name)
        if name in _before_patch:
            setattr(_FORWARDED[name], name, _before_patch.pop(name))


sys.modules[__name__].__class__ = _Package
