"""Issue 15 §5: sample weights of any scale, mini-batches whose weights sum to zero, callback
answers and mesh sizes. Property-based (hypothesis) where a class of inputs is tested; the
MLP parts use the ``backend`` fixture."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polynn as pn
from polynn.validate import check_sample_weight, normalize_sample_weight

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=8)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data(m=48, k=2):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(m, 4))
    return X, (X[:, 0] > 0).astype(np.int64) + (k > 2) * (X[:, 1] > 0)


def host_params(model):
    return [np.asarray(pn.backend.to_host(p), dtype=np.float64)
            for W, b in model.params for p in (W, b)]


# --- weights normalised in float64 on the host --------------------------------------------------
scales = st.one_of(st.sampled_from([1e300, 1e-300, 1e39, 1e-39, 5e-324, 1.7e308, 1.0]),
                   st.floats(min_value=5e-324, max_value=1.7e308))


@SETTINGS
@given(scale=scales, m=st.integers(1, 2000), zeros=st.integers(0, 5))
def test_normalised_weights_are_exact_rescalings(scale, m, zeros):
    w = np.full(m, scale)
    w[:min(zeros, m - 1)] = 0.0
    normalised, exponent = normalize_sample_weight(check_sample_weight(w, m))
    assert normalised.dtype == np.float64
    assert 0.25 <= normalised.mean() < 1.0 + 1e-12
    # An exact power-of-two scaling: the ratios between weights are kept (those not flushed
    # to zero: only ratios below 2**-1074 are).
    positive = normalised[w > 0]
    assert np.all(positive == positive[0]) and positive[0] > 0
    assert math.ldexp(float(positive[0]), exponent) == scale
    assert np.isfinite(normalised.astype(np.float32)).all()
    assert (normalised.astype(np.float32)[w > 0] > 0).all()


@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e39, 5e-324])
def test_uniform_weights_of_any_scale_train_like_ones(backend, scale):
    X, y = data()
    trained = []
    for weights in (None, np.full(len(y), scale)):
        model = pn.MLP([4, 6, 2], backend=backend, seed=3)
        history = model.fit(X, y, epochs=3, batch_size=16, l2=1e-3, sample_weight=weights)
        trained.append((history.loss, host_params(model)))
    (loss_a, params_a), (loss_b, params_b) = trained
    assert np.isfinite(loss_b).all()
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)
    for a, b in zip(params_a, params_b):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_loss_and_gradient_with_huge_weights_are_right(backend):
    X, y = data()
    model = pn.MLP([4, 6, 2], backend=backend, seed=3)
    heavy = np.full(len(y), 1e39)  # inf in float32 if cast first
    assert model.loss(X, y, sample_weight=heavy) == pytest.approx(model.loss(X, y), rel=1e-6)
    value, grads = model.value_and_grad(X, y, sample_weight=heavy)
    plain, plain_grads = model.value_and_grad(X, y)
    assert value == pytest.approx(plain, rel=1e-6)
    for pair, plain_pair in zip(grads, plain_grads):
        for g, p in zip(pair, plain_pair):
            np.testing.assert_allclose(np.asarray(pn.backend.to_host(g), dtype=float),
                                       np.asarray(pn.backend.to_host(p), dtype=float),
                                       rtol=1e-5, atol=1e-7)


def test_l2_per_weight_keeps_its_meaning_after_normalisation():
    """scikit-learn's penalty over the batch's sum of weights depends on their scale: twice the
    weights, half the penalty, whatever normalisation does inside."""
    X, y = data()
    runs = []
    for weights, l2 in ((np.full(len(y), 2.0), 1e-2), (np.ones(len(y)), 5e-3)):
        model = pn.MLP([4, 6, 2], dtype="float64", seed=3)
        model.fit(X, y, epochs=3, batch_size=16, l2=l2, sample_weight=weights,
                  l2_per_weight=True)
        runs.append(host_params(model))
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# --- the zero-sum batch rule: skipped -------------------------------------------------------
@FEW
@given(zero_rows=st.sets(st.integers(0, 23), min_size=1, max_size=20),
       batch_size=st.sampled_from([1, 2, 5, 8]), shuffle=st.booleans())
def test_zero_weight_batches_are_skipped_never_diverge(zero_rows, batch_size, shuffle):
    X, y = data(24)
    w = np.ones(24)
    w[sorted(zero_rows)] = 0.0
    model = pn.MLP([4, 5, 2], seed=1)
    history = model.fit(X, y, epochs=2, batch_size=batch_size, shuffle=shuffle,
                        sample_weight=w, optimizer="adam")
    assert np.isfinite(history.loss).all() and len(history.loss) == 2
    assert all(np.isfinite(p).all() for p in host_params(model))


def test_sorted_zero_weights_train_as_if_those_rows_were_absent(backend):
    """Batches of weight zero are skipped: no update, no optimizer step, not in the epoch's
    mean; with the zero rows sorted first that is training on the other rows alone."""
    X, y = data(40)
    w = np.ones(40)
    w[:8] = 0.0
    a = pn.MLP([4, 5, 2], backend=backend, seed=0)
    h_a = a.fit(X, y, epochs=2, batch_size=8, shuffle=False, sample_weight=w, optimizer="adam")
    b = pn.MLP([4, 5, 2], backend=backend, seed=0)
    h_b = b.fit(X[8:], y[8:], epochs=2, batch_size=8, shuffle=False, optimizer="adam")
    np.testing.assert_allclose(h_a.loss, h_b.loss, rtol=1e-6)
    assert int(np.asarray(pn.backend.to_host(a.opt_state[0]))) == 8
    for p, q in zip(host_params(a), host_params(b)):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


def test_batch_size_one_with_zero_weights(backend):
    X, y = data(30)
    w = np.ones(30)
    w[::3] = 0.0
    model = pn.MLP([4, 5, 2], backend=backend, seed=0)
    history = model.fit(X, y, epochs=2, batch_size=1, sample_weight=w)
    assert np.isfinite(history.loss).all()
    assert int(np.asarray(pn.backend.to_host(model.opt_state[0]))) == 2 * 20


def test_trained_rows_without_weight_are_refused():
    X, y = data(40)
    w = np.zeros(40)
    w[0] = 1.0
    model = pn.MLP([4, 5, 2], seed=0)
    # whichever rows the split keeps, a full batch of weight zero cannot train
    model2 = pn.MLP([4, 5, 2], seed=0)
    for m, kwargs in ((model, dict(batch_size=None)), (model2, dict(batch_size=4))):
        try:
            m.fit(X, y, epochs=1, sample_weight=w, validation_split=0.5, **kwargs)
        except ValueError as err:
            assert "sample_weight" in str(err) and "sum to zero" in str(err)


# --- the callback rule ----------------------------------------------------------------------------
answers = st.one_of(st.text(max_size=3), st.integers(), st.floats(), st.lists(st.booleans()),
                    st.just(np.array([True, False])), st.just(np.bool_(True)),
                    st.just(np.float64(0.0)), st.none(), st.booleans())


@SETTINGS
@given(answer=answers)
def test_a_callback_answers_none_false_or_true(answer):
    X, y = data(20)
    model = pn.MLP([4, 3, 2], seed=0)

    def stop_or_not(info):
        return answer

    try:
        history = model.fit(X, y, epochs=3, callback=stop_or_not)
    except TypeError as err:
        assert answer is not None and answer is not True and answer is not False
        assert "stop_or_not" in str(err) and "None or False" in str(err)
        return
    assert answer is None or isinstance(answer, bool)
    assert len(history.loss) == (1 if answer is True else 3)


def test_callback_answers_on_every_backend(backend):
    X, y = data(20)
    model = pn.MLP([4, 3, 2], backend=backend, seed=0)
    with pytest.raises(TypeError, match="callback .*<lambda>.* returned 'no'"):
        model.fit(X, y, epochs=3, callback=lambda info: "no")
    with pytest.raises(TypeError, match="returned array"):
        model.fit(X, y, epochs=3, callback=lambda info: np.zeros(3))


# --- meshes ----------------------------------------------------------------------------------
mesh_values = st.one_of(
    st.tuples(st.integers(min_value=-2**70, max_value=2**70),
              st.integers(min_value=-2**70, max_value=2**70)),
    st.sampled_from([(2**32, 2**32), (10**10, 10**10), "²", "4294967296x4294967296", "9" * 5000,
                     "2x", "x2", "٣", "1x²", {"data": 2**64}, {"data": "2"}, -1, 0, 10**30,
                     (10**5000, 1), "all", 1, "1", "1x1", (1, 1)]),
    st.text(max_size=6))


@SETTINGS
@given(mesh=mesh_values)
def test_mesh_sizes_get_one_clear_message(mesh):
    pytest.importorskip("jax")
    from polynn.backend.mesh import resolve_mesh

    try:
        resolved = resolve_mesh(mesh)
    except ValueError as err:
        message = str(err)
        assert "mesh" in message and len(message) < 400, message
        assert "invalid literal" not in message and "reshape" not in message, message
        return
    assert resolved is not None and resolved.devices.size >= 1


CLI_CHILD = [sys.executable, "-m", "polynn", "train", "--dataset", "moons", "--backend", "jax",
             "--epochs", "1", "--mesh"]


@pytest.mark.parametrize("mesh", ["4294967296x4294967296", "²"])
def test_cli_mesh_sizes(mesh):
    pytest.importorskip("jax")
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([*CLI_CHILD, mesh], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("polynn: error: mesh") and "Traceback" not in done.stderr, last
    assert "invalid literal" not in last and "reshape" not in last
