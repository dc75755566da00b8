"""The :class:`Backend` record and :func:`get_backend`, which resolves one from a name, a
device and (JAX) a mesh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.backend.compiled import Compiled
from polynn.backend.devices import device_object, device_spec
from polynn.backend.dtypes import DType, native_record, supports
from polynn.backend.mesh import MeshPlacement, mesh_spec, resolve_mesh
from polynn.backend.namespaces import (
    BACKENDS,
    BackendUnavailableError,
    default_backend_name,
    library_of,
    load_namespace,
)
from polynn.backend.transfer import to_device, to_host


@dataclass(frozen=True)
class Backend(MeshPlacement, Compiled):
    """A library's array namespace on one device (or a JAX mesh).

    Hashable by (name, namespace, device, mesh): equal backends share compiled code. Pickles
    as its :attr:`spec`. Made by :func:`get_backend`.

    Attributes
    ----------
    name : str
        "numpy", "jax", "cupy", "torch" or "array_api_strict".
    xp : module
        The array namespace.
    device : object or None
        The namespace's own device object, or None for its default.
    mesh : jax.sharding.Mesh or None
        JAX only: Auto axes "data" (and optionally "model") to train on many devices (see
        :func:`resolve_mesh`); None for one device. Part of the hash: compiled code differs
        per mesh.
    """

    name: str
    xp: Any  # the array namespace
    device: Any  # the namespace's own device object, or None for its default
    # JAX only: a jax.sharding.Mesh with Auto axes "data" (and optionally "model") to train on
    # many devices (see resolve_mesh); None for one device. Part of the hash: compiled code
    # differs per mesh.
    mesh: Any = None

    # -- dtypes ----------------------------------------------------------------------------------
    def dtype_record(self, name: str) -> DType:
        """The record of dtype ``name`` on this backend.

        Parameters
        ----------
        name : str
            "float32", "float64", "bfloat16" or "mixed_bfloat16".

        Returns
        -------
        DType
            With ``native`` the namespace's dtype object. Asking for float64 on JAX turns on
            ``jax_enable_x64`` (process-wide) and says so once.

        Raises
        ------
        ValueError
            For an unknown name, or a dtype this backend lacks (bfloat16 outside JAX and
            PyTorch).
        """
        return native_record(self.name, self.xp, name)

    def dtype(self, name: str) -> Any:
        """The namespace's dtype object (``dtype_record(name).native``).

        Parameters
        ----------
        name : str
            "float32", "float64" or "bfloat16".

        Returns
        -------
        object
            ``numpy.float32``, ``jnp.bfloat16``, ``torch.float64``, ...
        """
        return self.dtype_record(name).native

    def supports(self, dtype_name: str) -> bool:
        """Whether this backend computes in a dtype (imports nothing, turns on nothing).

        Parameters
        ----------
        dtype_name : str
            "float32", "float64", "bfloat16" or "mixed_bfloat16".

        Returns
        -------
        bool
        """
        return supports(self.name, dtype_name)

    # -- arrays in and out -----------------------------------------------------------------------
    def asarray(self, host: Any, dtype: str | None = None, copy: bool = True) -> Any:
        """Move a host array to this backend's device, optionally cast.

        Casting happens on the host where NumPy has the dtype, so every backend receives the
        same bits.

        Parameters
        ----------
        host : array-like
            Anything NumPy accepts.
        dtype : str, optional
            A dtype name ("float32", ...); None keeps the array's.
        copy : bool, default True
            The result never shares memory with ``host``.

        Returns
        -------
        array
            The backend's array; with a mesh, replicated on every device of the mesh (a
            global array, so that it mixes with sharded data in one compiled step, in one
            process or many).
        """
        return to_device(self, host, dtype, copy)

    def to_host(self, x: Any) -> np.ndarray:
        """A NumPy copy (or view, on CPU backends) of a backend array or Python scalar.

        Parameters
        ----------
        x : array or scalar
            Of any supported library.

        Returns
        -------
        numpy.ndarray
        """
        return to_host(x)

    # -- capabilities ----------------------------------------------------------------------------
    @property
    def host_memory(self) -> bool:
        """True when this backend's arrays live in host memory (NumPy, array-api-strict,
        PyTorch on the CPU): batches are best gathered from host data when used."""
        if self.name == "torch":
            return getattr(self.device, "type", "cpu") == "cpu"
        return self.name in ("numpy", "array_api_strict")

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend's library (on any of its devices).

        Parameters
        ----------
        x : object
            Anything.

        Returns
        -------
        bool
            Always False on NumPy (host data is not owned).
        """
        return self.name != "numpy" and library_of(x) == self.name

    @property
    def spec(self) -> tuple:
        """A picklable ``(name, device_spec, mesh_spec)``; ``get_backend(*spec)`` rebuilds an
        equal backend (the mesh on the first devices of the process that rebuilds it)."""
        return (self.name, device_spec(self.name, self.device), mesh_spec(self.mesh))

    def __reduce__(self):
        # Modules, device objects and meshes do not pickle: rebuild from the specs.
        return get_backend, self.spec

    @property
    def device_name(self) -> str:
        """The device in words: "default", "cpu", "cuda:0", "mesh(data=4)", ..."""
        if self.mesh is not None:
            return "mesh(" + ", ".join(f"{k}={v}" for k, v in self.mesh.shape.items()) + ")"
        return str(self.device) if self.device is not None else "default"

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device_name!r})"


def get_backend(name: str | Backend | None = None, device: Any = None,
                mesh: Any = None) -> Backend:
    """Resolve a backend by name, device and, on JAX only, ``mesh``.

    Parameters
    ----------
    name : {"numpy", "jax", "cupy", "torch", "array_api_strict"} or Backend, optional
        None means JAX when ``mesh`` is given (a mesh is a JAX concept), else
        ``$POLYNN_BACKEND`` or "numpy". A :class:`Backend` is returned as is, or moved to the
        given device or mesh.
    device : str or a backend's device object, optional
        A device spec such as "cpu", "gpu:0", "cuda:1" (see :mod:`polynn.backend.devices`).
    mesh : optional
        JAX only; excludes ``device`` (see :func:`resolve_mesh`).

    Returns
    -------
    Backend

    Raises
    ------
    BackendUnavailableError
        Naming the backend, the reason and the extra to install when it cannot run here.
    ValueError
        For an unknown name, device or mesh.
    """
    if isinstance(name, Backend):
        if device is None and mesh is None:
            return name
        return get_backend(name.name, device, mesh)
    if name is None and mesh is not None:
        name = "jax"
    name = name or default_backend_name()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if mesh is not None:
        if name != "jax":
            raise ValueError(f"mesh= (many devices) needs backend='jax', not {name!r}")
        if device is not None:
            raise ValueError("give device= or mesh=, not both (the mesh names its devices)")
    xp = load_namespace(name)
    return Backend(name, xp, device_object(name, xp, device), resolve_mesh(mesh))


def available_backends() -> dict[str, str | None]:
    """Every known backend and whether it runs here.

    Returns
    -------
    dict
        Backend name -> None when usable here, or the reason it is not (a str).
    """
    status: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            get_backend(name)
            status[name] = None
        except BackendUnavailableError as e:
            status[name] = str(e)
    return status
