"""The only module that knows backends.

A :class:`Backend` maps a name ("numpy", "jax", "cupy", "torch", "array_api_strict") to its
array namespace and device, moves arrays between the host (NumPy) and the device, and supplies
``compile`` (``jax.jit`` on JAX, identity elsewhere). Everything else in polynn talks to arrays
through ``backend.xp`` and the functions here.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = ("numpy", "jax", "cupy", "torch", "array_api_strict")
DTYPES = ("float32", "float64", "bfloat16")
_EXTRA = {
    "jax": "jax",
    "cupy": "cupy",
    "torch": "torch",
    "array_api_strict": "strict",
}
ENV_VAR = "POLYNN_BACKEND"


class BackendUnavailableError(ImportError):
    """A backend was asked for but cannot run here; the message says why and what to install."""


def default_backend_name() -> str:
    return os.environ.get(ENV_VAR) or "numpy"


@dataclass(frozen=True)
class Backend:
    """Hashable by (name, namespace, device): equal backends share compiled code."""

    name: str
    xp: Any  # the array namespace
    device: Any  # the namespace's own device object, or None for its default
    # JAX only: a jax.sharding.Mesh with Auto axes "data" (and optionally "model") to train on
    # many devices (see resolve_mesh); None for one device. Part of the hash: compiled code
    # differs per mesh.
    mesh: Any = None

    # -- arrays in and out -----------------------------------------------------------------------
    def dtype(self, name: str):
        """The namespace's dtype object for "float32", "float64" or "bfloat16"."""
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; choose one of {DTYPES}")
        if name == "float64" and self.name == "jax":
            _enable_jax_x64()
        if name == "bfloat16":
            if self.name not in ("jax", "torch"):
                raise ValueError(f"dtype 'bfloat16' is not supported by backend {self.name!r}")
            return self.xp.bfloat16
        return getattr(self.xp, name)

    def asarray(self, host, dtype=None, copy: bool = True):
        """Move a host array (anything NumPy accepts) to this backend's device, optionally cast.

        Casting happens on the host where NumPy has the dtype, so every backend receives the
        same bits. ``copy=True`` guarantees the result never shares memory with ``host``.
        With a mesh the result is replicated on every device of the mesh (a global array, so
        that it mixes with sharded data in one compiled step, in one process or many)."""
        host = np.asarray(host)
        cast = dtype is not None and dtype != "bfloat16"
        if self.mesh is not None:
            return self._global(host.astype(dtype, copy=False) if cast else host, (), dtype)
        if self.name == "jax":
            out = _jax_put(host, np.dtype(dtype) if cast else host.dtype, self.device)
        else:
            if cast:
                host = host.astype(dtype, copy=False)
            if self.name == "cupy":
                with self.device:
                    out = self.xp.asarray(host)
            elif self.name == "torch":
                out = self.xp.asarray(np.array(host, copy=copy), device=self.device)
            else:
                out = self.xp.asarray(host, device=self.device, copy=copy)
        if dtype == "bfloat16":
            out = self.xp.astype(out, self.dtype("bfloat16"))
        return out

    def to_host(self, x) -> np.ndarray:
        """A NumPy copy (or view, on CPU backends) of a backend array or Python scalar."""
        return to_host(x)

    # -- many devices (JAX mesh) -----------------------------------------------------------------
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
        if dtype is not None and dtype != "bfloat16":
            host = host.astype(dtype, copy=False)
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

    def call(self, fn, *args, static=None, **kwargs):
        """``fn(*args, **kwargs, **static)``; with a mesh, compiled (and cached per ``fn`` and
        hashable ``static`` options): eager array creation next to sharded arrays would ask for
        a sharded ``device`` that a small shape cannot take, and a compiled call lets XLA split
        the work. Without a mesh, a plain call."""
        static = static or {}
        if self.mesh is None:
            return fn(*args, **kwargs, **static)
        return _compiled_call(fn, tuple(sorted(static.items())))(*args, **kwargs)

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

        return place(params_t), (self.replicate(state[0]),) + tuple(
            place(tree) for tree in state[1:])

    def constrain_batch(self, x, axis: int = 0):
        """Inside a compiled step: ask XLA to split ``x``'s example ``axis`` over "data"
        (``with_sharding_constraint``). Without it a batch gathered from sharded data makes XLA
        replicate the whole step (it runs, matches, and is not parallel). Pads row counts that
        do not divide. Identity without a mesh."""
        if self.mesh is None:
            return x
        import jax

        spec = [None] * x.ndim
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
        if dtype == "bfloat16":
            out = self.xp.astype(out, self.dtype("bfloat16"))
        return out

    def _reshard(self, x, spec):
        import jax

        sharding = self.sharding(*spec)
        if getattr(x, "sharding", None) == sharding:
            return x
        return jax.device_put(x, sharding)

    # -- compiled execution ---------------------------------------------------------------------
    @property
    def jit(self) -> bool:
        """True where training steps are traced and compiled (JAX): arrays are immutable there
        and whole loops run as one compiled call."""
        return self.name == "jax"

    def compile(self, fn, **jit_options):
        """``jax.jit(fn)`` on JAX; ``fn`` itself on eager backends."""
        if self.name == "jax":
            import jax

            return jax.jit(fn, **jit_options)
        return fn

    def repeat(self, body, max_steps: int):
        """Build ``run(carry, start, n, *args, stop=None) -> (carry, outs, n_done)`` applying
        ``carry, out = body(carry, index, *args)`` for ``index = start .. start + n - 1``
        (``n <= max_steps``).

        ``out`` is a tuple of 0-d arrays; ``outs`` stacks them (length ``max_steps`` on JAX, of
        which the first ``n_done`` are valid; ``n_done`` elsewhere). On JAX the whole loop is one
        compiled ``lax.fori_loop`` with a dynamic start and trip count, so changing them never
        recompiles. Eager loops check ``stop()`` after every step and end early when it returns
        True; a compiled chunk cannot be stopped, so callers bound ``n`` by time."""
        if self.name == "jax":
            import jax
            from jax import lax

            def run_jax(carry, start, n, *args):
                shapes = jax.eval_shape(body, carry, start, *args)[1]
                buffers = tuple(self.xp.zeros((max_steps,), dtype=s.dtype) for s in shapes)

                def one(i, state):
                    carry, buffers = state
                    carry, out = body(carry, start + i, *args)
                    return carry, tuple(b.at[i].set(o) for b, o in zip(buffers, out))

                return lax.fori_loop(0, n, one, (carry, buffers))

            compiled = jax.jit(run_jax)

            def run(carry, start, n, *args, stop=None):
                carry, outs = compiled(carry, start, n, *args)
                return carry, outs, n

            run.compiled = compiled  # the jitted loop, for inspecting its HLO (tests)
            return run

        def run_eager(carry, start, n, *args, stop=None):
            outs = []
            for index in range(start, start + n):
                carry, out = body(carry, index, *args)
                outs.append(out)
                if stop is not None and stop():
                    break
            return carry, _stack(self.xp, outs), len(outs)

        return run_eager

    def sync(self, x):
        """Block until the device work producing ``x`` is done (for timing); returns x."""
        if self.name == "jax":
            import jax

            jax.block_until_ready(x)
        elif self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()
        elif self.name == "torch" and getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return x

    def __reduce__(self):
        # Modules, device objects and meshes do not pickle: rebuild from the name and specs.
        return get_backend, (self.name, _device_spec(self.name, self.device),
                             mesh_spec(self.mesh))

    @property
    def device_name(self) -> str:
        if self.mesh is not None:
            return "mesh(" + ", ".join(f"{k}={v}" for k, v in self.mesh.shape.items()) + ")"
        return str(self.device) if self.device is not None else "default"

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device_name!r})"


# Host data larger than this is cast to the target dtype and moved to a JAX device in chunks of
# about this size, so no whole cast copy of it exists on the host.
_PUT_CHUNK_BYTES = 64 << 20


def _jax_put(host: np.ndarray, dtype: np.dtype, device):
    """``host`` cast to ``dtype`` on the host and copied to a JAX device (``jax.device_put``,
    which copies once; ``jnp.asarray`` measured about twice the array in transient memory).
    A large array that needs a cast goes in chunks written into one device buffer in place."""
    import jax

    if host.dtype == dtype or host.ndim == 0 or host.nbytes <= _PUT_CHUNK_BYTES:
        return jax.device_put(host.astype(dtype, copy=False), device)
    rows = max(1, _PUT_CHUNK_BYTES // max(1, host[:1].nbytes))
    out = _jax_zeros(host.shape, dtype, device)
    for start in range(0, host.shape[0], rows):
        part = jax.device_put(host[start : start + rows].astype(dtype), device)
        out = _jax_write_rows(out, part, start)
    return out


def _jax_zeros(shape, dtype, device):
    import jax.numpy as jnp

    return jnp.zeros(shape, dtype, device=device)


@functools.cache
def _jax_row_writer():
    import jax
    from jax import lax

    # The buffer is donated: the update happens in place, never a second full-size buffer.
    return jax.jit(lambda out, part, start: lax.dynamic_update_slice_in_dim(out, part, start, 0),
                   donate_argnums=0)


def _jax_write_rows(out, part, start: int):
    return _jax_row_writer()(out, part, start)


def _stack(xp, outs):
    """Stack a list of tuples of 0-d arrays into a tuple of 1-d arrays."""
    if not outs:
        return ()
    return tuple(xp.stack(column) for column in zip(*outs))


def to_host(x) -> np.ndarray:
    """Copy any supported backend array (NumPy, CuPy, JAX, PyTorch, array-api-strict) to NumPy."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "torch":
        import torch

        x = x.detach().cpu()
        # NumPy has no bfloat16: widen it (exactly) to float32.
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    if module in ("jax", "jaxlib"):
        if not getattr(x, "is_fully_addressable", True):  # a global array of many processes
            if x.is_fully_replicated:
                return np.asarray(x.addressable_data(0))
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
    if module == "array_api_strict":
        return np.from_dlpack(x)
    return np.asarray(x)


def _unavailable(name: str, reason: str) -> BackendUnavailableError:
    extra = _EXTRA.get(name)
    hint = f" Install it with: pip install 'polynn[{extra}]'." if extra else ""
    return BackendUnavailableError(f"backend {name!r} is not available: {reason}.{hint}")


_x64_announced = False


def _enable_jax_x64() -> None:
    """float64 on JAX needs x64 mode, which is global: turn it on and say so, once."""
    global _x64_announced
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
        if not _x64_announced:
            warnings.warn(
                "dtype='float64' on JAX: enabled jax_enable_x64 for this process "
                "(JAX computes in float32 otherwise)",
                stacklevel=4,
            )
            _x64_announced = True


def _device_spec(name: str, device):
    """A picklable description of a backend's device that ``_device`` turns back into it."""
    if device is None:
        return None
    if name == "jax":
        return f"{device.platform}:{device.id}"
    if name == "cupy":
        return int(device.id)
    return str(device)


def _parse_index(device, default=0) -> int:
    """'gpu:1' / 'cuda:1' / 1 -> 1; 'gpu' / None -> default. ValueError for anything else
    ('gpu:x', 'gpu:-1', True)."""
    if device is None:
        return default
    if isinstance(device, bool) or not isinstance(device, (int, np.integer, str)):
        raise ValueError(f"device {device!r} is not a device name like 'gpu:0' or an index")
    if not isinstance(device, str):
        index = int(device)
    else:
        _, sep, text = device.partition(":")
        if not sep:
            return default
        if not text.isdigit():  # also refuses '-1' and ''
            raise ValueError(f"device {device!r}: the index after ':' must be a non-negative "
                             "integer")
        index = int(text)
    if index < 0:
        raise ValueError(f"device {device!r}: the index must be a non-negative integer")
    return index


def _devices_here(name: str, xp) -> list[str]:
    """The device names ``get_backend(name, device=...)`` accepts on this machine."""
    if name == "numpy":
        return ["cpu"]
    if name == "jax":
        import jax

        names = []
        for platform in ("cpu", "gpu", "tpu"):
            try:
                names += [f"{platform}:{i}" for i in range(len(jax.devices(platform)))]
            except RuntimeError:
                pass
        return names
    if name == "torch":
        import torch

        names = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        return names + (["mps"] if mps is not None and mps.is_available() else [])
    if name == "cupy":
        return [f"gpu:{i}" for i in range(xp.cuda.runtime.getDeviceCount())]
    if name == "array_api_strict":
        return [str(d).split("'")[1] for d in xp.__array_namespace_info__().devices()]
    raise AssertionError(name)


def _bad_device(name: str, xp, device, why: str = "") -> ValueError:
    valid = ", ".join(repr(d) for d in _devices_here(name, xp)) or "none"
    return ValueError(f"unknown device {device!r} for backend {name!r}{why}; devices here: "
                      f"{valid}")


def _platform(device) -> str | None:
    """'cuda:1' -> 'cuda'; an int index (or None) -> None."""
    return device.partition(":")[0].strip().lower() if isinstance(device, str) else None


# backend name -> (module to import, the library's name in messages)
_LIBRARIES = {
    "jax": ("jax.numpy", "JAX"),
    "torch": ("torch", "PyTorch"),
    "cupy": ("cupy", "CuPy"),
    "array_api_strict": ("array_api_strict", "array-api-strict"),
}


def _import(name: str):
    module, library = _LIBRARIES[name]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise _unavailable(name, f"{library} is not installed ({e})") from None


@functools.cache
def _namespace(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "numpy":
        import array_api_compat.numpy as xp

        return xp
    library = _import(name)
    if name == "torch":
        import array_api_compat.torch as xp

        return xp
    if name == "cupy":
        # CuPy imports on a machine without a GPU and fails at the first array.
        try:
            usable = library.cuda.is_available()
            reason = "cupy.cuda.is_available() is False (no NVIDIA GPU or CUDA driver)"
        except Exception as e:  # noqa: BLE001 - any CUDA runtime error means "not usable"
            usable, reason = False, f"no usable NVIDIA GPU ({type(e).__name__}: {e})"
        if not usable:
            raise _unavailable(name, reason)
        import array_api_compat.cupy as xp

        return xp
    return library  # jax.numpy and array_api_strict are array API namespaces themselves


def _device(name: str, xp, device):
    """The namespace's device object for a device spec, one rule on every backend: None (the
    default), a name "platform[:index]" ("cpu", "gpu:1", "cuda:0", ...), an int index of the
    accelerator, or the library's own device object. Anything unknown or out of range here is a
    ValueError naming the device and listing the devices this machine has."""
    if isinstance(device, bool):
        raise _bad_device(name, xp, device)
    try:
        index = _parse_index(device, None) if isinstance(device, (str, int, np.integer)) else None
    except ValueError as err:
        raise _bad_device(name, xp, device, f" ({err})") from None
    platform = _platform(device)
    if name == "numpy":
        if device is None or (platform == "cpu" and index in (None, 0)):
            return None
        raise _bad_device(name, xp, device, " (backend 'numpy' runs on 'cpu' only)")
    if name == "jax":
        import jax

        if device is not None and not isinstance(device, (str, int, np.integer)):
            if not isinstance(device, jax.Device):
                raise _bad_device(name, xp, device)
            return device
        if device is None:
            return None
        platform = {"cuda": "gpu", "rocm": "gpu", None: jax.default_backend()}.get(platform,
                                                                                   platform)
        if platform not in ("cpu", "gpu", "tpu"):
            raise _bad_device(name, xp, device)
        try:
            devices = jax.devices(platform)
        except RuntimeError:
            raise _bad_device(name, xp, device, f" (JAX has no {platform!r} device)") from None
        if (index or 0) >= len(devices):
            raise _bad_device(name, xp, device, f" (JAX has {len(devices)} {platform} device(s))")
        return devices[index or 0]
    if name == "torch":
        import torch

        if isinstance(device, torch.device):
            platform, index = device.type, device.index
        elif device is not None and not isinstance(device, (str, int, np.integer)):
            raise _bad_device(name, xp, device)
        if device is None:
            return torch.device("cpu")
        platform = "cuda" if platform is None else platform
        if platform == "cpu" and index in (None, 0):
            return torch.device("cpu")
        if platform == "cuda" and (index or 0) < torch.cuda.device_count():
            return torch.device("cuda" if index is None else f"cuda:{index}")
        mps = getattr(torch.backends, "mps", None)
        if platform == "mps" and index in (None, 0) and mps is not None and mps.is_available():
            return torch.device("mps")
        raise _bad_device(name, xp, device)
    if name == "cupy":
        import cupy

        if isinstance(device, cupy.cuda.Device):
            index, platform = device.id, None
        elif device is not None and not isinstance(device, (str, int, np.integer)):
            raise _bad_device(name, xp, device)
        count = cupy.cuda.runtime.getDeviceCount()
        if platform not in (None, "gpu", "cuda") or (index or 0) >= count:
            raise _bad_device(name, xp, device, f" (CuPy sees {count} GPU(s))")
        return cupy.cuda.Device(index or 0)
    if name == "array_api_strict":
        if device is None or isinstance(device, xp.Device):
            return device
        if isinstance(device, str) and device in _devices_here(name, xp):
            return xp.Device(device)
        raise _bad_device(name, xp, device)
    raise AssertionError(name)


def get_backend(name: str | Backend | None = None, device=None, mesh=None) -> Backend:
    """Resolve a backend by name (default: ``$POLYNN_BACKEND`` or "numpy"), device and, on JAX
    only, ``mesh`` (see :func:`resolve_mesh`; mutually exclusive with ``device``).

    Raises :class:`BackendUnavailableError` naming the backend, the reason and the extra to
    install when it cannot run here; ValueError for an unknown name, device or mesh."""
    if isinstance(name, Backend):
        if device is None and mesh is None:
            return name
        return get_backend(name.name, device, mesh)
    name = name or default_backend_name()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if mesh is not None:
        if name != "jax":
            raise ValueError(f"mesh= (many devices) needs backend='jax', not {name!r}")
        if device is not None:
            raise ValueError("give device= or mesh=, not both (the mesh names its devices)")
    xp = _namespace(name)
    return Backend(name, xp, _device(name, xp, device), resolve_mesh(mesh))


MESH_AXES = ("data", "model")


def resolve_mesh(mesh):
    """A ``jax.sharding.Mesh`` with ``AxisType.Auto`` axes ("data", and "model" when asked for)
    from ``mesh``:

    - None: None (one device);
    - an int N: the first N devices (``jax.devices()``, all processes) along "data";
    - "all": every device along "data";
    - a pair ``(data, model)`` or a dict ``{"data": d, "model": k}``: a d x k mesh;
    - a ``jax.sharding.Mesh`` whose axes are named "data" (and optionally "model"), however it
      was made: its devices are kept and its axes made Auto. (``jax.make_mesh`` defaults to
      Explicit axes, on which the backward matmul over a sharded batch raises
      ``ShardingTypeError``; Auto lets XLA insert the all-reduce.)

    Raises ValueError for a size that does not fit the devices, unknown axis names, or (with
    several processes) a mesh that leaves some process without devices."""
    if mesh is None:
        return None
    import jax

    try:
        from jax.sharding import AxisType, Mesh
    except ImportError:  # pragma: no cover - old JAX
        raise _unavailable("jax", f"mesh= needs JAX with jax.sharding.AxisType (this is "
                           f"{jax.__version__}; upgrade JAX)") from None
    if isinstance(mesh, Mesh):
        names = tuple(mesh.axis_names)
        if "data" not in names or not set(names) <= set(MESH_AXES):
            raise ValueError(f"a mesh for polynn needs an axis named 'data' (and optionally "
                             f"'model'); this one has axes {names}")
        devices = np.asarray(mesh.devices)
    else:
        shape = _mesh_shape(mesh)
        names = tuple(name for name, size in zip(MESH_AXES, shape) if name == "data" or size > 1)
        shape = shape[: len(names)]
        all_devices = jax.devices()
        wanted = int(np.prod(shape))
        if wanted > len(all_devices):
            raise ValueError(f"mesh={mesh!r} needs {wanted} devices but JAX has "
                             f"{len(all_devices)} ({all_devices[0].platform}); on a CPU, force "
                             f"more with JAX_NUM_CPU_DEVICES=N before JAX starts (polynn train "
                             f"--cpu-devices N)")
        devices = np.asarray(all_devices[:wanted], dtype=object).reshape(shape)
    processes = {d.process_index for d in devices.flat}
    if jax.process_count() > 1 and len(processes) != jax.process_count():
        raise ValueError(f"with {jax.process_count()} processes the mesh must include devices "
                         f"of every process (it has {len(processes)}); use mesh='all'")
    return Mesh(devices, names, axis_types=(AxisType.Auto,) * len(names))


def _mesh_shape(mesh) -> tuple[int, int]:
    import jax

    if isinstance(mesh, str):
        if mesh == "all":
            return (jax.device_count(), 1)
        data, sep, model = mesh.lower().partition("x")  # "4" or "2x2" (CLI spelling)
        if data.strip().isdigit() and (not sep or model.strip().isdigit()):
            return _mesh_shape((int(data), int(model) if sep else 1))
    elif isinstance(mesh, dict) and set(mesh) <= set(MESH_AXES) and "data" in mesh:
        return _mesh_shape((mesh["data"], mesh.get("model", 1)))
    elif isinstance(mesh, (int, np.integer)) and not isinstance(mesh, bool):
        return _mesh_shape((int(mesh), 1))
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2 and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in mesh):
        if min(mesh) < 1:
            raise ValueError(f"mesh sizes must be positive, got {tuple(mesh)}")
        return int(mesh[0]), int(mesh[1])
    raise ValueError(f"mesh must be a device count N, 'all', a (data, model) pair, "
                     f"{{'data': d, 'model': k}} or a jax.sharding.Mesh; got {mesh!r}")


def mesh_spec(mesh):
    """A picklable description of a mesh (its axis sizes), or None; ``resolve_mesh`` rebuilds
    it on the first devices of the process that unpickles it."""
    if mesh is None:
        return None
    return {name: int(size) for name, size in mesh.shape.items()}


@functools.lru_cache(maxsize=256)
def _compiled_call(fn, static):
    import jax

    return jax.jit(functools.partial(fn, **dict(static)))


def _is_jax(x) -> bool:
    return type(x).__module__.split(".")[0] in ("jax", "jaxlib")



def available_backends() -> dict[str, str | None]:
    """Every known backend mapped to None when usable here, or to the reason it is not."""
    status = {}
    for name in BACKENDS:
        try:
            get_backend(name)
            status[name] = None
        except BackendUnavailableError as e:
            status[name] = str(e)
    return status
