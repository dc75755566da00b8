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
        same bits. ``copy=True`` guarantees the result never shares memory with ``host``."""
        host = np.asarray(host)
        if dtype is not None and dtype != "bfloat16":
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
        # Modules and device objects do not pickle: rebuild from the name and a device spec.
        return get_backend, (self.name, _device_spec(self.name, self.device))

    @property
    def device_name(self) -> str:
        return str(self.device) if self.device is not None else "default"

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device_name!r})"


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


def get_backend(name: str | Backend | None = None, device=None) -> Backend:
    """Resolve a backend by name (default: ``$POLYNN_BACKEND`` or "numpy") and device.

    Raises :class:`BackendUnavailableError` naming the backend, the reason and the extra to
    install when it cannot run here; ValueError for an unknown name or device."""
    if isinstance(name, Backend):
        return name if device is None else get_backend(name.name, device)
    name = name or default_backend_name()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    xp = _namespace(name)
    return Backend(name, xp, _device(name, xp, device))


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
