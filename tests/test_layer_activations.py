"""One activation per hidden layer: pn.MLP(activation=[...]), files, the gradient judge, the
command line, and parity with the NumPy float64 reference on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

import polynn as pn
from polynn.gradient_check import gradcheck
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import ACTIVATIONS, get_activation

NAMES = sorted(ACTIVATIONS)


def test_a_list_gives_each_hidden_layer_its_activation():
    rng = np.random.default_rng(0)
    params = tuple((rng.standard_normal((a, b)), rng.standard_normal(b))
                   for a, b in [(3, 5), (5, 4), (4, 2)])
    X = rng.standard_normal((6, 3))
    A1 = np.tanh(X @ params[0][0] + params[0][1])
    A2 = np.maximum(A1 @ params[1][0] + params[1][1], 0)
    expected = A2 @ params[2][0] + params[2][1]
    np.testing.assert_allclose(nn_mlp.forward(params, X, ("tanh", "relu")), expected,
                               rtol=1e-12)
    # One name still means every hidden layer.
    np.testing.assert_array_equal(nn_mlp.forward(params, X, "relu"),
                                  nn_mlp.forward(params, X, ["relu", "relu"]))


@pytest.mark.parametrize("first", NAMES)
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "poisson"])
def test_backward_with_per_layer_activations_matches_jax_grad(first, output):
    pytest.importorskip("jax")
    k = 1 if output == "sigmoid" else 3
    for second in NAMES:
        r = gradcheck((3, 6, 5, k), [first, second], output, l2=1e-2, m=7,
                      seed=NAMES.index(second), methods=("jax",))
        assert r.max_error("jax") < 1e-10, r.table()


def test_gradcheck_with_per_layer_activations_reports_them():
    r = gradcheck((3, 6, 5, 3), ["leaky_relu", "sigmoid"], "softmax", m=5, methods=("fd",),
                  negative_slope=0.2)
    assert r.ok() and "activation=leaky_relu,sigmoid" in r.table()


def test_the_count_and_names_are_checked():
    with pytest.raises(ValueError, match="activation has 1 names for 2 hidden layers"):
        pn.MLP([2, 4, 4, 3], activation=["relu"])
    with pytest.raises(ValueError, match=r"activation\[1\]"):
        pn.MLP([2, 4, 4, 3], activation=["relu", "bogus"])
    with pytest.raises(TypeError, match="activation"):
        pn.MLP([2, 4, 3], activation=3)
    with pytest.raises(ValueError, match="hidden layers"):
        nn_mlp.forward_columns((np.zeros((4, 3)), np.zeros((3, 5))), np.ones((3, 2)),
                               (get_activation("relu"), get_activation("tanh")))


def test_per_layer_activations_match_numpy_float64_on_every_backend(backend):
    X, y = pn.datasets.spiral(40, 3, seed=2)
    params = {}
    for name, dtype in (("numpy", "float64"), (backend, "float32")):
        model = pn.MLP([2, 12, 10, 8, 3], activation=["tanh", "leaky_relu", "sigmoid"],
                       backend=name, dtype=dtype, seed=5, negative_slope=0.1)
        model.fit(X, y, epochs=5, batch_size=40, optimizer="adam", lr=0.01)
        params[dtype] = (model.host_params(), model.predict_proba(X))
    assert_close(params["float32"][0], params["float64"][0], "float32", rtol=1e-3, atol=1e-4)
    assert_close(params["float32"][1], params["float64"][1], "float32", rtol=1e-3, atol=1e-4)


def test_per_layer_activations_are_saved_loaded_pickled_and_copied(tmp_path):
    import pickle

    X, _ = pn.datasets.spiral(20, 3, seed=0)
    model = pn.MLP([2, 6, 5, 3], activation=["sigmoid", "tanh"], seed=1)
    model.save(tmp_path / "m.safetensors")
    for other in (pn.load(tmp_path / "m.safetensors"), pickle.loads(pickle.dumps(model)),
                  model.to("numpy"), pn.MLP.from_params(model.params,
                                                        activation=model.activation)):
        assert other.activation == ("sigmoid", "tanh")
        np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
    assert "activation=['sigmoid', 'tanh']" in repr(model)


def test_the_command_line_takes_one_activation_per_layer(tmp_path, capsys):
    from polynn.cli import main

    path = tmp_path / "m.safetensors"
    code = main(["train", "--layers", "8", "6", "--activation", "tanh,relu", "--dropout",
                 "0.1,0", "--epochs", "20", "--quiet", "--save", str(path)])
    assert code == 0
    text = capsys.readouterr().out
    assert "dense_1" in text and "Total params" in text  # the summary after training
    model = pn.load(path)
    assert model.activation == ("tanh", "relu") and model.dropout == (0.1, 0.0)
