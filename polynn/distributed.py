"""Several processes (hosts) training one model: a thin layer over ``jax.distributed``.

Every process runs the same program (JAX's multi-controller model)::

    import polynn as pn
    pn.distributed.initialize()            # before any other JAX call; auto-detects SLURM,
                                           # Open MPI, Kubernetes, Cloud TPU... or pass the
                                           # coordinator, process count and this process's id
    model = pn.MLP([784, 128, 10], backend="jax", mesh="all")
    X = pn.distributed.global_rows(X_local, model)   # each process passes only its own rows
    model.fit(X, y)                                  # (or every process passes the same X)
    if pn.distributed.is_main_process():
        model.save("model.safetensors")

Nothing here is home-made: collectives are the ones ``jax.jit`` inserts for the mesh (gloo on
CPU, NCCL on GPU), arrays are JAX global arrays.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids: Any = None,
               cpu_devices: int | None = None, initialization_timeout: int = 300,
               **options: Any) -> None:
    """Join this process to a JAX cluster (``jax.distributed.initialize``).

    Must run before any other JAX computation in the process (JAX's rule). Calling it again
    after success does nothing. With no arguments JAX detects the cluster (SLURM, Open MPI,
    Kubernetes, Cloud TPU, ...).

    Parameters
    ----------
    coordinator_address : str, optional
        "host:port" of process 0.
    num_processes : int, optional
        How many processes take part.
    process_id : int, optional
        This process's index, 0-based.
    local_device_ids : optional
        As ``jax.distributed.initialize`` takes them.
    cpu_devices : int, optional
        Force that many CPU devices in this process (``jax_num_cpu_devices``; for trying
        several devices on one machine).
    initialization_timeout : int, default 300
        Seconds to wait for the cluster.
    **options
        Passed to ``jax.distributed.initialize`` unchanged.

    Raises
    ------
    RuntimeError
        JAX already ran a computation in this process, or joining failed.
    ValueError
        ``process_id`` not in ``0..num_processes-1``.
    """
    import jax

    if jax.distributed.is_initialized():
        return
    if cpu_devices is not None:
        force_cpu_devices(cpu_devices)
    if num_processes is not None and process_id is not None and not (
            0 <= int(process_id) < int(num_processes)):
        raise ValueError(f"process_id must be in 0..num_processes-1, got process_id="
                         f"{process_id}, num_processes={num_processes}")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   local_device_ids=local_device_ids,
                                   initialization_timeout=initialization_timeout, **options)
    except RuntimeError as e:
        raise RuntimeError(f"polynn.distributed.initialize failed: {e}. It must be called "
                           f"before anything else uses JAX in this process (creating a model "
                           f"with backend='jax' does).") from e


def force_cpu_devices(n: int) -> None:
    """Make JAX's CPU platform expose ``n`` devices (like ``JAX_NUM_CPU_DEVICES=n``), to try a
    mesh on a laptop. Only possible before JAX starts its backends.

    Parameters
    ----------
    n : int >= 1
        The number of CPU devices.

    Raises
    ------
    RuntimeError
        JAX has already started with another number of devices.
    ValueError
        ``n`` < 1.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"cpu_devices must be a positive integer, got {n}")
    import jax
    from jax._src import xla_bridge  # the one public-less question: has JAX started?

    if xla_bridge.backends_are_initialized():
        configured = jax.config.jax_num_cpu_devices  # type: ignore[attr-defined]
        if configured == n or (n == 1 and configured in (-1, 1)):
            return
        raise RuntimeError(f"cannot force {n} CPU devices: JAX has already started (with "
                           f"{len(jax.devices('cpu'))}); do it first thing, or set "
                           f"JAX_NUM_CPU_DEVICES={n} in the environment")
    jax.config.update("jax_num_cpu_devices", n)


def _initialized() -> bool:
    # Without initialize() there is one process; asking JAX would start its backends, after
    # which initialize() can no longer run.
    if "jax" not in sys.modules:
        return False
    import jax

    return jax.distributed.is_initialized()


def process_index() -> int:
    """This process's index.

    Returns
    -------
    int
        0 on a single process (JAX is not started to ask).
    """
    if not _initialized():
        return 0
    import jax

    return jax.process_index()


def process_count() -> int:
    """How many processes share the computation.

    Returns
    -------
    int
        1 unless :func:`initialize` joined a cluster.
    """
    if not _initialized():
        return 1
    import jax

    return jax.process_count()


def is_main_process() -> bool:
    """Whether this is process 0: the one that prints, saves and plots.

    Returns
    -------
    bool
    """
    return process_index() == 0


def _mesh_of(mesh_or_model):
    mesh = getattr(mesh_or_model, "backend", mesh_or_model)
    mesh = getattr(mesh, "mesh", mesh)
    from jax.sharding import Mesh

    if not isinstance(mesh, Mesh):
        raise ValueError("need a model, backend or jax.sharding.Mesh with a 'data' axis, got "
                         f"{mesh_or_model!r}")
    return mesh


def global_rows(local: Any, mesh_or_model: Any, dtype: Any = None) -> Any:
    """A global array whose rows are the concatenation, in process order, of every process's
    ``local`` rows (``jax.make_array_from_process_local_data``), split over the mesh's "data"
    axis.

    Parameters
    ----------
    local : array-like, shape (m_local, ...)
        This process's rows; every process must pass the same shape.
    mesh_or_model : MLP, Backend or jax.sharding.Mesh
        Where the rows go (a model's dtype is used unless ``dtype`` is given).
    dtype : str or NumPy dtype, optional
        A model dtype name, or any NumPy dtype (labels: "int64", ...).

    Returns
    -------
    jax.Array, shape (m_local * process_count(), ...)

    Raises
    ------
    ValueError
        The global row count does not divide by the "data" axis size (JAX's rule for placed
        arrays), or ``mesh_or_model`` has no mesh.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from polynn.backend import DTYPES, dtype_info, resolve_mesh

    mesh = resolve_mesh(_mesh_of(mesh_or_model))
    local = np.asarray(local)
    if dtype is not None and dtype not in DTYPES:  # any NumPy dtype (labels: "int64", ...)
        local = local.astype(dtype, copy=False)
    else:
        # A model's record (a Backend's dtype_record is a method: no dtype of its own).
        record: Any = getattr(mesh_or_model, "dtype_record", None) if dtype is None else \
            dtype_info(dtype)
        if hasattr(record, "host") and record.host.itemsize == record.itemsize:
            # Cast on the host where it holds a model dtype itself; otherwise (bfloat16) the
            # rows are cast on the device when used, rounded once.
            local = local.astype(record.host, copy=False)
    data = int(mesh.shape["data"])
    m = local.shape[0] * jax.process_count()
    if m % data:
        raise ValueError(f"{jax.process_count()} processes x {local.shape[0]} local rows = {m} "
                         f"rows do not divide by the mesh's {data} 'data' devices; drop or add "
                         f"rows so that they do")
    spec = PartitionSpec("data", *([None] * (local.ndim - 1)))
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), local)


def gather(x: Any) -> np.ndarray:
    """A host NumPy copy of a (possibly global, many-process) array, the same on every process
    (``multihost_utils.process_allgather``).

    Parameters
    ----------
    x : array
        Any backend's array; NumPy input is returned as is.

    Returns
    -------
    numpy.ndarray
    """
    from polynn.backend import to_host

    return to_host(x)
