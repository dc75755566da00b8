"""Time polynn against its peers, side by side, in one run (usage: benchmarks/README.md).

Output: a table on stdout, ``OUT/results.json`` (every figure), ``OUT/RESULTS.md``, ``OUT/run.log``
(OUT defaults to benchmarks/out/, git-ignored). A full run also writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks import machine, report  # noqa: E402
from benchmarks.contestants import CPU_CONTESTANTS, REFERENCE_ONLY  # noqa: E402
from benchmarks.helpers import cli, load1, random_classification, run_python, save  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    SIZES,
    Workload,
    derive,
    measure,
    memory_steps,
    mnist_data,
    settings,
    timed_workloads,
)

HERE = Path(__file__).resolve().parent
WORKLOADS = ("reference", "mnist-step", "mnist-epoch", "wide", "memory", "gpu", "scaling",
             "memory-size", "startup", "interrupt")  # fmt: skip
ALIASES = {"spiral": "reference"}
GPU_CONTESTANTS = ("numpy-hand", "jax-jit", "jax-scan", "torch", "polynn-cupy", "polynn-jax")


class Log:
    """Progress on stderr and in OUT/run.log, with the seconds since the start."""

    def __init__(self, path: Path):
        self.f, self.t0 = open(path, "w"), time.perf_counter()  # noqa: SIM115

    def __call__(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, file=sys.stderr, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def parse(argv):
    ap = cli("python -m benchmarks.run", __doc__, "--quick", "--json",
             quick="short smoke run (same model shapes; fewer steps and repeats, a 15,000-row "
             "epoch)", json="JSON path (default OUT/results.json)")  # fmt: skip
    add = ap.add_argument
    add("--out", default=str(HERE / "out"), help="output folder (default benchmarks/out)")
    add("--results-md", default=None,
        help="also write the RESULTS.md here (a full run defaults to benchmarks/RESULTS.md)")
    add("--no-results-md", action="store_true", help="never write benchmarks/RESULTS.md")
    add("--only", default="", help="comma list of contestants and/or workloads, e.g. 'reference' "
        f"for the reference program only (contestants: {','.join(CPU_CONTESTANTS)})")
    add("--workloads", default="", help=f"comma list of workloads (default: {','.join(WORKLOADS)})")
    add("--seed", type=int, default=0)
    add("--timeout", type=float, default=None, help="seconds per contestant and workload")
    add("--threads", type=int, default=None,
        help="limit every library to N threads (BLAS/OpenMP via threadpoolctl, "
        "torch.set_num_threads, and for N=1 XLA's Eigen pool); default: each library's own")
    add("--gpu-dry-run", action="store_true", help="walk the GPU workload's code on the CPU "
        "with small shapes (labelled, never a GPU result)")
    args = ap.parse_args(argv)
    split = lambda s: [ALIASES.get(x, x) for x in s.split(",") if x]  # noqa: E731
    only, chosen = split(args.only), split(args.workloads)
    args.contestants = tuple(x for x in only if x not in WORKLOADS)
    args.chosen = tuple(chosen + [x for x in only if x in WORKLOADS])
    if bad := [w for w in chosen if w not in WORKLOADS]:
        ap.error(f"unknown workload {bad[0]!r}; choose from {WORKLOADS}")
    if bad := [n for n in args.contestants if n not in CPU_CONTESTANTS]:
        ap.error(f"unknown contestant or workload {bad[0]!r}; contestants: {CPU_CONTESTANTS}, "
                 f"workloads: {WORKLOADS}")  # fmt: skip
    return args


def setup(args, argv, log) -> dict:
    """Settings, threads, JAX's x64 and the machine's description: the run's ``results``."""
    S = settings(args.quick, seed=args.seed, contestants=args.contestants, workloads=args.chosen,
                 **({"timeout_s": args.timeout} if args.timeout else {}))  # fmt: skip
    warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
    threads = machine.limit_threads(args.threads, log) if args.threads else "library defaults"
    try:  # float64 on JAX needs x64: on once, up front (explicit float32 arrays stay float32)
        jax_ok = __import__("jax").config.update("jax_enable_x64", True) or True
    except Exception as e:  # noqa: BLE001
        jax_ok = log(f"jax unavailable: {type(e).__name__}: {e}") or False
    argv = sys.argv[1:] if argv is None else argv
    # polynn raises glibc's malloc thresholds when it loads a library; set them before anything
    # is timed so that every contestant of this process (peers too) runs with the same allocator
    from polynn.backend.allocator import tune_allocator

    allocator = {str(k): v for k, v in tune_allocator().items()}
    meta = {"command": "python -m benchmarks.run " + " ".join(argv), "allocator": allocator,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": S.quick, **machine.describe(), "jax_x64": jax_ok, "threads": threads}
    log(f"polynn benchmarks ({'quick' if S.quick else 'full'}): {meta['cpu_model']}, "
        f"{meta['cores_usable']} cores, load {meta['loadavg_start']}")
    log(f"versions: {meta['versions']}; BLAS: {meta['blas']}")
    return {"meta": meta, "settings": vars(S), "S": S, "rows": [], "memory": [],
            "ceilings": None}  # fmt: skip


def main(argv=None) -> int:
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "run.log")
    res = setup(args, argv, log)
    S, meta = res.pop("S"), res["meta"]
    wanted = lambda w: not S.workloads or w in S.workloads  # noqa: E731
    names = [n for n in CPU_CONTESTANTS if not S.contestants or n in S.contestants]
    # the matmul ceiling, for the workloads that report a fraction of it: at the start and again
    # at the end (load comes and goes: the ceiling is the best seen)
    need_ceiling = any(map(wanted, ("mnist-step", "mnist-epoch", "wide", "gpu")))
    libs = ["numpy"] + (["jax"] if meta["jax_x64"] else []) + ["torch"]
    ceilings = lambda: machine.measure_ceilings(  # noqa: E731
        libs, ("float32", "float64"), S.ceiling_n, S.ceiling_rounds, "cpu", log)
    res["ceilings"] = ceilings() if need_ceiling else None
    probe = meta["thread_probe"] = machine.thread_probe()
    if probe.get("default_over_1thread", 0) > 1.5:
        log(f"  WARNING: multithreaded BLAS is {probe['default_over_1thread']:.1f}x SLOWER than "
            "one thread on small products right now: the cores are oversubscribed by other "
            "processes; expect noisy, thread-sensitive timings (try --threads 1)")
    for name, make in timed_workloads(S, names, bool(S.workloads or S.contestants)).items():
        if wanted(name):
            w, entries, rounds = make()
            log(f"{name}: {w.sizes}, {w.X.shape[0]} rows: {rounds} round(s) of {w.call}({w.n}), "
                f"interleaved; load {load1()}")
            res["rows"] += measure(S, log, w, entries, rounds)
    if wanted("memory"):
        log(f"memory: MNIST-shaped fixed batch, {S.memory_steps[0]} vs {S.memory_steps[-1]} steps")
        res["memory"] = memory_steps(S, log, [n for n in names if n not in REFERENCE_ONLY],
                                     *mnist_data(S)[2:], warmup_all=not S.quick)
    res["gpu"] = {"status": "not run (--workloads)", "rows": [], "ceilings": None}
    if wanted("gpu") or args.gpu_dry_run:
        res["gpu"] = run_gpu(S, log, args.gpu_dry_run)
    focused = S.quick or S.workloads or S.contestants  # writes its sections in OUT, not here
    res["sections"] = {w: run_section(module, (out if focused else HERE) / report.section_md(
        module), S.quick, log) for w, module in report.SECTIONS.items() if wanted(w)}  # fmt: skip
    if need_ceiling:
        log("matmul ceiling again at the end")
        end, C = ceilings(), res["ceilings"]
        C["by_lib_end"] = end["by_lib"]
        C["ceiling"] = {d: max(C["ceiling"].get(d, 0.0), v) for d, v in end["ceiling"].items()}
        meta["ceiling_end_numpy_float32"] = end["by_lib"].get("float32", {}).get("numpy")
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["wall_s"] = round(time.perf_counter() - log.t0, 1)
    derive(res["rows"], (res["ceilings"] or {}).get("ceiling", {}))
    derive(res["gpu"]["rows"], (res["gpu"]["ceilings"] or {}).get("ceiling", {}))
    res["targets"] = report.targets(res, lambda w: wanted(w) or (w == "gpu" and args.gpu_dry_run),
                                    report.load_previous())  # fmt: skip
    write(res, args, out, log)  # files first: a closed stdout must not lose them
    print("\n\n".join(report.summary(res)))
    return 0


def run_gpu(S, log, dry_run: bool) -> dict:
    """Workload 4 on a GPU (CuPy, JAX, PyTorch), or "skipped: no usable GPU (why)"; the dry run
    walks the same code on the CPU with small shapes, labelled "gpu-dryrun", never a GPU result."""
    usable, reasons = machine.gpu_probe()
    if not usable and not dry_run:
        log("  skipped: no usable GPU: " + "; ".join(reasons))
        return {"status": f"skipped: no usable GPU ({'; '.join(reasons)})", "rows": [],
                "ceilings": None, "usable": usable}  # fmt: skip
    if dry_run:
        log("  GPU DRY RUN on the CPU with small shapes: checks the code path, NOT a GPU result")
        device, name, sizes, batch, ceil_n = "cpu", "gpu-dryrun", [256, 256, 256, 10], 512, 512
        libs = ["numpy", "jax", "torch"]
    else:
        device, name, sizes, batch = "gpu", "gpu", SIZES["gpu"], S.gpu_batch
        ceil_n = S.gpu_ceiling_n
        libs = [lib for lib in ("cupy", "jax", "torch") if lib in usable]
    ceilings = machine.measure_ceilings(libs, ("float32", "bfloat16"), ceil_n, S.ceiling_rounds,
                                        device, log)  # fmt: skip
    X, y = random_classification(S.seed + 4, batch, sizes[0], sizes[-1], "normal")
    w = Workload(name, sizes, X, y, S.lr_large, n=S.gpu_steps, device=device)
    names = [n for n in GPU_CONTESTANTS if not S.contestants or n in S.contestants]
    rows = [r for d in ("float32", "bfloat16")
            for r in measure(S, log, w, [(n, d, S.gpu_repeats) for n in names])]  # fmt: skip
    return {"status": "dry run on the CPU (not a GPU result)" if dry_run else "ran", "rows": rows,
            "ceilings": ceilings, "usable": usable, "sizes": sizes, "batch": batch,
            "reasons_unusable": reasons}  # fmt: skip


def run_section(module: str, dest: Path, quick: bool, log) -> dict:
    """``python -m module --md dest [--quick]`` in a fresh process (its own memory and its own JAX
    device count); the run survives its failure."""
    if importlib.util.find_spec(module) is None:
        return {"status": f"not run: {module} is not present", "path": None}
    cmd = ["-m", module, "--md", str(dest)] + (["--quick"] if quick else [])
    log(f"{module}: {' '.join(cmd)} (load {load1():.2f})")
    t0 = time.perf_counter()
    try:
        run_python([cmd], 600 if quick else 900)
    except RuntimeError as e:
        log(f"  {module} failed: {e}")
        return {"status": f"error: {e}", "path": None}
    wall = time.perf_counter() - t0
    log(f"  {module}: wrote {dest} in {wall:.0f} s")
    return {"status": f"ran in {wall:.0f} s", "path": str(dest), "wall_s": wall}


def write(res: dict, args, out: Path, log) -> None:
    """results.json and RESULTS.md in OUT; a full run also benchmarks/RESULTS.md."""
    S = res["settings"]
    json_path = Path(args.json) if args.json else out / "results.json"
    default = lambda o: o.tolist() if isinstance(o, (np.ndarray, np.generic)) else str(o)  # noqa: E731
    save(json_path, json.dumps(res, indent=1, default=default))
    save(out / "RESULTS.md", md := report.results_md(res))
    focused = S["quick"] or args.no_results_md or S["contestants"] or S["workloads"]
    dest = args.results_md or (None if focused else str(HERE / "RESULTS.md"))
    save(dest, md)
    log(f"wrote {json_path}, {out / 'RESULTS.md'}" + (f", {dest}" if dest else ""))


if __name__ == "__main__":
    sys.exit(main())
