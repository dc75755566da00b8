"""dtype="mixed_bfloat16": bfloat16 steps around float32 parameters and optimizer state (Keras's
mixed-precision policy), on JAX and PyTorch; refused with the reason elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

import polynn as pn
from polynn.backend import BackendUnavailableError, dtype_info, get_backend
from polynn.nn import mlp as nn_mlp
from polynn.nn.layout import params_to_columns
from polynn.nn.mixed import value_and_grad_mixed

MIXED_BACKENDS = ("jax", "torch")


def mixed_backend(name):
    try:
        backend = get_backend(name)
    except (BackendUnavailableError, ImportError) as err:
        pytest.skip(str(err))
    return backend


def test_the_record_stores_float32_and_computes_in_bfloat16():
    info = dtype_info("mixed_bfloat16")
    assert info.host == np.float32 and info.itemsize == 4 and info.mixed
    assert info.compute_name == "bfloat16" and not dtype_info("bfloat16").mixed
    for name in MIXED_BACKENDS:
        backend = mixed_backend(name)
        record = backend.dtype_record("mixed_bfloat16")
        assert record.native == backend.dtype("float32")
        assert record.compute == backend.dtype("bfloat16")


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_backends_without_bfloat16_refuse_it_with_the_reason(name):
    with pytest.raises(ValueError, match="mixed_bfloat16.*only JAX and PyTorch"):
        pn.MLP([2, 3], backend=name, dtype="mixed_bfloat16")


@pytest.mark.parametrize("name", MIXED_BACKENDS)
def test_the_mixed_step_matches_float64_at_bfloat16_precision(name):
    backend = mixed_backend(name)
    rng = np.random.default_rng(0)
    params = tuple((W, 0.1 * rng.standard_normal(b.shape))
                   for W, b in pn.init.init_params((4, 16, 8, 3), "he", 0))
    X = rng.standard_normal((32, 4))
    T = np.eye(3)[rng.integers(0, 3, 32)]
    Xa = nn_mlp.augment(X)
    ref_t = params_to_columns(params)
    decay = nn_mlp.weight_decay(ref_t, 1e-2)
    ref_loss, ref_grads, _ = nn_mlp.value_and_grad_columns(ref_t, Xa, T.T, "tanh", "softmax",
                                                           decay)
    f32 = backend.dtype("float32")
    p = tuple(backend.asarray(Wb, "float32") for Wb in ref_t)
    loss, grads, _ = value_and_grad_mixed(
        p, backend.asarray(Xa, "float32"), backend.asarray(T.T, "float32"), "tanh", "softmax",
        nn_mlp.weight_decay(p, 1e-2), compute=backend.dtype("bfloat16"))
    assert loss.dtype == f32 and all(g.dtype == f32 for g in grads)
    # bfloat16 has an 8-bit significand: ~0.4 % per rounding, a few percent after the matmuls.
    assert_close(loss, float(ref_loss), rtol=2e-2, atol=0)
    for g, r in zip(grads, ref_grads):
        scale = np.abs(r).max()
        assert np.abs(np.asarray(backend.to_host(g), np.float64) - r).max() < 5e-2 * scale


@pytest.mark.parametrize("name", MIXED_BACKENDS)
def test_mixed_training_keeps_float32_parameters_state_and_outputs(name, tmp_path):
    backend = mixed_backend(name)
    X, y = pn.datasets.spiral(50, 3, seed=0)
    model = pn.MLP([2, 16, 3], backend=backend, dtype="mixed_bfloat16", seed=0, dropout=0.1)
    model.fit(X, y, epochs=20, batch_size=50, optimizer="adam", lr=0.01)
    f32 = backend.dtype("float32")
    assert all(W.dtype == f32 and b.dtype == f32 for W, b in model.params)
    assert all(leaf.dtype == f32 for tree in model.opt_state[1:] for pair in tree for leaf in pair)
    assert model.dtype == "mixed_bfloat16"
    assert model.predict_proba(X).dtype == np.float32
    assert model.host_params()[0][0].dtype == np.float32
    reg = pn.MLP([2, 8, 1], output="identity", backend=backend, dtype="mixed_bfloat16")
    assert reg.predict(X).dtype == np.float32
    assert "mixed_bfloat16" in model.summary()
    model.save_checkpoint(tmp_path / "m.safetensors")
    loaded = pn.load_checkpoint(tmp_path / "m.safetensors", backend=backend)
    assert loaded.dtype == "mixed_bfloat16"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # On a backend without bfloat16, load it as float32.
    plain = pn.load(tmp_path / "m.safetensors", backend="numpy", dtype="float32")
    np.testing.assert_allclose(plain.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-6)


def test_mixed_training_matches_across_backends():
    runs = [mixed_backend(name) for name in MIXED_BACKENDS]
    X, y = pn.datasets.spiral(50, 3, seed=0)
    params = []
    for backend in runs:
        model = pn.MLP([2, 16, 3], backend=backend, dtype="mixed_bfloat16", seed=0)
        model.fit(X, y, epochs=10, lr=0.1)
        params.append(model.host_params())
    assert_close(params[1], params[0], "float32", rtol=2e-2, atol=2e-3)


def test_mixed_precision_reaches_the_float32_accuracy_on_the_reference_program():
    # The README's reference program: 2-25-3 ReLU/softmax, 10,000 full-batch SGD steps.
    # float32: 98.67 %; bfloat16 everywhere: 67.33 %; mixed_bfloat16: 99.00 % (measured).
    backend = mixed_backend("jax")
    X, y = pn.datasets.spiral(n_per_class=100, n_classes=3, seed=0)
    model = pn.MLP([2, 25, 3], backend=backend, dtype="mixed_bfloat16", seed=0)
    model.fit(X, y, lr=0.1, l2=1e-3, epochs=10_000)
    assert model.score(X, y) >= 0.9867
