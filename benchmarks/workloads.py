"""The workloads and how each is timed. Each timed workload is a ``Timed`` object whose parts the
runner calls (interleaving the contestants); ``memory`` measures one contestant. A contestant's
failure propagates to the runner, which records it in that contestant's row.
"""

from __future__ import annotations

import gc
import os
import signal
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .common import (
    eval_loss,
    flops_per_step,
    median,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    timed,
)


@dataclass
class Settings:
    """Sizes and repeat counts of one run (``quick`` shrinks the counts, never the shapes)."""

    quick: bool = False
    seed: int = 0
    lr: float = 0.1  # the reference workload's
    # workloads 2-4: at lr 0.1 the random-label MNIST-shaped problem trains unstably (the loss
    # jumps up and down) and float32 rounding differences then move final losses by 10-50 %
    # between implementations; at 0.01 training is smooth and they agree. Step time is the same.
    lr_large: float = 0.01
    l2: float = 1e-3
    spiral_steps: int = 10_000
    # the reference program: rounds x runs per round, interleaved (issue 9: 3 x 3, medians);
    # informational rows run ref_extra_reps times per round
    ref_rounds: int = 3
    ref_reps: int = 3
    ref_extra_reps: int = 1
    mnist_rows: int = 60_000
    epoch_rows: int = 60_000  # rows of the timed epoch (--quick: a 15,000-row slice)
    mnist_batch: int = 256
    mnist_steps: int = 50  # steps per timed repeat, ms/step
    mnist_repeats: int = 5
    epoch_repeats: int = 3
    wide_batch: int = 1024
    wide_steps: int = 5
    wide_repeats: int = 5
    memory_steps: tuple[int, int] = (10, 1000)
    ceiling_n: int = 4096
    ceiling_rounds: int = 5
    gpu_batch: int = 8192
    gpu_steps: int = 20
    gpu_repeats: int = 5
    gpu_ceiling_n: int = 8192
    timeout_s: float = 600.0  # per contestant and workload
    contestants: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool, **kw) -> Settings:
        if quick:
            q = dict(
                spiral_steps=1_000,
                ref_rounds=2,
                ref_reps=1,
                mnist_steps=10,
                mnist_repeats=3,
                epoch_repeats=1,
                epoch_rows=15_000,
                wide_steps=1,
                wide_repeats=3,
                memory_steps=(10, 100),
                ceiling_n=2048,
                ceiling_rounds=2,
                gpu_steps=5,
                gpu_repeats=2,
                timeout_s=120.0,
            )
            q.update(kw)
            return cls(quick=True, **q)
        return cls(quick=False, **kw)


SIZES = {
    "spiral": [2, 25, 3],
    "mnist": [784, 256, 128, 10],
    "wide": [1024, 2048, 2048, 10],
    "gpu": [4096, 4096, 4096, 10],
}


@contextmanager
def time_limit(seconds: float):
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


def _row(c, workload: str, **kw) -> dict:
    row = {
        "contestant": c.name,
        "family": c.family,
        "workload": workload,
        "dtype": c.dtype,
        "device": c.device,
        "status": "ok",
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other processes' load when it finished
    }
    row.update(kw)
    return row


class Timed:
    """A timed workload in parts, so that the runner can interleave the contestants round-robin
    (repeat r of every contestant, then repeat r+1 ...): load from other processes that comes and
    goes then hits every contestant alike instead of whichever ran at the wrong moment.

    ``prepare`` (untimed: place data), ``warmup`` (timed on its own, excluded from the median:
    includes any compile), ``once`` (untimed reset, then one timed call), ``finish`` (the row).
    """

    workload = "?"

    def __init__(self, init, X, y, l2: float, log):
        self.init, self.X, self.y, self.l2, self.log = init, X, y, l2, log

    def prepare(self, c) -> None:
        c.set_data(self.X, self.y)

    def warmup(self, c) -> float | None:
        raise NotImplementedError

    def once(self, c) -> float:
        raise NotImplementedError

    def finish(self, c, first: float | None, times: list[float]) -> dict:
        raise NotImplementedError


class TrainToEnd(Timed):
    """Workload 1: end-to-end training, ``steps`` full-batch steps from the init, per repeat.

    The warm-up run (includes any compile; --quick skips it for contestants that compile nothing)
    is excluded from the median; compile s ~= first - median. Final loss: the referee's loss of the
    last run's parameters.
    """

    workload = "spiral"

    def __init__(self, init, X, y, l2, log, steps: int, warm_all: bool):
        super().__init__(init, X, y, l2, log)
        self.steps, self.warm_all = steps, warm_all

    def warmup(self, c):
        if not (self.warm_all or c.jit):
            return None
        c.load(self.init)
        return timed(lambda: c.steps(self.steps))

    def once(self, c):
        c.load(self.init)
        return timed(lambda: c.steps(self.steps))

    def finish(self, c, first, times):
        total = median(times)
        final = eval_loss(c.get_params(), self.X, self.y, self.l2)
        fs = "no warm-up" if first is None else f"first {first:.3f} s"
        self.log(
            f"    {c.name:13s} {c.dtype}: {total:.3f} s for {self.steps} steps ({fs}), "
            f"loss {final:.10f}"
        )
        return _row(
            c,
            self.workload,
            steps=self.steps,
            batch=int(self.X.shape[0]),
            total_s=total,
            ms_per_step=1e3 * total / self.steps,
            gflops=flops_per_step(c.sizes, self.X.shape[0]) * self.steps / total / 1e9,
            first_s=first,
            compile_s=None if first is None else max(first - total, 0.0),
            times_s=times,
            final_loss=final,
            notes=c.notes(),
        )


class PerStep(Timed):
    """Workloads 2-4: ms per full-batch step on one fixed batch: a warm-up run of ``steps`` steps,
    then timed runs of ``steps`` steps (median). Training continues across runs, so every
    contestant ends after the same number of steps and the final losses compare."""

    def __init__(self, init, X, y, l2, log, steps: int, workload: str):
        super().__init__(init, X, y, l2, log)
        self.steps, self.workload = steps, workload
        self.n_runs = 0

    def prepare(self, c):
        c.set_data(self.X, self.y)
        c.load(self.init)

    def warmup(self, c):
        return timed(lambda: c.steps(self.steps))

    def once(self, c):
        return timed(lambda: c.steps(self.steps))

    def finish(self, c, first, times):
        t = median(times)
        final = eval_loss(c.get_params(), self.X, self.y, self.l2)
        ms = 1e3 * t / self.steps
        gf = flops_per_step(c.sizes, self.X.shape[0]) / (t / self.steps) / 1e9
        self.log(
            f"    {c.name:13s} {c.dtype}: {ms:9.3f} ms/step {gf:8.1f} GFLOP/s "
            f"(first run {first:.3f} s), loss {final:.8f}"
        )
        return _row(
            c,
            self.workload,
            steps=self.steps * (1 + len(times)),
            batch=int(self.X.shape[0]),
            ms_per_step=ms,
            gflops=gf,
            first_s=first,
            compile_s=max(first - t, 0.0),
            times_s=times,
            final_loss=final,
            notes=c.notes(),
        )


class OneEpoch(Timed):
    """Workload 2, epoch: one in-order pass over all rows in batches of ``batch`` rows, the smaller
    remainder batch kept (60,000 = 234 x 256 + 96: 235 steps). Each run starts from the init; the
    warm-up epoch (always in a full run; in --quick only for compiling contestants) is excluded."""

    workload = "mnist-epoch"

    def __init__(self, init, X, y, l2, log, batch: int, warm_all: bool):
        super().__init__(init, X, y, l2, log)
        self.batch, self.warm_all = batch, warm_all

    def prepare(self, c):
        c.set_data(self.X, self.y)
        if hasattr(c, "prepare_epoch"):
            c.prepare_epoch(self.batch)  # untimed data layout (jax-scan)

    def warmup(self, c):
        if not (self.warm_all or c.jit):
            return None
        c.load(self.init)
        return timed(lambda: c.epoch(self.batch))

    def once(self, c):
        c.load(self.init)
        return timed(lambda: c.epoch(self.batch))

    def finish(self, c, first, times):
        t = median(times)
        rows = int(self.X.shape[0])
        n_steps = -(-rows // self.batch)
        final = eval_loss(c.get_params(), self.X, self.y, self.l2)
        self.log(
            f"    {c.name:13s} {c.dtype}: epoch {t:.3f} s ({rows} rows, {n_steps} steps), "
            f"loss {final:.8f}"
        )
        per_row = sum(a * b for a, b in zip(c.sizes[:-1], c.sizes[1:]))
        return _row(
            c,
            self.workload,
            steps=n_steps,
            rows=rows,
            batch=self.batch,
            total_s=t,
            ms_per_step=1e3 * t / n_steps,
            gflops=6.0 * rows * per_row / t / 1e9,
            first_s=first,
            compile_s=None if first is None else max(first - t, 0.0),
            times_s=times,
            final_loss=final,
            notes=c.notes(),
        )


def memory(c, init, Xb, yb, steps_list, log, warmup: bool = True) -> dict:
    """Peak memory of a training run of n steps, for each n in ``steps_list`` (e.g. 10 and 1,000).

    Each run starts from the init, after a warm-up run of the same length (so compiled code and
    caches exist; --quick warms up only the contestants that compile). Per run:

    * ``rss_peak_bytes``: the process's peak RSS during the run (the kernel's VmHWM, reset to the
      current RSS through /proc/self/clear_refs just before it) -- sees every allocator (NumPy,
      XLA, PyTorch); ``rss_growth_bytes``: that peak minus the RSS just before the run (0 when the
      run only reuses memory the process already holds);
    * ``py_peak_bytes``: tracemalloc's peak over the run (Python objects and NumPy buffers only).

    Flat: from the first n to the last, the RSS peak grows by at most max(4 MiB, 5 %) and the
    tracemalloc peak by at most max(4 MiB, 10 %).
    """
    c.set_data(Xb, yb)
    if warmup:
        for n in steps_list:
            c.load(init)
            c.steps(n)
    out = {}
    can_reset = True
    for n in steps_list:
        c.load(init)
        gc.collect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        py0 = tracemalloc.get_traced_memory()[0]
        rss0 = rss_bytes()
        can_reset = reset_peak_rss() and can_reset
        c.steps(n)
        rss_peak = peak_rss_bytes()
        py_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        known = rss0 is not None and rss_peak is not None and can_reset
        out[n] = {
            "rss_peak_bytes": rss_peak if known else None,
            "rss_growth_bytes": (rss_peak - rss0) if known else None,
            "py_peak_bytes": py_peak - py0,
        }
    a, b = out[steps_list[0]], out[steps_list[-1]]
    flat = None
    if a["rss_peak_bytes"] is not None:
        mib4 = 4 * 2**20
        rss_ok = b["rss_peak_bytes"] - a["rss_peak_bytes"] <= max(mib4, 0.05 * a["rss_peak_bytes"])
        py_ok = b["py_peak_bytes"] - a["py_peak_bytes"] <= max(mib4, 0.10 * a["py_peak_bytes"])
        flat = bool(rss_ok and py_ok)
    mib = 2**20

    def fmt(n, v):
        if v["rss_peak_bytes"] is None:
            return f"{n} steps: RSS ? (tracemalloc {v['py_peak_bytes'] / mib:.2f} MiB)"
        return (
            f"{n} steps: RSS peak {v['rss_peak_bytes'] / mib:.1f} MiB "
            f"({v['rss_growth_bytes'] / mib:+.1f}), tracemalloc {v['py_peak_bytes'] / mib:.2f} MiB"
        )

    verdict = {True: "flat", False: "GROWS", None: "unknown"}[flat]
    log(
        f"    {c.name:13s} {c.dtype}: "
        + "; ".join(fmt(n, v) for n, v in out.items())
        + f" -> {verdict}"
    )
    return {
        "contestant": c.name,
        "family": c.family,
        "dtype": c.dtype,
        "status": "ok",
        "steps": list(steps_list),
        "by_steps": {str(k): v for k, v in out.items()},
        "flat": flat,
        "batch": int(Xb.shape[0]),
    }


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and np.isfinite(x)
