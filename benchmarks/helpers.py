"""What every benchmark shares: data, the initial weights and their conversion, the loss referee,
the contestant interface, synchronising, timing and interleaving, the load average, /proc memory.

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
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]  # [(W (n_in, n_out), b (n_out,)), ...] on the host


# -- data ------------------------------------------------------------------------------------------
def spiral(seed: int = 0, n_per_class: int = 100, n_classes: int = 3):
    """The reference program's spiral: X (n_classes*n_per_class, 2) float64, y int64.

    Class j: r = linspace(0, 1, n), t = linspace(4j, 4(j+1), n) + 0.2 randn, X = [r sin t, r cos t].
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * n_classes, 2))
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    for j in range(n_classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), n_per_class)
        t = t + rng.standard_normal(n_per_class) * 0.2
        X[n_per_class * j : n_per_class * (j + 1)] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X, y


def random_classification(seed: int, n: int, n_features: int, n_classes: int, kind="uniform"):
    """Seeded float32 X (n, n_features), uniform in [0, 1) (pixel-like) or normal; y int64."""
    rng = np.random.default_rng(seed)
    draw = rng.random if kind == "uniform" else rng.standard_normal
    X = draw((n, n_features), dtype=np.float32)
    return X, rng.integers(0, n_classes, size=n, dtype=np.int64)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """In-order batches of ``batch_size`` rows; the remainder (if any) is the last, smaller one."""
    return [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


# -- parameters ------------------------------------------------------------------------------------
def he_init(sizes: Sequence[int], seed: int = 0) -> Params:
    """He init on the host in float64: per layer W ~ N(0, 2/n_in) of shape (n_in, n_out), b = 0."""
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in), np.zeros(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]


def host_dtype(dtype: str):
    """The NumPy dtype for a dtype name (bfloat16 through ml_dtypes)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def cast_params(params: Params, dtype: str) -> Params:
    """Fresh host copies of ``params`` in ``dtype``."""
    dt = host_dtype(dtype)
    return [(np.array(W, dtype=dt), np.array(b, dtype=dt)) for W, b in params]


def to_host(a) -> np.ndarray:
    """Any library's array (NumPy, JAX, PyTorch, CuPy) as a float64 NumPy array."""
    mod = type(a).__module__
    if mod.startswith("torch"):
        a = a.detach().float().cpu() if str(a.dtype) == "torch.bfloat16" else a.detach().cpu()
        a = a.numpy()
    elif mod.startswith("cupy"):
        a = a.get()
    return np.asarray(a).astype(np.float64)


def params_to_host(params) -> Params:
    return [(to_host(W), to_host(b)) for W, b in params]


def block(tree) -> None:
    """Wait until every array in ``tree`` (nested tuples/lists) is computed, any library."""
    leaves, stack = [], [tree]
    while stack:
        t = stack.pop()
        (stack.extend if isinstance(t, (list, tuple)) else leaves.append)(t)
    mods = {type(a).__module__.split(".")[0] for a in leaves}
    if mods & {"jax", "jaxlib"}:
        import jax

        jax.block_until_ready(leaves)
    if "torch" in mods and any(getattr(a, "is_cuda", False) for a in leaves):
        import torch

        torch.cuda.synchronize()
    if "cupy" in mods:
        import cupy

        cupy.cuda.Device().synchronize()


def flops_per_row(sizes: Sequence[int]) -> float:
    """6 * sum(n_in * n_out) per row and step: 2 for the forward matmul, 4 for the backward ones."""
    return 6.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def eval_loss(params: Params, X: np.ndarray, y: np.ndarray, l2: float, chunk: int = 8192) -> float:
    """The referee: the regularised loss of ``params`` on (X, y); float64 NumPy, log-sum-exp."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    total = 0.0
    for s in range(0, X.shape[0], chunk):
        A = np.asarray(X[s : s + chunk], np.float64)
        for W, b in params[:-1]:
            A = np.maximum(A @ W + b, 0.0)
        Z = A @ params[-1][0] + params[-1][1]
        zmax = Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z - zmax).sum(axis=1)) + zmax[:, 0]
        total += float(np.sum(lse - Z[np.arange(Z.shape[0]), y[s : s + chunk]]))
    return total / X.shape[0] + 0.5 * l2 * sum(float(np.sum(W * W)) for W, _ in params)


# -- the contestant interface ----------------------------------------------------------------------
class Unavailable(RuntimeError):
    """A contestant that cannot run here (missing library, no GPU, ...): the reason is reported."""


class Contestant:
    """One way of training the MLP. Each subclass implements, every method synchronising:
    ``load(params)`` (host float64 ``Params``, cast to ``dtype``), ``set_data(X, y)`` (place the
    data, untimed), ``steps(n)`` (n full-batch SGD steps on the placed data), ``epoch(bs)`` (one
    in-order pass in batches of ``bs`` rows, the smaller last one kept), ``get_params()``."""

    name = "?"
    family = "peer"  # or "polynn"
    jit = False  # True when the first call compiles (then it is always warmed up)

    def __init__(self, sizes, dtype: str, *, lr: float, l2: float, device: str = "cpu"):
        self.sizes, self.dtype, self.lr, self.l2, self.device = list(sizes), dtype, lr, l2, device

    def notes(self) -> str:
        return ""


# -- timing ----------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call (the contestants synchronise before returning)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def load1() -> float:
    """The 1-minute load average: the load other processes put on the machine, printed with every
    ratio (a shared machine's timings are only comparable under similar load)."""
    return round(os.getloadavg()[0], 2)


def interleaved(items: list, rounds: int, reps: Callable[[object], int]) -> Iterator[tuple]:
    """(round, item) in interleaved order: rep 1 of every item, then rep 2 ..., ``rounds`` times,
    the order rotating every pass; so load that comes and goes hits every item alike."""
    passes = 0
    for rnd in range(rounds):
        for rep in range(max(map(reps, items), default=0)):
            todo = [it for it in items if rep < reps(it)]
            k = passes % len(todo) if todo else 0
            passes += 1
            yield from ((rnd, it) for it in todo[k:] + todo[:k])


@contextmanager
def time_limit(seconds: float | None):
    """Raise TimeoutError in the main thread after ``seconds`` (seen between Python bytecodes)."""
    if not seconds or seconds <= 0:
        yield
        return

    def handler(signum, frame):
        raise TimeoutError(f"took longer than {seconds:.0f} s (the per-workload limit)")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- memory (Linux /proc; this process) ------------------------------------------------------------
def proc_status() -> dict[str, int]:
    """The memory lines of /proc/self/status (VmRSS, VmHWM, RssAnon, ...) in bytes; {} elsewhere."""
    try:
        with open("/proc/self/status") as f:
            lines = [line.split() for line in f if line.startswith(("Vm", "Rss"))]
    except OSError:
        return {}
    return {p[0].rstrip(":"): int(p[1]) * 1024 for p in lines if len(p) >= 2}


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
