"""Every backend against the NumPy float64 reference, from the same seed."""

import numpy as np
import pytest
from conftest import assert_close

import polynn as pn
from polynn.init import init_params
from polynn.nn import mlp

CASES = [  # layer sizes, hidden activation, output
    ([2, 25, 3], "relu", "softmax"),
    ([4, 16, 8, 1], "tanh", "sigmoid"),
    ([3, 12, 6, 5, 2], "leaky_relu", "identity"),
    ([5, 7, 4], "sigmoid", "softmax"),
]


def make_data(sizes, output, m=40, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, sizes[0]))
    if output == "softmax":
        y = rng.integers(0, sizes[-1], m)
    elif output == "sigmoid":
        y = rng.integers(0, 2, m)
    else:
        y = rng.standard_normal((m, sizes[-1]))
    return X, y


def reference(sizes, activation, output, X, y, l2=1e-3):
    model = pn.MLP(sizes, activation=activation, output=output, backend="numpy",
                   dtype="float64", seed=3)
    Z = pn.backends.to_host(model.forward(X))
    loss, grads = model.value_and_grad(X, y, l2=l2)
    return model, Z, loss, grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes,activation,output", CASES)
def test_forward_loss_gradients_match_numpy_float64(backend, dtype, sizes, activation, output):
    X, y = make_data(sizes, output)
    _, Z_ref, loss_ref, grads_ref = reference(sizes, activation, output, X, y)
    model = pn.MLP(sizes, activation=activation, output=output, backend=backend.name,
                   dtype=dtype, seed=3)
    assert_close(model.forward(X), Z_ref, dtype)
    loss, grads = model.value_and_grad(X, y, l2=1e-3)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-9 if dtype == "float64" else 1e-5)
    for (dW, db), (W, b) in zip(grads, model.params):
        assert dW.shape == W.shape and db.shape == b.shape
        assert dW.dtype == W.dtype == backend.dtype(dtype)
    assert_close(grads, grads_ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("sizes,activation,output", CASES[:3])
def test_parameters_after_50_steps_match_numpy(backend, dtype, batch_size, sizes, activation,
                                               output):
    X, y = make_data(sizes, output, m=64)
    epochs = 50 if batch_size is None else 13  # 4 batches per epoch: 52 steps
    options = dict(lr=0.05, l2=1e-3, epochs=epochs, batch_size=batch_size, seed=7)
    ref = pn.MLP(sizes, activation=activation, output=output, backend="numpy", dtype="float64",
                 seed=3)
    ref_history = ref.fit(X, y, **options)
    model = pn.MLP(sizes, activation=activation, output=output, backend=backend.name,
                   dtype=dtype, seed=3)
    history = model.fit(X, y, **options)
    assert history.steps == ref_history.steps >= 50
    tol = {} if dtype == "float64" else dict(rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(history.loss, ref_history.loss, **(tol or dict(rtol=1e-9)))
    assert_close(model.params, ref.host_params(), dtype, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("init", ["he", "glorot"])
def test_initial_weights_are_bit_identical(backend, dtype, init):
    sizes = [6, 9, 4, 2]
    expected = init_params(sizes, init, seed=11)
    model = pn.MLP(sizes, backend=backend.name, dtype=dtype, init=init, seed=11)
    for (W, b), (W0, b0) in zip(model.host_params(), expected):
        assert W.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(W, W0.astype(dtype))
        np.testing.assert_array_equal(b, np.zeros(b0.shape, dtype))


def test_he_init_has_the_reference_scale():
    (W, b), = init_params([400, 300], "he", seed=0)
    assert W.shape == (400, 300) and b.shape == (300,)
    np.testing.assert_allclose(W.std(), np.sqrt(2 / 400), rtol=0.02)
    assert abs(W.mean()) < 0.01 and not b.any()


def test_predictions_agree_across_backends(backend):
    X, y = pn.datasets.spiral(seed=0)
    ref = pn.MLP([2, 16, 3], backend="numpy", dtype="float64", seed=0)
    ref.fit(X, y, lr=0.5, epochs=30)
    model = pn.MLP.from_params(ref.params, backend=backend.name, dtype="float64")
    np.testing.assert_array_equal(model.predict(X), ref.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), rtol=1e-9)


def test_loss_matches_a_direct_numpy_formula():
    """The fused softmax/cross-entropy against the seeds' literal formula."""
    X, y = make_data([2, 25, 3], "softmax")
    model = pn.MLP([2, 25, 3], backend="numpy", dtype="float64", seed=0)
    (W1, b1), (W2, b2) = model.host_params()
    scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = -np.log(probs[np.arange(len(y)), y]).mean() + 0.5 * 1e-3 * (
        (W1 * W1).sum() + (W2 * W2).sum())
    assert model.loss(X, y, l2=1e-3) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(mlp.forward(model.params, X, "relu"), scores, rtol=1e-13)
    Xa = mlp.augment(X)
    Z, cache = mlp.forward_columns(mlp.to_columns(model.params), Xa, "relu")
    assert len(cache) == 2 and cache[0] is Xa and cache[1].shape == (25 + 1, len(y))
    np.testing.assert_allclose(Z, scores.T, rtol=1e-13)
