"""Every code example of README.md and docs/ runs, so that a snippet cannot rot.

Each Markdown file is parsed with sybil: its ```python blocks run in order in one namespace
(as a reader would type them into one session), in a temporary working directory that holds a
small MNIST-shaped IDX directory ``mnist/`` (the files a reader of "Data larger than memory"
has downloaded). In ```bash blocks, each line that starts with ``polynn `` runs as
``python -m polynn ...`` and must exit 0; other lines (installing, nox, benchmarks) are not run.
A block can be skipped only on a condition, with its reason, by a ``<!-- skip: next if(...,
reason="...") -->`` comment: e.g. an example that needs JAX where JAX is not installed, or
onnx/onnxruntime, skl2onnx or skops (``HAS_ONNX``, ``HAS_SKL2ONNX``, ``HAS_SKOPS``) where they
are not.

The benchmarks page's figure is drawn from the committed results here too
(``docs/hooks/benchmark_plot.py``, the MkDocs hook that draws it at build time).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shlex
import struct
import subprocess
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FILES = [ROOT / "README.md", *PAGES]

sybil = pytest.importorskip("sybil")
from sybil import Sybil  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_cli_lines(example) -> None:
    """Run each ``polynn ...`` line of a bash block; other lines are not run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]).rstrip(os.pathsep)}
    for line in example.parsed.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line.startswith("polynn "):
            continue
        done = subprocess.run([sys.executable, "-m", "polynn", *shlex.split(line)[1:]],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{done.stderr[-3000:]}"


def _write_idx(path: Path, array: np.ndarray) -> None:
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    path.write_bytes(header + array.tobytes())


def _fake_mnist(directory: Path, rows: int = 512) -> None:
    """MNIST's four IDX files in miniature (uncompressed: mapped; the test set gzipped)."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    images = rng.integers(0, 256, size=(rows, 28, 28), dtype=np.uint8)
    labels = (np.arange(rows) % 10).astype(np.uint8)
    _write_idx(directory / "train-images-idx3-ubyte", images)
    _write_idx(directory / "train-labels-idx1-ubyte", labels)
    for name, array in (("t10k-images-idx3-ubyte", images[:100]),
                        ("t10k-labels-idx1-ubyte", labels[:100])):
        _write_idx(directory / name, array)
        (directory / f"{name}.gz").write_bytes(gzip.compress((directory / name).read_bytes()))
        (directory / name).unlink()


def _setup(namespace: dict) -> None:
    # What the skip conditions may ask about.
    namespace.update(HAS_JAX=_has("jax"), HAS_TORCH=_has("torch"),
                     HAS_SKLEARN=_has("sklearn") and _has("scipy"),
                     HAS_MATPLOTLIB=_has("matplotlib"),
                     HAS_ONNX=_has("onnx") and _has("onnxruntime"),
                     HAS_SKL2ONNX=_has("skl2onnx") and _has("sklearn") and _has("scipy"),
                     HAS_SKOPS=_has("skops"))


SYBIL = Sybil(parsers=[PythonCodeBlockParser(), CodeBlockParser("bash", run_cli_lines),
                       SkipParser()])


def test_every_page_is_checked():
    assert (ROOT / "README.md").is_file() and PAGES, "README.md and docs/ travel with the tests"
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "getting-started.md", "math.md", "guide/training.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    _fake_mnist(tmp_path / "mnist")
    document = SYBIL.parse(path)
    _setup(document.namespace)
    skipped = []
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            skipped.append(f"line {example.line}: {skip}")
        except Exception as error:  # noqa: BLE001 - re-raised with the page and line
            raise AssertionError(f"{path.relative_to(ROOT)}, the example at line "
                                 f"{example.line} failed: {error!r}") from error
    if skipped:
        # Every example that could run here ran; say which could not, and why.
        print(f"{path.name}: skipped " + "; ".join(skipped))


def test_benchmark_figure_is_drawn_from_the_results():
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("benchmark_plot",
                                                  DOCS / "hooks" / "benchmark_plot.py")
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    svg = plot.speed_svg()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    groups, ratios = plot.speedups({"rows": [
        {"contestant": "numpy-hand", "workload": "w", "dtype": "float32", "ms_per_step": 2.0},
        {"contestant": "polynn-jax", "workload": "w", "dtype": "float32", "ms_per_step": 0.5}]})
    assert groups == ["w float32"] and ratios["polynn-jax"] == [4.0]
    with pytest.raises(ValueError, match="no numpy-hand row"):
        plot.speedups({"rows": [{"contestant": "x", "workload": "w", "dtype": "f",
                                 "ms_per_step": 1.0}]})


def test_reference_covers_every_public_name():
    """Each public package has a ``::: module`` block in docs/reference/ (mkdocstrings renders
    every name of its ``__all__``), and each name of ``polynn.__all__`` is rendered by one."""
    import polynn

    blocks = set()
    for page in (DOCS / "reference").glob("*.md"):
        blocks |= {line[4:].strip() for line in page.read_text(encoding="utf-8").splitlines()
                   if line.startswith("::: ")}
    packages = ("polynn", "polynn.nn", "polynn.datasets", "polynn.sklearn", "polynn.io",
                "polynn.backend", "polynn.train", "polynn.validate", "polynn.distributed",
                "polynn.onnx")
    assert [p for p in packages if p not in blocks] == []
    # Top-level names: their own block, or a module documented on its own page.
    aliases = {"backends": "polynn.backend", "gradcheck": "polynn.gradient_check.gradcheck",
               "__version__": "polynn.version"}
    missing = [name for name in polynn.__all__
               if f"polynn.{name}" not in blocks and aliases.get(name) not in blocks]
    assert missing == []
