"""The matmul ceiling, measured in the same run: best of several rounds of an n x n by n x n
product.

GFLOP/s = 2 n^3 / seconds. The ceiling of a dtype is the best over the libraries that ran; every
polynn figure is also reported as a fraction of the ceiling of its dtype.
"""

from __future__ import annotations

import time

import numpy as np

from .common import host_dtype


def _best(fn, rounds: int) -> float:
    fn()  # warm-up (compile, first touch)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_gflops(lib: str, dtype: str, n: int, rounds: int = 3, device: str = "cpu") -> float:
    """Best-of-``rounds`` GFLOP/s of one n x n matmul with ``lib`` (numpy, jax, torch, cupy)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32 if dtype == "bfloat16" else host_dtype(dtype))
    b = rng.standard_normal((n, n)).astype(a.dtype)
    if lib == "numpy":
        if dtype == "bfloat16":
            raise ValueError("numpy has no bfloat16 matmul")
        c = np.empty_like(a)

        def fn():
            np.matmul(a, b, out=c)

    elif lib == "jax":
        import jax
        import jax.numpy as jnp

        dev = jax.devices("gpu" if device != "cpu" else "cpu")[0]
        A = jax.device_put(jnp.asarray(a, dtype=getattr(jnp, dtype)), dev)
        B = jax.device_put(jnp.asarray(b, dtype=getattr(jnp, dtype)), dev)
        mm = jax.jit(jnp.matmul)

        def fn():
            mm(A, B).block_until_ready()

    elif lib == "torch":
        import torch

        tdev = torch.device("cuda" if device != "cpu" else "cpu")
        A = torch.from_numpy(a).to(device=tdev, dtype=getattr(torch, dtype))
        B = torch.from_numpy(b).to(device=tdev, dtype=getattr(torch, dtype))
        C = torch.empty_like(A)

        def fn():
            torch.mm(A, B, out=C)
            if tdev.type == "cuda":
                torch.cuda.synchronize()

    elif lib == "cupy":
        import cupy

        if dtype == "bfloat16":
            raise ValueError("cupy has no bfloat16")
        A, B = cupy.asarray(a), cupy.asarray(b)
        C = cupy.empty_like(A)

        def fn():
            cupy.matmul(A, B, out=C)
            cupy.cuda.Device().synchronize()

    else:
        raise ValueError(lib)
    secs = _best(fn, rounds)
    return 2.0 * n**3 / secs / 1e9


def measure_ceilings(libs, dtypes, n: int, rounds: int, device: str = "cpu", log=print) -> dict:
    """{"n": n, "by_lib": {dtype: {lib: GFLOP/s or "error: ..."}}, "ceiling": {dtype: best}}."""
    by_lib: dict[str, dict[str, object]] = {}
    ceiling: dict[str, float] = {}
    for dtype in dtypes:
        by_lib[dtype] = {}
        for lib in libs:
            try:
                g = matmul_gflops(lib, dtype, n, rounds, device)
                by_lib[dtype][lib] = g
                log(f"  ceiling {device} {dtype:9s} {lib:6s} n={n}: {g:8.1f} GFLOP/s")
            except Exception as e:  # noqa: BLE001
                by_lib[dtype][lib] = f"error: {type(e).__name__}: {e}"
                log(f"  ceiling {device} {dtype:9s} {lib:6s}: {by_lib[dtype][lib]}")
        vals = [v for v in by_lib[dtype].values() if isinstance(v, float)]
        if vals:
            ceiling[dtype] = max(vals)
    return {"n": n, "rounds": rounds, "device": device, "by_lib": by_lib, "ceiling": ceiling}


def thread_probe(reps: int = 200) -> dict:
    """Small-matmul check of BLAS threading on this machine right now: the MNIST-shaped forward
    product (256x784 @ 784x256, float32) with the default BLAS threads and with one thread.

    On an oversubscribed machine (other processes busy on the same cores) multithreaded BLAS and
    OpenMP can be many times slower than one thread on such small products; this records it.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 784)).astype(np.float32)
    b = rng.standard_normal((784, 256)).astype(np.float32)
    c = np.empty((256, 256), np.float32)

    def run():
        for _ in range(reps):
            np.matmul(a, b, out=c)

    out = {"shape": "256x784 @ 784x256 float32", "reps": reps}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        out["error"] = "threadpoolctl not installed"
        return out
    out["default_threads"] = (
        max((d.get("num_threads") or 1) for d in threadpool_info()) if threadpool_info() else None
    )
    best = {}
    for label, limit in (("default", None), ("1 thread", 1), ("default again", None)):
        with threadpool_limits(limits=limit):
            run()
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                run()
                ts.append(time.perf_counter() - t0)
        best[label] = 1e6 * min(ts) / reps
    out["us_per_matmul"] = best
    out["default_over_1thread"] = min(best["default"], best["default again"]) / best["1 thread"]
    return out
