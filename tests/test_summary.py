"""MLP.summary(): one row per layer, totals, dtype, backend, device and memory."""

from __future__ import annotations

import pytest

import polynn as pn
from polynn.model.summary import Summary


def test_summary_rows_totals_and_memory(backend):
    model = pn.MLP([2, 64, 32, 3], activation=["relu", "tanh"], dropout=[0.2, 0.1],
                   backend=backend, seed=0)
    s = model.summary()
    assert isinstance(s, Summary) and isinstance(s, str) and str(s) == s
    assert [r["name"] for r in s.rows] == ["dense_1", "dense_2", "output"]
    assert [r["shape"] for r in s.rows] == [(2, 64), (64, 32), (32, 3)]
    assert [r["activation"] for r in s.rows] == ["relu", "tanh", "softmax"]
    assert [r["dropout"] for r in s.rows] == [0.2, 0.1, 0.0]
    assert [r["params"] for r in s.rows] == [192, 2080, 99]
    assert s.total_params == 2371 and "Total params: 2,371" in s
    assert s.param_bytes == 2371 * 4 and s.state_bytes == 0
    assert f"backend: {backend.name}" in s and "dtype: float32" in s
    assert "optimizer state: none (not fitted)" in s
    X, y = pn.datasets.spiral(20, 3, seed=0)
    model.fit(X, y, epochs=1, optimizer="adam")
    s = model.summary()
    assert s.state_bytes == 2 * 2371 * 4  # Adam: two moment trees shaped like the parameters
    assert "optimizer state: Adam, 18.5 KiB" in s


def test_summary_of_other_dtypes_and_outputs():
    s = pn.MLP([4, 3], output="identity", dtype="float64").summary()
    assert s.rows == [{"name": "output", "shape": (4, 3), "activation": "identity",
                       "dropout": 0.0, "params": 15}]
    assert s.param_bytes == 15 * 8 and "dtype: float64" in s
    lines = s.splitlines()
    assert lines[0] == "MLP: 1 layers, output identity"
    assert lines[2].split() == ["output", "(4,", "3)", "identity", "-", "15"]


def test_summary_of_a_model_on_a_mesh():
    jax = pytest.importorskip("jax")
    if len(jax.devices()) < 2:
        pytest.skip("needs 2 JAX devices (XLA_FLAGS=--xla_force_host_platform_device_count)")
    model = pn.MLP([2, 8, 3], mesh=2)
    assert "device: mesh(data=2" in model.summary()
