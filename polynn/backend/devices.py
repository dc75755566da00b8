"""Devices: one rule for naming them on every library, and a picklable spec of each.

A device is given as None (the library's default), a name "platform[:index]" ("cpu", "gpu:1",
"cuda:0", ...; array-api-strict's device names: "CPU_DEVICE", "device1", ...), an int index of
the accelerator, or the library's own device object. :func:`device_spec` turns a device object
back into a name this parser accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polynn.backend.namespaces import library_of


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


def _strict_name(device) -> str:
    """array-api-strict's device name ("CPU_DEVICE", "device1", ...) from its repr (the Device
    class has no public name attribute)."""
    return str(device).split("'")[1]


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
        return [_strict_name(d) for d in xp.__array_namespace_info__().devices()]
    raise AssertionError(name)


def _bad_device(name: str, xp, device, why: str = "") -> ValueError:
    valid = ", ".join(repr(d) for d in _devices_here(name, xp)) or "none"
    return ValueError(f"unknown device {device!r} for backend {name!r}{why}; devices here: "
                      f"{valid}")


def _platform(device) -> str | None:
    """'cuda:1' -> 'cuda'; an int index (or None) -> None."""
    return device.partition(":")[0].strip().lower() if isinstance(device, str) else None


def _numpy_device(xp, device, platform, index):
    if device is None or (platform == "cpu" and index in (None, 0)):
        return None
    raise _bad_device("numpy", xp, device, " (backend 'numpy' runs on 'cpu' only)")


def _jax_device(xp, device, platform, index):
    import jax

    if device is not None and not isinstance(device, (str, int, np.integer)):
        if not isinstance(device, jax.Device):
            raise _bad_device("jax", xp, device)
        return device
    if device is None:
        return None
    platform = {"cuda": "gpu", "rocm": "gpu", None: jax.default_backend()}.get(platform, platform)
    if platform not in ("cpu", "gpu", "tpu"):
        raise _bad_device("jax", xp, device)
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        raise _bad_device("jax", xp, device, f" (JAX has no {platform!r} device)") from None
    if (index or 0) >= len(devices):
        raise _bad_device("jax", xp, device, f" (JAX has {len(devices)} {platform} device(s))")
    return devices[index or 0]


def _torch_device(xp, device, platform, index):
    import torch

    if isinstance(device, torch.device):
        platform, index = device.type, device.index
    elif device is not None and not isinstance(device, (str, int, np.integer)):
        raise _bad_device("torch", xp, device)
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
    raise _bad_device("torch", xp, device)


def _cupy_device(xp, device, platform, index):
    import cupy

    if isinstance(device, cupy.cuda.Device):
        index, platform = device.id, None
    elif device is not None and not isinstance(device, (str, int, np.integer)):
        raise _bad_device("cupy", xp, device)
    count = cupy.cuda.runtime.getDeviceCount()
    if platform not in (None, "gpu", "cuda") or (index or 0) >= count:
        raise _bad_device("cupy", xp, device, f" (CuPy sees {count} GPU(s))")
    return cupy.cuda.Device(index or 0)


def _strict_device(xp, device, platform, index):
    if device is None or isinstance(device, xp.Device):
        return device
    if isinstance(device, str) and device in _devices_here("array_api_strict", xp):
        return xp.Device(device)
    raise _bad_device("array_api_strict", xp, device)


_PARSERS = {
    "numpy": _numpy_device,
    "jax": _jax_device,
    "torch": _torch_device,
    "cupy": _cupy_device,
    "array_api_strict": _strict_device,
}


def device_object(name: str, xp, device):
    """The namespace's device object for a device spec (see the module's docstring). Anything
    unknown or out of range here is a ValueError naming the device and listing the devices
    this machine has."""
    if isinstance(device, bool):
        raise _bad_device(name, xp, device)
    try:
        index = _parse_index(device, None) if isinstance(device, (str, int, np.integer)) else None
    except ValueError as err:
        raise _bad_device(name, xp, device, f" ({err})") from None
    return _PARSERS[name](xp, device, _platform(device), index)


def device_spec(name: str, device: Any) -> str | int | None:
    """A picklable description of backend ``name``'s ``device`` that ``get_backend(name,
    device=spec)`` turns back into it.

    Parameters
    ----------
    name : str
        The backend's name.
    device : object or None
        The namespace's device object (None: the default device).

    Returns
    -------
    str, int or None
        None for the default device; "platform:id" on JAX (e.g. "gpu:1"); the GPU index (int)
        on CuPy; the device's name on array-api-strict ("CPU_DEVICE", "device1"); ``str`` of
        the device elsewhere ("cpu", "cuda:0").
    """
    if device is None:
        return None
    if name == "jax":
        return f"{device.platform}:{device.id}"
    if name == "cupy":
        return int(device.id)
    if name == "array_api_strict":
        return _strict_name(device)
    return str(device)


def _array_device_spec(name: str, x):
    """The device spec of array ``x`` of backend ``name``; None for the default device or (JAX)
    an array spread over several devices."""
    if name == "jax":
        try:
            devices = x.devices()
        except Exception:  # noqa: BLE001 - a tracer inside jit has no devices
            return None
        return device_spec(name, next(iter(devices))) if len(devices) == 1 else None
    from array_api_compat import device as array_device

    return device_spec(name, array_device(x))


def backend_of(x: Any) -> tuple[str, str | int | None] | None:
    """The backend and device of an array of any supported library.

    Parameters
    ----------
    x : object
        An array (or anything else).

    Returns
    -------
    tuple or None
        ``(name, device_spec)`` that ``get_backend(name, device_spec)`` accepts: host NumPy
        data (``numpy.ndarray``, memmaps included) gives ``("numpy", None)``; a JAX, PyTorch,
        CuPy or array-api-strict array gives its backend name and :func:`device_spec` of its
        device (None for a JAX array spread over several devices). None for anything else.
    """
    name = library_of(x)
    if name is None:
        return None
    if name == "numpy":
        return ("numpy", None)
    return (name, _array_device_spec(name, x))
