"""Dropout: counter-based masks (bit-identical on every backend), the hand-derived backward with
the masks judged by jax.grad, and training/inference behaviour of pn.MLP(dropout=...)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import polynn as pn
from polynn.backend import to_host
from polynn.gradient_check import gradcheck
from polynn.init import dropout_key
from polynn.nn.dropout import Dropout, dropout_masks, fmix32, layer_mask, threshold

PAIRS = [(a, o) for a in ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
         for o in ["softmax", "sigmoid", "identity", "poisson"]]


def numpy_masks(key=12345, step=7, examples=None, sizes=(6, 5), rates=(0.5, 0.25)):
    examples = np.arange(40) if examples is None else examples
    return dropout_masks(key, step, examples, sizes, rates, np.float32)


# --- the generator ----------------------------------------------------------------------------
def test_fmix32_is_murmur3s_finaliser():
    # Reference values of MurmurHash3's fmix32, computed with Python ints.
    def reference(h):
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    words = np.array([0, 1, 2, 12345, 2**31, 2**32 - 1], np.uint32)
    assert fmix32(words).tolist() == [reference(int(w)) for w in words]
    as_int64 = fmix32(words.astype(np.int64))
    assert as_int64.dtype == np.int64 and as_int64.tolist() == [reference(int(w)) for w in words]


def test_masks_hold_zero_or_the_inverse_keep_rate_at_the_rate():
    (D,) = dropout_masks(3, 0, np.arange(20000), (50,), (0.3,), np.float64)
    assert D.shape == (50, 20000) and D.dtype == np.float64
    assert set(np.unique(D)) == {0.0, 1 / 0.7}
    assert abs(np.mean(D == 0) - 0.3) < 0.003
    # Units and examples are not correlated: each unit's and each example's drop rate is near p.
    assert np.abs((D == 0).mean(axis=1) - 0.3).max() < 0.015


def test_masks_change_with_every_counter_and_rate_zero_is_none():
    base = numpy_masks()
    assert numpy_masks(sizes=(6, 5), rates=(0.5, 0.0))[1] is None
    for other in (numpy_masks(key=12346), numpy_masks(step=8),
                  numpy_masks(examples=np.arange(1, 41))):
        assert not np.array_equal(base[0], other[0])
    assert not np.array_equal(base[0][:5], base[1])  # the layer is hashed too


def test_an_examples_mask_does_not_depend_on_its_batch():
    # The example index is its row in the data set: a shuffled batch drops the same units.
    order = np.random.default_rng(0).permutation(40)
    full, = dropout_masks(9, 3, np.arange(40), (8,), (0.5,), np.float32)
    batch, = dropout_masks(9, 3, order[:10], (8,), (0.5,), np.float32)
    np.testing.assert_array_equal(batch, full[:, order[:10]])


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0, 0.999), key=st.integers(0, 2**40), step=st.integers(0, 2**31 - 1))
def test_threshold_and_masks_for_any_rate_key_and_step(rate, key, step):
    assert 0 <= threshold(rate) <= 2**32 - 1
    D = layer_mask(key, step, 0, np.arange(64), 16, rate, np.float64)
    kept = D != 0
    np.testing.assert_array_equal(D[kept], 1.0 / (1.0 - rate))
    assert np.all(np.isfinite(D))


def test_masks_are_bit_identical_on_every_backend(backend):
    expected = numpy_masks()
    examples = backend.asarray(np.arange(40))
    dtype = backend.dtype("float32")
    got = dropout_masks(12345, 7, examples, (6, 5), (0.5, 0.25), dtype)
    for g, e in zip(got, expected):
        assert g.dtype == dtype
        np.testing.assert_array_equal(to_host(g), e)  # bit for bit, not close


def test_masks_are_bit_identical_inside_a_compiled_jax_loop():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    dropout = Dropout(dropout_key(5), (6, 5), (0.5, 0.25))
    like = jnp.zeros((3, 40), jnp.float32)

    def body(step, acc):  # the step count is a traced value here
        return acc + dropout.masks(step, jnp.arange(40), like)[0]

    summed = jax.jit(lambda: jax.lax.fori_loop(0, 4, body, jnp.zeros((6, 40), jnp.float32)))()
    expected = sum(dropout_masks(dropout_key(5), s, np.arange(40), (6, 5), (0.5, 0.25),
                                 np.float32)[0] for s in range(4))
    np.testing.assert_array_equal(np.asarray(summed), expected)


# --- the math: hand-derived backward with the masks, judged by jax.grad ------------------------
@pytest.mark.parametrize("activation,output", PAIRS)
def test_backward_with_dropout_matches_jax_grad(activation, output):
    pytest.importorskip("jax")
    k = 1 if output == "sigmoid" else 3
    for sizes, rate in (((3, 7, k), 0.5), ((3, 6, 5, k), [0.3, 0.6]), ((4, 5, 4, 6, k), 0.2)):
        r = gradcheck(sizes, activation, output, l2=1e-2, m=9, seed=len(sizes), dropout=rate,
                      methods=("jax",))
        assert r.max_error("jax") < 1e-10, r.table()


def test_backward_with_dropout_matches_finite_differences():
    r = gradcheck((3, 6, 5, 3), ["tanh", "sigmoid"], "softmax", l2=1e-2, m=7, seed=1,
                  dropout=[0.5, 0.3], methods=("fd",))
    assert r.ok(), r.table()
    assert "dropout=[0.5, 0.3]" in r.table()


def test_the_judge_sees_the_dropped_units():
    # With every unit but a few dropped, the loss differs from the loss without dropout.
    plain = gradcheck((3, 6, 3), "relu", "softmax", m=5, methods=("fd",))
    dropped = gradcheck((3, 6, 3), "relu", "softmax", m=5, dropout=0.9, methods=("fd",))
    assert plain.loss != dropped.loss


# --- the model ---------------------------------------------------------------------------------
def spiral():
    return pn.datasets.spiral(60, 3, seed=1)


def test_dropout_is_checked_and_kept_per_layer():
    model = pn.MLP([2, 8, 6, 3], dropout=0.25)
    assert model.dropout == (0.25, 0.25)
    assert pn.MLP([2, 8, 6, 3], dropout=[0.1, 0.0]).dropout == (0.1, 0.0)
    for bad in (1.0, -0.1, float("nan"), [0.1], [0.1, 0.2, 0.3], "0.5", True):
        with pytest.raises((ValueError, TypeError), match="dropout"):
            pn.MLP([2, 8, 6, 3], dropout=bad)


def test_dropout_never_acts_outside_training(backend):
    X, y = spiral()
    plain = pn.MLP([2, 16, 3], backend=backend, seed=3)
    dropped = pn.MLP([2, 16, 3], backend=backend, seed=3, dropout=0.5)
    np.testing.assert_array_equal(plain.predict_proba(X), dropped.predict_proba(X))
    assert plain.score(X, y) == dropped.score(X, y)
    assert plain.loss(X, y) == dropped.loss(X, y)
    assert plain.value_and_grad(X, y)[0] == dropped.value_and_grad(X, y)[0]
    assert dropped.value_and_grad(X, y, training=True)[0] != plain.value_and_grad(X, y)[0]
    assert plain.value_and_grad(X, y, training=True)[0] == plain.value_and_grad(X, y)[0]


def test_value_and_grad_training_applies_the_fits_masks():
    X, y = spiral()
    model = pn.MLP([2, 16, 12, 3], activation=["tanh", "relu"], dropout=[0.5, 0.2], seed=4,
                   dtype="float64")
    loss, grads = model.value_and_grad(X, y, l2=1e-3, training=True)
    masks = dropout_masks(dropout_key(4), 0, np.arange(len(X)), (16, 12), (0.5, 0.2),
                          np.float64)
    T = np.eye(3)[y]
    ref_loss, ref_grads = pn.nn.value_and_grad(model.host_params(), X, T, model.activation_fn,
                                               "softmax", 1e-3, masks=masks)
    assert loss == pytest.approx(float(ref_loss), rel=1e-12)
    assert_close(grads, ref_grads)


def test_validation_loss_is_without_dropout():
    X, y = spiral()
    model = pn.MLP([2, 16, 3], dropout=0.5, seed=2)
    history = model.fit(X, y, epochs=2, validation_data=(X, y), optimizer="adam", lr=0.01)
    # The last validation loss is the loss of the final parameters without any dropout.
    assert history.val_loss[-1] == pytest.approx(model.loss(X, y), rel=1e-5)


def test_full_batch_and_mini_batch_training_with_dropout_match_numpy_float64(backend):
    X, y = spiral()
    for batch_size in (None, 32):
        runs = {}
        for name, dtype in (("numpy", "float64"), (backend, "float32")):
            model = pn.MLP([2, 16, 8, 3], activation=["relu", "tanh"], dropout=[0.3, 0.2],
                           backend=name, dtype=dtype, seed=6)
            model.fit(X, y, epochs=4, batch_size=batch_size, optimizer="adam", lr=0.01)
            runs[dtype] = model.host_params()
        assert_close(runs["float32"], runs["float64"], "float32", rtol=2e-3, atol=2e-4)


def test_dropout_changes_training_and_a_seed_reproduces_it():
    X, y = spiral()

    def trained(**kw):
        model = pn.MLP([2, 16, 3], seed=1, **kw)
        model.fit(X, y, epochs=3, batch_size=20, optimizer="adam", lr=0.01)
        return model.host_params()[0][0]

    np.testing.assert_array_equal(trained(dropout=0.4), trained(dropout=0.4))
    assert not np.array_equal(trained(dropout=0.4), trained())


def test_dropout_with_a_validation_split_uses_the_rows_data_set_indices():
    X, y = spiral()
    model = pn.MLP([2, 16, 3], seed=1, dropout=0.3)
    model.fit(X, y, epochs=2, validation_split=0.2)  # full batch over a subset of rows
    assert np.isfinite(model.loss(X, y))


def test_dropout_learns_the_spiral():
    X, y = pn.datasets.spiral(100, 3, seed=0)
    model = pn.MLP([2, 100, 3], seed=0, dropout=0.1)
    model.fit(X, y, epochs=2000, optimizer="adam", lr=0.01)
    assert model.score(X, y) > 0.9


def test_dropout_is_saved_and_loaded(tmp_path):
    model = pn.MLP([2, 8, 6, 3], dropout=[0.2, 0.4], activation=["tanh", "relu"])
    model.save(tmp_path / "m.safetensors")
    loaded = pn.load(tmp_path / "m.safetensors")
    assert loaded.dropout == (0.2, 0.4) and loaded.activation == ("tanh", "relu")
    assert "dropout" in file_config(tmp_path / "m.safetensors")
    plain = pn.MLP([2, 8, 3])
    plain.save(tmp_path / "p.safetensors")
    # Without dropout the file is the one earlier versions wrote (and read).
    assert "dropout" not in file_config(tmp_path / "p.safetensors")
    assert pn.load(tmp_path / "p.safetensors").dropout == (0.0,)


def file_config(path):
    """The configuration JSON of a model file (safetensors: an 8-byte length, then JSON)."""
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    return json.loads(header["__metadata__"]["polynn.config"])


def test_streamed_training_with_dropout_matches_the_resident_run():
    pytest.importorskip("jax")
    X, y = spiral()
    params = {}
    for stream in (False, True):
        model = pn.MLP([2, 16, 3], backend="jax", seed=2, dropout=0.3)
        model.fit(X, y, epochs=2, batch_size=16, optimizer="adam", lr=0.01, stream=stream)
        params[stream] = model.host_params()
    assert_close(params[True], params[False], "float32")


@pytest.mark.parametrize("key,value,words", [
    ("dropout", 1.5, "dropout"), ("dropout", [0.1, 0.2], "dropout has 2 rates for 1 hidden"),
    ("dropout", "0.1", "dropout"), ("activation", ["relu", "tanh"], "activation has 2 names"),
    ("activation", ["swish"], "activation[0]")])
def test_a_files_bad_dropout_or_activations_are_refused_by_name(key, value, words):
    from polynn.io.errors import Refused
    from polynn.io.schema import model_config

    config = {"layer_sizes": [2, 3, 2], "activation": "tanh", "output": "softmax",
              "negative_slope": 0.01, "init": "he", "dtype": "float32", "seed": 7, key: value}
    with pytest.raises(Refused, match=words.replace("[", r"\[").replace("]", r"\]")):
        model_config(config)
