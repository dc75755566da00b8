"""Derived figures (ratios, fractions of the ceiling), the targets, the table, RESULTS.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import reference
from .workloads import finite

PEER_ORDER = ("numpy-hand", "jax-jit", "jax-scan", "torch", "sklearn")
WORKLOAD_ORDER = ("spiral", "mnist-step", "mnist-epoch", "wide", "gpu", "gpu-dryrun")
MIB = 2**20
HERE = Path(__file__).resolve().parent
PREVIOUS = HERE / "previous_results.json"
# the workloads checked for regressions against the previous results (issue 9, point 1)
NO_REGRESSION = ("mnist-step", "mnist-epoch", "wide")
NOISE = 0.10  # run-to-run spread of ratios seen on this shared machine (±10 %)


def _ok(r) -> bool:
    return r.get("status") == "ok" and finite(r.get("ms_per_step"))


def derive(results: dict) -> None:
    """Add ``speedup_vs`` (peer time / this time, per peer of the same workload and dtype),
    ``baseline`` (numpy-hand's own ms/step and load in the same workload and dtype, next to which
    every ratio is read) and ``frac_ceiling`` (GFLOP/s over the matmul ceiling of the row's dtype
    and device) to each row. The reference rows have their own (``reference.annotate``)."""
    rows = results["rows"]
    cpu_ceil = (results.get("ceilings") or {}).get("ceiling", {})
    gpu_ceil = ((results.get("gpu") or {}).get("ceilings") or {}).get("ceiling", {})
    for r in rows:
        if not _ok(r) or r["workload"] == "reference":
            continue
        peers = {
            p["contestant"]: p
            for p in rows
            if _ok(p)
            and p["family"] == "peer"
            and p["workload"] == r["workload"]
            and p["dtype"] == r["dtype"]
        }
        r["speedup_vs"] = {
            # cupy-hand stands in for numpy-hand on the GPU
            ("numpy-hand" if name == "cupy-hand" else name): p["ms_per_step"] / r["ms_per_step"]
            for name, p in peers.items()
            if name != r["contestant"]
        }
        ref = peers.get("numpy-hand") or peers.get("cupy-hand")
        if ref is not None:
            r["baseline"] = {
                "contestant": ref["contestant"],
                "ms_per_step": ref["ms_per_step"],
                "loadavg_1m": ref.get("loadavg_1m"),
            }
        if ref is not None and finite(ref.get("final_loss")) and finite(r.get("final_loss")):
            r["loss_rel_diff_vs_numpy_hand"] = abs(r["final_loss"] - ref["final_loss"]) / abs(
                ref["final_loss"]
            )
        ceil = (gpu_ceil if r["workload"] == "gpu" else cpu_ceil).get(r["dtype"])
        if r["workload"] == "gpu-dryrun":
            ceil = (((results.get("gpu") or {}).get("ceilings") or {}).get("ceiling", {})).get(
                r["dtype"]
            )
        r["frac_ceiling"] = (r["gflops"] / ceil) if (ceil and finite(r.get("gflops"))) else None


def _find(rows, contestant, workload, dtype):
    for r in rows:
        if (
            r["contestant"] == contestant
            and r["workload"] == workload
            and r["dtype"] == dtype
            and _ok(r)
        ):
            return r
    return None


def _best_polynn(rows, workload, dtype, key="ms_per_step"):
    cands = [
        r
        for r in rows
        if r["family"] == "polynn" and r["workload"] == workload and r["dtype"] == dtype and _ok(r)
    ]
    if not cands:
        return None
    if key == "gflops":
        return max(cands, key=lambda r: r["gflops"])
    return min(cands, key=lambda r: r[key])


def _status(ok: bool | None, missing: str = "") -> str:
    if ok is None:
        return f"not measured ({missing})" if missing else "not measured"
    return "met" if ok else "not met"


def _why_missing(rows, names, workload, dtype) -> str:
    bits = []
    for n in names:
        hits = [
            r
            for r in rows
            if r["contestant"] == n and r["workload"] == workload and r["dtype"] == dtype
        ]
        if not hits:
            bits.append(f"{n}: not run")
        elif not _ok(hits[0]):
            bits.append(f"{n}: {hits[0]['status'][:90]}")
    return "; ".join(bits)


def target_workload(target_id: str) -> str:
    """The workload a target is measured on (a focused run reports only its own targets)."""
    if target_id.startswith("ref-"):
        return "reference"
    if target_id.startswith("noreg-"):
        return target_id[len("noreg-") :]
    return {"2a": "mnist-step", "2b": "mnist-step", "2c": "mnist-epoch", "3": "wide",
            "mem": "memory", "gpu": "gpu"}.get(target_id, target_id)  # fmt: skip


def load_previous(path: Path = PREVIOUS) -> dict | None:
    """The ratios of the previous committed full run (``previous_results.json``), or None."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def regressions(results: dict, previous: dict | None) -> list[dict]:
    """Per workload in NO_REGRESSION: every polynn row's ratio against numpy-hand now and in the
    previous run; met when no ratio fell (within NOISE it is reported as noise-level)."""
    out = []
    prev_rows = (previous or {}).get("rows", [])
    quick = results["meta"].get("quick")
    for w in NO_REGRESSION:
        label = f"no regression on {w}: polynn × numpy-hand ≥ the previous RESULTS.md"
        now = [
            r
            for r in results["rows"]
            if r["workload"] == w and r["family"] == "polynn" and _ok(r)
            and "numpy-hand" in r.get("speedup_vs", {})
        ]  # fmt: skip
        if not now or not prev_rows:
            why = "no polynn row with a numpy-hand ratio" if prev_rows else "no previous results"
            out.append({"id": f"noreg-{w}", "target": label, "status": f"not measured ({why})"})
            continue
        bits, worst = [], math.inf
        for r in now:
            old = next(
                (
                    p["speedup_vs"].get("numpy-hand")
                    for p in prev_rows
                    if p["contestant"] == r["contestant"] and p["workload"] == w
                    and p["dtype"] == r["dtype"]
                ),
                None,
            )  # fmt: skip
            new = r["speedup_vs"]["numpy-hand"]
            b = r.get("baseline", {})
            if old is None:
                bits.append(f"{r['contestant']} {new:.2f}× (no previous figure)")
                continue
            worst = min(worst, new / old)
            bits.append(
                f"{r['contestant']} {new:.2f}× (was {old:.2f}×; numpy-hand "
                f"{b.get('ms_per_step', float('nan')):.3g} ms/step, load {r.get('loadavg_1m')})"
            )
        if worst == math.inf:
            st = "not measured (no previous figure)"
        elif worst >= 1.0:
            st = "met"
        elif worst >= 1.0 - NOISE:
            st = f"not met, within the ±{100 * NOISE:.0f} % run-to-run noise"
        else:
            st = "not met"
        cpu_then, cpu_now = previous.get("cpu_model"), results["meta"].get("cpu_model")
        if cpu_then and cpu_now and cpu_then not in cpu_now:
            st += f" (the previous run was on {cpu_then}, this one on {cpu_now})"
        out.append({"id": f"noreg-{w}", "target": label, "status": st, "detail": "; ".join(bits)})
    if quick:
        for t in out:
            t["status"] += " (quick run: indicative only)"
    return out


def targets(results: dict, previous: dict | None = None) -> list[dict]:
    rows = results["rows"]
    quick = results["meta"].get("quick")
    # issue 9: the reference program against hand-written NumPy float64, and no regression
    out = reference.targets([r for r in rows if r["workload"] == "reference"], bool(quick))
    return out + regressions(results, previous) + _other_targets(results)


def _other_targets(results: dict) -> list[dict]:
    rows = results["rows"]
    out = []
    quick = results["meta"].get("quick")

    # (2a) polynn-jax within 1.05x of the fastest native JAX per step (workload 2)
    pj = _find(rows, "polynn-jax", "mnist-step", "float32")
    natives = [
        r
        for r in (
            _find(rows, "jax-jit", "mnist-step", "float32"),
            _find(rows, "jax-scan", "mnist-step", "float32"),
        )
        if r
    ]
    if pj and natives:
        fastest = min(natives, key=lambda r: r["ms_per_step"])
        ratio = pj["ms_per_step"] / fastest["ms_per_step"]
        out.append(
            {
                "id": "2a",
                "target": "(2) polynn-jax <= 1.05x native JAX per step (MNIST-shaped)",
                "status": _status(ratio <= 1.05),
                "detail": f"polynn-jax {pj['ms_per_step']:.3f} ms/step vs {fastest['contestant']} "
                f"{fastest['ms_per_step']:.3f} ms/step: {ratio:.3f}x",
            }
        )
    else:
        out.append(
            {
                "id": "2a",
                "target": "(2) polynn-jax <= 1.05x native JAX per step (MNIST-shaped)",
                "status": _status(
                    None,
                    _why_missing(
                        rows, ["polynn-jax", "jax-jit", "jax-scan"], "mnist-step", "float32"
                    ),
                ),
            }
        )

    # (2b) polynn-numpy within 1.10x of numpy-hand per step (workload 2)
    pn, nh = (
        _find(rows, "polynn-numpy", "mnist-step", "float32"),
        _find(rows, "numpy-hand", "mnist-step", "float32"),
    )
    if pn and nh:
        ratio = pn["ms_per_step"] / nh["ms_per_step"]
        out.append(
            {
                "id": "2b",
                "target": "(2) polynn-numpy <= 1.10x hand-written NumPy per step (MNIST-shaped)",
                "status": _status(ratio <= 1.10),
                "detail": f"polynn-numpy {pn['ms_per_step']:.3f} ms/step vs numpy-hand "
                f"{nh['ms_per_step']:.3f}: {ratio:.3f}x",
            }
        )
    else:
        out.append(
            {
                "id": "2b",
                "target": "(2) polynn-numpy <= 1.10x hand-written NumPy per step (MNIST-shaped)",
                "status": _status(
                    None,
                    _why_missing(rows, ["polynn-numpy", "numpy-hand"], "mnist-step", "float32"),
                ),
            }
        )

    # (2c) polynn best >= 3x faster than sklearn per epoch
    best, sk = (
        _best_polynn(rows, "mnist-epoch", "float32", "total_s"),
        _find(rows, "sklearn", "mnist-epoch", "float32"),
    )
    if best and sk:
        s = sk["total_s"] / best["total_s"]
        out.append(
            {
                "id": "2c",
                "target": "(2) polynn best >= 3x faster than sklearn per epoch",
                "status": _status(s >= 3),
                "detail": f"{best['contestant']} {best['total_s']:.3f} s/epoch vs sklearn "
                f"{sk['total_s']:.3f} s: {s:.2f}x",
            }
        )
    else:
        out.append(
            {
                "id": "2c",
                "target": "(2) polynn best >= 3x faster than sklearn per epoch",
                "status": _status(
                    None,
                    _why_missing(
                        rows,
                        ["polynn-numpy", "polynn-jax", "polynn-torch", "sklearn"],
                        "mnist-epoch",
                        "float32",
                    ),
                ),
            }
        )

    # (3) polynn best >= 75 % of the float32 matmul ceiling (wide)
    best = _best_polynn(rows, "wide", "float32", "gflops")
    ceil = (results.get("ceilings") or {}).get("ceiling", {}).get("float32")
    if best and ceil:
        f = best["gflops"] / ceil
        out.append(
            {
                "id": "3",
                "target": "(3) polynn best >= 75 % of the float32 matmul ceiling (wide)",
                "status": _status(f >= 0.75),
                "detail": f"{best['contestant']} {best['gflops']:.1f} GFLOP/s = "
                f"{100 * f:.1f} % of {ceil:.1f} GFLOP/s",
            }
        )
    else:
        out.append(
            {
                "id": "3",
                "target": "(3) polynn best >= 75 % of the float32 matmul ceiling (wide)",
                "status": _status(
                    None,
                    _why_missing(
                        rows, ["polynn-numpy", "polynn-jax", "polynn-torch"], "wide", "float32"
                    )
                    or "no ceiling",
                ),
            }
        )

    # memory flat between 10 and 1,000 steps (every polynn backend)
    mem = [m for m in results.get("memory", []) if m["family"] == "polynn"]
    okm = [m for m in mem if m.get("status") == "ok" and m.get("flat") is not None]
    steps = results["settings"]["memory_steps"]
    label = f"memory flat between {steps[0]} and {steps[-1]} steps (every polynn backend)"
    if okm:
        detail = "; ".join(
            f"{m['contestant']}: "
            + " -> ".join(
                f"{m['by_steps'][str(n)]['rss_peak_bytes'] / MIB:.1f}" for n in m["steps"]
            )
            + " MiB"
            + ("" if m["flat"] else " GROWS")
            for m in okm
        )
        missing = [m["contestant"] for m in mem if m not in okm]
        if missing:
            detail += f"; not measured: {', '.join(missing)}"
        out.append(
            {
                "id": "mem",
                "target": label,
                "status": _status(all(m["flat"] for m in okm)),
                "detail": detail,
            }
        )
    else:
        out.append(
            {
                "id": "mem",
                "target": label,
                "status": _status(
                    None,
                    "; ".join(f"{m['contestant']}: {m['status'][:80]}" for m in mem)
                    or "no polynn row",
                ),
            }
        )

    # GPU
    gpu = results.get("gpu") or {}
    if gpu.get("status") == "ran":
        gceil = (gpu.get("ceilings") or {}).get("ceiling", {})
        bits, oks = [], []
        for dtype in ("float32", "bfloat16"):
            best = _best_polynn(gpu["rows"], "gpu", dtype, "gflops")
            if best and gceil.get(dtype):
                f = best["gflops"] / gceil[dtype]
                oks.append(f >= 0.60)
                bits.append(
                    f"{dtype}: {best['contestant']} {best['gflops']:.0f} GFLOP/s = "
                    f"{100 * f:.1f} % of {gceil[dtype]:.0f}"
                )
            else:
                bits.append(f"{dtype}: no polynn figure")
        out.append(
            {
                "id": "gpu",
                "target": "GPU: polynn >= 60 % of the ceiling (workload 4)",
                "status": _status(all(oks) if oks else None, "no polynn GPU row"),
                "detail": "; ".join(bits),
            }
        )
    else:
        out.append(
            {
                "id": "gpu",
                "target": "GPU: polynn >= 60 % of the ceiling (workload 4)",
                "status": f"not applicable: {gpu.get('status', 'not run')}",
            }
        )
    if quick:
        for t in out:
            t["status"] += " (quick run: indicative only)"
    return out


# ---------------------------------------------------------------------------------------------
# formatting


def _f(x, fmt="{:.3f}", none="—"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none if x is None else str(x)
    return fmt.format(x)


def _sort_key(r):
    w = WORKLOAD_ORDER.index(r["workload"]) if r["workload"] in WORKLOAD_ORDER else 99
    d = {"float64": 0, "float32": 1, "bfloat16": 2}.get(r["dtype"], 3)
    fam = 0 if r["family"] == "peer" else 1
    return (w, d, fam)


def table(results: dict) -> str:
    """Workloads 2-4 (the reference program has its own table, ``reference.table``): each ratio
    against numpy-hand stands next to numpy-hand's own ms/step; ``load`` is the median 1-minute
    load average over the row's timed runs."""
    rows = sorted(
        (
            r
            for r in results["rows"] + (results.get("gpu") or {}).get("rows", [])
            if r["workload"] != "reference"
        ),
        key=_sort_key,
    )
    mem = {m["contestant"]: m for m in results.get("memory", []) if m.get("status") == "ok"}
    steps = results["settings"]["memory_steps"]
    head = (
        ["contestant", "workload", "dtype", "ms/step", "total s", "GFLOP/s", "% ceil"]
        + ["x numpy-hand", "numpy-hand ms/step"]
        + [f"x {p}" for p in PEER_ORDER[1:]]
        + ["load (1 min)", "compile s", f"peak RSS MiB {steps[0]}→{steps[-1]} steps"]
        + ["final loss", "Δ loss"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if not _ok(r):
            cells = [r["contestant"], r["workload"], r["dtype"], r["status"][:70]] + [""] * (
                len(head) - 4
            )
        else:
            sv = r.get("speedup_vs", {})
            m = mem.get(r["contestant"]) if r["workload"] == "mnist-step" else None
            memcell = "—"
            if m:
                vals = [
                    m["by_steps"][str(n)]["rss_peak_bytes"] for n in m["steps"]
                ]  # absolute peaks
                memcell = " → ".join(_f(v / MIB if v is not None else None, "{:.1f}") for v in vals)
            cells = [
                r["contestant"],
                r["workload"],
                r["dtype"],
                _f(r["ms_per_step"], "{:.4g}"),
                _f(r.get("total_s"), "{:.3f}"),
                _f(r.get("gflops"), "{:.2f}"),
                _f(None if r.get("frac_ceiling") is None else 100 * r["frac_ceiling"], "{:.1f}"),
                _f(sv.get("numpy-hand"), "{:.2f}×") if "numpy-hand" in sv else "",
                _f((r.get("baseline") or {}).get("ms_per_step"), "{:.4g}"),
                *[_f(sv.get(p), "{:.2f}×") if p in sv else "" for p in PEER_ORDER[1:]],
                _f(r.get("loadavg_1m"), "{:.2f}"),
                _f(r.get("compile_s"), "{:.2f}"),
                memcell,
                _f(r.get("final_loss"), "{:.8g}"),
                _f(r.get("loss_rel_diff_vs_numpy_hand"), "{:.1e}"),
            ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def memory_table(results: dict) -> str:
    mem = results.get("memory", [])
    if not mem:
        return "(memory not measured)"
    steps = results["settings"]["memory_steps"]
    head = ["contestant", "dtype"]
    for n in steps:
        head += [
            f"RSS peak, {n} steps (MiB)",
            f"RSS growth, {n} (MiB)",
            f"tracemalloc peak, {n} (MiB)",
        ]
    head += ["flat"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in mem:
        if m.get("status") != "ok":
            cells = [m["contestant"], m["dtype"], m["status"][:70]] + [""] * (len(head) - 3)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        cells = [m["contestant"], m["dtype"]]
        for n in steps:
            v = m["by_steps"][str(n)]
            cells += [
                _f(None if v["rss_peak_bytes"] is None else v["rss_peak_bytes"] / MIB, "{:.1f}"),
                _f(
                    None if v["rss_growth_bytes"] is None else v["rss_growth_bytes"] / MIB, "{:.1f}"
                ),
                _f(v["py_peak_bytes"] / MIB, "{:.2f}"),
            ]
        cells.append({True: "yes", False: "NO", None: "?"}[m["flat"]])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ceiling_table(c: dict | None, title: str) -> str:
    if not c:
        return f"({title}: not measured)"
    libs = sorted({lib for d in c["by_lib"].values() for lib in d})
    end = c.get("by_lib_end") or {}

    def cell(v):
        if isinstance(v, float):
            return f"{v:.1f}"
        return (v or "—")[:40]

    lines = [
        f"{title}: n = {c['n']}, best of {c['rounds']} rounds, GFLOP/s = 2n³/s"
        + ("; measured at the start / at the end of the run" if end else ""),
        "",
        "| dtype | " + " | ".join(libs) + " | ceiling |",
        "|" + "---|" * (len(libs) + 2),
    ]
    for dtype, d in c["by_lib"].items():
        e = end.get(dtype, {})
        cells = [cell(d.get(lib)) + (f" / {cell(e.get(lib))}" if end else "") for lib in libs]
        ceil = _f(c["ceiling"].get(dtype), "{:.1f}")
        lines.append(f"| {dtype} | " + " | ".join(cells) + f" | {ceil} |")
    return "\n".join(lines)


def targets_md(ts: list[dict]) -> str:
    lines = ["| target | status | measured |", "|---|---|---|"]
    for t in ts:
        lines.append(f"| {t['target']} | **{t['status']}** | {t.get('detail', '')} |")
    return "\n".join(lines)


def _start_ceiling(results):
    v = ((results.get("ceilings") or {}).get("by_lib", {}).get("float32", {})).get("numpy")
    return v if isinstance(v, float) else None


def _probe_line(meta) -> str:
    p = meta.get("thread_probe") or {}
    us = p.get("us_per_matmul")
    if not us:
        return f"- BLAS thread probe: {p.get('error', 'not run')}"
    return (
        f"- BLAS thread probe ({p['shape']}): {us['default']:.0f} µs with the default threads, "
        f"{us['1 thread']:.0f} µs with one (default/1-thread = {p['default_over_1thread']:.2f}; "
        "well above 1 means the cores were oversubscribed by other processes during the run)"
    )


SECTION_FILES = {  # issues 10 and 11: file, heading when it is missing
    "scaling": ("SCALING.md", "Multi-device scaling (issue 10)"),
    "memory-size": ("MEMORY.md", "Memory against data size (issue 11)"),
}


def sections_md(ran: dict) -> list[str]:
    """The multi-device (SCALING.md) and memory (MEMORY.md) sections, written by their own
    scripts: the file this run produced, else the committed one labelled as from an earlier run."""
    parts = []
    for w, (name, title) in SECTION_FILES.items():
        sec = ran.get(w) or {}
        path = Path(sec["path"]) if sec.get("path") else HERE / name
        if not path.exists():
            if sec:
                parts += [f"## {title}", "", f"Not measured: {sec.get('status')}.", ""]
            continue
        text = path.read_text().strip()
        if not sec.get("path"):
            why = sec.get("status", "not run by this command")
            text += (
                f"\n\n(Included from the committed `benchmarks/{name}`, not regenerated by "
                f"this run: {why}.)"
            )
        parts += [text, ""]
    return parts


def results_md(results: dict) -> str:
    meta, s = results["meta"], results["settings"]
    gpu = results.get("gpu") or {}
    unavailable = sorted(
        {
            (r["contestant"], r["status"])
            for r in results["rows"] + gpu.get("rows", [])
            if r.get("status") != "ok"
        }
    )
    parts = [
        "# polynn benchmarks: results",
        "",
        f"Produced by `{meta['command']}` on {meta['date']}"
        + (" — **quick smoke run: indicative only**" if meta["quick"] else " (full run)")
        + ".",
        "",
        "## Machine",
        "",
        f"- CPU: {meta['cpu_model']}, {meta['cores_usable']} usable cores "
        f"(os.cpu_count() = {meta['cpu_count']}), {meta.get('mem_total_gib', '?')} GiB RAM; "
        f"load average at start {meta['loadavg_start']}, at end {meta.get('loadavg_end')}",
        f"- Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- BLAS: {meta.get('blas', '?')}; torch threads: {meta.get('torch_threads')}; "
        f"JAX devices: {meta.get('jax_devices')}; jax_enable_x64: {meta.get('jax_x64')}",
        f"- threads: {meta.get('threads')}",
        _probe_line(meta),
        f"- numpy float32 ceiling at the start {_f(_start_ceiling(results), '{:.1f}')} GFLOP/s, "
        f"at the end {_f(meta.get('ceiling_end_numpy_float32'), '{:.1f}')} GFLOP/s "
        "(the drift is noise from other load on the machine)",
        f"- repo commit: {meta.get('git_commit')}",
        f"- GPU: {gpu.get('status', 'not run')}",
        "",
        "## How it was measured",
        "",
        "- Same data and the same initial weights for everyone: He init from "
        f"`numpy.random.default_rng({s['seed']})`, float64 on the host, cast to the dtype. "
        "Final loss = the regularised training loss of each contestant's final parameters, "
        "evaluated by one float64 NumPy referee (`common.eval_loss`).",
        f"- Reference program (issue 9): spiral 300×2, 2-25-3 ReLU/softmax, lr {s['lr']}, "
        f"l2 {s['l2']}, {s['spiral_steps']} full-batch steps end to end from the init. Every "
        "row, float32 included, is timed against the same baseline, hand-written NumPy in "
        "float64 (`numpy-hand`, the reference program's style). One warm-up run per row "
        "(excluded; compile s = first − median), then "
        f"{s['ref_rounds']} rounds × {s['ref_reps']} runs, interleaved round-robin (the order "
        f"rotates each pass; informational rows run {s['ref_extra_reps']}× per round); "
        "`× numpy-hand float64` = its median time / the row's median; `per round` = the same "
        "ratio from each round's medians; the baseline's own µs/step and the 1-minute load "
        "average (`os.getloadavg()` after each run: median, range) stand next to it. Final loss: "
        "the float64 referee on the float64 data, relative difference from the baseline's. "
        "Floor: the fastest step measured on one core of this CPU (issue 9: a fused C step "
        "with fast math, 7.0 µs float64, ~5–7 µs estimated; 4.1 µs float32); "
        "`× floor` = µs/step over it.",
        f"- Workloads 2-4 use lr {s['lr_large']} (at 0.1 the random-label problem trains "
        "unstably and float32 rounding alone moves final losses by 10-50 % between "
        "implementations; the time per step does not depend on lr), l2 the same.",
        f"- mnist-step (784-256-128-10, batch {s['mnist_batch']}, float32, uniform random "
        f"60,000×784): median of {s['mnist_repeats']} runs of {s['mnist_steps']} steps on one "
        "fixed batch after a warm-up run. mnist-epoch: one in-order epoch of 60,000 rows in "
        f"batches of {s['mnist_batch']}, **remainder kept** (234 × 256 + 96 = 235 steps), "
        f"median of {s['epoch_repeats']}.",
        f"- wide (1024-2048-2048-10, batch {s['wide_batch']}, float32): median of "
        f"{s['wide_repeats']} runs of {s['wide_steps']} steps after a warm-up run.",
        "- FLOPs per step = 6·batch·Σ n_in·n_out. `x peer` = peer time / this time "
        "(> 1: this row is faster). `% ceil` = GFLOP/s over the best matmul GFLOP/s of that "
        "dtype measured in this run (start or end). `Δ loss` = |final loss − numpy-hand's| / "
        "numpy-hand's, same workload and dtype.",
        f"- Memory: MNIST-shaped fixed batch, {s['memory_steps'][0]} vs "
        f"{s['memory_steps'][-1]} steps from the init after a warm-up of each length. "
        "RSS peak = the process's VmHWM over the run (reset via /proc/self/clear_refs just "
        "before it); growth = that minus the RSS before the run; tracemalloc peak = Python and "
        "NumPy allocations. Flat = RSS peak grows ≤ max(4 MiB, 5 %) and tracemalloc peak "
        "≤ max(4 MiB, 10 %).",
        "- Device work is synchronised inside each timed call (`block_until_ready`, "
        "`torch.cuda.synchronize`, CuPy device sync). JAX peers get their data as device "
        "arrays placed before timing (jax-scan also pre-laid out in batches); so does polynn on "
        "JAX/PyTorch (`fit` trains on resident arrays in place); polynn-numpy gets host arrays.",
        "- scikit-learn: `alpha = l2 × rows per batch` (its `_backprop` divides `alpha·W` by "
        "the batch's row count, so `alpha = l2 × n_samples` only in full-batch training); its "
        "remainder batch of 96 rows therefore sees l2·256/96. PyTorch applies l2 through SGD "
        "`weight_decay` on the weights only (the same gradient).",
        "",
        "## Results",
        "",
    ]
    ref_rows = [r for r in results["rows"] if r["workload"] == "reference"]
    if ref_rows:
        parts += [
            "### The reference program (against hand-written NumPy, float64)",
            "",
            reference.table(ref_rows),
            "",
        ]
    if any(r["workload"] != "reference" for r in results["rows"]):
        parts += ["### Workloads 2-4", "", table(results), ""]
    if results.get("memory"):
        parts += ["### Memory", "", memory_table(results), ""]
    if results.get("ceilings"):
        parts += ["### Matmul ceiling", "", ceiling_table(results["ceilings"], "CPU"), ""]
    if gpu.get("ceilings"):
        parts += [
            ceiling_table(
                gpu["ceilings"], "GPU" if gpu.get("status") == "ran" else "GPU dry run (CPU)"
            ),
            "",
        ]
    if results["targets"]:
        parts += ["## Targets", "", targets_md(results["targets"]), ""]
    notes = sorted(
        {
            (r["contestant"], r["notes"])
            for r in results["rows"] + gpu.get("rows", [])
            if r.get("notes")
        }
    )
    if notes:
        parts += ["## Notes per contestant", ""] + [f"- {n}: {t}" for n, t in notes] + [""]
    if unavailable:
        parts += ["## Not measured", ""] + [f"- {n}: {st}" for n, st in unavailable] + [""]
    parts += sections_md(results.get("sections") or {})
    # What the profiles showed, written by hand: kept in its own file so a new run keeps it.
    findings = Path(__file__).with_name("FINDINGS.md")
    if findings.exists():
        parts += [findings.read_text().strip(), ""]
    return "\n".join(parts)
