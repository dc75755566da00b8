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

from polynn.backend.core import Backend, available_backends, get_backend
from polynn.backend.devices import backend_of, device_spec
from polynn.backend.dtypes import DTYPES, DType, dtype_info
from polynn.backend.mesh import MESH_AXES, mesh_spec, resolve_mesh
from polynn.backend.namespaces import (
    BACKENDS,
    ENV_VAR,
    BackendUnavailableError,
    default_backend_name,
)
from polynn.backend.transfer import to_host

__all__ = [
    "BACKENDS", "DTYPES", "ENV_VAR", "MESH_AXES", "Backend", "BackendUnavailableError", "DType",
    "available_backends", "backend_of", "default_backend_name", "device_spec", "dtype_info",
    "get_backend", "mesh_spec", "resolve_mesh", "to_host",
]
