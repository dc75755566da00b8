"""Ctrl-C latency (issue 18 §5): how long ``polynn train`` takes to stop training after SIGINT.

    python -m benchmarks.interrupt [--repeats 3] [--backends numpy,jax,torch] [--md PATH]

Each case starts ``polynn train`` in a new process with far more epochs than it can run, waits
until it has trained for a while (``--after`` seconds after its first line of output), sends
SIGINT and measures the time until it prints that it was interrupted (training stopped; the
report and the exit follow). Cases: the reference program's full batch, and digits in
mini-batches of 64. The 1-minute load average stands next to every figure.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.helpers import ROOT, md_table, median

CASES = {"spiral full batch": ["--epochs", "100000000"],
         "digits batch 64": ["--dataset", "digits", "--layers", "64", "--batch-size", "64",
                             "--epochs", "1000000", "--lr", "0.01"]}  # fmt: skip


def latency(backend: str, extra: list[str], after: float, limit: float = 120.0) -> float:
    """Seconds from SIGINT to the "interrupted" line; inf if it never comes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    argv = [sys.executable, "-u", "-m", "polynn.cli", "train", "--backend", backend,
            "--print-every", "1000000000", *extra]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sent, start = None, time.perf_counter()
    try:
        while time.perf_counter() - start < limit:
            if sent is None and "training:" in _lines(proc, sel, 0.05, []):
                time.sleep(after)  # training (and its compilation) under way
                sent = time.perf_counter()
                proc.send_signal(signal.SIGINT)
            elif sent is not None:
                got = []
                if any("interrupted" in line for line in _lines(proc, sel, 0.01, got, True)):
                    return time.perf_counter() - sent
            if proc.poll() is not None and sent is not None:
                return float("inf")
        return float("inf")
    finally:
        proc.kill()
        proc.wait()


def _lines(proc, sel, timeout, out, as_list=False):
    """Lines available on ``proc.stdout`` within ``timeout`` (joined, or the list)."""
    for _key, _ in sel.select(timeout):
        line = proc.stdout.readline()
        if line:
            out.append(line)
    return out if as_list else "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="numpy,jax,torch")
    ap.add_argument("--after", type=float, default=3.0)
    ap.add_argument("--md", default=None)
    args = ap.parse_args(argv)
    rows = []
    for case, extra in CASES.items():
        for backend in args.backends.split(","):
            runs = []
            for _ in range(args.repeats):
                runs.append((latency(backend, extra, args.after), os.getloadavg()[0]))
                print(f"  {case} {backend}: {runs[-1][0]:.3f} s", file=sys.stderr)
            times = [t for t, _ in runs]
            rows.append([case, backend, f"{median(times):.3f}", f"{max(times):.3f}",
                         "yes" if max(times) <= 0.5 else "NO",
                         f"{median([x for _, x in runs]):.2f}"])  # fmt: skip
    text = md_table(["case", "backend", "median s", "worst s", "≤ 0.5 s", "load (1 min)"], rows)
    print(text)
    if args.md:
        Path(args.md).write_text("## Ctrl-C: SIGINT to training stopped\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
