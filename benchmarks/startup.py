"""Compile once (issue 18 §4): wall times of whole processes, interleaved, with the load.

    python -m benchmarks.startup [--repeats 3] [--md PATH]

Measured, each in a new process (the median of ``--repeats``, interleaved round-robin):

- ``import jax`` and a first array: the floor any JAX process pays;
- ``polynn train --backend jax`` (the reference program) with the persistent compilation cache
  in a fresh directory (the first run: it compiles), then again with that directory (the second
  run: a new process reading the cache), with the cache turned off, and on numpy;
- a 5-fold ``cross_val_score`` of the digits ``MLPClassifier`` on JAX (cache warm, and off) and
  on numpy.

Targets: the second JAX run at most 0.5 s beyond the floor; cross-validation on JAX no slower
than on numpy. Nothing fails when a target is not met.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.helpers import ROOT, md_table, median

JAX_FLOOR = "import jax, jax.numpy as jnp; jnp.ones(3).block_until_ready()"
CV = ("import polynn as pn; from polynn.sklearn import MLPClassifier; "
      "from sklearn.model_selection import cross_val_score; X, y = pn.datasets.digits(); "
      "print(cross_val_score(MLPClassifier(random_state=0, backend={b!r}), X, y, cv=5).mean())")
TRAIN = ["-m", "polynn.cli", "train", "--quiet"]


def cases(cache: str) -> dict:
    """name -> (argv after the interpreter, extra environment)."""
    on, off = {"POLYNN_JAX_CACHE": cache}, {"POLYNN_JAX_CACHE": "0"}
    return {
        "import jax + first array": (["-c", JAX_FLOOR], {}),
        "train jax, cache warm (2nd run)": ([*TRAIN, "--backend", "jax"], on),
        "train jax, cache off": ([*TRAIN, "--backend", "jax"], off),
        "train numpy": ([*TRAIN, "--backend", "numpy"], {}),
        "5-fold CV digits jax, cache warm": (["-c", CV.format(b="jax")], on),
        "5-fold CV digits jax, cache off": (["-c", CV.format(b="jax")], off),
        "5-fold CV digits numpy": (["-c", CV.format(b="numpy")], {}),
    }  # fmt: skip


def wall(argv, env) -> tuple[float, float]:
    """(seconds, 1-minute load after) of one process; raises if it fails."""
    import subprocess

    full = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", **env}
    tic = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=full, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - tic, os.getloadavg()[0]


def run(repeats: int) -> tuple[dict, dict]:
    """Every case ``repeats`` times, interleaved; the first runs with an empty cache."""
    cache = tempfile.mkdtemp(prefix="polynn-jax-cache-")
    todo = cases(cache)
    first = {"train jax, cache cold (1st run)": wall(todo["train jax, cache warm (2nd run)"][0],
                                                     {"POLYNN_JAX_CACHE": cache}),
             "5-fold CV digits jax, cache cold": wall(todo["5-fold CV digits jax, cache warm"][0],
                                                      {"POLYNN_JAX_CACHE": cache})}  # fmt: skip
    times = {name: [] for name in todo}
    for r in range(repeats):
        names = list(todo)
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(wall(*todo[name]))
            print(f"  {name}: {times[name][-1][0]:.2f} s", file=sys.stderr)
    return first, times


def report(first: dict, times: dict) -> str:
    med = {n: median([t for t, _ in v]) for n, v in times.items()}
    load = {n: median([x for _, x in v]) for n, v in times.items()}
    rows = [[n, f"{t:.2f}", "1", f"{x:.2f}"] for n, (t, x) in first.items()]
    rows += [[n, f"{med[n]:.2f}", str(len(times[n])), f"{load[n]:.2f}"] for n in times]
    floor, warm = med["import jax + first array"], med["train jax, cache warm (2nd run)"]
    cv_jax, cv_np = med["5-fold CV digits jax, cache warm"], med["5-fold CV digits numpy"]
    lines = [md_table(["process", "wall s (median)", "runs", "load (1 min)"], rows), "",
             f"- second `polynn train --backend jax` beyond `import jax` + a first array: "
             f"{warm - floor:+.2f} s ({warm:.2f} against {floor:.2f} s; target ≤ +0.50 s: "
             f"{'met' if warm - floor <= 0.5 else 'not met'}; numpy's whole run "
             f"{med['train numpy']:.2f} s)",
             f"- 5-fold cross_val_score of the digits MLPClassifier: JAX {cv_jax:.2f} s against "
             f"numpy {cv_np:.2f} s = {cv_np / cv_jax:.2f}× (target ≥ 1.00×: "
             f"{'met' if cv_jax <= cv_np else 'not met'}); with the cache off "
             f"{med['5-fold CV digits jax, cache off']:.2f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one run per case")
    ap.add_argument("--md", default=None, help="also write the table to this markdown file")
    args = ap.parse_args(argv)
    start = os.getloadavg()
    text = report(*run(1 if args.quick else args.repeats))
    text = (f"Load average at start {[round(x, 2) for x in start]}, at end "
            f"{[round(x, 2) for x in os.getloadavg()]}.\n\n{text}")
    print(text)
    if args.md:
        Path(args.md).write_text("## Compile once: whole processes\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
