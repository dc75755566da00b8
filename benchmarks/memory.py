"""Peak memory of one training epoch (and of predict) against the size of the data (issue 11).

Every case runs in a fresh Python process: MNIST-shaped random data (784 float32 features, 10
classes) of the requested size, held in memory ("resident") or in a ``.npy`` file opened with
``numpy.load(mmap_mode="r")`` ("streamed"), then ONE call measured: ``fit`` for one epoch of
batch 256 on a 784-256-10 network (or ``predict`` on all rows). Reported:

- **extra anon**: the peak of the process's anonymous resident memory (``RssAnon``: heap, NumPy and
  device buffers on the CPU, not the page cache of a mapped file) during the call minus its level
  just before, sampled every millisecond by a thread; as MiB and as a multiple of the data size.
- **extra RSS**: the kernel's exact high-water mark ``VmHWM`` (reset through
  ``/proc/self/clear_refs`` just before the call) minus ``VmRSS`` before; it also counts the pages
  of a memory-mapped file that were read (page cache the kernel can drop), so for streamed cases
  it grows with the data by design.

Before the call each process runs a warm-up ``fit`` (1,024 rows; for JAX, zeros of the measured
shape, since JAX compiles per shape), so the runtime's one-time costs (thread pools, compilation,
BLAS buffers) are not charged to the data; then ``malloc_trim(0)`` returns the memory the warm-up
freed to the kernel, so the measured call cannot silently reuse it.

    python -m benchmarks.memory                        # the table at 0.1, 0.5 and 1 GiB of rows
    python -m benchmarks.memory --md benchmarks/MEMORY.md
    python -m benchmarks.memory --quick                # 20 MiB, a smoke run
    python -m benchmarks.memory --rows 200000 --cases polynn-numpy-f32,sklearn

Linux only (``/proc``). A case whose library is missing shows ``unavailable: ...``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.helpers import block, proc_status, reset_peak_rss

N_FEATURES, N_CLASSES, HIDDEN, BATCH = 784, 10, 256, 256
ROW_BYTES = N_FEATURES * 4  # float32 data
GIB = 1 << 30
MIB = 1 << 20
# name -> (library, backend or None, model dtype, data: "resident" | "streamed", call)
CASES = {
    "polynn-numpy-f32": ("polynn", "numpy", "float32", "resident", "fit"),
    "polynn-numpy-f64": ("polynn", "numpy", "float64", "resident", "fit"),
    "polynn-numpy-f32-streamed": ("polynn", "numpy", "float32", "streamed", "fit"),
    "polynn-jax-f32": ("polynn", "jax", "float32", "resident", "fit"),
    "polynn-jax-f32-streamed": ("polynn", "jax", "float32", "streamed", "fit"),
    "polynn-torch-f32": ("polynn", "torch", "float32", "resident", "fit"),
    "polynn-torch-f32-streamed": ("polynn", "torch", "float32", "streamed", "fit"),
    "polynn-strict-f32": ("polynn", "array_api_strict", "float32", "resident", "fit"),
    "polynn-numpy-f32-predict": ("polynn", "numpy", "float32", "resident", "predict"),
    "polynn-jax-f32-predict": ("polynn", "jax", "float32", "resident", "predict"),
    "sklearn": ("sklearn", None, "float32", "resident", "fit"),
    "sklearn-streamed": ("sklearn", None, "float32", "streamed", "fit"),
}
SIZES_GIB = (0.1, 0.5, 1.0)


class _AnonPeak:
    """Samples RssAnon every millisecond on a thread; ``peak`` is the largest value seen."""

    def __enter__(self):
        self.peak, self._stop = proc_status()["RssAnon"], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status()["RssAnon"])
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status()["RssAnon"])


def _make_data(rows: int, where: str, tmp: Path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, rows)
    if where == "resident":
        return rng.random((rows, N_FEATURES), dtype=np.float32), y
    # written block by block, so the file never exists in this process's memory as a whole
    out = np.lib.format.open_memmap(tmp / "x.npy", "w+", np.float32, (rows, N_FEATURES))
    for start in range(0, rows, 16384):
        block = out[start : start + 16384]
        block[...] = rng.random(block.shape, dtype=np.float32)
    out.flush()
    del out
    return np.load(tmp / "x.npy", mmap_mode="r"), y


def _calls(library, backend, dtype, where, call):
    """(warm-up fit, the measured call, whether fit(stream=True) is used)."""
    if library == "sklearn":
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="sgd", batch_size=BATCH,
                            learning_rate_init=0.01, momentum=0.0, max_iter=1, shuffle=True,
                            random_state=0)  # fmt: skip

        def fit(X, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: one epoch
                clf.fit(X, y)

        return fit, fit, False
    import polynn as pn

    model = pn.MLP([N_FEATURES, HIDDEN, N_CLASSES], backend=backend, dtype=dtype, seed=0)
    stream = where == "streamed" and "stream" in inspect.signature(model.fit).parameters

    def fit(X, y):
        model.fit(X, y, epochs=1, batch_size=BATCH, lr=0.01, **({"stream": True} if stream else {}))
        block(model.params)

    return fit, (lambda X, y: block(model.predict(X))) if call == "predict" else fit, stream


def worker(case: str, rows: int) -> dict:
    library, backend, dtype, where, call = CASES[case]
    try:
        warm, measured, stream = _calls(*CASES[case])
    except ImportError as err:
        return {"case": case, "rows": rows, "error": f"unavailable: {err}"}
    # JAX compiles for the shapes of the data (and of its transfer chunks): warm up on zeros of
    # the measured shape, so compilation is not charged to the data; 1,024 rows do for the eager
    # libraries.
    X_warm = np.zeros((rows if backend == "jax" else 1024, N_FEATURES), np.float32)
    warm(X_warm, np.arange(X_warm.shape[0]) % N_CLASSES)
    if call == "predict":
        measured(X_warm, None)
    del X_warm
    with tempfile.TemporaryDirectory(prefix="polynn-mem-") as tmp:
        X, y = _make_data(rows, where, Path(tmp))
        gc.collect()
        # hand the memory the warm-up freed back to the kernel, so the measured call cannot reuse
        # it unseen (glibc keeps freed heap pages otherwise)
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = proc_status()
        reset_peak_rss()  # VmHWM := the current VmRSS
        tic = time.perf_counter()
        with _AnonPeak() as anon:
            measured(X, y)
        seconds, after = time.perf_counter() - tic, proc_status()
        del X
    return {"case": case, "rows": rows, "data_bytes": rows * ROW_BYTES, "stream_flag": stream,
            "extra_anon": anon.peak - before["RssAnon"],
            "extra_hwm": after["VmHWM"] - before["VmRSS"], "seconds": seconds}  # fmt: skip


# --------------------------------------------------------------------------- the driver
def run_case(case: str, rows: int, timeout: float = 1800) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--worker", case, "--rows", str(rows)]
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root,
                              env=env)
    except subprocess.TimeoutExpired:
        return {"case": case, "rows": rows, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"case": case, "rows": rows, "error": f"error: {tail[0][:200]}"}
    return json.loads(lines[-1])


def _cell(result: dict, key: str) -> str:
    if "error" in result:
        return result["error"]
    return f"{result[key] / MIB:,.0f} MiB ({result[key] / result['data_bytes']:.2f} ×)"


def _slope(first: dict, last: dict) -> str:
    """(largest - smallest extra) / (largest - smallest data), "" without two sizes."""
    if first is last or "extra_anon" not in first or "extra_anon" not in last:
        return ""
    per_byte = (last["extra_anon"] - first["extra_anon"]) / (last["data_bytes"]
                                                             - first["data_bytes"])  # fmt: skip
    return f"{per_byte if abs(per_byte) >= 0.005 else 0.0:.2f} ×"


def markdown(results: list[dict], note: str = "") -> str:
    sizes = sorted({r["rows"] for r in results})
    cases = list(dict.fromkeys(r["case"] for r in results))
    by = {(r["case"], r["rows"]): r for r in results}
    head = "| case | " + " | ".join(f"{n:,} rows ({n * ROW_BYTES / GIB:.2f} GiB)" for n in sizes)
    lines = [
        "## Memory: peak extra memory of one epoch against data size", "",
        f"One `fit` epoch (batch {BATCH}, {N_FEATURES}-{HIDDEN}-{N_CLASSES}, float32 data) or one "
        "`predict` over all rows, each case in a fresh process, generated by "
        "`python -m benchmarks.memory` (after a warm-up fit; for JAX on zeros of the same "
        "shape, so compilation is not counted). *Extra anon* is the peak anonymous resident memory "
        "during the call minus before (sampled each ms; heap and NumPy/JAX/PyTorch buffers, not "
        "the page cache of a mapped file), in MiB and as a multiple of the data size. "
        "*Streamed* cases read X from a `.npy` opened with `numpy.load(mmap_mode='r')` "
        "(`fit(stream=True)` where the installed polynn has it).", "",
        "*Per byte* is the growth with the data, (largest − smallest extra) / (largest − smallest "
        "data): what remains of the extra memory once constant costs (weights, one batch or "
        "chunk, the runtime's allocators) are set aside. *Epoch s* (largest size) is for "
        "orientation only: the machine is shared, see RESULTS.md for timings.", "",
        head + " | per byte | epoch s |", "|---|" + "---|" * (len(sizes) + 2),
    ]  # fmt: skip
    for case in cases:
        cells = [_cell(by[case, n], "extra_anon") if (case, n) in by else "" for n in sizes]
        first, last = by.get((case, sizes[0]), {}), by.get((case, sizes[-1]), {})
        seconds = f"{last['seconds']:.1f}" if "seconds" in last else ""
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {_slope(first, last)} | {seconds} |")
    lines += ["", "Exact kernel high-water mark (`VmHWM` reset before the call, minus `VmRSS` "
              "before; includes mapped file pages read, so streamed cases show the file passing "
              "through the page cache):", "", head + " |", "|---|" + "---|" * len(sizes)]
    for case in cases:
        cells = [_cell(by[case, n], "extra_hwm") if (case, n) in by else "" for n in sizes]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines + (["", note] if note else [])) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--md", help="write the markdown section to this file")
    add("--json", help="write every result to this JSON file")
    add("--quick", action="store_true", help="one small size (20 MiB of rows)")
    add("--sizes", help="comma-separated data sizes in GiB (default 0.1,0.5,1)")
    add("--rows", type=int, help="one data size in rows instead of --sizes")
    add("--cases", help=f"comma-separated subset of: {', '.join(CASES)}")
    add("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows)), flush=True)
        return 0
    if args.rows:
        rows = [args.rows]
    else:
        sizes = [0.02] if args.quick else [float(s) for s in (args.sizes or "").split(",") if s]
        rows = [int(g * GIB) // ROW_BYTES for g in (sizes or SIZES_GIB)]
    cases = args.cases.split(",") if args.cases else list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    results = []
    for n in rows:
        for case in cases:
            result = run_case(case, n)
            results.append(result)
            print(f"{case:28s} {n:>9,} rows  {_cell(result, 'extra_anon'):>24s}  "
                  f"hwm {_cell(result, 'extra_hwm'):>24s}  "
                  f"{result.get('seconds', float('nan')):6.1f} s", file=sys.stderr, flush=True)
    text = markdown(results, f"Load average during the run: {os.getloadavg()[0]:.1f} (1 min), "
                             f"{os.cpu_count()} CPUs.")  # fmt: skip
    print(text)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
