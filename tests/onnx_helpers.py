"""Helpers of the ONNX tests (tests/test_onnx*.py): running a graph with onnxruntime, data, the
rows whose labels do not hang on rounding, a fresh Python process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort

# Absolute tolerance of probabilities (in [0, 1]); labels are compared exactly away from ties.
# Regression values are not bounded: they meet it relative to their scale (assert_values).
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def session(proto):
    """An onnxruntime session of the ModelProto ``proto`` on the CPU."""
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(proto, X):
    """onnxruntime's outputs of ``proto`` on ``X``, by name."""
    graph = session(proto)
    names = [o.name for o in graph.get_outputs()]
    return dict(zip(names, graph.run(None, {"X": X})))


def decided(Z, output):
    """Rows whose label does not hang on rounding: the top two scores (softmax) or every score
    and 0 (sigmoid) at least 1e-4 apart."""
    if output == "softmax":
        top = np.sort(Z, axis=1)
        return top[:, -1] - top[:, -2] > 1e-4
    return np.all(np.abs(Z) > 1e-4, axis=1)


def assert_values(got, expected, output, dtype):
    """A regressor's values to ``TOLERANCE[dtype]`` times the scale of the scores ``Z``: two
    float32 sums of the same terms in another order differ by a few units in the last place
    of Z (measured up to ~3e-6 for |Z| = 13), not by 1e-6 absolute. identity: ``|diff| <= tol *
    max(1, max |Z|)``; poisson (values ``exp(Z)``): the same bound on ``|log diff|``, as exp
    turns Z's absolute error into a relative one."""
    got = np.asarray(got, np.float64).reshape(np.shape(expected))
    expected = np.asarray(expected, np.float64)
    if output == "poisson":
        got, expected = np.log(got), np.log(expected)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def data(n_features, dtype, rows=64, seed=0):
    """Standard normal ``(rows, n_features)`` in ``dtype``."""
    return np.random.default_rng(seed).normal(size=(rows, n_features)).astype(dtype)


def run_python(script, **env):
    """Run ``script`` (dedented) in a fresh Python with this checkout importable; its stdout."""
    env = dict(os.environ, POLYNN_BACKEND="numpy", **env,
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
