"""Hand-derived backward against jax.grad and central finite differences, float64."""

import sys

import numpy as np
import pytest

from polynn.gradient_check import (
    finite_difference_gradients,
    gradcheck,
    jax_gradients,
    random_problem,
    relative_error,
)
from polynn.nn import mlp
from polynn.nn.activations import ACTIVATIONS, Activation
from polynn.nn.layout import params_to_columns
from polynn.nn.losses import OUTPUTS

PAIRS = [(a, o) for a in ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
         for o in ["softmax", "sigmoid", "identity", "poisson"]]
DEPTHS = [1, 2, 3, 4]  # hidden layers
WIDTHS = [4, 7]


def test_every_pair_is_covered():
    assert {a for a, _ in PAIRS} == set(ACTIVATIONS)
    assert {o for _, o in PAIRS} == set(OUTPUTS)


def sizes_for(depth, width, output):
    return (3, *([width] * depth), 1 if output == "sigmoid" else 3)


@pytest.mark.parametrize("activation,output", PAIRS)
def test_backward_matches_jax_grad(activation, output):
    pytest.importorskip("jax")
    for depth in DEPTHS:
        for width in WIDTHS:
            r = gradcheck(sizes_for(depth, width, output), activation, output, l2=1e-2, m=6,
                          seed=depth * 10 + width, methods=("jax",))
            assert r.max_error("jax") < 1e-10, r.table()


@pytest.mark.parametrize("activation,output", PAIRS)
def test_backward_matches_finite_differences(activation, output):
    for depth in DEPTHS:
        r = gradcheck(sizes_for(depth, 5, output), activation, output, l2=1e-2, m=6,
                      seed=depth, methods=("fd",))
        assert r.max_error("fd") < 1e-6, r.table()


def test_several_sigmoid_output_units():
    # k independent sigmoid units: multilabel classification.
    r = gradcheck((4, 6, 3), "tanh", "sigmoid", l2=1e-3, m=5, seed=2, methods=("fd",))
    assert r.ok()
    pytest.importorskip("jax")
    r = gradcheck((4, 6, 5, 3), "relu", "sigmoid", l2=1e-3, m=7, seed=3, methods=("jax",))
    assert r.max_error("jax") < 1e-10, r.table()


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_weighted_backward_matches_jax_grad(output):
    """Example weights (a (1, m) row summing to 1) in every output/loss pair, with weight decay:
    the hand-derived columns gradients against jax.grad of the same weighted loss."""
    jax = pytest.importorskip("jax")
    from polynn.gradient_check import jax_float64

    k = 1 if output == "sigmoid" else 3
    params, X, T = random_problem((4, 6, 5, k), output, m=9, seed=4)
    w = np.random.default_rng(5).uniform(0.0, 3.0, 9)
    w = (w / w.sum()).reshape(1, -1)
    with jax_float64():
        import jax.numpy as jnp

        params_t = params_to_columns(tuple((jnp.asarray(W), jnp.asarray(b)) for W, b in params))
        Xa, Tc, wj = mlp.augment(jnp.asarray(X)), jnp.asarray(T.T), jnp.asarray(w)
        decay = mlp.weight_decay(params_t, 1e-2)

        def value(p):
            return mlp.value_and_grad_columns(p, Xa, Tc, "tanh", output, decay, wj)[0]

        judged = jax.grad(value)(params_t)
        _, mine, _ = mlp.value_and_grad_columns(params_t, Xa, Tc, "tanh", output, decay, wj)
        for a, b in zip(mine, judged):
            assert relative_error(a, b) < 1e-10
        # Uniform weights are the unweighted loss.
        uniform = jnp.full((1, 9), 1 / 9)
        assert float(mlp.value_and_grad_columns(params_t, Xa, Tc, "tanh", output, decay,
                                                uniform)[0]) == pytest.approx(
            float(mlp.value_and_grad_columns(params_t, Xa, Tc, "tanh", output, decay)[0]),
            rel=1e-13)


def test_judges_return_float64_arrays_shaped_like_params():
    params, X, T = random_problem((3, 5, 2), "softmax", m=4, seed=0)
    judges = [finite_difference_gradients(params, X, T, "tanh", "softmax", 1e-3)]
    try:
        judges.append(jax_gradients(params, X, T, "tanh", "softmax", 1e-3))
    except ImportError:
        pass  # no JAX here: the finite-difference judge alone
    for grads in judges:
        assert isinstance(grads, tuple) and len(grads) == len(params)
        for (dW, db), (W, b) in zip(grads, params):
            assert type(dW) is np.ndarray and dW.dtype == np.float64 and dW.shape == W.shape
            assert type(db) is np.ndarray and db.dtype == np.float64 and db.shape == b.shape


def test_random_problem_targets_suit_the_output():
    _, X, T = random_problem((2, 4, 3), "softmax", m=9, seed=1)
    assert X.shape == (9, 2) and T.shape == (9, 3)
    np.testing.assert_array_equal(T.sum(axis=1), 1.0)
    _, _, T = random_problem((2, 4, 1), "sigmoid", m=9, seed=1)
    assert T.shape == (9, 1) and set(np.unique(T)) <= {0.0, 1.0}
    params, _, T = random_problem((2, 4, 2), "identity", m=9, seed=1)
    assert T.shape == (9, 2) and np.all(params[0][1] != 0)  # biases take part


def test_jax_judge_catches_a_wrong_derivative():
    pytest.importorskip("jax")
    good = ACTIVATIONS["tanh"]
    broken = Activation(good.forward, lambda A, dA: dA * (1.0 - A))  # wrong: should be 1 - A²
    params, X, T = random_problem((3, 5, 3), "softmax", m=6, seed=0)
    _, mine = mlp.value_and_grad(params, X, T, broken, "softmax", 1e-3)
    theirs = jax_gradients(params, X, T, broken, "softmax", 1e-3)  # differentiates the forward
    assert relative_error(mine[0][0], theirs[0][0]) > 1e-3
    np.testing.assert_allclose(mine[-1][0], theirs[-1][0], rtol=1e-12)  # last layer unaffected


def test_jax_leaves_the_global_x64_setting_alone():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    gradcheck((2, 3, 2), methods=("jax",))
    assert jax.config.jax_enable_x64 == before


def test_jax_float64_is_scoped_to_the_block():
    jax = pytest.importorskip("jax")
    from polynn.gradient_check import jax_float64

    before = jax.config.jax_enable_x64
    with jax_float64():
        assert jax.numpy.asarray(1.0, dtype=jax.numpy.float64).dtype == np.float64
    assert jax.config.jax_enable_x64 == before


def test_layer_sizes_and_sample_count_are_checked_as_the_model_checks_them():
    with pytest.raises(TypeError, match="layer_sizes"):
        gradcheck(layer_sizes=(3, 2.5, 2))
    with pytest.raises(ValueError, match="m must be a positive integer"):
        gradcheck(m=0)


def test_result_ok_and_table():
    r = gradcheck((2, 4, 3), "relu", "softmax", l2=1e-3, m=5, seed=0, methods=("fd",))
    text = r.table()
    for piece in ["W1", "b1", "W2", "b2", "(2, 4)", "(4,)", "vs fd", "relu", "softmax"]:
        assert piece in text
    assert r.ok() and r.ok(1e-5) and r.ok({"fd": 1e-5})
    assert not r.ok(0.0)  # central differences are never exact
    assert len(r.errors["fd"]) == 2 and all(len(pair) == 2 for pair in r.errors["fd"])


def test_missing_jax_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now raises ImportError
    monkeypatch.setitem(sys.modules, "jax.numpy", None)
    r = gradcheck((2, 3, 2), m=4)
    assert r.errors["jax"].startswith("unavailable: install polynn[jax]")
    assert "unavailable" in r.table()
    assert r.ok()  # the finite-difference judge still ran
    assert not gradcheck((2, 3, 2), m=4, methods=("jax",)).ok()  # no judge ran


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown gradcheck method"):
        gradcheck(methods=("torch",))
    with pytest.raises(ValueError, match="unknown activation"):
        gradcheck(activation="swish")
    with pytest.raises(ValueError, match="unknown output"):
        gradcheck(output="softplus")
    with pytest.raises(ValueError, match="at least 2"):
        gradcheck(layer_sizes=(3,))


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1.0, 2.0], [1.0, 2.5]) == pytest.approx(0.2)


def test_pn_gradcheck_stays_the_function_after_its_module_is_imported():
    # The module has its own name: importing it must not replace ``polynn.gradcheck`` (the
    # function) with a module, as importing a submodule of the same name did.
    import polynn
    import polynn.gradient_check  # noqa: F401

    assert callable(polynn.gradcheck) and polynn.gradcheck.__name__ == "gradcheck"
    r = polynn.gradcheck((2, 3, 2), m=4, methods=("fd",))
    assert r.ok()
