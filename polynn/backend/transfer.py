"""Host <-> device transfers: a backend array to NumPy, host data to a backend's device (cast
on the host so every backend receives the same bits), and JAX's chunked cast-and-put for large
arrays.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from polynn.backend.dtypes import DTYPES, cast_on_device, dtype_info

# Host data larger than this is cast to the target dtype and moved to a JAX device in chunks of
# about this size, so no whole cast copy of it exists on the host.
_PUT_CHUNK_BYTES = 64 << 20


def to_host(x: Any) -> np.ndarray:
    """Copy any supported backend array (NumPy, CuPy, JAX, PyTorch, array-api-strict) to NumPy.

    Parameters
    ----------
    x : array or Python scalar
        Of any supported library.

    Returns
    -------
    numpy.ndarray
        ``x`` itself for a NumPy array; a copy (or a view, on CPU backends) otherwise. bfloat16
        data comes back in its host storage dtype, float32 (exact: NumPy has no bfloat16).
    """
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
        return _jax_to_host(x)
    if module == "array_api_strict":
        return np.from_dlpack(x)
    return np.asarray(x)


def _jax_to_host(x) -> np.ndarray:
    if not getattr(x, "is_fully_addressable", True):  # a global array of many processes
        if x.is_fully_replicated:
            out = np.asarray(x.addressable_data(0))
        else:
            from jax.experimental import multihost_utils

            out = np.asarray(multihost_utils.process_allgather(x, tiled=True))
    else:
        out = np.asarray(x)
    # JAX hands bfloat16 over as ml_dtypes' bfloat16: widen it (exactly) to its host storage,
    # float32, as on PyTorch.
    return out.astype(np.float32) if out.dtype.name == "bfloat16" else out


def _casts(backend, dtype):
    """(NumPy dtype to cast to on the host or None, backend dtype to cast to on the device or
    None) for a dtype name. Data always goes through the dtype's host storage: bfloat16 is
    cast to float32 on the host, then to bfloat16 on the device, on every backend (one
    rounding path: the bits never depend on the library or on JAX's process-wide x64 flag).
    Asks for no native float64 (which would turn on JAX's x64)."""
    if dtype is None:
        return None, None
    if dtype not in DTYPES:
        return np.dtype(dtype), None
    on_device = backend.dtype_record(dtype).native if cast_on_device(dtype) else None
    return dtype_info(dtype).host, on_device


def to_device(backend, host, dtype=None, copy: bool = True):
    """``host`` (anything NumPy accepts) on ``backend``'s device, in dtype ``dtype`` (a name or
    None: keep the data's dtype); see :meth:`polynn.backend.Backend.asarray`."""
    host = np.asarray(host)
    on_host, on_device = _casts(backend, dtype)
    if backend.mesh is not None:
        host = host.astype(on_host, copy=False) if on_host is not None else host
        return backend._global(host, (), dtype)
    if backend.name == "jax":
        out = _jax_put(host, on_host if on_host is not None else host.dtype, backend.device)
    else:
        if on_host is not None:
            host = host.astype(on_host, copy=False)
        if backend.name == "cupy":
            with backend.device:
                out = backend.xp.asarray(host)
        elif backend.name == "torch":
            out = backend.xp.asarray(np.array(host, copy=copy), device=backend.device)
        else:
            out = backend.xp.asarray(host, device=backend.device, copy=copy)
    if on_device is not None:
        out = backend.xp.astype(out, on_device)
    return out


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
