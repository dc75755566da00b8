"""Shared pieces of the benchmark: data, initial weights, the loss referee, timing, memory.

Every contestant trains the same MLP (ReLU hidden layers, softmax + cross-entropy output, L2 on the
weights only) from the same initial weights on the same data:

    loss = mean_i CE(softmax(Z_L[i]), y[i]) + 0.5 * l2 * sum_l ||W_l||^2
    Z_l = A_{l-1} @ W_l + b_l,   W_l: (n_in, n_out),   b_l: (n_out,)

The initial weights are He draws ``W ~ N(0, 2/n_in)``, ``b = 0`` made on the host with
``numpy.random.default_rng(seed)`` in float64, layer by layer, then cast to the contestant's dtype.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]

# ---------------------------------------------------------------------------------------------
# data


def spiral(
    seed: int = 0, n_per_class: int = 100, n_classes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The reference program's 3-class spiral: X (n_classes*n_per_class, 2) float64, y int64.

    For class j: r = linspace(0, 1, n), t = linspace(4j, 4(j+1), n) + 0.2 * randn,
    X = [r sin t, r cos t].
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * n_classes, 2))
    y = np.zeros(n_per_class * n_classes, dtype=np.int64)
    for j in range(n_classes):
        ix = slice(n_per_class * j, n_per_class * (j + 1))
        r = np.linspace(0.0, 1.0, n_per_class)
        t = (
            np.linspace(4.0 * j, 4.0 * (j + 1), n_per_class)
            + rng.standard_normal(n_per_class) * 0.2
        )
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def random_classification(
    seed: int,
    n: int,
    n_features: int,
    n_classes: int,
    dtype: str = "float32",
    kind: str = "uniform",
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random data of a given shape: X uniform in [0, 1) (pixel-like) or standard normal."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        X = rng.random((n, n_features), dtype=np.float32 if dtype == "float32" else np.float64)
    else:
        X = rng.standard_normal(
            (n, n_features), dtype=np.float32 if dtype == "float32" else np.float64
        )
    y = rng.integers(0, n_classes, size=n, dtype=np.int64)
    return X.astype(dtype, copy=False), y


# ---------------------------------------------------------------------------------------------
# parameters


def he_init(sizes: Sequence[int], seed: int = 0) -> Params:
    """He init on the host in float64: per layer W ~ N(0, 2/n_in) of shape (n_in, n_out), b = 0."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        params.append((W, np.zeros(n_out)))
    return params


def cast_params(params: Params, dtype: str) -> Params:
    """Fresh host copies of ``params`` in ``dtype`` (bfloat16 goes through ml_dtypes)."""
    dt = host_dtype(dtype)
    return [(np.array(W, dtype=dt), np.array(b, dtype=dt)) for W, b in params]


def host_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def to_host(a) -> np.ndarray:
    """Any backend array (NumPy, JAX, PyTorch, CuPy) as a float64 NumPy array."""
    mod = type(a).__module__
    if mod.startswith("torch"):
        a = (
            a.detach().float().cpu().numpy()
            if str(a.dtype) == "torch.bfloat16"
            else a.detach().cpu().numpy()
        )
    elif mod.startswith("cupy"):
        a = a.get()
    return np.asarray(a).astype(np.float64)


def params_to_host(params) -> Params:
    return [(to_host(W), to_host(b)) for W, b in params]


def block(tree) -> None:
    """Wait until every array in ``tree`` (nested tuples/lists) is computed, any library."""
    leaves = []
    stack = [tree]
    while stack:
        t = stack.pop()
        if isinstance(t, (list, tuple)):
            stack.extend(t)
        else:
            leaves.append(t)
    mods = {type(a).__module__.split(".")[0] for a in leaves}
    if mods & {"jax", "jaxlib"}:
        import jax

        jax.block_until_ready(leaves)
    if "torch" in mods:
        import torch

        if any(getattr(a, "is_cuda", False) for a in leaves):
            torch.cuda.synchronize()
    if "cupy" in mods:
        import cupy

        cupy.cuda.Device().synchronize()


def flops_per_step(sizes: Sequence[int], batch: int) -> float:
    """6 * batch * sum(n_in * n_out): 2 for the forward matmul, 4 for the two backward ones."""
    return 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def eval_loss(params: Params, X: np.ndarray, y: np.ndarray, l2: float, chunk: int = 8192) -> float:
    """The referee: the regularised loss of ``params`` on (X, y); float64 NumPy, log-sum-exp."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        A = np.asarray(X[s : s + chunk], np.float64)
        for W, b in params[:-1]:
            A = np.maximum(A @ W + b, 0.0)
        W, b = params[-1]
        Z = A @ W + b
        zmax = Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z - zmax).sum(axis=1)) + zmax[:, 0]
        yy = y[s : s + chunk]
        total += float(np.sum(lse - Z[np.arange(Z.shape[0]), yy]))
    reg = 0.5 * l2 * sum(float(np.sum(W * W)) for W, _ in params)
    return total / X.shape[0] + reg


# ---------------------------------------------------------------------------------------------
# contestants


class Unavailable(RuntimeError):
    """A contestant that cannot run here (missing library, no GPU, ...): the reason is reported."""


class Contestant:
    """One way of training the MLP. Subclasses implement every method; all of them synchronise.

    ``load`` sets the parameters from host float64 arrays (cast to ``dtype``); ``set_data`` places
    X, y (untimed); ``steps(n)`` runs n full-batch SGD steps on the placed data; ``epoch(bs)`` runs
    one pass over the placed data in order, in batches of ``bs`` rows, the last one smaller (kept).
    """

    name = "?"
    family = "peer"  # or "polynn"
    jit = False  # True when the first call compiles (its warm-up is then timed separately)

    def __init__(
        self, sizes: Sequence[int], dtype: str, *, lr: float, l2: float, device: str = "cpu"
    ):
        self.sizes = list(sizes)
        self.dtype = dtype
        self.lr = lr
        self.l2 = l2
        self.device = device

    def load(self, params: Params) -> None:
        raise NotImplementedError

    def set_data(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def steps(self, n: int) -> None:
        raise NotImplementedError

    def epoch(self, batch_size: int) -> None:
        raise NotImplementedError

    def get_params(self) -> Params:
        raise NotImplementedError

    def notes(self) -> str:
        return ""


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """In-order batches of ``batch_size`` rows; the remainder (if any) is the last, smaller one."""
    return [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


# ---------------------------------------------------------------------------------------------
# timing


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call (the contestants synchronise before returning)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


# ---------------------------------------------------------------------------------------------
# memory (Linux /proc; every figure is of this process)


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def peak_rss_bytes() -> int | None:
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
