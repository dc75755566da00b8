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

import json
import os
import socket
import sys
import time

from benchmarks.helpers import cli, md_table, random_classification, run_workers, save

MNIST, WIDE = [784, 256, 128, 10], [1024, 2048, 2048, 10]
# name -> (layer sizes, rows, batch size or None for full batch, epochs timed); --quick: QUICK
WORKLOADS = {"mnist-batch": (MNIST, 8192, 256, 1), "mnist-full": (MNIST, 8192, None, 4),
             "wide-full": (WIDE, 512, None, 3)}
QUICK = {"mnist-batch": (MNIST, 2048, 256, 1), "mnist-full": (MNIST, 2048, None, 2),
         "wide-full": ([1024, 1024, 1024, 10], 256, None, 2)}
CONFIGS = [(1, 1), (2, 1), (4, 1), (2, 2)]  # (devices, processes)


def worker(workload: str, quick: bool, coordinator=None, processes=1, process_id=0) -> None:
    """One configuration, in a process whose devices were fixed by the parent's environment."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    import polynn as pn

    if coordinator:
        pn.distributed.initialize(coordinator, processes, process_id)
    import jax

    sizes, rows, batch, epochs = (QUICK if quick else WORKLOADS)[workload]
    X, y = random_classification(0, rows, sizes[0], sizes[-1], "uniform")
    mesh = None if jax.device_count() == 1 else "all"
    model = pn.MLP(sizes, backend="jax", dtype="float32", mesh=mesh)
    fit = dict(lr=0.01, batch_size=batch, optimizer="sgd")
    model.fit(X, y, epochs=epochs, **fit)  # compile (full batch: the adaptive chunks too)
    steps_per_epoch = 1 if batch is None else -(-rows // batch)
    times = []
    for _ in range(3 if quick else 5):
        tic = time.perf_counter()
        history = model.fit(X, y, epochs=epochs, **fit)
        times.append((time.perf_counter() - tic) / (history.epochs * steps_per_epoch))
    if pn.distributed.is_main_process():
        print(json.dumps({"step_s": float(np.median(times)), "devices": jax.device_count(),
                          "processes": jax.process_count(), "load": os.getloadavg()[0]}))


def run_config(workload: str, devices: int, processes: int, quick: bool) -> dict:
    """One configuration in ``processes`` fresh processes of ``devices // processes`` devices."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jobs = [{"workload": workload, "quick": quick} | ({} if processes == 1 else {
        "coordinator": f"127.0.0.1:{port}", "processes": processes, "process_id": i})
        for i in range(processes)]  # fmt: skip
    env = {"JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices // processes),
           "XLA_FLAGS": None}  # fmt: skip
    try:
        return run_workers("benchmarks.scaling", jobs, 1200, env)
    except RuntimeError as e:
        raise RuntimeError(f"{workload}, {devices} device(s), {processes} process(es): {e}") from e


def main(argv=None) -> int:
    args = cli("python -m benchmarks.scaling", __doc__, "--md", "--quick", "--worker",
               quick="smaller workloads, fewer repeats").parse_args(argv)  # fmt: skip
    if args.worker:
        worker(**json.loads(args.worker))
        return 0
    rows = []
    for name, (sizes, n, batch, _) in (QUICK if args.quick else WORKLOADS).items():
        base = None
        for devices, processes in CONFIGS:
            r = run_config(name, devices, processes, args.quick)
            base = base or r["step_s"]
            rows.append([name, "-".join(map(str, sizes)), n, batch or "full", devices, processes,
                         f"{1e3 * r['step_s']:.2f}", f"{r['step_s'] / base:.2f}",
                         f"{r['load']:.2f}"])  # fmt: skip
            print(" | ".join(map(str, rows[-1])), flush=True)
    text = "\n".join([
        "## Multi-device scaling (JAX mesh, forced CPU devices)", "",
        f"{os.cpu_count()} CPU cores; float32; median seconds per training step after warm-up; "
        "'x 1-dev' is the step time relative to one device (below 1 is faster); load = 1-minute "
        "load average when the row was measured.", "",
        md_table(["workload", "layers", "rows", "batch", "devices", "processes", "step (ms)",
                  "x 1-dev", "load"], rows), "",
        "CPU devices forced with `JAX_NUM_CPU_DEVICES` share this machine's cores, so splitting a "
        "step over them adds all-reduce and dispatch work without adding compute: more devices "
        "are not faster here. See the README's \"Multi-device training\" for the step-time model "
        "on GPUs.", ""])  # fmt: skip
    save(args.md, text)
    print(f"wrote {args.md}" if args.md else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
