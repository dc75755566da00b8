"""One test session per backend, plus lint and bench.

    nox                      # every default session (the README's test command)
    nox -s "tests(numpy)"    # one backend
    nox -s bench             # the CPU benchmark (not a default session)
    nox -s conformance       # scikit-learn's own MLP tests against polynn.sklearn

The numpy session runs the whole suite; every other backend session runs the tests that use the
``backend`` fixture (``-m backend``) against that backend, which is how parity with the NumPy
float64 reference is checked per backend. GPU sessions skip themselves, with the reason, on a
machine without a usable NVIDIA GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "conformance", "lint"]
nox.options.error_on_missing_interpreters = False

# The torch session pins the release whose CPU wheel this project's machines carry locally;
# override with POLYNN_NOX_TORCH (e.g. "torch" or a CUDA build) elsewhere.
TORCH_SPEC = os.environ.get("POLYNN_NOX_TORCH", "torch==2.13.0")
PYTEST = ("pytest", "-q", "-ra", "-p", "no:cacheprovider")


def _gpu_problem() -> str | None:
    """None when an NVIDIA GPU answers ``nvidia-smi -L``; otherwise why not."""
    if shutil.which("nvidia-smi") is None:
        return "no usable NVIDIA GPU (nvidia-smi not found)"
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no usable NVIDIA GPU (nvidia-smi failed: {e})"
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return f"no usable NVIDIA GPU (nvidia-smi -L: {listed.stderr.strip() or listed.stdout})"
    return None


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict", "jax", "torch", "cupy", "jax_gpu"])
def tests(session: nox.Session, backend: str) -> None:
    env = {"POLYNN_BACKEND": backend.replace("_gpu", "")}
    if backend in ("cupy", "jax_gpu"):
        problem = _gpu_problem()
        if problem:
            session.skip(problem)
    if backend == "torch":
        session.install(TORCH_SPEC)
    extras = {"jax": "test,jax", "jax_gpu": "test", "cupy": "test,cupy"}.get(backend, "test")
    session.install(f".[{extras}]")
    if backend == "jax_gpu":
        session.install("jax[cuda12]")
    if backend == "numpy":
        session.run(*PYTEST, *session.posargs, env=env)
    else:
        session.run(*PYTEST, "-m", "backend", *session.posargs, env=env)
    if backend.startswith("jax"):
        # The independent judge of the hand-derived gradients needs JAX.
        session.run(*PYTEST, "tests/test_gradcheck.py", env=env)
    if backend == "jax":
        # Meshes on a CPU-only machine: JAX's CPU platform exposes 4 devices when told before
        # it starts; the tests also check the compiled HLO, and run two processes on localhost.
        # The scikit-learn estimators' mesh= likewise.
        session.run(*PYTEST, "tests/test_distributed.py", "tests/test_sklearn_mesh.py",
                    env={**env, "JAX_NUM_CPU_DEVICES": "4"})


@nox.session
@nox.parametrize("backend", ["numpy", "jax"])
def conformance(session: nox.Session, backend: str) -> None:
    """The installed scikit-learn's own ``neural_network/tests/test_mlp.py``, run against
    polynn.sklearn's estimators (imports rewritten at run time, see
    tests/sklearn_conformance/run.py)."""
    session.install(".[conformance,jax]" if backend == "jax" else ".[conformance]")
    session.run("python", "tests/sklearn_conformance/run.py", "--backend", backend,
                *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the direction of imports between polynn's rooms (ARCHITECTURE.md; the
    contracts are in pyproject.toml). import-linter reads the source: polynn need not be
    installed, only importable from the project root."""
    session.install("ruff", "import-linter>=2.1")
    session.run("ruff", "check", "--output-format", "concise", ".")
    session.run("lint-imports", env={"PYTHONPATH": os.getcwd()})


@nox.session
def bench(session: nox.Session) -> None:
    session.install(TORCH_SPEC)
    session.install(".[jax,bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
