"""The training loop: the reference reproduction, compiled JAX steps, validation, early stopping,
divergence, Ctrl-C, continued training and optimizers."""

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import assert_close

import polynn as pn
from polynn.nn import mlp, optim


@pytest.mark.parametrize("backend_name", ["numpy", "jax"])
def test_reproduces_the_reference_program(backend):
    """Spiral 300 points, 2-25-3 ReLU/softmax, lr 0.1, l2 1e-3, 10,000 full-batch steps."""
    X, y = pn.datasets.spiral(n_per_class=100, n_classes=3, seed=0)
    model = pn.MLP([2, 25, 3], activation="relu", output="softmax", backend=backend.name,
                   dtype="float64", seed=0)
    history = model.fit(X, y, lr=0.1, l2=1e-3, epochs=10_000)
    assert len(history.loss) == 10_000 and history.steps == 10_000
    assert history.loss[0] > 1.0 > 0.3 > history.loss[-1]  # the seeds saw 0.241-0.259
    assert model.score(X, y) >= 0.97


def test_array_api_strict_runs_the_whole_loop():
    """The referee: full batch, mini-batches with shuffling, validation, every optimizer."""
    pytest.importorskip("array_api_strict")
    X, y = pn.datasets.spiral(n_per_class=30, seed=1)
    for options in [dict(epochs=40), dict(epochs=5, batch_size=16, validation_split=0.2),
                    dict(epochs=3, batch_size=32, optimizer="adam", lr=0.01),
                    dict(epochs=3, batch_size=32, optimizer="nesterov")]:
        ref = pn.MLP([2, 10, 3], backend="numpy", dtype="float64", seed=2)
        strict = pn.MLP([2, 10, 3], backend="array_api_strict", dtype="float64", seed=2)
        h_ref = ref.fit(X, y, seed=0, **options)
        h = strict.fit(X, y, seed=0, **options)
        np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
        np.testing.assert_allclose(h.val_loss, h_ref.val_loss, rtol=1e-10)
        assert_close(strict.params, ref.host_params())
    assert strict.predict(X).shape == (90,)


def test_jax_training_step_is_compiled(monkeypatch):
    """On JAX the step is traced once and then runs compiled: the Python forward pass runs only
    while tracing, not once per step as on eager backends."""
    pytest.importorskip("jax")
    calls = []
    original = mlp.forward_columns
    monkeypatch.setattr(mlp, "forward_columns",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    pn.MLP([2, 7, 3], activation="tanh", backend="jax", seed=5).fit(X, y, lr=0.1, epochs=300)
    assert 1 <= len(calls) <= 4
    calls.clear()
    pn.MLP([2, 7, 3], activation="tanh", backend="numpy", seed=5).fit(X, y, lr=0.1, epochs=300)
    assert len(calls) == 300


def test_minibatch_shuffling_is_seeded_and_identical_across_backends(backend):
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    runs = []
    for name in ["numpy", backend.name]:
        model = pn.MLP([2, 12, 3], backend=name, dtype="float64", seed=1)
        history = model.fit(X, y, lr=0.1, epochs=4, batch_size=7, seed=42)
        runs.append((history.loss, model.host_params()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-9)
    assert_close(runs[1][1], runs[0][1])
    other = pn.MLP([2, 12, 3], dtype="float64", seed=1)
    assert other.fit(X, y, lr=0.1, epochs=4, batch_size=7, seed=43).loss != runs[0][0]


def test_minibatch_epoch_loss_is_the_weighted_mean_of_its_batches():
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)  # 30 rows: batches 8, 8, 8, 6
    model = pn.MLP([2, 5, 3], dtype="float64", seed=0)
    start = model.host_params()
    history = model.fit(X, y, lr=0.1, epochs=1, batch_size=8, shuffle=False)
    replay = pn.MLP.from_params(start, dtype="float64")
    losses = [replay.fit(X[i:i + 8], y[i:i + 8], lr=0.1, epochs=1).loss[0]
              for i in range(0, 30, 8)]
    assert history.steps == 4
    assert history.loss[0] == pytest.approx(np.dot(losses, [8, 8, 8, 6]) / 30, rel=1e-12)
    assert_close(model.params, replay.host_params())


def test_validation_split_and_history(backend):
    X, y = pn.datasets.spiral(n_per_class=40, seed=0)
    model = pn.MLP([2, 16, 3], backend=backend.name, seed=0)
    history = model.fit(X, y, lr=0.2, epochs=6, batch_size=32, validation_split=0.25, seed=0)
    assert len(history.loss) == len(history.val_loss) == len(history.accuracy) == 6
    assert len(history.val_accuracy) == 6 and history.epochs == 6
    assert all(0 <= a <= 1 for a in history.accuracy + history.val_accuracy)
    # The validation rows are a seeded stratified 25 %: evaluate them directly.
    _, X_val, _, y_val = pn.datasets.train_test_split(X, y, test_size=0.25, seed=0, stratify=True)
    assert np.bincount(y_val).tolist() == [10, 10, 10]
    assert history.val_loss[-1] == pytest.approx(model.loss(X_val, y_val), rel=1e-4)


def test_early_stopping_restores_the_best_weights():
    X, y = pn.datasets.spiral(n_per_class=50, seed=0)
    X_val, y_val = pn.datasets.spiral(n_per_class=20, seed=9)
    model = pn.MLP([2, 64, 64, 3], dtype="float64", seed=0)
    history = model.fit(X, y, lr=0.5, epochs=2000, batch_size=16, optimizer="momentum",
                        validation_data=(X_val, y_val), patience=5)
    assert history.stopped == "early_stopping"
    assert history.epochs < 2000 and history.epochs == len(history.val_loss)
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    assert history.epochs - 1 - best == 5
    assert model.loss(X_val, y_val) == pytest.approx(history.val_loss[best], rel=1e-12)


def test_divergence_stops_with_a_clear_error_and_keeps_finite_weights(backend):
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    model = pn.MLP([2, 32, 3], backend=backend.name, seed=0)
    with pytest.raises(pn.DivergenceError, match=r"diverged at step \d+.*lower learning rate"):
        model.fit(X * 1e3, y, lr=1e6, epochs=500)
    for W, b in model.host_params():
        assert np.isfinite(W).all() and np.isfinite(b).all()
    assert np.isfinite(model.loss(X * 1e3, y))


def test_divergence_keeps_the_weights_of_the_last_finite_step():
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    model = pn.MLP([2, 32, 3], dtype="float64", seed=0)
    with pytest.raises(pn.DivergenceError) as info:
        model.fit(X * 1e3, y, lr=1e3, epochs=500)
    history = info.value.history
    assert history.loss and np.isfinite(history.loss).all()
    assert model.loss(X * 1e3, y) == pytest.approx(history.loss[-1], rel=1e-9)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_ctrl_c_stops_within_a_second_and_keeps_a_usable_model(backend, batch_size):
    """Full batch and mini-batches, every backend: compiled chunks are bounded in time, so the
    interrupt is served within about a second (the limit here is generous: the machine is
    shared), the model is consistent and the history says why it stopped."""
    X, y = pn.datasets.spiral(n_per_class=100, seed=0)
    model = pn.MLP([2, 64, 3], backend=backend.name, seed=0)
    model.fit(X, y, lr=0.05, epochs=2, batch_size=batch_size)  # compile outside the timing
    sent, done = [], threading.Event()

    def interrupt_once_training_runs():
        # Wait for fit's own Ctrl-C handler: a signal sent before it is installed (a loaded
        # machine can take longer than any fixed delay to get there) would interrupt pytest.
        deadline = time.monotonic() + 60
        while (signal.getsignal(signal.SIGINT) is signal.default_int_handler
               and time.monotonic() < deadline and not done.is_set()):
            time.sleep(0.005)
        time.sleep(0.5)
        if not done.is_set() and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt_once_training_runs, daemon=True)
    thread.start()
    try:
        history = model.fit(X, y, lr=0.05, epochs=10_000_000, batch_size=batch_size)
    finally:
        done.set()
    returned = time.perf_counter()
    assert history.stopped == "interrupted"
    assert sent and returned - sent[0] < 5.0
    # An epoch cut short is a partial entry (its steps changed the weights): never dropped.
    assert 0 < history.steps and len(history.loss) == history.epochs + (history.partial_steps > 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert np.isfinite(model.loss(X, y)) and model.loss(X, y) < history.loss[0]
    assert model.predict(X).shape == (300,)


def test_fit_again_continues_and_partial_fit_streams(backend):
    X, y = pn.datasets.spiral(n_per_class=30, seed=0)
    once = pn.MLP([2, 16, 3], backend=backend.name, dtype="float64", seed=0)
    once.fit(X, y, lr=0.1, epochs=40)
    twice = pn.MLP([2, 16, 3], backend=backend.name, dtype="float64", seed=0)
    twice.fit(X, y, lr=0.1, epochs=25)
    twice.fit(X, y, lr=0.1, epochs=15)
    assert_close(twice.params, once.host_params())
    streamed = pn.MLP([2, 16, 3], backend=backend.name, seed=0)
    before = streamed.loss(X, y)
    for chunk in np.array_split(np.random.default_rng(0).permutation(90), 6):
        history = streamed.partial_fit(X[chunk], y[chunk], lr=0.2, batch_size=8)
        assert history.epochs == 1
    assert streamed.loss(X, y) < before
    with pytest.raises(TypeError, match="exactly one epoch"):
        streamed.partial_fit(X, y, epochs=3)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_optimizers_reduce_the_loss(backend, optimizer):
    X, y = pn.datasets.spiral(n_per_class=30, seed=0)
    model = pn.MLP([2, 32, 3], backend=backend.name, seed=0)
    history = model.fit(X, y, optimizer=optimizer, epochs=30, batch_size=16, seed=0)
    assert history.loss[-1] < 0.8 * history.loss[0]


def test_optimizer_updates_match_their_formulas():
    W, dW = np.array([[1.0, -2.0]]), np.array([[0.5, 0.25]])
    params, grads = ((W, np.zeros(2)),), ((dW, np.ones(2)),)
    sgd = optim.make_optimizer("sgd", 0.1)
    ((new_W, _),), state = sgd.update(grads, sgd.init(params), params)
    np.testing.assert_allclose(new_W, W - 0.1 * dW)
    assert state == (1,)
    nesterov = optim.make_optimizer("nesterov", 0.1, momentum=0.9)
    state = nesterov.init(params)
    p1, state = nesterov.update(grads, state, params)
    p2, state = nesterov.update(grads, state, p1)
    # v1 = g; v2 = 0.9 g + g; Nesterov steps g + 0.9 v.
    np.testing.assert_allclose(p2[0][0], W - 0.1 * (dW + 0.9 * dW) - 0.1 * (dW + 0.9 * 1.9 * dW))
    adam = optim.make_optimizer("adam", 0.01)
    ((new_W, _),), _ = adam.update(grads, adam.init(params), params)
    np.testing.assert_allclose(new_W, W - 0.01 * np.sign(dW), rtol=1e-6)  # first step ≈ lr·sign


def test_schedules():
    assert optim.InverseScaling(1.0, 0.5)(3) == pytest.approx(0.5)
    assert optim.StepDecay(1.0, 0.1, every=10)(25) == pytest.approx(0.01)
    assert optim.ExponentialDecay(1.0, 0.5, every=10)(5) == pytest.approx(0.5 ** 0.5)
    assert optim.Constant(0.3)(1000) == 0.3
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    a = pn.MLP([2, 8, 3], dtype="float64", seed=0)
    a.fit(X, y, epochs=20, schedule=optim.StepDecay(0.5, 0.0, every=10))  # lr 0 after step 10
    b = pn.MLP([2, 8, 3], dtype="float64", seed=0)
    b.fit(X, y, lr=0.5, epochs=10)
    assert_close(a.params, b.host_params())
