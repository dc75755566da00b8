"""The C allocator's thresholds: reuse freed memory for the next step's temporaries.

Every training step allocates its temporaries (activations, gradients; on JAX one buffer per
compiled call) and frees them. glibc's ``malloc`` serves blocks above its *mmap threshold*
(at most 32 MiB by default) with fresh ``mmap`` pages and returns them to the system on
``free``, so the next step touches new zero pages again: one page fault per 4 KiB. On the wide
workload (1024-2048-2048-10, batch 1024) that cost 10-20 % of a step on every backend (JAX: 112
against 98 ms per one-step dispatch; NumPy 190 against 170 ms; PyTorch 215 against 195 ms;
issue 18). Raising the mmap and trim thresholds keeps such blocks in the heap for reuse, as
jemalloc or tcmalloc would (which PyTorch's CPU performance guide recommends).

polynn sets them once, when it first loads an array library
(:func:`polynn.backend.namespaces.load_namespace`), for the whole process, on glibc only (Linux);
elsewhere nothing happens. The environment variable ``POLYNN_MALLOC`` set to ``0`` (or ``off``,
``false``, ``no``) leaves the allocator as it is. A threshold the user set with
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` is kept. The price: up to
``TRIM_THRESHOLD`` bytes of freed memory stay with the process instead of returning to the
system; blocks of ``MMAP_THRESHOLD`` or more are still mapped and unmapped as before.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

from polynn.backend.switches import switched_off

MALLOC_ENV = "POLYNN_MALLOC"
# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 256 * 2**20
TRIM_THRESHOLD = 512 * 2**20
_GLIBC_ENV = {M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_",
              M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_"}


def wanted_thresholds(environ=None) -> dict[int, int]:
    """The thresholds polynn would set here, by ``mallopt`` parameter.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default: ``os.environ``).

    Returns
    -------
    dict of int to int
        ``{M_MMAP_THRESHOLD: MMAP_THRESHOLD, M_TRIM_THRESHOLD: TRIM_THRESHOLD}`` less those the
        user set through glibc's own variables; empty on other systems or with
        ``POLYNN_MALLOC=0``.
    """
    environ = os.environ if environ is None else environ
    if switched_off(environ.get(MALLOC_ENV)) or not sys.platform.startswith("linux"):
        return {}
    return {parameter: value for parameter, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                      (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            if _GLIBC_ENV[parameter] not in environ}


@functools.cache
def tune_allocator() -> dict[int, int]:
    """Set :func:`wanted_thresholds` with glibc's ``mallopt``, once per process.

    Returns
    -------
    dict of int to int
        The thresholds set, by ``mallopt`` parameter (empty when none was: not glibc, turned
        off, or all set by the user).
    """
    wanted = wanted_thresholds()
    mallopt = _glibc_mallopt() if wanted else None
    if mallopt is None:
        return {}
    return {parameter: value for parameter, value in wanted.items()
            if mallopt(parameter, value) == 1}


def _glibc_mallopt():
    """glibc's ``mallopt``, or None (another C library: musl has no such thresholds)."""
    try:
        # The process's own symbols (libc among them): no search for the library, which
        # ctypes.util.find_library would do by running ldconfig at every start.
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
    except (OSError, AttributeError):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
