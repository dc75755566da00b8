"""Which libraries polynn knows, importing them, and why one cannot run here.

One backend name per library ("numpy", "jax", "cupy", "torch", "array_api_strict"); the
namespace of each is the array API namespace polynn computes with (array-api-compat's wrapper
for NumPy, PyTorch and CuPy; ``jax.numpy`` and ``array_api_strict`` themselves).
"""

from __future__ import annotations

import functools
import importlib
import os

import numpy as np

from polynn.backend.allocator import tune_allocator
from polynn.backend.cache import configure_jax_cache
from polynn.backend.kernels import register_faster_kernels

BACKENDS = ("numpy", "jax", "cupy", "torch", "array_api_strict")
ENV_VAR = "POLYNN_BACKEND"

# backend name -> the pip extra that installs it
_EXTRA = {
    "jax": "jax",
    "cupy": "cupy",
    "torch": "torch",
    "array_api_strict": "strict",
}

# backend name -> (module to import, the library's name in messages)
_LIBRARIES = {
    "jax": ("jax.numpy", "JAX"),
    "torch": ("torch", "PyTorch"),
    "cupy": ("cupy", "CuPy"),
    "array_api_strict": ("array_api_strict", "array-api-strict"),
}

# the top-level module of an array type -> the backend whose library made it
_MODULES = {
    "numpy": "numpy",
    "jax": "jax",
    "jaxlib": "jax",
    "cupy": "cupy",
    "torch": "torch",
    "array_api_strict": "array_api_strict",
}


class BackendUnavailableError(ImportError):
    """A backend was asked for but cannot run here; the message says why and what to install."""


def default_backend_name() -> str:
    """The backend used when none is named.

    Returns
    -------
    str
        ``$POLYNN_BACKEND`` when set and not empty, else ``"numpy"``.
    """
    return os.environ.get(ENV_VAR) or "numpy"


def library_of(x) -> str | None:
    """The backend name of the library that made the array ``x``.

    Returns
    -------
    str or None
        One of :data:`BACKENDS` ("numpy" for ``numpy.ndarray`` only, its subclasses such as
        memmaps included), or None for anything else (lists, scalars, other libraries).
    """
    if isinstance(x, np.ndarray):
        return "numpy"
    name = _MODULES.get(type(x).__module__.split(".")[0])
    return None if name in (None, "numpy") else name


def unavailable(name: str, reason: str) -> BackendUnavailableError:
    extra = _EXTRA.get(name)
    hint = f" Install it with: pip install 'polynn[{extra}]'." if extra else ""
    return BackendUnavailableError(f"backend {name!r} is not available: {reason}.{hint}")


def _import(name: str):
    module, library = _LIBRARIES[name]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise unavailable(name, f"{library} is not installed ({e})") from None


def _cupy_usable(library) -> None:
    """CuPy imports on a machine without a GPU and fails at the first array: refuse it here."""
    try:
        usable = library.cuda.is_available()
        reason = "cupy.cuda.is_available() is False (no NVIDIA GPU or CUDA driver)"
    except Exception as e:  # noqa: BLE001 - any CUDA runtime error means "not usable"
        usable, reason = False, f"no usable NVIDIA GPU ({type(e).__name__}: {e})"
    if not usable:
        raise unavailable("cupy", reason)


@functools.cache
def load_namespace(name: str):
    """The array namespace of backend ``name`` (cached; tests clear it to fake a missing
    library), with polynn's faster primitives for it registered (:mod:`polynn.nn.kernels`).
    Raises ValueError for an unknown name, BackendUnavailableError when the library is missing
    or unusable."""
    xp = _load_namespace(name)
    register_faster_kernels(name, xp)
    return xp


def _load_namespace(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    tune_allocator()  # temporaries reused across steps (POLYNN_MALLOC=0 leaves malloc alone)
    if name == "numpy":
        import array_api_compat.numpy as numpy_xp

        return numpy_xp
    library = _import(name)
    if name == "torch":
        import array_api_compat.torch as torch_xp

        return torch_xp
    if name == "cupy":
        _cupy_usable(library)
        import array_api_compat.cupy as cupy_xp

        return cupy_xp
    if name == "jax":  # compile once per machine (POLYNN_JAX_CACHE=0 turns it off)
        configure_jax_cache(importlib.import_module("jax"))
    return library  # jax.numpy and array_api_strict are array API namespaces themselves
