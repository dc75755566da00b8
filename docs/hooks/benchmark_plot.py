"""MkDocs hook: the benchmarks page's figure, drawn at build time from the committed results.

``benchmarks/previous_results.json`` holds the last committed full run of ``python -m
benchmarks.run`` (every contestant's time per step for every workload); this hook draws each
contestant's speed relative to hand-written NumPy as an SVG and adds it to the site as
``benchmarks/speed.svg``, so the picture can never disagree with the numbers it is made from.
``tests/test_docs.py`` runs :func:`speed_svg` on the same file.

Run it by hand to look at the figure: ``python docs/hooks/benchmark_plot.py out.svg``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "previous_results.json"
SITE_PATH = "benchmarks/speed.svg"
BASELINE = "numpy-hand"


def speedups(results: dict) -> tuple[list[str], dict[str, list[float | None]]]:
    """The groups (``workload dtype``, in file order) and, per contestant, its speed relative
    to ``numpy-hand`` in each group (baseline time / its time; None where it did not run).

    Raises
    ------
    ValueError
        When a group has no ``numpy-hand`` row to compare with.
    """
    times: dict[str, dict[str, float]] = {}
    for row in results["rows"]:
        group = f"{row['workload']} {row['dtype']}"
        times.setdefault(group, {})[row["contestant"]] = float(row["ms_per_step"])
    contestants = sorted({c for by in times.values() for c in by},
                         key=lambda c: (c.startswith("polynn"), c))
    ratios: dict[str, list[float | None]] = {c: [] for c in contestants}
    for group, by in times.items():
        if BASELINE not in by:
            raise ValueError(f"{RESULTS.name}: group {group!r} has no {BASELINE} row")
        for c in contestants:
            ratios[c].append(by[BASELINE] / by[c] if c in by else None)
    return list(times), ratios


def speed_svg(path: Path = RESULTS) -> str:
    """The figure as SVG text, from a results file shaped like ``previous_results.json``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    results = json.loads(Path(path).read_text(encoding="utf-8"))
    groups, ratios = speedups(results)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(ratios)
    for i, (contestant, values) in enumerate(ratios.items()):
        xs = [g + (i - (len(ratios) - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None else 0.0 for v in values]
        polynn = contestant.startswith("polynn")
        ax.bar(xs, ys, width, label=contestant, edgecolor="black" if polynn else "none",
               linewidth=0.8, hatch="" if polynn else None)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    times = FuncFormatter(lambda v, _: f"{v:g}×")
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(times)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(f"speed relative to {BASELINE} (×, log scale)")
    ax.set_title("Time per step: each contestant against hand-written NumPy in the same dtype "
                 "(higher is faster)", fontsize=10)
    ax.legend(ncols=1, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.text(0.01, 0.0, f"source: {results.get('source', path)}"[:160], fontsize=6)
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def on_files(files, config):
    """Add the figure to the site's files (MkDocs hook)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, SITE_PATH, content=speed_svg()))
    return files


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(speed_svg(), encoding="utf-8")
