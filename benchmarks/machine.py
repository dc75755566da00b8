"""The machine a run is measured on: its description, thread setup, the matmul ceiling (measured in
the same run), a probe of BLAS threading, and which libraries can use a GPU."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import import_module
from itertools import product
from pathlib import Path

import numpy as np

from .helpers import best_s, host_dtype

HERE = Path(__file__).resolve().parent
LIBRARIES = ("numpy", "jax", "jaxlib", "torch", "sklearn", "cupy", "array_api_compat", "polynn")


def _first(path: str, prefix: str, default=None) -> str | None:
    """The value of the first line of ``path`` that starts with ``prefix``."""
    try:
        with open(path) as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith(prefix)), default)
    except OSError:
        return default


def _try(fn, default=None):
    """``fn()``, or ``default`` (else "unavailable (Error)") if it raises."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (a missing library, no git, ...)
        return default if default is not None else f"unavailable ({type(e).__name__})"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, text=True,
                          timeout=10).stdout.strip()  # fmt: skip


def describe() -> dict:
    """CPU, cores, memory, load, library versions, BLAS, commit, JAX devices, torch threads."""
    mem_kb = _first("/proc/meminfo", "MemTotal:")
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name", platform.processor() or "unknown"),
        "cpu_count": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        "mem_total_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {m: _try(lambda m=m: getattr(import_module(m), "__version__", "?"))
                     for m in LIBRARIES},  # fmt: skip
        "blas": _try(lambda: "; ".join(
            f"{d.get('internal_api')} {d.get('version')} ({d.get('threading_layer', '')}, "
            f"{d.get('num_threads')} threads)" for d in import_module("threadpoolctl")
            .threadpool_info()), "?"),  # fmt: skip
        "git_commit": _try(lambda: _git("rev-parse", "--short", "HEAD") + (" (working tree has "
                           "uncommitted changes)" if _git("status", "--porcelain") else ""), "?"),
        "torch_threads": _try(lambda: import_module("torch").get_num_threads(), "?"),
        "jax_devices": _try(lambda: [str(d) for d in import_module("jax").devices()], "?"),
    }


_LIMITS = []  # threadpoolctl's limiter lives as long as the run


def limit_threads(n: int, log) -> str:
    """Cap every library at ``n`` threads; runs before JAX is imported (XLA reads flags once)."""
    xla = "--xla_cpu_multi_thread_eigen=false"
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla).strip()

    def blas():
        import_module("sklearn.neural_network")  # load its BLAS before limiting
        _LIMITS.append(import_module("threadpoolctl").threadpool_limits(limits=n))
        return f"threadpoolctl limits={n} (BLAS and OpenMP)"

    torch = lambda: import_module("torch").set_num_threads(n) or f"torch.set_num_threads({n})"  # noqa: E731
    done = "; ".join([f"XLA_FLAGS={xla}" if n == 1 else "JAX: default (no simple N-thread cap)",
                      _try(torch, "torch unavailable"), _try(blas, "threadpoolctl failed")])
    log(f"threads capped at {n}: {done}")
    return done


def matmul_gflops(lib: str, dtype: str, n: int, rounds: int, device: str = "cpu") -> float:
    """Best-of-``rounds`` GFLOP/s (2 n^3 / s) of an n x n product: numpy, jax, torch or cupy."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32 if dtype == "bfloat16" else
                                                host_dtype(dtype)) for _ in "ab")  # fmt: skip
    if lib in ("numpy", "cupy") and dtype == "bfloat16":
        raise ValueError(f"{lib} has no bfloat16 matmul")
    if lib in ("numpy", "cupy"):
        xp = np if lib == "numpy" else import_module("cupy")
        sync = (lambda: None) if lib == "numpy" else xp.cuda.Device().synchronize
        A, B = xp.asarray(a), xp.asarray(b)
        C = xp.empty_like(A)
        fn = lambda: (xp.matmul(A, B, out=C), sync())  # noqa: E731
    elif lib == "jax":
        import jax

        A, B = (jax.device_put(jax.numpy.asarray(m, dtype=dtype), jax.devices(device)[0])
                for m in (a, b))  # fmt: skip
        mm = jax.jit(jax.numpy.matmul)
        fn = lambda: mm(A, B).block_until_ready()  # noqa: E731
    elif lib == "torch":
        import torch

        tdev = torch.device("cuda" if device != "cpu" else "cpu")
        A, B = (torch.from_numpy(m).to(device=tdev, dtype=getattr(torch, dtype)) for m in (a, b))
        C = torch.empty_like(A)
        sync = torch.cuda.synchronize if tdev.type == "cuda" else (lambda: None)
        fn = lambda: (torch.mm(A, B, out=C), sync())  # noqa: E731
    else:
        raise ValueError(lib)
    return 2.0 * n**3 / best_s(fn, rounds) / 1e9


def measure_ceilings(libs, dtypes, n: int, rounds: int, device: str = "cpu", log=print) -> dict:
    """{"n", "rounds", "device", "by_lib": {dtype: {lib: GFLOP/s or "error: ..."}},
    "ceiling": {dtype: the best}}."""
    by_lib: dict[str, dict] = {d: {} for d in dtypes}
    for dtype, lib in product(dtypes, libs):
        try:
            v = matmul_gflops(lib, dtype, n, rounds, device)
        except Exception as e:  # noqa: BLE001
            v = f"error: {type(e).__name__}: {e}"
        by_lib[dtype][lib] = v
        log(f"  ceiling {device} {dtype:9s} {lib:6s} n={n}: "
            + (f"{v:8.1f} GFLOP/s" if isinstance(v, float) else v))  # fmt: skip
    best = {d: [v for v in got.values() if isinstance(v, float)] for d, got in by_lib.items()}
    ceiling = {d: max(vs) for d, vs in best.items() if vs}
    return {"n": n, "rounds": rounds, "device": device, "by_lib": by_lib, "ceiling": ceiling}


def thread_probe(reps: int = 50) -> dict:
    """The MNIST-shaped forward product (256x784 @ 784x256, float32) with the default BLAS threads
    and with one: on an oversubscribed machine (other processes busy on the same cores),
    multithreaded BLAS can be many times slower than one thread on such small products."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((256, 784), (784, 256)))
    c = np.empty((256, 256), np.float32)
    out = {"shape": "256x784 @ 784x256 float32", "reps": reps}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return {**out, "error": "threadpoolctl not installed"}

    def us(limit) -> float:
        with threadpool_limits(limits=limit):
            return 1e6 * best_s(lambda: [np.matmul(a, b, out=c) for _ in range(reps)], 3) / reps

    best = {label: us(limit) for label, limit in (("default", None), ("1 thread", 1),
                                                  ("default again", None))}  # fmt: skip
    return {**out, "us_per_matmul": best,
            "default_over_1thread": min(best["default"], best["default again"]) / best["1 thread"]}


def gpu_probe() -> tuple[dict[str, str], list[str]]:
    """({library: its GPU devices} for each library that can use a GPU, [why not, per library])."""

    def cupy():
        cp = import_module("cupy")
        if not (cp.cuda.runtime.getDeviceCount() > 0 and cp.cuda.is_available()):
            raise RuntimeError("no CUDA device")
        cp.zeros(1).sum().item()  # the first array is where a broken install fails
        return f"{cp.cuda.runtime.getDeviceCount()} CUDA device(s)"

    def torch():
        if not (t := import_module("torch")).cuda.is_available():
            raise RuntimeError(f"torch {t.__version__}: CUDA not available")
        return t.cuda.get_device_name(0)

    jax = lambda: ", ".join(str(d) for d in import_module("jax").devices("gpu"))  # noqa: E731
    usable, reasons = {}, []
    for lib, probe in (("cupy", cupy), ("jax", jax), ("torch", torch)):
        try:
            usable[lib] = probe()
        except Exception as e:  # noqa: BLE001
            reasons.append(f"{lib}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:120]}")
    return usable, reasons
