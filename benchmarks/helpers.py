"""What every benchmark shares: data, the initial weights and their conversion, the loss referee,
synchronising, timing and interleaving, the load average, /proc memory, the command line, the
subprocess runner and the markdown table.

Every contestant trains the same MLP (ReLU hidden layers, softmax + cross-entropy output, L2 on the
weights only) from the same initial weights on the same data:

    loss = mean_i CE(softmax(Z_L[i]), y[i]) + 0.5 * l2 * sum_l ||W_l||^2
    Z_l = A_{l-1} @ W_l + b_l,   W_l: (n_in, n_out),   b_l: (n_out,)

The initial weights are He draws ``W ~ N(0, 2/n_in)``, ``b = 0`` made on the host with
``numpy.random.default_rng(seed)`` in float64, layer by layer, then cast to the contestant's dtype.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository: where workers run
Params = list[tuple[np.ndarray, np.ndarray]]  # [(W (n_in, n_out), b (n_out,)), ...] on the host


# -- data ------------------------------------------------------------------------------------------
def spiral(seed: int = 0, n_per_class: int = 100, n_classes: int = 3):
    """The reference program's spiral, X float64 (class j: r = linspace(0, 1, n), t = linspace(4j,
    4(j+1), n) + 0.2 randn, X = [r sin t, r cos t]), y int64."""
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


# -- parameters ------------------------------------------------------------------------------------
def he_init(sizes: Sequence[int], seed: int = 0) -> Params:
    """He init on the host in float64: per layer W ~ N(0, 2/n_in) of shape (n_in, n_out), b = 0."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in), np.zeros(n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]  # fmt: skip


def host_dtype(dtype: str):
    """The NumPy dtype for a dtype name (bfloat16 through ml_dtypes)."""
    return __import__("ml_dtypes").bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


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
    """Any library's [(W, b), ...] as host float64 ``Params``."""
    return [(to_host(W), to_host(b)) for W, b in params]


def block(tree) -> None:
    """Wait until every array in ``tree`` (nested tuples/lists) is computed, any library."""
    leaves, stack = [], [tree]
    while stack:
        t = stack.pop()
        (stack.extend if isinstance(t, (list, tuple)) else leaves.append)(t)
    mods = {type(a).__module__.split(".")[0] for a in leaves}
    if mods & {"jax", "jaxlib"}:
        sys.modules["jax"].block_until_ready(leaves)
    if "torch" in mods and any(getattr(a, "is_cuda", False) for a in leaves):
        sys.modules["torch"].cuda.synchronize()
    if "cupy" in mods:
        sys.modules["cupy"].cuda.Device().synchronize()


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


# -- timing ----------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call (the contestants synchronise before returning)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best_s(fn: Callable[[], object], rounds: int) -> float:
    """The best wall seconds of ``rounds`` calls of ``fn`` after one warm-up call."""
    fn()
    return min(timed(fn) for _ in range(rounds))


def median(xs: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(xs))


def load1() -> float:
    """The 1-minute load average, printed with every ratio (only like loads compare)."""
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


# -- command line, subprocesses, markdown ----------------------------------------------------------
OPTIONS = {  # the options the entry points share: name -> add_argument keywords
    "--quick": dict(action="store_true", help="a short smoke run"),
    "--md": dict(help="write the markdown to this file"),
    "--json": dict(help="write every figure to this JSON file"),
    "--worker": dict(help=argparse.SUPPRESS),  # one case, as JSON, in this (fresh) process
}


def cli(prog: str, doc: str, *options: str, **helps: str) -> argparse.ArgumentParser:
    """The parser of an entry point: ``doc``'s first line and the shared ``options`` (``helps``:
    their help by name, e.g. ``quick=...``)."""
    ap = argparse.ArgumentParser(prog, description=doc.split("\n\n")[0])
    for o in options:
        ap.add_argument(o, **{**OPTIONS[o], **({"help": helps[o[2:]]} if o[2:] in helps else {})})
    return ap


def run_python(commands: list[list[str]], timeout: float, env: dict | None = None) -> list[str]:
    """Run ``python ARGS`` for each ARGS at once, from the repository root, in fresh processes
    (``env`` on top of ours; a None value unsets); their stdouts, or RuntimeError with the tail."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {k: v for k, v in {**os.environ, "PYTHONPATH": path, **(env or {})}.items() if v}
    procs = [subprocess.Popen([sys.executable, *c], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    for p, (out, err) in zip(procs, outs):
        if p.returncode:
            tail = (err or out).strip().splitlines()[-3:] or ["no output"]
            raise RuntimeError(f"exit {p.returncode}: {' / '.join(tail)[-300:]}")
    return [out for out, _ in outs]


def run_workers(module: str, jobs: list[dict], timeout: float, env: dict | None = None) -> dict:
    """``python -m module --worker JOB`` for each job at once, in fresh processes: the JSON of the
    first one's last stdout line."""
    out = run_python([["-m", module, "--worker", json.dumps(j)] for j in jobs], timeout, env)[0]
    return json.loads(out.strip().splitlines()[-1])


def save(path, text: str) -> None:
    """Write ``text`` to ``path`` (its folder made), if ``path``."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def md_table(head: Sequence[str], rows) -> str:
    """A markdown table; rows shorter than ``head`` are padded with empty cells."""
    pad = lambda r: [*map(str, r), *[""] * (len(head) - len(r))]  # noqa: E731
    lines = ["| " + " | ".join(r) + " |" for r in [head, *map(pad, rows)]]
    return "\n".join([lines[0], "|" + "---|" * len(head), *lines[1:]])
