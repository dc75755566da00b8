"""Time polynn against its peers, side by side, in one run.

    python -m benchmarks.run                   # full run (writes benchmarks/RESULTS.md too)
    python -m benchmarks.run --quick           # smoke run, a few minutes on 2 cores
    python -m benchmarks.run --only reference  # the reference program only (issue 9), ~1-3 min
    python benchmarks/run.py --quick --out /tmp/bench --json /tmp/bench/r.json

Output: a table on stdout, ``OUT/results.json`` (every figure), ``OUT/RESULTS.md``, ``OUT/run.log``
(OUT defaults to benchmarks/out/, git-ignored). A full run also writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.ceiling import measure_ceilings, thread_probe  # noqa: E402
from benchmarks.common import (  # noqa: E402
    cpu_model,
    random_classification,
    usable_cores,
)
from benchmarks.contestants import CPU_CONTESTANTS  # noqa: E402
from benchmarks.gpu import run_gpu  # noqa: E402
from benchmarks.harness import Harness  # noqa: E402
from benchmarks.reference import run_reference  # noqa: E402
from benchmarks.reference import table as reference_table  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    SIZES,
    OneEpoch,
    PerStep,
    Settings,
    memory,
)

HERE = Path(__file__).resolve().parent
# "scaling" and "memory-size" run benchmarks/scaling.py and benchmarks/memory.py in subprocesses
WORKLOADS = (
    "reference", "mnist-step", "mnist-epoch", "wide", "memory", "gpu", "scaling", "memory-size",
)  # fmt: skip
ALIASES = {"spiral": "reference"}
SECTIONS = {  # workload: (module, the markdown file a full run regenerates)
    "scaling": ("benchmarks.scaling", HERE / "SCALING.md"),
    "memory-size": ("benchmarks.memory", HERE / "MEMORY.md"),
}


class Log:
    def __init__(self, path: Path | None):
        self.f = open(path, "w") if path else None  # noqa: SIM115
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, file=sys.stderr, flush=True)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()


def _versions() -> dict:
    out = {}
    for mod in ("numpy", "jax", "jaxlib", "torch", "sklearn", "cupy", "array_api_compat", "polynn"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001
            out[mod] = f"unavailable ({type(e).__name__})"
    return out


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(
            f"{d.get('internal_api')} {d.get('version')} "
            f"({d.get('threading_layer', '')}, {d.get('num_threads')} threads)"
            for d in threadpool_info()
        )
    except Exception:  # noqa: BLE001
        cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
        try:
            b = cfg["Build Dependencies"]["blas"]
            return f"{b['name']} {b['version']}"
        except Exception:  # noqa: BLE001
            return "?"


def _git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + (" (working tree has uncommitted changes)" if dirty else "")
    except Exception:  # noqa: BLE001
        return "?"


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None
    return None


def limit_threads(n: int, log) -> str:
    """Cap every library at ``n`` threads; runs before JAX is imported (XLA reads flags once)."""
    done = []
    if n == 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        ).strip()
        done.append("XLA_FLAGS=--xla_cpu_multi_thread_eigen=false")
    else:
        done.append("JAX: default (XLA has no simple N-thread cap)")
    try:
        import torch

        torch.set_num_threads(n)
        done.append(f"torch.set_num_threads({n})")
    except Exception:  # noqa: BLE001
        pass
    try:
        import sklearn.neural_network  # noqa: F401  (load its BLAS before limiting)
        from threadpoolctl import threadpool_limits

        global _THREAD_LIMITS
        _THREAD_LIMITS = threadpool_limits(limits=n)
        done.append(f"threadpoolctl limits={n} (BLAS and OpenMP)")
    except Exception as e:  # noqa: BLE001
        done.append(f"threadpoolctl failed: {e}")
    msg = "; ".join(done)
    log(f"threads capped at {n}: {msg}")
    return msg


_THREAD_LIMITS = None


def setup_jax(log) -> bool:
    """float64 on JAX needs x64: on once, up front (explicit float32 arrays stay float32)."""
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        return True
    except Exception as e:  # noqa: BLE001
        log(f"jax unavailable: {type(e).__name__}: {e}")
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (same model shapes; fewer steps and repeats, a 15,000-row epoch)",
    )
    ap.add_argument(
        "--out", default=str(HERE / "out"), help="output folder (default benchmarks/out)"
    )
    ap.add_argument("--json", default=None, help="JSON path (default OUT/results.json)")
    ap.add_argument(
        "--results-md",
        default=None,
        help="also write the RESULTS.md here (a full run defaults to benchmarks/RESULTS.md)",
    )
    ap.add_argument(
        "--no-results-md", action="store_true", help="never write benchmarks/RESULTS.md"
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma list of contestants and/or workloads, e.g. 'reference' for the reference "
        f"program only (contestants: {','.join(CPU_CONTESTANTS)}; workloads: see --workloads)",
    )
    ap.add_argument(
        "--workloads",
        default="",
        help=f"comma list of workloads (default all: {','.join(WORKLOADS)})",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--timeout", type=float, default=None, help="seconds per contestant and workload"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit every library to N threads (BLAS/OpenMP via threadpoolctl, "
        "torch.set_num_threads, "
        "and for N=1 XLA's Eigen pool); default: each library's own default",
    )
    ap.add_argument(
        "--gpu-dry-run",
        action="store_true",
        help="walk the GPU workload's code on the CPU with small shapes "
        "(labelled, never a GPU result)",
    )
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "run.log")
    kw = {"seed": args.seed}
    if args.timeout:
        kw["timeout_s"] = args.timeout
    S = Settings.make(args.quick, **kw)
    only = [ALIASES.get(x, x) for x in args.only.split(",") if x]
    S.contestants = tuple(x for x in only if x not in WORKLOADS)
    S.workloads = tuple(
        ALIASES.get(x, x) for x in args.workloads.split(",") + only if x and ALIASES.get(x, x)
        in WORKLOADS
    )  # fmt: skip
    for w in (ALIASES.get(x, x) for x in args.workloads.split(",") if x):
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; choose from {WORKLOADS}")
    for n in S.contestants:
        if n not in CPU_CONTESTANTS:
            ap.error(f"unknown contestant or workload {n!r}; contestants: {CPU_CONTESTANTS}, "
                     f"workloads: {WORKLOADS}")  # fmt: skip
    wanted = lambda w: not S.workloads or w in S.workloads  # noqa: E731
    names = [n for n in CPU_CONTESTANTS if not S.contestants or n in S.contestants]

    warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
    thread_setup = limit_threads(args.threads, log) if args.threads else "library defaults"
    jax_ok = setup_jax(log)
    meta = {
        "command": "python -m benchmarks.run "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": S.quick,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cores_usable": usable_cores(),
        "mem_total_gib": _mem_total_gib(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": _versions(),
        "blas": _blas(),
        "git_commit": _git_commit(),
        "jax_x64": jax_ok,
        "threads": thread_setup,
    }
    try:
        import torch

        meta["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        meta["torch_threads"] = None
    try:
        import jax

        meta["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception:  # noqa: BLE001
        meta["jax_devices"] = None
    log(
        f"polynn benchmarks ({'quick' if S.quick else 'full'}): {meta['cpu_model']}, "
        f"{meta['cores_usable']} cores, "
        f"load {meta['loadavg_start']}"
    )
    log(f"versions: {meta['versions']}; BLAS: {meta['blas']}")

    results: dict = {"meta": meta, "settings": dataclasses.asdict(S), "rows": [], "memory": []}
    H = Harness(S, log)

    # -- ceilings (only for the workloads that report a fraction of them) --------------------------
    need_ceiling = any(wanted(w) for w in ("mnist-step", "mnist-epoch", "wide", "gpu"))
    libs = ["numpy"] + (["jax"] if jax_ok else []) + ["torch"]
    if need_ceiling:
        log(f"matmul ceiling (CPU), n={S.ceiling_n}")
        results["ceilings"] = measure_ceilings(
            libs, ("float32", "float64"), S.ceiling_n, S.ceiling_rounds, "cpu", log
        )
    else:
        results["ceilings"] = None
    probe = thread_probe(reps=50)
    meta["thread_probe"] = probe
    if "us_per_matmul" in probe:
        us = probe["us_per_matmul"]
        log(
            f"BLAS thread probe ({probe['shape']}): default threads {us['default']:.0f} us, "
            f"1 thread {us['1 thread']:.0f} us, default again {us['default again']:.0f} us"
        )
        if probe["default_over_1thread"] > 1.5:
            log(
                f"  WARNING: multithreaded BLAS is {probe['default_over_1thread']:.1f}x SLOWER "
                "than "
                "one thread on small products right now: the cores are oversubscribed (other "
                "processes); expect noisy, "
                "thread-sensitive timings (try --threads 1)"
            )

    # -- workload 1: the reference program (issue 9), against hand-written NumPy float64 ----------
    if wanted("reference"):
        # the informational rows (torch, sklearn, ...) in full and quick runs, not focused ones
        results["rows"] += run_reference(
            S, H, log, S.contestants, extra=not S.workloads
        )

    # -- workload 2: MNIST-shaped ------------------------------------------------------------------
    if wanted("mnist-step") or wanted("mnist-epoch") or wanted("memory"):
        Xm, ym = random_classification(S.seed + 2, S.mnist_rows, 784, 10, "float32", "uniform")
        Xb, yb = Xm[: S.mnist_batch], ym[: S.mnist_batch]
    if wanted("mnist-step"):
        log(
            f"workload 2: MNIST-shaped {SIZES['mnist']}, batch {S.mnist_batch}, float32: "
            f"{S.mnist_repeats} timed runs of {S.mnist_steps} steps"
        )
        results["rows"] += H.timed(
            lambda init: PerStep(init, Xb, yb, S.l2, log, S.mnist_steps, "mnist-step"),
            names, SIZES["mnist"], "float32", "cpu", S.mnist_repeats, lr=S.lr_large,
        )  # fmt: skip
    if wanted("mnist-epoch"):
        Xe, ye = Xm[: S.epoch_rows], ym[: S.epoch_rows]
        log(
            f"workload 2: one epoch of {S.epoch_rows} rows, batch {S.mnist_batch} "
            f"(remainder kept), {S.epoch_repeats} timed"
        )
        results["rows"] += H.timed(
            lambda init: OneEpoch(init, Xe, ye, S.l2, log, S.mnist_batch, warm_all=not S.quick),
            names, SIZES["mnist"], "float32", "cpu", S.epoch_repeats, lr=S.lr_large,
        )  # fmt: skip

    # -- workload 3: wide --------------------------------------------------------------------------
    if wanted("wide"):
        Xw, yw = random_classification(S.seed + 3, S.wide_batch, 1024, 10, "float32", "normal")
        log(
            f"workload 3: wide {SIZES['wide']}, batch {S.wide_batch}, float32: "
            f"{S.wide_repeats} timed runs of {S.wide_steps} steps"
        )
        results["rows"] += H.timed(
            lambda init: PerStep(init, Xw, yw, S.l2, log, S.wide_steps, "wide"),
            names, SIZES["wide"], "float32", "cpu", S.wide_repeats, lr=S.lr_large,
        )  # fmt: skip

    # -- memory ------------------------------------------------------------------------------------
    if wanted("memory"):
        log(f"memory: MNIST-shaped fixed batch, {S.memory_steps[0]} vs {S.memory_steps[-1]} steps")
        results["memory"] += H.each(
            lambda c, init: memory(
                c, init, Xb, yb, S.memory_steps, log, warmup=(not S.quick) or c.jit
            ),
            names, SIZES["mnist"], "float32", "cpu", "memory", lr=S.lr_large,
        )  # fmt: skip

    # -- workload 4: GPU ---------------------------------------------------------------------------
    if wanted("gpu") or args.gpu_dry_run:
        log("workload 4: GPU " + str(SIZES["gpu"]) + f", batch {S.gpu_batch}, float32 and bfloat16")
        try:
            results["gpu"] = run_gpu(S, H, log, dry_run=args.gpu_dry_run)
        except Exception as e:  # noqa: BLE001
            log(f"  GPU workload failed: {type(e).__name__}: {e}")
            results["gpu"] = {
                "status": f"error: {type(e).__name__}: {e}",
                "rows": [],
                "ceilings": None,
            }
    else:
        results["gpu"] = {"status": "not run (--workloads)", "rows": [], "ceilings": None}

    # -- issue 10 and 11 tables: their own scripts, in fresh processes ----------------------------
    results["sections"] = {}
    for w, (module, md) in SECTIONS.items():
        if wanted(w):
            dest = md if not (S.quick or S.workloads or S.contestants) else out / md.name
            results["sections"][w] = run_section(module, dest, S.quick, log)

    # -- report ------------------------------------------------------------------------------------
    # the ceilings again: load from other processes comes and goes; the ceiling is the best seen
    if need_ceiling:
        log("matmul ceiling again at the end")
        end = measure_ceilings(
            libs, ("float32", "float64"), S.ceiling_n, S.ceiling_rounds, "cpu", log
        )
        C = results["ceilings"]
        C["by_lib_end"] = end["by_lib"]
        for dtype, best in end["ceiling"].items():
            C["ceiling"][dtype] = max(C["ceiling"].get(dtype, 0.0), best)
        meta["ceiling_end_numpy_float32"] = end["by_lib"].get("float32", {}).get("numpy")
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["wall_s"] = round(time.perf_counter() - log.t0, 1)
    report.derive(results)
    if results["gpu"].get("rows"):
        gpu_view = {**results, "rows": results["gpu"]["rows"]}
        report.derive(gpu_view)
    results["targets"] = [
        t
        for t in report.targets(results, previous=report.load_previous())
        if wanted(report.target_workload(t["id"])) or (t["id"] == "gpu" and args.gpu_dry_run)
    ]

    # files first (a closed stdout must not lose them), then the printed report
    json_path = Path(args.json) if args.json else out / "results.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=_json_default))
    (out / "RESULTS.md").write_text(report.results_md(results))
    dest = args.results_md or (
        None
        if (S.quick or args.no_results_md or S.contestants or S.workloads)
        else str(HERE / "RESULTS.md")
    )
    if dest and Path(dest).resolve() != (out / "RESULTS.md").resolve():
        shutil.copyfile(out / "RESULTS.md", dest)
    log(f"wrote {json_path}, {out / 'RESULTS.md'}" + (f", {dest}" if dest else ""))

    ref_rows = [r for r in results["rows"] if r["workload"] == "reference"]
    if ref_rows:
        print("Reference program (spiral 300x2, 2-25-3, "
              f"{S.spiral_steps} full-batch steps), against numpy-hand float64:")  # fmt: skip
        print(reference_table(ref_rows))
        print()
    if any(r["workload"] != "reference" for r in results["rows"]):
        print(report.table(results))
        print()
    if results["memory"]:
        print(report.memory_table(results))
        print()
    if results.get("ceilings"):
        print(report.ceiling_table(results.get("ceilings"), "CPU matmul ceiling"))
        print()
    print("GPU:", results["gpu"]["status"])
    for w, sec in results["sections"].items():
        print(f"{w}: {sec['status']}" + (f" -> {sec['path']}" if sec.get("path") else ""))
    print()
    print(report.targets_md(results["targets"]))
    print(f"\nload average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}")
    print(f"\nwall time {meta['wall_s']} s")
    return 0


def run_section(module: str, dest: Path, quick: bool, log) -> dict:
    """Run ``python -m module --md dest [--quick]`` in a fresh process (its own memory and its
    own JAX device count); the run survives its failure. Returns status and path."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        log(f"{module}: not present, skipped")
        return {"status": f"not run: {module} is not present", "path": None}
    cmd = [sys.executable, "-m", module, "--md", str(dest)] + (["--quick"] if quick else [])
    log(f"{module}: {' '.join(cmd[1:])} (load {os.getloadavg()[0]:.2f})")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, cwd=str(HERE.parent), capture_output=True, text=True,
            timeout=600 if quick else 900,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"status": f"error: {module} timed out", "path": None}
    wall = time.perf_counter() - t0
    tail = (p.stdout + p.stderr).strip().splitlines()[-5:]
    if p.returncode != 0 or not dest.exists():
        log(f"  {module} failed (exit {p.returncode}): " + " / ".join(tail))
        return {"status": f"error: exit {p.returncode}: {' / '.join(tail)[-300:]}", "path": None}
    log(f"  {module}: wrote {dest} in {wall:.0f} s")
    return {"status": f"ran in {wall:.0f} s", "path": str(dest), "wall_s": wall}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


if __name__ == "__main__":
    sys.exit(main())
