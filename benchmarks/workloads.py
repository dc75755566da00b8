"""The workloads and the one protocol that times them all.

A ``Workload`` is data: the shapes, the data, the timed call (``steps(n)`` or ``epoch(batch)``),
whether each call starts from the shared init (end to end) or training continues across calls,
and who gets a warm-up. ``measure`` runs it for a list of (contestant, dtype, runs per round):
build and place (untimed), one warm-up call (excluded from the median: compile s = first - median),
then the timed calls interleaved (``helpers.interleaved``), the 1-minute load average after each.
A contestant that cannot run shows ``unavailable: ...``, one that fails ``error: ...``; the run
goes on. ``derive`` then adds each row's ratio to its baseline and to every peer.
"""

from __future__ import annotations

import gc
import traceback
import tracemalloc
from dataclasses import dataclass
from functools import cache, partial
from types import SimpleNamespace

import numpy as np

from .contestants import REFERENCE_ONLY, Unavailable, make
from .helpers import (
    eval_loss,
    flops_per_row,
    he_init,
    interleaved,
    load1,
    median,
    proc_status,
    random_classification,
    reset_peak_rss,
    spiral,
    time_limit,
    timed,
)

# Sizes and repeat counts of a run; --quick shrinks the counts, never the shapes. lr_large: at lr
# 0.1 the random-label MNIST-shaped problem trains unstably and float32 rounding then moves final
# losses by 10-50 % between implementations; at 0.01 they agree (the time per step is the same).
FULL = dict(quick=False, seed=0, lr=0.1, lr_large=0.01, l2=1e-3, spiral_steps=10_000,
            ref_rounds=3, ref_reps=3, ref_extra_reps=1, mnist_rows=60_000, epoch_rows=60_000,
            mnist_batch=256, mnist_steps=50, mnist_repeats=5, epoch_repeats=3, wide_batch=1024,
            wide_steps=5, wide_repeats=5, memory_steps=(10, 1000), ceiling_n=4096,
            ceiling_rounds=5, gpu_batch=8192, gpu_steps=20, gpu_repeats=5, gpu_ceiling_n=8192,
            timeout_s=600.0, contestants=(), workloads=())  # fmt: skip
QUICK = dict(quick=True, spiral_steps=1_000, ref_rounds=2, ref_reps=1, mnist_steps=10,
             mnist_repeats=3, epoch_repeats=1, epoch_rows=15_000, wide_steps=1, wide_repeats=3,
             memory_steps=(10, 100), ceiling_n=2048, ceiling_rounds=2, gpu_steps=5,
             gpu_repeats=2, timeout_s=120.0)  # fmt: skip


def settings(quick: bool, **kw) -> SimpleNamespace:
    return SimpleNamespace(**{**FULL, **(QUICK if quick else {}), **kw})


SIZES = {"spiral": [2, 25, 3], "mnist": [784, 256, 128, 10], "wide": [1024, 2048, 2048, 10],
         "gpu": [4096, 4096, 4096, 10]}  # fmt: skip
# The reference program (issue 9): every row is timed against numpy-hand in float64.
REFERENCE_BASELINE = ("numpy-hand", "float64")
# Its second baseline (issue 18): the same loop written tight by hand (numpy_tight.py).
REFERENCE_TIGHT = ("numpy-tight", "float64")
REFERENCE_ROWS = (REFERENCE_BASELINE, REFERENCE_TIGHT, ("polynn-numpy", "float64"),
                  ("polynn-jax", "float64"), ("polynn-jax", "float32"), ("jax-scan", "float64"),
                  ("jax-scan", "float32"))
# informational rows, fewer runs; not the torch peer: its 2 OpenMP threads on a loaded 2-core
# machine took 86 s for one run (8.6 ms/step against 0.13 ms for polynn-torch)
REFERENCE_EXTRA = (("numpy-hand", "float32"), ("polynn-numpy", "float32"), ("jax-jit", "float64"),
                   ("sklearn", "float64"), ("polynn-torch", "float64"))  # fmt: skip
# The floor per step on one core of this CPU (issue 9): a fused C step with fast math took 7.0 us
# in float64 (~5-7 us estimated) and 4.1 us in float32.
FLOOR_US = {"float64": (5.0, 7.0), "float32": (4.1, 4.1)}
HAND = ("numpy-hand", "cupy-hand")  # the baseline of every workload (cupy-hand on a GPU)


@dataclass
class Workload:
    """What is timed, on what data, and how (see the module docstring)."""

    name: str
    sizes: list[int]
    X: np.ndarray  # every contestant casts it to its dtype; the referee reads it in float64
    y: np.ndarray
    lr: float
    call: str = "steps"  # the timed call: c.steps(n) or c.epoch(n)
    n: int = 1  # steps per call, or the batch size of the epoch
    reload: bool = False  # each call starts from the init; else training continues across calls
    warm_all: bool = True  # warm up every contestant (else only those that compile)
    device: str = "cpu"

    def steps_per_call(self) -> int:
        return self.n if self.call == "steps" else -(-self.X.shape[0] // self.n)

    def flops_per_call(self) -> float:
        rows = self.X.shape[0] * (self.n if self.call == "steps" else 1)
        return flops_per_row(self.sizes) * rows


def status_row(name: str, dtype: str, workload: str, device: str, status: str) -> dict:
    """A row's identity and status; an ok row gets its figures added."""
    family = "polynn" if name.startswith("polynn") else "peer"
    return dict(contestant=name, family=family, workload=workload, dtype=dtype, device=device,
                status=status)  # fmt: skip


def build(S, log, name, sizes, dtype, lr, device, workload):
    """(contestant, None), or (None, its ``unavailable: ...`` row)."""
    try:
        return make(name, sizes, dtype, lr=lr, l2=S.l2, device=device), None
    except Exception as e:  # noqa: BLE001  (Unavailable, or anything a missing library raises)
        why = f"unavailable: {e if isinstance(e, Unavailable) else f'{type(e).__name__}: {e}'}"
    log(f"    {name:13s} {dtype}: {why}")
    return None, status_row(name, dtype, workload, device, why)


def attempt(S, log, c, workload: str, fn) -> tuple:
    """(``fn()`` within the time limit, None), or (None, ``c``'s ``error: ...`` row; the
    traceback's tail in the log)."""
    try:
        with time_limit(S.timeout_s):
            return fn(), None
    except Exception as e:  # noqa: BLE001
        why = f"error: {type(e).__name__}: {e}"
        log(f"    {c.name:13s} {c.dtype}: {why}\n" + traceback.format_exc(limit=-3))
        return None, status_row(c.name, c.dtype, workload, c.device, why)


def measure(S, log, w: Workload, entries, rounds: int = 1) -> list[dict]:
    """Time ``w`` for every (contestant, dtype, runs per round) in ``entries``, interleaved over
    ``rounds`` rounds; one row per entry, in order."""
    init = he_init(w.sizes, S.seed)

    def call(c, reload: bool) -> float:
        if reload:
            c.load(init)
        return timed(lambda: getattr(c, w.call)(w.n))

    def warm(c) -> float | None:
        c.set_data(w.X, w.y)
        c.load(init)
        return call(c, False) if w.warm_all or c.jit else None

    rows, live = {}, []  # rows[key] stays None while the contestant is ok
    for name, dtype, reps in entries:
        c, rows[name, dtype] = build(S, log, name, w.sizes, dtype, w.lr, w.device, w.name)
        if c is not None:
            first, rows[name, dtype] = attempt(S, log, c, w.name, partial(warm, c))
            live.append(dict(key=(name, dtype), c=c, reps=reps, first=first, runs=[]))
    for rnd, e in interleaved(live, rounds, lambda e: e["reps"]):
        if rows[e["key"]] is None:
            t, rows[e["key"]] = attempt(S, log, e["c"], w.name, partial(call, e["c"], w.reload))
            e["runs"].append({"round": rnd, "s": t, "load1": load1()})
    for e in live:
        if rows[e["key"]] is None:
            done = partial(finish, S, log, w, e["c"], e["first"], e["runs"])
            row, err = attempt(S, log, e["c"], w.name, done)
            rows[e["key"]] = row or err
    live.clear()
    gc.collect()
    return [rows[n, d] for n, d, _ in entries]


def finish(S, log, w: Workload, c, first, runs) -> dict:
    """The ok row of a contestant's timed runs: medians, GFLOP/s, the referee's final loss."""
    t = median([r["s"] for r in runs])
    loads = [r["load1"] for r in runs]
    row = status_row(c.name, c.dtype, w.name, c.device, "ok")
    row.update(
        steps=w.steps_per_call(), batch=w.n if w.call == "epoch" else int(w.X.shape[0]),
        rows=int(w.X.shape[0]), total_s=t, ms_per_step=1e3 * t / w.steps_per_call(),
        gflops=w.flops_per_call() / t / 1e9, first_s=first,
        compile_s=None if first is None else max(first - t, 0.0), times_s=[r["s"] for r in runs],
        runs=runs, loadavg_1m=median(loads), loadavg_range=[min(loads), max(loads)],
        final_loss=eval_loss(c.get_params(), w.X, w.y, S.l2), notes=c.notes(),
    )  # fmt: skip
    fs = "no warm-up" if first is None else f"first {first:.3f} s"
    log(f"    {c.name:13s} {c.dtype}: {row['ms_per_step']:9.4f} ms/step, {row['gflops']:7.2f} "
        f"GFLOP/s ({fs}), loss {row['final_loss']:.10f}, load {row['loadavg_1m']:.2f}")  # fmt: skip
    return row


def derive(rows: list[dict], ceiling: dict) -> None:
    """Add to every ok row: ``baseline`` (the hand-written loop's own ms/step and load: numpy-hand
    float64 for the reference program, numpy-hand of the row's dtype elsewhere), ``ratio`` (its
    time / the row's) overall and per round, ``speedup_vs`` (each peer of the same workload and
    dtype), ``loss_rel_diff`` (from the baseline's final loss), ``frac_ceiling`` (GFLOP/s over the
    matmul ceiling of the dtype) and, for the reference program, µs/step against the floor and
    ``tight`` (the second baseline, numpy-tight float64: its ms/step, load and ratio)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    in_round = lambda p, k: median([x["s"] for x in p["runs"] if x["round"] == k])  # noqa: E731
    for r in ok:
        same = [p for p in ok if p["workload"] == r["workload"]]
        base_dtype = REFERENCE_BASELINE[1] if r["workload"] == "reference" else r["dtype"]
        base = next((p for p in same if p["contestant"] in HAND and p["dtype"] == base_dtype), None)
        r["speedup_vs"] = {"numpy-hand" if p["contestant"] in HAND else p["contestant"]:
                           p["ms_per_step"] / r["ms_per_step"] for p in same
                           if p["family"] == "peer" and p["dtype"] == r["dtype"] and p is not r}
        if base is not None:
            r["baseline"] = {k: base[k] for k in ("contestant", "dtype", "ms_per_step",
                                                   "total_s", "loadavg_1m")}  # fmt: skip
            r["ratio"] = base["ms_per_step"] / r["ms_per_step"]
            both = sorted({x["round"] for x in r["runs"]} & {x["round"] for x in base["runs"]})
            r["rounds"] = [in_round(base, k) / in_round(r, k) for k in both]
            r["loss_rel_diff"] = abs(r["final_loss"] - base["final_loss"]) / abs(base["final_loss"])
        r["frac_ceiling"] = r["gflops"] / ceiling[r["dtype"]] if r["dtype"] in ceiling else None
        tight = next((p for p in same if (p["contestant"], p["dtype"]) == REFERENCE_TIGHT), None)
        if r["workload"] == "reference" and tight is not None:  # the second baseline
            r["tight"] = {"ms_per_step": tight["ms_per_step"], "loadavg_1m": tight["loadavg_1m"],
                          "ratio": tight["ms_per_step"] / r["ms_per_step"]}
        if r["workload"] == "reference":
            r["us_per_step"] = 1e3 * r["ms_per_step"]
            lo, hi = r["floor_us"] = list(FLOOR_US[r["dtype"]])
            r["x_floor"] = [r["us_per_step"] / hi, r["us_per_step"] / lo]


def timed_workloads(S, names, focused: bool) -> dict:
    """Every timed CPU workload by name, each made when called: (its Workload, its (contestant,
    dtype, runs per round) entries, rounds). ``focused`` (--only/--workloads): the reference
    program leaves out its informational rows, and keeps only ``names`` and its baseline."""
    reference = [(n, d, S.ref_reps) for n, d in REFERENCE_ROWS] + (
        [] if focused else [(n, d, S.ref_extra_reps) for n, d in REFERENCE_EXTRA])
    reference = [e for e in reference if e[0] in names or e[:2] in (REFERENCE_BASELINE,
                                                                       REFERENCE_TIGHT)]
    names = [n for n in names if n not in REFERENCE_ONLY]
    wide = lambda: random_classification(S.seed + 3, S.wide_batch, 1024, 10, "normal")  # noqa: E731
    each = lambda reps: [(n, "float32", reps) for n in names]  # noqa: E731
    return {
        "reference": lambda: (Workload("reference", SIZES["spiral"], *spiral(S.seed + 1), S.lr,
                                       n=S.spiral_steps, reload=True, warm_all=not S.quick),
                              reference, S.ref_rounds),
        "mnist-step": lambda: (Workload("mnist-step", SIZES["mnist"], *mnist_data(S)[2:],
                                        S.lr_large, n=S.mnist_steps),
                               each(S.mnist_repeats), 1),
        "mnist-epoch": lambda: (Workload("mnist-epoch", SIZES["mnist"], *(
            a[: S.epoch_rows] for a in mnist_data(S)[:2]), S.lr_large, call="epoch",
            n=S.mnist_batch, reload=True, warm_all=not S.quick), each(S.epoch_repeats), 1),
        "wide": lambda: (Workload("wide", SIZES["wide"], *wide(), S.lr_large, n=S.wide_steps),
                         each(S.wide_repeats), 1),
    }  # fmt: skip


def mnist_data(S):
    """MNIST-shaped uniform random data (made once) and its first batch: Xm, ym, Xb, yb."""
    Xm, ym = _mnist(S.seed + 2, S.mnist_rows)
    return Xm, ym, Xm[: S.mnist_batch], ym[: S.mnist_batch]


_mnist = cache(lambda seed, rows: random_classification(seed, rows, 784, 10, "uniform"))


def memory_steps(S, log, names, X, y, warmup_all: bool) -> list[dict]:
    """Peak memory of training runs of n steps for each n in ``S.memory_steps`` (10 and 1,000), one
    contestant at a time (``memory_row``); one row per name."""
    out, init = [], he_init(SIZES["mnist"], S.seed)
    for name in names:
        c, row = build(S, log, name, SIZES["mnist"], "float32", S.lr_large, "cpu", "memory")
        if c is not None:
            ok, row = attempt(S, log, c, "memory", partial(memory_row, S, log, c, X, y, init,
                                                           warmup_all or c.jit))  # fmt: skip
            row = ok or row
        out.append(row)
        del c
        gc.collect()
    return out


def memory_row(S, log, c, X, y, init, warm: bool) -> dict:
    """Each run from the init after a warm-up run of the same length (if ``warm``). Per run:
    ``rss_peak_bytes`` (the kernel's VmHWM over the run, reset just before it: every allocator),
    ``rss_growth_bytes`` (that minus the RSS before), ``py_peak_bytes`` (tracemalloc: Python
    objects and NumPy buffers). Flat: from the first n to the last the RSS peak grows by at most
    max(4 MiB, 5 %) and the tracemalloc peak by at most max(4 MiB, 10 %)."""
    c.set_data(X, y)
    for n in S.memory_steps if warm else ():
        c.load(init)
        c.steps(n)
    by = {}
    for n in S.memory_steps:
        c.load(init)
        gc.collect()
        tracemalloc.start()
        py0, rss0 = tracemalloc.get_traced_memory()[0], proc_status()
        reset = reset_peak_rss()
        c.steps(n)
        peak, py_peak = proc_status().get("VmHWM"), tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        known = reset and peak is not None and "VmRSS" in rss0
        by[str(n)] = dict(rss_peak_bytes=peak if known else None,
                          rss_growth_bytes=peak - rss0["VmRSS"] if known else None,
                          py_peak_bytes=py_peak - py0)  # fmt: skip
    a, b = by[str(S.memory_steps[0])], by[str(S.memory_steps[-1])]
    grew = {k: b[k] - a[k] <= max(4 * 2**20, tol * a[k]) for k, tol in
            (("rss_peak_bytes", 0.05), ("py_peak_bytes", 0.10)) if a[k] is not None}
    flat = all(grew.values()) if "rss_peak_bytes" in grew else None
    log(f"    {c.name:13s}: RSS peak {rss_path(by)} MiB, flat: {flat}")
    return status_row(c.name, "float32", "memory", "cpu", "ok") | dict(
        steps=list(S.memory_steps), by_steps=by, flat=flat, batch=int(X.shape[0]))


def rss_path(by_steps: dict) -> str:
    """The RSS peaks of a memory row in MiB, from the shortest run to the longest."""
    return " → ".join("?" if v["rss_peak_bytes"] is None else f"{v['rss_peak_bytes'] / 2**20:.1f}"
                      for v in by_steps.values())  # fmt: skip
