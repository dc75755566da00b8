"""``MLP.hidden(X, layer)``: a hidden layer's activations, equal to the NumPy float64 reference
on every backend, in chunks, host NumPy in the model's host dtype."""

import numpy as np
import pytest

import polynn as pn
from polynn.validate import ParameterError

ACT = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
       "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z,
       "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z)}


def reference(params, X, activation):
    """Every hidden layer's activations in float64 NumPy."""
    out, A = [], X
    for W, b in params[:-1]:
        A = ACT[activation](A @ W + b)
        out.append(A)
    return out


@pytest.mark.parametrize("activation", sorted(ACT))
def test_hidden_equals_the_reference_on_every_backend(backend, activation):
    X = np.random.default_rng(0).normal(size=(37, 5))
    model = pn.MLP([5, 9, 6, 4, 3], activation=activation, backend=backend, dtype="float64",
                   seed=2)
    expected = reference(model.host_params(), X, activation)
    for layer in (0, 1, 2, -1, -2, -3):
        H = model.hidden(X, layer, batch_size=8)  # several chunks, the last one short
        assert isinstance(H, np.ndarray) and H.dtype == np.float64
        assert H.shape == (37, model.layer_sizes[layer % 3 + 1])
        np.testing.assert_allclose(H, expected[layer], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.hidden(X), model.hidden(X, -1, batch_size=5), rtol=1e-12)


def test_hidden_in_float32_and_from_a_memmap(tmp_path):
    X = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    model = pn.MLP([3, 4, 2], seed=0)
    H = model.hidden(np.load(path, mmap_mode="r"))
    assert H.dtype == np.float32 and H.shape == (20, 4)
    np.testing.assert_allclose(H, reference(model.host_params(), X, "relu")[0], rtol=1e-6)


def test_hidden_layer_is_checked_by_name():
    X = np.zeros((2, 3))
    model = pn.MLP([3, 4, 5, 2])
    with pytest.raises(ValueError, match=r"layer must be an integer in \[-2, 1\], got 2"):
        model.hidden(X, 2)
    with pytest.raises(ParameterError, match="layer must be"):
        model.hidden(X, 1.0)
    with pytest.raises(ValueError, match="no hidden layer"):
        pn.MLP([3, 2]).hidden(X)
    with pytest.raises(ValueError, match="X"):
        model.hidden(np.zeros((2, 4)))
