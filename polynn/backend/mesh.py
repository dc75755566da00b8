"""JAX meshes: resolving one from a user's spelling, its picklable spec, and placing arrays on
it (rows split over the "data" axis, parameters replicated or split over "model").

The placement methods are mixed into :class:`polynn.backend.Backend`; each is the identity (or
a plain transfer) without a mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from polynn.backend.dtypes import cast_on_device, dtype_info
from polynn.backend.namespaces import unavailable

MESH_AXES = ("data", "model")


def resolve_mesh(mesh: Any) -> Any:
    """A ``jax.sharding.Mesh`` with ``AxisType.Auto`` axes ("data", and "model" when asked for).

    Parameters
    ----------
    mesh : None, int, "all", (data, model), dict or jax.sharding.Mesh
        None: None (one device); an int N: the first N devices (``jax.devices()``, all
        processes) along "data"; "all": every device along "data"; a pair ``(data, model)``
        or a dict ``{"data": d, "model": k}``: a d x k mesh; a ``jax.sharding.Mesh`` whose
        axes are named "data" (and optionally "model"), however it was made: its devices are
        kept and its axes made Auto (``jax.make_mesh`` defaults to Explicit axes, on which the
        backward matmul over a sharded batch raises ``ShardingTypeError``; Auto lets XLA
        insert the all-reduce).

    Returns
    -------
    jax.sharding.Mesh or None

    Raises
    ------
    ValueError
        A size that does not fit the devices, unknown axis names, or (with several
        processes) a mesh that leaves some process without devices.
    """
    if mesh is None:
        return None
    import jax

    try:
        from jax.sharding import AxisType, Mesh
    except ImportError:  # pragma: no cover - old JAX
        raise unavailable("jax", f"mesh= needs JAX with jax.sharding.AxisType (this is "
                           f"{jax.__version__}; upgrade JAX)") from None
    if isinstance(mesh, Mesh):
        names = tuple(mesh.axis_names)
        if "data" not in names or not set(names) <= set(MESH_AXES):
            raise ValueError(f"a mesh for polynn needs an axis named 'data' (and optionally "
                             f"'model'); this one has axes {names}")
        devices = np.asarray(mesh.devices)
    else:
        names, devices = _mesh_devices(mesh)
    processes = {d.process_index for d in devices.flat}
    if jax.process_count() > 1 and len(processes) != jax.process_count():
        raise ValueError(f"with {jax.process_count()} processes the mesh must include devices "
                         f"of every process (it has {len(processes)}); use mesh='all'")
    return Mesh(devices, names, axis_types=(AxisType.Auto,) * len(names))


def _mesh_devices(mesh):
    """(axis names, device array) for a mesh given by its sizes."""
    import jax

    shape = _mesh_shape(mesh)
    names = tuple(name for name, size in zip(MESH_AXES, shape) if name == "data" or size > 1)
    shape = shape[: len(names)]
    all_devices = jax.devices()
    # Each size is bounded before they are multiplied, and in Python ints: NumPy's int64
    # product made (2**32, 2**32) a mesh of 0 devices and (10**10, 10**10) a wrong count.
    for name, size in zip(names, shape):
        if size > len(all_devices):
            _too_few(f"mesh={_short(mesh)} needs {_short(size)} devices along {name!r}",
                     all_devices)
    wanted = shape[0] * (shape[1] if len(shape) > 1 else 1)
    if wanted > len(all_devices):
        _too_few(f"mesh={_short(mesh)} needs {wanted} devices", all_devices)
    return names, np.asarray(all_devices[:wanted], dtype=object).reshape(shape)


def _too_few(what: str, devices) -> None:
    raise ValueError(f"{what} but JAX has {len(devices)} ({devices[0].platform}); on a CPU, "
                     f"force more with JAX_NUM_CPU_DEVICES=N before JAX starts (polynn train "
                     f"--cpu-devices N)")


def _short(value) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4,300 digits has no repr
        return "a very large number"
    return text if len(text) <= 60 else text[:57] + "..."


def _mesh_shape(mesh) -> tuple[int, int]:
    import jax

    if isinstance(mesh, str):
        if mesh == "all":
            return (jax.device_count(), 1)
        data, sep, model = mesh.lower().partition("x")  # "4" or "2x2" (CLI spelling)
        if _digits(data) and (not sep or _digits(model)):
            return _mesh_shape((int(data), int(model) if sep else 1))
    elif isinstance(mesh, dict) and set(mesh) <= set(MESH_AXES) and "data" in mesh:
        return _mesh_shape((mesh["data"], mesh.get("model", 1)))
    elif isinstance(mesh, (int, np.integer)) and not isinstance(mesh, bool):
        return _mesh_shape((int(mesh), 1))
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2 and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in mesh):
        if min(mesh) < 1:
            raise ValueError(f"mesh sizes must be positive, got {_short(tuple(mesh))}")
        return int(mesh[0]), int(mesh[1])
    raise ValueError(f"mesh must be a device count N, 'all', a (data, model) pair, "
                     f"{{'data': d, 'model': k}} or a jax.sharding.Mesh; got {_short(mesh)}")


def _digits(text: str) -> bool:
    """ASCII digits only ("²" and "٣" are digits to ``str.isdigit`` but not to ``int``), at
    most 18 of them (an int64; no mesh is larger, and ``int`` refuses 4,300 digits with its own
    message)."""
    text = text.strip()
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()


def mesh_spec(mesh: Any) -> dict[str, int] | None:
    """A picklable description of a mesh, or None.

    Parameters
    ----------
    mesh : jax.sharding.Mesh or None
        A backend's mesh.

    Returns
    -------
    dict or None
        ``{axis name: size}``; :func:`resolve_mesh` rebuilds the mesh from it on the first
        devices of the process that unpickles it.
    """
    if mesh is None:
        return None
    return {name: int(size) for name, size in mesh.shape.items()}


def _is_jax(x) -> bool:
    return type(x).__module__.split(".")[0] in ("jax", "jaxlib")


class MeshPlacement:
    """Placement on a JAX mesh, mixed into :class:`~polynn.backend.Backend` (which supplies
    ``mesh``, ``xp``, ``dtype`` and ``asarray``)."""

    # Provided by Backend, which this mixin is part of (declared for the type checker).
    mesh: Any
    xp: Any
    asarray: Callable[..., Any]
    dtype: Callable[..., Any]


    @property
    def data_size(self) -> int:
        """Devices along the mesh's "data" axis (1 without a mesh)."""
        return 1 if self.mesh is None else int(self.mesh.shape["data"])

    @property
    def model_size(self) -> int:
        """Devices along the mesh's "model" axis (1 without one)."""
        return 1 if self.mesh is None else int(dict(self.mesh.shape).get("model", 1))

    def sharding(self, *spec):
        """``NamedSharding(mesh, P(*spec))``, e.g. ``sharding("data")`` for rows; needs a mesh."""
        from jax.sharding import NamedSharding, PartitionSpec

        if self.mesh is None:
            raise ValueError("this backend has no mesh (pass mesh= to use many devices)")
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def place_rows(self, x, dtype=None, axis: int = 0):
        """``x`` as an array whose ``axis`` (the example axis: 0 for row-major ``X (m, n)``,
        1 for the columns layout ``Xa (n_0 + 1, m)``) is split over the mesh's "data" axis.

        Without a mesh this is :meth:`asarray` (no copy where none is needed). JAX refuses to
        place a row count that does not divide by the data-axis size (``IndivisibleError``);
        such arrays are placed *replicated* instead (every device holds all rows) and a step
        that calls :meth:`constrain_batch` still splits the work: the constraint inside ``jit``
        pads. ``x`` may be host data (the same on every process) or a JAX array, including a
        global array from :func:`polynn.distributed.global_rows`."""
        if self.mesh is None:
            return self.asarray(x, dtype, copy=False) if not _is_jax(x) else x
        spec = self._row_spec(x.ndim, axis, x.shape[axis])
        if _is_jax(x):
            if dtype is not None and x.dtype != self.dtype(dtype):
                x = self.xp.astype(x, self.dtype(dtype))
            return self._reshard(x, spec)
        host = np.asarray(x)
        if dtype is not None:
            host = host.astype(dtype_info(dtype).host, copy=False)
        return self._global(host, spec, dtype)

    def replicate(self, tree):
        """Every array in a nested tuple/list ``tree`` replicated on the mesh (host or JAX
        arrays in; Python scalars and None pass through). Identity without a mesh."""
        if self.mesh is None:
            return tree
        if isinstance(tree, (tuple, list)):
            return type(tree)(self.replicate(leaf) for leaf in tree)
        if tree is None or isinstance(tree, (int, float)):
            return tree
        if _is_jax(tree):
            return self._reshard(tree, ())
        return self._global(np.asarray(tree), (), None)

    def place_training(self, carry):
        """Place a training carry ``(params_t, (t, *trees))`` in the columns layout (one ``Wb``
        ``(n_l, n_{l-1} + 1)`` per layer; optimizer trees shaped alike) on the mesh:
        replicated, except that with a "model" axis each hidden layer's ``Wb`` (and its
        optimizer buffers) is split along its units (axis 0) when they divide by the axis
        size (Megatron-style: XLA inserts the collectives). Identity without a mesh."""
        if self.mesh is None:
            return carry
        params_t, state = carry
        last = len(params_t) - 1
        specs = [("model", None) if self.model_size > 1 and layer < last
                 and Wb.shape[0] % self.model_size == 0 else () for layer, Wb in
                 enumerate(params_t)]

        def place(tree):
            return tuple(self._reshard(x, spec) if _is_jax(x) else self._global(
                np.asarray(x), spec, None) for x, spec in zip(tree, specs))

        rest = tuple(place(tree) for tree in state[1:])
        # A NamedTuple state keeps its type (its fields name the trees).
        state = (type(state)(self.replicate(state[0]), *rest) if hasattr(state, "_fields")
                 else (self.replicate(state[0]),) + rest)
        return place(params_t), state

    def constrain_batch(self, x, axis: int = 0):
        """Inside a compiled step: ask XLA to split ``x``'s example ``axis`` over "data"
        (``with_sharding_constraint``). Without it a batch gathered from sharded data makes XLA
        replicate the whole step (it runs, matches, and is not parallel). Pads row counts that
        do not divide. Identity without a mesh."""
        if self.mesh is None:
            return x
        import jax

        spec: list[str | None] = [None] * x.ndim
        spec[axis] = "data"
        return jax.lax.with_sharding_constraint(x, self.sharding(*spec))

    def _row_spec(self, ndim, axis, rows):
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of range for a {ndim}-D array")
        spec = [None] * ndim
        if rows % self.data_size == 0:
            spec[axis] = "data"
        return tuple(spec)

    def _global(self, host: np.ndarray, spec, dtype):
        """A global array from host data that every process holds in full."""
        import jax

        sharding = self.sharding(*spec)
        out = jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
        if dtype is not None and cast_on_device(dtype):
            out = self.xp.astype(out, self.dtype(dtype))
        return out

    def _reshard(self, x, spec):
        import jax

        sharding = self.sharding(*spec)
        if getattr(x, "sharding", None) == sharding:
            return x
        return jax.device_put(x, sharding)
