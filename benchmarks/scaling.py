"""Data-parallel scaling on this machine: polynn's JAX step on 1, 2 and 4 forced CPU devices and
on 2 processes (1 CPU device each, gloo collectives over localhost).

    python -m benchmarks.scaling [--md PATH] [--quick]

Every configuration runs in its own subprocess(es), because the CPU device count is fixed when
JAX starts. Each reports the median seconds per training step of a timed ``fit`` after a
warm-up ``fit`` (compilation excluded), float32. The 1-minute load average is printed with each
row: this machine is shared, so compare rows taken under similar load only. CPU "devices" share
the same cores, so on a 2-core machine more devices cannot be faster; see the README section
"Multi-device training" for when it pays on GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MNIST = [784, 256, 128, 10]
# name -> (layer sizes, rows, batch size or None for full batch, epochs timed)
WORKLOADS = {"mnist-batch": (MNIST, 8192, 256, 1), "mnist-full": (MNIST, 8192, None, 4),
             "wide-full": ([1024, 2048, 2048, 10], 512, None, 3)}
QUICK = {"mnist-batch": (MNIST, 2048, 256, 1), "mnist-full": (MNIST, 2048, None, 2),
         "wide-full": ([1024, 1024, 1024, 10], 256, None, 2)}
CONFIGS = [(1, 1), (2, 1), (4, 1), (2, 2)]  # (devices, processes)


def worker(args) -> None:
    """One configuration, in a process whose devices were fixed by the parent's environment."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    import polynn as pn

    if args.coordinator:
        pn.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    sizes, rows, batch, epochs = (QUICK if args.quick else WORKLOADS)[args.workload]
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(rows, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], rows)
    mesh = None if jax.device_count() == 1 else "all"
    model = pn.MLP(sizes, backend="jax", dtype="float32", mesh=mesh)
    fit = dict(lr=0.01, batch_size=batch, optimizer="sgd")
    model.fit(X, y, epochs=epochs, **fit)  # compile (full batch: the adaptive chunks too)
    steps_per_epoch = 1 if batch is None else -(-rows // batch)
    times = []
    for _ in range(3 if args.quick else 5):
        tic = time.perf_counter()
        history = model.fit(X, y, epochs=epochs, **fit)
        times.append((time.perf_counter() - tic) / (history.epochs * steps_per_epoch))
    if pn.distributed.is_main_process():
        print(json.dumps({"step_s": float(np.median(times)), "devices": jax.device_count(),
                          "processes": jax.process_count(), "load": os.getloadavg()[0]}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(workload: str, devices: int, processes: int, quick: bool) -> dict:
    base = [sys.executable, "-m", "benchmarks.scaling", "--worker", "--workload", workload]
    base += ["--quick"] if quick else []
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "JAX_NUM_CPU_DEVICES": str(devices // processes)}
    env.pop("XLA_FLAGS", None)
    if processes == 1:
        commands = [base]
    else:
        port = _free_port()
        commands = [base + ["--coordinator", f"127.0.0.1:{port}", "--num-processes",
                            str(processes), "--process-id", str(i)] for i in range(processes)]
    children = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [child.communicate(timeout=1200) for child in children]
    for child, (_, err) in zip(children, outputs):
        if child.returncode != 0:
            raise RuntimeError(f"{workload} on {devices} device(s), {processes} process(es) "
                               f"failed:\n{err[-2000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--md", type=Path, help="write the markdown section here")
    ap.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden, kind in (("--workload", str), ("--coordinator", str), ("--num-processes", int),
                         ("--process-id", int)):  # fmt: skip
        ap.add_argument(hidden, type=kind, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    table = WORKLOADS if not args.quick else QUICK
    lines = ["## Multi-device scaling (JAX mesh, forced CPU devices)", "",
             f"{os.cpu_count()} CPU cores; float32; median seconds per training step after "
             "warm-up; 'x 1-dev' is the step time relative to one device (below 1 is faster); "
             "load = 1-minute load average when the row was measured.", "",
             "| workload | layers | rows | batch | devices | processes | step (ms) | x 1-dev "
             "| load |", "|---|---|---|---|---|---|---|---|---|"]
    for name, (sizes, rows, batch, _) in table.items():
        base = None
        for devices, processes in CONFIGS:
            r = run_config(name, devices, processes, args.quick)
            base = base or r["step_s"]
            row = (f"| {name} | {'-'.join(map(str, sizes))} | {rows} | {batch or 'full'} | "
                   f"{devices} | {processes} | {1e3 * r['step_s']:.2f} | "
                   f"{r['step_s'] / base:.2f} | {r['load']:.2f} |")
            print(row, flush=True)
            lines.append(row)
    lines += ["", "CPU devices forced with `JAX_NUM_CPU_DEVICES` share this machine's cores, so "
              "splitting a step over them adds all-reduce and dispatch work without adding "
              "compute: more devices are not faster here. See the README's \"Multi-device "
              "training\" for the step-time model on GPUs.", ""]
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text("\n".join(lines))
        print(f"wrote {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
