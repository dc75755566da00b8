"""Ctrl-C latency (issue 18 §5): how long ``MLP.fit`` takes to stop after SIGINT.

    python -m benchmarks.interrupt [--repeats 3] [--backends numpy,jax,torch] [--md PATH]

Each case runs in a new process: a warm-up ``fit`` of one epoch (JAX compiles there, as a
second run of the same program would find it in the persistent cache), then a ``fit`` of far
more epochs than it can run; ``--after`` seconds into it, a timer thread sends the process
SIGINT (what Ctrl-C does) and the time from the signal to ``fit`` returning (training stopped,
``history.stopped == "interrupted"``) is measured. The 1-minute load average stands next to
every figure. Cases: the reference program (full batch), digits in mini-batches of 64, and an
MNIST-shaped network (784-256-128-10, 4,096 random rows, batch 256).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.helpers import ROOT, md_table, median

SCRIPT = """
import os, signal, sys, threading, time, warnings
import numpy as np, polynn as pn
warnings.simplefilter("ignore")
case, backend, after = sys.argv[1], sys.argv[2], float(sys.argv[3])
if case == "spiral":
    X, y = pn.datasets.spiral(); sizes, batch, dtype = [2, 25, 3], None, "float64"
elif case == "digits":
    X, y = pn.datasets.digits(); sizes, batch, dtype = [64, 64, 10], 64, "float32"
else:
    rng = np.random.default_rng(0)
    X, y = rng.random((4096, 784), dtype=np.float32), rng.integers(0, 10, 4096)
    sizes, batch, dtype = [784, 256, 128, 10], 256, "float32"
model = pn.MLP(sizes, backend=backend, dtype=dtype, seed=0)
kw = dict(lr=0.01, batch_size=batch, shuffle=False, progress=False)
model.fit(X, y, epochs=1, **kw)
sent = []
def interrupt():
    sent.append(time.perf_counter())
    os.kill(os.getpid(), signal.SIGINT)
threading.Timer(after, interrupt).start()
history = model.fit(X, y, epochs=10**8, **kw)
print(time.perf_counter() - sent[0], history.stopped, history.steps)
"""
CASES = {"spiral": "reference program, full batch", "digits": "digits, batch 64",
         "mnist": "MNIST-shaped 784-256-128-10, batch 256"}  # fmt: skip


def latency(case: str, backend: str, after: float) -> tuple[float, str]:
    """(seconds from SIGINT to fit returning, how fit stopped) in a new process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, case, backend, str(after)], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    if out.returncode:
        return float("inf"), f"error: {out.stderr.strip().splitlines()[-1][:80]}"
    seconds, stopped, _steps = out.stdout.split()
    return float(seconds), stopped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="numpy,jax,torch")
    ap.add_argument("--after", type=float, default=2.0)
    ap.add_argument("--quick", action="store_true", help="one run per case")
    ap.add_argument("--md", default=None)
    args = ap.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    runs = {(c, b): [] for c in CASES for b in args.backends.split(",")}
    for _ in range(repeats):  # interleaved: each repeat visits every case once
        for (case, backend), got in runs.items():
            seconds, stopped = latency(case, backend, args.after)
            got.append((seconds, stopped, os.getloadavg()[0]))
            print(f"  {case} {backend}: {seconds:.3f} s ({stopped}), load {got[-1][2]:.2f}",
                  file=sys.stderr)  # fmt: skip
    rows = []
    for (case, backend), got in runs.items():
        times = [t for t, _, _ in got]
        stops = ", ".join(sorted({s for _, s, _ in got}))
        rows.append([CASES[case], backend, f"{median(times):.3f}", f"{max(times):.3f}",
                     "yes" if max(times) <= 0.5 else "NO", stops,
                     f"{median([x for _, _, x in got]):.2f}"])  # fmt: skip
    head = ["case", "backend", "median s", "worst s", "≤ 0.5 s", "stopped", "load (1 min)"]
    text = md_table(head, rows)
    print(text)
    if args.md:
        Path(args.md).write_text("## Ctrl-C: SIGINT to `fit` returning\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
