"""Run the installed scikit-learn's own MLP tests against polynn's estimators.

    python tests/sklearn_conformance/run.py --backend numpy [pytest options...]
    python tests/sklearn_conformance/run.py --backend jax -x

The test file of the *installed* scikit-learn (``sklearn/neural_network/tests/test_mlp.py``) is
read at run time, its one import of scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` is
rewritten to import ``polynn.sklearn``'s, and the result is written to a temporary directory and
run there with pytest (scikit-learn's ``conftest`` is loaded as a plugin, for its
``global_random_seed`` fixture). Nothing of scikit-learn's test code is copied into this
repository. ``POLYNN_BACKEND`` selects the backend the estimators train on; on JAX, x64 mode is
enabled up front, because float64 input trains float64 weights (as in scikit-learn).

Tests that cannot pass are deselected by name in ``DESELECTED`` with the reason (README lists
them too). The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The one import line of scikit-learn's estimators in test_mlp.py, and its replacement.
ORIGINAL_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor\n"
POLYNN_IMPORT = "from polynn.sklearn import MLPClassifier, MLPRegressor\n"

# test id -> why it cannot pass with polynn's estimators (empty: every test runs).
DESELECTED: dict[str, str] = {}


def sklearn_test_source() -> tuple[Path, str]:
    """Path and text of the installed scikit-learn's test_mlp.py, with the import rewritten."""
    spec = importlib.util.find_spec("sklearn.neural_network.tests.test_mlp")
    if spec is None or spec.origin is None:
        raise SystemExit("the installed scikit-learn has no neural_network/tests/test_mlp.py "
                         "(installed without its tests?)")
    path = Path(spec.origin)
    text = path.read_text()
    if text.count(ORIGINAL_IMPORT) != 1:
        raise SystemExit(f"{path}: expected exactly one line {ORIGINAL_IMPORT.strip()!r} to "
                         "rewrite; this scikit-learn's test file has changed, update the runner")
    rewritten = text.replace(ORIGINAL_IMPORT, POLYNN_IMPORT)
    if "neural_network import MLP" in rewritten or "neural_network._multilayer" in rewritten:
        raise SystemExit(f"{path}: scikit-learn's estimators are still imported elsewhere")
    return path, rewritten


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("POLYNN_BACKEND") or "numpy")
    args, pytest_args = parser.parse_known_args(argv)
    origin, source = sklearn_test_source()
    env = dict(os.environ, POLYNN_BACKEND=args.backend,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    # Small matrices: several BLAS threads only add overhead (and contention on shared CI).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    if args.backend.startswith("jax"):
        env["JAX_ENABLE_X64"] = "1"
        env.setdefault("JAX_PLATFORMS", "cpu" if args.backend == "jax" else "")
    with tempfile.TemporaryDirectory(prefix="polynn-sklearn-conformance-") as tmp:
        test_file = Path(tmp) / "test_mlp.py"
        test_file.write_text(source)
        command = [sys.executable, "-m", "pytest", str(test_file), "-p", "sklearn.conftest",
                   "-p", "no:cacheprovider", "--rootdir", tmp, "-q", "-ra"]
        for test_id in DESELECTED:
            command += ["--deselect", f"{test_file}::{test_id}"]
        print(f"scikit-learn's {origin} against polynn.sklearn on backend {args.backend!r}",
              flush=True)
        return subprocess.call(command + pytest_args, env=env, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
