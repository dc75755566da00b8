"""One test session per backend, plus lint and bench.

    nox                      # every default session (the README's test command)
    nox -s "tests(numpy)"    # one backend
    nox -s bench             # the CPU benchmark (not a default session)
    nox -s conformance       # scikit-learn's own MLP tests against polynn.sklearn
    nox -s docs              # the documentation site, mkdocs build --strict (site/)
    nox -s sdist             # build, twine check, and the tests from the unpacked sdist

The numpy session runs the whole suite; every other backend session runs the tests that use the
``backend`` fixture (``-m backend``) against that backend, which is how parity with the NumPy
float64 reference is checked per backend. GPU sessions skip themselves, with the reason, on a
machine without a usable NVIDIA GPU.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tarfile

import nox

nox.options.sessions = ["tests", "conformance", "lint", "docs", "sdist"]
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
    if backend in ("numpy", "jax"):
        # tests/test_onnx*.py (export, skl2onnx) skip without the extra: these sessions run them.
        extras += ",onnx"
    session.install(f".[{extras}]")
    if backend == "jax_gpu":
        session.install("jax[cuda12]")
    if backend == "numpy":
        session.run(*PYTEST, *session.posargs, env=env)
    else:
        session.run(*PYTEST, "-m", "backend", *session.posargs, env=env)
    if backend == "jax":
        # The README's and the docs' JAX examples (mesh=, stream=) skip where JAX is missing.
        session.run(*PYTEST, "tests/test_docs.py", env=env)
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
    # mypy reads the annotations of the libraries polynn imports (PyTorch's 0.9 GB are left
    # out: [tool.mypy] treats it as untyped).
    session.install("ruff", "import-linter>=2.1", "mypy>=1.11", ".[jax,sklearn,onnx,plot]")
    session.run("ruff", "check", "--output-format", "concise", ".")
    session.run("lint-imports", env={"PYTHONPATH": os.getcwd()})
    # All of polynn is type-checked, the math strictly ([tool.mypy] in pyproject.toml); mypy
    # reads the source.
    session.run("mypy", "polynn/", env={"PYTHONPATH": os.getcwd()})


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (docs/, mkdocs.yml), built with every warning an error: a broken
    link, a missing page or a docstring mkdocstrings cannot parse fails the session."""
    session.install(".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", os.path.join(session.create_tmp(),
                                                                        "site"),
                env={"NO_MKDOCS_2_WARNING": "1"})


# What the unpacked sdist's tests run: fast files that touch the math, data, the docs (present,
# covering the API, the figure drawn) and the house rules (a file missing from the sdist fails
# them). The docs' examples themselves run in the numpy and jax sessions.
SDIST_TESTS = ("tests/test_architecture.py", "tests/test_parity.py", "tests/test_datasets.py",
               "tests/test_optim.py", "tests/test_docs.py::test_every_page_is_checked",
               "tests/test_docs.py::test_reference_covers_every_public_name",
               "tests/test_docs.py::test_benchmark_figure_is_drawn_from_the_results")


@nox.session
def sdist(session: nox.Session) -> None:
    """Build the sdist and wheel (no warning allowed), ``twine check --strict`` them, then unpack
    the sdist in a temporary directory, install it from there and run a fast subset of its own
    tests there: the sdist carries what its tests need (conftest.py, the docs, the noxfile)."""
    session.install("build", "twine")
    tmp = session.create_tmp()
    dist = os.path.join(tmp, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    # PYTHONDONTWRITEBYTECODE makes setuptools warn that it skips byte-compiling: not ours.
    log = session.run("python", "-m", "build", "--outdir", dist, silent=True,
                      env={"PYTHONDONTWRITEBYTECODE": ""})
    warnings = [line for line in (log or "").splitlines() if "warning" in line.lower()]
    if warnings:
        session.error("python -m build warned:\n" + "\n".join(warnings))
    session.run("twine", "check", "--strict", *sorted(glob.glob(os.path.join(dist, "*"))))
    (archive,) = glob.glob(os.path.join(dist, "*.tar.gz"))
    unpacked = os.path.join(tmp, "unpacked")
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archive) as tar:
        # The "data" filter (Python >= 3.10.12) refuses links and paths outside the target.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(unpacked, **safe)
    (root,) = glob.glob(os.path.join(unpacked, "polynn-*"))
    session.install(f"{root}[test]")
    session.chdir(root)
    session.run(*PYTEST, *(session.posargs or SDIST_TESTS), env={"POLYNN_BACKEND": "numpy"})


@nox.session
def bench(session: nox.Session) -> None:
    session.install(TORCH_SPEC)
    session.install(".[jax,bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
