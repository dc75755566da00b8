"""The targets (a table of data, checked by one function), the tables, and RESULTS.md."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .contestants import POLYNN
from .helpers import md_table
from .workloads import FLOOR_US, REFERENCE_BASELINE, REFERENCE_TIGHT, rss_path

HERE = Path(__file__).resolve().parent
PREVIOUS = HERE / "previous_results.json"  # the last committed full run's ratios
NOISE = 0.10  # run-to-run spread of ratios seen on this shared machine (±10 %)
MIB = 2**20
POLYNN_GPU = ("polynn-cupy", "polynn-jax", "polynn-torch")
PEER_ORDER = ("jax-jit", "jax-scan", "torch", "sklearn")  # the "x peer" columns after numpy-hand
WORKLOAD_ORDER = ("mnist-step", "mnist-epoch", "wide", "gpu", "gpu-dryrun")
# issue 18 (2): each polynn backend against the native code of the same library
NATIVE = {"numpy": ("numpy-hand",), "jax": ("jax-jit", "jax-scan"), "torch": ("torch",)}
SECTIONS = {"scaling": "benchmarks.scaling", "memory-size": "benchmarks.memory",
            "startup": "benchmarks.startup", "interrupt": "benchmarks.interrupt"}  # each its own
# script, run in fresh processes by run.py, writing SCALING.md, MEMORY.md, STARTUP.md and
# INTERRUPT.md


def section_md(module: str) -> str:
    """The markdown file a section's module writes: SCALING.md, MEMORY.md."""
    return module.rsplit(".", 1)[1].upper() + ".md"


@dataclass(frozen=True)
class Target:
    """One target; ``kind`` (README, "Targets") says what is compared with ``need``: "speed" (the
    fastest of ``contestants`` over the fastest ``baseline`` row in ``baseline_dtype``, or over the
    matmul ceiling), "previous" (ratio to numpy-hand over the previous run's), "loss" (relative
    difference from the baseline's final loss, at most), "flat" (memory)."""

    id: str
    workload: str
    dtype: str
    contestants: tuple[str, ...]
    baseline: tuple[str, ...] | str
    need: float
    means: str
    kind: str = "speed"
    baseline_dtype: str | None = None


TARGETS = (
    Target("ref-polynn-jax-float64", "reference", "float64", ("polynn-jax",), ("numpy-hand",), 5.0,
           "issue 9: polynn-jax runs the reference program ≥ 5× faster than the hand loop"),
    Target("ref-polynn-jax-float32", "reference", "float32", ("polynn-jax",), ("numpy-hand",), 9.0,
           "issue 9: polynn-jax in float32 ≥ 9× the hand loop in float64",
           baseline_dtype="float64"),
    Target("ref-polynn-numpy-float64", "reference", "float64", ("polynn-numpy",), ("numpy-hand",),
           1.10, "issue 9: polynn-numpy ≥ 1.1× the hand loop"),
    Target("ref-loss", "reference", "float64", POLYNN, ("numpy-hand",), 1e-12,
           "final loss equal to the hand loop's to 1e-12 (relative)", kind="loss"),
    Target("18-3-jax-float64", "reference", "float64", ("polynn-jax",), ("numpy-tight",), 5.0,
           "issue 18 (3): polynn-jax ≥ 5× the tight hand loop"),
    Target("18-3-jax-float32", "reference", "float32", ("polynn-jax",), ("numpy-tight",), 9.0,
           "issue 18 (3): polynn-jax in float32 ≥ 9× the tight hand loop in float64",
           baseline_dtype="float64"),
    Target("18-3-numpy", "reference", "float64", ("polynn-numpy",), ("numpy-tight",), 1.5,
           "issue 18 (3): polynn-numpy ≥ 1.5× the tight hand loop"),
    *(Target(f"18-2-{b}-{w}", w, "float32", (f"polynn-{b}",), peers, 1.0,
             f"issue 18 (2): polynn-{b} ≥ 1.00× its native peer ({' / '.join(peers)})")
      for w in ("mnist-epoch", "wide") for b, peers in NATIVE.items()),
    *(Target(f"noreg-{w}", w, "float32", POLYNN, ("numpy-hand",), 1.0,
             "no regression: polynn × numpy-hand ≥ the previous committed run", kind="previous")
      for w in ("mnist-step", "mnist-epoch", "wide")),
    Target("2a", "mnist-step", "float32", ("polynn-jax",), ("jax-jit", "jax-scan"), 1 / 1.05,
           "(2) polynn-jax within 1.05× of native JAX's time per step"),
    Target("2b", "mnist-step", "float32", ("polynn-numpy",), ("numpy-hand",), 1 / 1.10,
           "(2) polynn-numpy within 1.10× of hand-written NumPy's time per step"),
    Target("2c", "mnist-epoch", "float32", POLYNN, ("sklearn",), 3.0,
           "(2) polynn's best epoch ≥ 3× faster than scikit-learn's"),
    Target("3", "wide", "float32", POLYNN, "ceiling", 0.75,
           "(3) polynn's best ≥ 75 % of the float32 matmul ceiling"),
    Target("mem", "memory", "float32", POLYNN, (), 0,
           "memory flat from the short run to the long one (every polynn backend)", kind="flat"),
    *(Target(f"gpu-{d}", "gpu", d, POLYNN_GPU, "ceiling", 0.60,
             f"(4) polynn's best ≥ 60 % of the {d} GPU matmul ceiling") for d in ("float32",
                                                                                  "bfloat16")),
)  # fmt: skip


def _ok(r) -> bool:
    """An ok row (not unavailable, not failed)."""
    return r.get("status") == "ok"


def _time(r) -> str:
    """A row's time per step: µs for the reference program, ms elsewhere."""
    if "us_per_step" in r:
        return f"{r['us_per_step']:.1f} µs/step"
    return f"{r['ms_per_step']:.4g} ms/step"


def _missing(rows, names, workload, dtype) -> str:
    """Why no row of ``names`` counts: each one's status, or "not run"."""
    got = {r["contestant"]: r["status"] for r in rows
           if r.get("workload") == workload and r.get("dtype") == dtype}  # fmt: skip
    return "; ".join(f"{n}: {got.get(n, 'not run')[:90]}" for n in names if got.get(n) != "ok")


def check(t: Target, results: dict, previous: dict | None = None) -> dict:
    """Check one target against a run's ``results``: met / not met / not measured (why), with the
    measured ratio, each baseline's own time and the load average it was measured at."""
    out = {"id": t.id, "target": f"{t.workload}, {t.dtype}: {t.means}"}
    gpu = results.get("gpu") or {}
    if t.workload == "gpu" and gpu.get("status") != "ran":
        return {**out, "status": f"not applicable: {gpu.get('status', 'not run')}"}
    rows = {"gpu": gpu.get("rows", []), "memory": results.get("memory", [])}.get(
        t.workload, results["rows"])  # fmt: skip
    mine = [r for r in rows if _ok(r) and r["workload"] == t.workload and r["dtype"] == t.dtype
            and r["contestant"] in t.contestants]  # fmt: skip
    bdtype = t.baseline_dtype or t.dtype
    if t.baseline == "ceiling":
        ceil = ((gpu if t.workload == "gpu" else results).get("ceilings") or {}).get("ceiling", {})
        base = [{"contestant": f"the {t.dtype} matmul ceiling", "gflops": ceil[t.dtype]}] if (
            t.dtype in ceil) else []  # fmt: skip
    else:
        base = [r for r in rows if _ok(r) and r["workload"] == t.workload
                and r["dtype"] == bdtype and r["contestant"] in t.baseline]  # fmt: skip
    if not mine or (t.kind in ("speed", "loss") and not base):
        why = [_missing(rows, t.contestants, t.workload, t.dtype), "" if base else "no ceiling"
               if t.baseline == "ceiling" else _missing(rows, t.baseline, t.workload, bdtype)]
        return {**out, "status": f"not measured ({'; '.join(filter(None, why)) or 'no row'})"}
    if t.kind == "speed":
        c, b = max(mine, key=lambda r: r["gflops"]), max(base, key=lambda r: r["gflops"])
        ratio = c["gflops"] / b["gflops"]
        against = (f"{b['contestant']} ({b['gflops']:.1f} GFLOP/s)" if t.baseline == "ceiling"
                   else f"{b['contestant']} {b['dtype']} ({_time(b)}, load {b['loadavg_1m']:.2f})")
        detail = (f"{100 * ratio:.1f} %" if t.baseline == "ceiling" else f"{ratio:.2f}×") + (
                  f": {c['contestant']} {_time(c)}"
                  + (f", {c['gflops']:.1f} GFLOP/s" if t.baseline == "ceiling" else "")
                  + f", load {c['loadavg_1m']:.2f}; against {against}")  # fmt: skip
        if t.need < 1 and t.baseline != "ceiling":
            detail += f" (its time / theirs = {1 / ratio:.3f}, at most {1 / t.need:.2f})"
        own = c.get("baseline") or {}
        if len(c.get("rounds", [])) > 1 and (own.get("contestant"), own.get("dtype")) == (
                b["contestant"], b.get("dtype")):  # fmt: skip
            detail += "; per round " + ", ".join(f"{x:.2f}" for x in c["rounds"])
        if "x_floor" in c:
            detail += f"; {_xfloor(c)} the floor"
        return {**out, "status": "met" if ratio >= t.need else "not met", "ratio": ratio,
                "row": [c["contestant"], c["dtype"]], "detail": detail}  # fmt: skip
    bits, worst, ok = [], math.inf, True
    for r in mine:
        if t.kind == "flat":
            ok = ok and bool(r["flat"])
            bits.append(f"{r['contestant']}: {rss_path(r['by_steps'])} MiB"
                        + ("" if r["flat"] else " GROWS"))  # fmt: skip
        elif t.kind == "loss":
            ok = ok and r["loss_rel_diff"] <= t.need
            bits.append(f"{r['contestant']} {r['final_loss']:.15f} (rel {r['loss_rel_diff']:.1e})")
        else:  # previous
            old = next((p["speedup_vs"].get("numpy-hand") for p in (previous or {}).get("rows", [])
                        if (p["contestant"], p["workload"], p["dtype"])
                        == (r["contestant"], t.workload, t.dtype)), None)  # fmt: skip
            new, b = r["speedup_vs"].get("numpy-hand"), r.get("baseline", {})
            if old is None or new is None:
                bits.append(f"{r['contestant']}: no {'previous' if new else 'numpy-hand'} figure")
                continue
            worst = min(worst, new / old)
            bits.append(f"{r['contestant']} {new:.2f}× (was {old:.2f}×; numpy-hand "
                        f"{_time(b)}, load {b['loadavg_1m']:.2f})")  # fmt: skip
    if t.kind == "loss":
        bits.insert(0, f"{base[0]['contestant']} {base[0]['final_loss']:.15f}")
    status = "met" if ok else "not met"
    if t.kind == "previous":
        status = ("not measured (no previous figure)" if worst == math.inf else "met"
                  if worst >= t.need else f"not met, within the ±{100 * NOISE:.0f} % run-to-run "
                  "noise" if worst >= t.need - NOISE else "not met")  # fmt: skip
        then, now = (previous or {}).get("cpu_model"), results["meta"].get("cpu_model")
        if then and now and then not in now:
            status += f" (the previous run was on {then}, this one on {now})"
    return {**out, "status": status, "detail": "; ".join(bits)}


def targets(results: dict, wanted, previous: dict | None = None) -> list[dict]:
    """Every target whose workload ``wanted(workload)`` accepts, checked; a quick run says so."""
    out = [check(t, results, previous) for t in TARGETS if wanted(t.workload)]
    if results["meta"].get("quick"):
        for t in out:
            t["status"] += " (quick run: indicative only)"
    return out


def load_previous(path: Path = PREVIOUS) -> dict | None:
    """The previous committed full run (``previous_results.json``), or None."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- tables ----------------------------------------------------------------------------------------
def _f(x, fmt: str = "{:.3f}") -> str:
    """``x`` formatted, or "—" when it is not a finite number."""
    return fmt.format(x) if isinstance(x, (int, float)) and math.isfinite(x) else "—"


def _xfloor(r) -> str:
    a, b = r["x_floor"]
    return f"{a:.1f}×" if abs(a - b) < 0.05 else f"{a:.1f}–{b:.1f}×"


def _table(head: list[str], rows: list[dict], cells, lead: int) -> str:
    """``cells(row)`` for each ok row; a failed row shows its first ``lead`` cells and status."""
    return md_table(head, [cells(r) if _ok(r) else [r["contestant"], r.get("workload", ""),
                           r["dtype"]][:lead] + [r["status"][:80]] for r in rows])  # fmt: skip


def reference_table(rows: list[dict], checked: list[dict]) -> str:
    base, tight = " ".join(REFERENCE_BASELINE), " ".join(REFERENCE_TIGHT)
    head = ["contestant", "dtype", "µs/step", "total s", f"× {base}", "per round",
            f"{base} µs/step", f"× {tight}", f"{tight} µs/step (load)", "load (1 min)",
            "target", "floor µs/step", "× floor", "final loss",
            "rel Δ vs reference", "runs", "compile s"]  # fmt: skip
    need = {t.id: (t.need, t.baseline[0]) for t in TARGETS
            if t.workload == "reference" and t.kind == "speed"}  # fmt: skip
    goals = {}  # (contestant, dtype) -> "≥ 5× numpy-hand: met; ≥ 5× numpy-tight: not met"
    for t in checked:
        if "row" in t and t["id"] in need:
            n, against = need[t["id"]]
            done = "met" if t["status"].startswith("met") else "**not met**"
            goals.setdefault(tuple(t["row"]), []).append(f"≥ {n:g}× {against}: {done}")

    def cells(r):
        key, b, lr = (r["contestant"], r["dtype"]), r.get("baseline") or {}, r["loadavg_range"]
        tg = r.get("tight") or {}
        lo, hi = FLOOR_US[r["dtype"]]
        goal = "; ".join(goals.get(key, []))
        return [*key, _f(r["us_per_step"], "{:.1f}"), _f(r["total_s"]),
                _f(r.get("ratio"), "{:.2f}×"),
                ", ".join(f"{x:.2f}" for x in r.get("rounds", [])) or "—",
                _f(1e3 * b["ms_per_step"], "{:.1f}") if b else "—",
                _f(tg.get("ratio"), "{:.2f}×"),
                f"{1e3 * tg['ms_per_step']:.1f} ({tg['loadavg_1m']:.2f})" if tg else "—",
                f"{r['loadavg_1m']:.2f} ({lr[0]:.2f}–{lr[1]:.2f})", goal,
                f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}", _xfloor(r), f"{r['final_loss']:.12f}",
                _f(r.get("loss_rel_diff"), "{:.1e}"), len(r["runs"]), _f(r["compile_s"], "{:.2f}")]

    return _table(head, rows, cells, 2)


def table(rows: list[dict], memory: list[dict], steps) -> str:
    """Workloads 2-4: each ratio to numpy-hand stands next to numpy-hand's own ms/step and the
    median 1-minute load average over the row's timed runs."""
    rows = sorted(rows, key=lambda r: (WORKLOAD_ORDER.index(r["workload"]), r["dtype"] != "float32",
                                       r["family"] != "peer"))  # fmt: skip
    mem = {m["contestant"]: m["by_steps"] for m in memory if _ok(m)}
    head = ["contestant", "workload", "dtype", "ms/step", "total s", "GFLOP/s", "% ceil",
            "x numpy-hand", "numpy-hand ms/step", *(f"x {p}" for p in PEER_ORDER), "load (1 min)",
            "compile s", f"peak RSS MiB {steps[0]}→{steps[-1]} steps", "final loss", "Δ loss"]

    def cells(r):
        sv, m = r.get("speedup_vs", {}), mem.get(r["contestant"])
        rss = rss_path(m) if m and r["workload"] == "mnist-step" else "—"
        return [r["contestant"], r["workload"], r["dtype"], _f(r["ms_per_step"], "{:.4g}"),
                _f(r["total_s"]), _f(r["gflops"], "{:.2f}"),
                _f(r["frac_ceiling"] and 100 * r["frac_ceiling"], "{:.1f}"),
                _f(sv.get("numpy-hand"), "{:.2f}×") if "numpy-hand" in sv else "",
                _f((r.get("baseline") or {}).get("ms_per_step"), "{:.4g}"),
                *(_f(sv[p], "{:.2f}×") if p in sv else "" for p in PEER_ORDER),
                _f(r["loadavg_1m"], "{:.2f}"), _f(r["compile_s"], "{:.2f}"), rss,
                _f(r["final_loss"], "{:.8g}"), _f(r.get("loss_rel_diff"), "{:.1e}")]

    return _table(head, rows, cells, 3)


def memory_table(memory: list[dict], steps) -> str:
    head = ["contestant", "dtype"]
    for n in steps:
        head += [f"RSS peak, {n} steps (MiB)", f"RSS growth, {n} (MiB)",
                 f"tracemalloc peak, {n} (MiB)"]  # fmt: skip

    def cells(m):
        out = [m["contestant"], m["dtype"]]
        for v in m["by_steps"].values():
            out += [_f(v["rss_peak_bytes"] and v["rss_peak_bytes"] / MIB, "{:.1f}"),
                    _f(v["rss_growth_bytes"] and v["rss_growth_bytes"] / MIB, "{:.1f}"),
                    _f(v["py_peak_bytes"] / MIB, "{:.2f}")]  # fmt: skip
        return out + [{True: "yes", False: "NO", None: "?"}[m["flat"]]]

    return _table(head + ["flat"], memory, cells, 2)


def ceiling_table(c: dict, title: str) -> str:
    """GFLOP/s of the n×n product per dtype and library (start / end of the run), the ceiling."""
    libs, end = sorted({lib for d in c["by_lib"].values() for lib in d}), c.get("by_lib_end") or {}
    cell = lambda v: f"{v:.1f}" if isinstance(v, float) else (v or "—")[:40]  # noqa: E731
    both = lambda dt, lib: cell(c["by_lib"][dt].get(lib)) + (  # noqa: E731
        f" / {cell(end.get(dt, {}).get(lib))}" if end else "")  # fmt: skip
    rows = [[dt, *(both(dt, lib) for lib in libs), _f(c["ceiling"].get(dt), "{:.1f}")]
            for dt in c["by_lib"]]  # fmt: skip
    return (f"{title}: n = {c['n']}, best of {c['rounds']} rounds, GFLOP/s = 2n³/s"
            + ("; measured at the start / at the end of the run" if end else "") + "\n\n"
            + md_table(["dtype", *libs, "ceiling"], rows))  # fmt: skip


def targets_md(checked: list[dict]) -> str:
    return md_table(["target", "status", "measured"], [
        [t["target"], f"**{t['status']}**", t.get("detail", "")] for t in checked])


def sections_md(ran: dict) -> list[str]:
    """SCALING.md and MEMORY.md: the file this run produced, else the committed one, labelled."""
    parts = []
    for w, module in SECTIONS.items():
        sec, name = ran.get(w) or {}, section_md(module)
        path = Path(sec["path"]) if sec.get("path") else HERE / name
        if path.exists():
            why = "" if sec.get("path") else (
                f"\n\n(Included from the committed `benchmarks/{name}`, not regenerated by this "
                f"run: {sec.get('status', 'not run by this command')}.)")  # fmt: skip
            parts += [path.read_text().strip() + why, ""]
    return parts


def tables(res: dict) -> list[tuple[str, str]]:
    """(heading, table) for each result measured: RESULTS.md's and the printed summary's."""
    gpu, steps = res.get("gpu") or {}, res["settings"]["memory_steps"]
    ref = [r for r in res["rows"] if r["workload"] == "reference"]
    rest = [r for r in res["rows"] + gpu.get("rows", []) if r["workload"] != "reference"]
    out = [("The reference program (against hand-written NumPy, float64)",
            reference_table(ref, res["targets"])) if ref else None,
           ("Workloads 2-4", table(rest, res["memory"], steps)) if rest else None,
           ("Memory", memory_table(res["memory"], steps)) if res.get("memory") else None,
           ("Matmul ceiling", ceiling_table(res["ceilings"], "CPU"))
           if res.get("ceilings") else None,
           ("GPU matmul ceiling", ceiling_table(gpu["ceilings"], "GPU" if gpu.get("status") == "ran"
                                                else "GPU dry run (CPU)"))
           if gpu.get("ceilings") else None]  # fmt: skip
    return [t for t in out if t]


def summary(res: dict) -> list[str]:
    """The printed blocks: every table, what ran where, the targets, the load."""
    meta, gpu = res["meta"], res["gpu"]
    return [f"{head}:\n{text}" for head, text in tables(res)] + [
        f"GPU: {gpu['status']}\n" + "\n".join(f"{w}: {sec['status']}" + (
            f" -> {sec['path']}" if sec.get("path") else "") for w, sec in res["sections"].items()),
        targets_md(res["targets"]),
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
        f"wall time {meta['wall_s']} s"]  # fmt: skip


def results_md(res: dict) -> str:
    meta, s, gpu = res["meta"], res["settings"], res.get("gpu") or {}
    every = res["rows"] + gpu.get("rows", [])
    probe, ceil = meta.get("thread_probe") or {}, (res.get("ceilings") or {}).get("by_lib", {})
    us = probe.get("us_per_matmul")
    parts = [
        "# polynn benchmarks: results", "",
        f"Produced by `{meta['command']}` on {meta['date']}"
        + (" — **quick smoke run: indicative only**." if meta["quick"] else " (full run)."), "",
        "## Machine", "",
        f"- CPU: {meta['cpu_model']}, {meta['cores_usable']} usable cores (os.cpu_count() = "
        f"{meta['cpu_count']}), {meta.get('mem_total_gib', '?')} GiB RAM; load average at start "
        f"{meta['loadavg_start']}, at end {meta.get('loadavg_end')}",
        f"- Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- BLAS: {meta.get('blas', '?')}; torch threads: {meta.get('torch_threads')}; "
        f"JAX devices: {meta.get('jax_devices')}; jax_enable_x64: {meta.get('jax_x64')}",
        f"- threads: {meta.get('threads')}",
        "- malloc: " + (f"glibc's mmap threshold {int(a['-3']) >> 20} MiB and trim threshold "
                        f"{int(a['-1']) >> 20} MiB, set by `polynn.backend.allocator` before "
                        "anything was timed, so every contestant of this process (the peers too) "
                        "ran with them" if (a := meta.get("allocator")) and {"-1", "-3"} <= set(a)
                        else f"the C library's defaults ({a})"),
        f"- BLAS thread probe ({probe['shape']}): {us['default']:.0f} µs with the default threads, "
        f"{us['1 thread']:.0f} µs with one (default/1-thread = {probe['default_over_1thread']:.2f}"
        "; well above 1 means the cores were oversubscribed by other processes during the run)"
        if us else f"- BLAS thread probe: {probe.get('error', 'not run')}",
        f"- numpy float32 ceiling at the start {_f(ceil.get('float32', {}).get('numpy'), '{:.1f}')}"
        f" GFLOP/s, at the end {_f(meta.get('ceiling_end_numpy_float32'), '{:.1f}')} GFLOP/s "
        "(the drift is noise from other load on the machine)",
        f"- repo commit: {meta.get('git_commit')}",
        f"- GPU: {gpu.get('status', 'not run')}", "",
        "## How it was measured", "",
        "As `benchmarks/README.md` describes (workloads, honesty rules, scikit-learn's `alpha`, "
        f"threads), with these settings: seed {s['seed']}; reference program lr {s['lr']}, l2 "
        f"{s['l2']}, {s['spiral_steps']} full-batch steps per run, {s['ref_rounds']} rounds × "
        f"{s['ref_reps']} runs ({s['ref_extra_reps']} for the informational rows); workloads 2-4 "
        f"lr {s['lr_large']}; mnist-step {s['mnist_repeats']} runs of {s['mnist_steps']} steps, "
        f"batch {s['mnist_batch']}; mnist-epoch {s['epoch_repeats']} epochs of "
        f"{s['epoch_rows']:,} rows; wide {s['wide_repeats']} runs of {s['wide_steps']} steps, "
        f"batch {s['wide_batch']}; memory {s['memory_steps'][0]} vs {s['memory_steps'][-1]} "
        f"steps; matmul ceiling n = {s['ceiling_n']}, best of {s['ceiling_rounds']}. Every ratio "
        "stands next to its baseline's own time and the 1-minute load average.", "",
        "## Results", "",
    ]  # fmt: skip
    for head, text in tables(res):
        parts += [f"### {head}", "", text, ""]
    if res["targets"]:
        parts += ["## Targets", "", targets_md(res["targets"]), ""]
    notes = sorted({(r["contestant"], r["notes"]) for r in every if r.get("notes")})
    if notes:
        parts += ["## Notes per contestant", "", *(f"- {n}: {t}" for n, t in notes), ""]
    failed = sorted({(r["contestant"], r["status"]) for r in every if not _ok(r)})
    if failed:
        parts += ["## Not measured", "", *(f"- {n}: {st}" for n, st in failed), ""]
    parts += sections_md(res.get("sections") or {})
    findings = HERE / "FINDINGS.md"  # what the profiles showed, written by hand
    if findings.exists():
        parts += [findings.read_text().strip(), ""]
    return "\n".join(parts)
