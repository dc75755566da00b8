"""Peak memory of one training epoch (and of predict) against the size of the data (issue 11).

Each case runs in a fresh process: MNIST-shaped random data (784 float32 features, 10 classes) held
in memory ("resident") or in a ``.npy`` opened with ``numpy.load(mmap_mode="r")`` ("streamed"),
then ONE call measured: ``fit`` for one epoch of batch 256 on 784-256-10 (or ``predict``).

- **extra anon**: the peak of ``RssAnon`` (heap, NumPy and device buffers on the CPU, not the page
  cache of a mapped file) during the call, sampled every ms by a thread, minus its level before.
- **extra RSS**: ``VmHWM`` (reset through ``/proc/self/clear_refs`` before the call) minus
  ``VmRSS`` before; it counts the mapped file's pages read too, so streamed cases grow with data.

A warm-up ``fit`` (1,024 rows; for JAX zeros of the measured shape, as JAX compiles per shape)
comes first, then ``malloc_trim(0)``, so one-time costs are not charged to the data.

    python -m benchmarks.memory                        # the table at 0.1, 0.5 and 1 GiB of rows
    python -m benchmarks.memory --md benchmarks/MEMORY.md
    python -m benchmarks.memory --quick                # 20 MiB, a smoke run
    python -m benchmarks.memory --rows 200000 --cases polynn-numpy-f32,sklearn

Linux only (``/proc``). A case whose library is missing shows ``unavailable: ...``.
"""

from __future__ import annotations

import ctypes
import gc
import inspect
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.helpers import block, cli, md_table, proc_status, reset_peak_rss, run_worker, save

N_FEATURES, N_CLASSES, HIDDEN, BATCH = 784, 10, 256, 256
ROW_BYTES = N_FEATURES * 4  # float32 data
GIB = 1 << 30
MIB = 1 << 20
CASES = ("polynn-numpy-f32", "polynn-numpy-f64", "polynn-numpy-f32-streamed", "polynn-jax-f32",
         "polynn-jax-f32-streamed", "polynn-torch-f32", "polynn-torch-f32-streamed",
         "polynn-strict-f32", "polynn-numpy-f32-predict", "polynn-jax-f32-predict", "sklearn",
         "sklearn-streamed")  # polynn-BACKEND-fBITS[-streamed|-predict] or sklearn[-streamed]
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


def _calls(case: str):
    """(warm-up fit, the measured call, whether fit(stream=True) is used, backend)."""
    if case.startswith("sklearn"):
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="sgd", batch_size=BATCH,
                            learning_rate_init=0.01, momentum=0.0, max_iter=1, shuffle=True,
                            random_state=0)  # fmt: skip

        def fit(X, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: one epoch
                clf.fit(X, y)

        return fit, fit, False, None
    import polynn as pn

    _, backend, bits, *call = case.split("-")
    backend = {"strict": "array_api_strict"}.get(backend, backend)
    model = pn.MLP([N_FEATURES, HIDDEN, N_CLASSES], backend=backend, dtype="float" + bits[1:],
                   seed=0)  # fmt: skip
    stream = case.endswith("-streamed") and "stream" in inspect.signature(model.fit).parameters

    def fit(X, y):
        model.fit(X, y, epochs=1, batch_size=BATCH, lr=0.01, **({"stream": True} if stream else {}))
        block(model.params)

    predict = lambda X, y: block(model.predict(X))  # noqa: E731
    return fit, predict if call == ["predict"] else fit, stream, backend


def worker(case: str, rows: int) -> dict:
    """One case, measured in this process."""
    where = "streamed" if case.endswith("-streamed") else "resident"
    try:
        warm, measured, stream, backend = _calls(case)
    except ImportError as err:
        return {"case": case, "rows": rows, "error": f"unavailable: {err}"}
    # JAX compiles for the shapes of the data (and of its transfer chunks): warm up on zeros of
    # the measured shape, so compilation is not charged to the data; 1,024 rows do for the eager
    # libraries.
    X_warm = np.zeros((rows if backend == "jax" else 1024, N_FEATURES), np.float32)
    warm(X_warm, np.arange(X_warm.shape[0]) % N_CLASSES)
    if measured is not warm:
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


def run_case(case: str, rows: int, timeout: float = 1800) -> dict:
    """One case in a fresh process; an error becomes the row's ``error``."""
    try:
        return run_worker("benchmarks.memory", {"case": case, "rows": rows}, timeout)
    except RuntimeError as e:
        return {"case": case, "rows": rows, "error": f"error: {str(e)[-200:]}"}


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
    """MEMORY.md: extra anon per case and size (with the growth per byte), then extra RSS."""
    sizes = sorted({r["rows"] for r in results})
    cases = list(dict.fromkeys(r["case"] for r in results))
    by = {(r["case"], r["rows"]): r for r in results}
    head = ["case", *(f"{n:,} rows ({n * ROW_BYTES / GIB:.2f} GiB)" for n in sizes)]
    cells = lambda case, key: [case, *(_cell(by[case, n], key) if (case, n) in by else ""  # noqa: E731
                                       for n in sizes)]  # fmt: skip
    anon = []
    for c in cases:
        first, last = by.get((c, sizes[0]), {}), by.get((c, sizes[-1]), {})
        s = f"{last['seconds']:.1f}" if "seconds" in last else ""
        anon.append(cells(c, "extra_anon") + [_slope(first, last), s])
    return "\n".join([
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
        md_table(head + ["per byte", "epoch s"], anon), "",
        "Exact kernel high-water mark (`VmHWM` reset before the call, minus `VmRSS` before; "
        "includes mapped file pages read, so streamed cases show the file passing through the "
        "page cache):", "", md_table(head, [cells(c, "extra_hwm") for c in cases]),
        *(["", note] if note else [])]) + "\n"  # fmt: skip


def main(argv=None) -> int:
    ap = cli("python -m benchmarks.memory", __doc__, "--md", "--json", "--quick", "--worker",
             quick="one small size (20 MiB of rows)")  # fmt: skip
    ap.add_argument("--sizes", help="comma-separated data sizes in GiB (default 0.1,0.5,1)")
    ap.add_argument("--rows", type=int, help="one data size in rows instead of --sizes")
    ap.add_argument("--cases", help=f"comma-separated subset of: {', '.join(CASES)}")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))), flush=True)
        return 0
    if args.rows:
        rows = [args.rows]
    else:
        sizes = [0.02] if args.quick else [float(s) for s in (args.sizes or "").split(",") if s]
        rows = [int(g * GIB) // ROW_BYTES for g in (sizes or SIZES_GIB)]
    cases = args.cases.split(",") if args.cases else list(CASES)
    if unknown := [c for c in cases if c not in CASES]:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    results = []
    for n in rows:
        for case in cases:
            results.append(r := run_case(case, n))
            print(f"{case:28s} {n:>9,} rows  {_cell(r, 'extra_anon'):>24s}  hwm "
                  f"{_cell(r, 'extra_hwm'):>24s}  {r.get('seconds', float('nan')):6.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    text = markdown(results, f"Load average during the run: {os.getloadavg()[0]:.1f} (1 min), "
                             f"{os.cpu_count()} CPUs.")  # fmt: skip
    print(text)
    save(args.md, text)
    save(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
