"""Sample weights, the Poisson pair and multilabel sigmoid outputs, through MLP.fit."""

import numpy as np
import pytest
from conftest import assert_close

import polynn as pn


def spiral(n=30):
    return pn.datasets.spiral(n_per_class=n, seed=0)


def fitted(X, y, sizes=(2, 9, 3), **fit):
    model = pn.MLP(list(sizes), dtype="float64", seed=1)
    model.fit(X, y, **{"lr": 0.1, "l2": 1e-3, "epochs": 40, **fit})
    return model


def test_integer_weights_equal_repeated_rows_in_full_batch():
    X, y = spiral()
    w = np.ones(len(y))
    w[[0, 5, 40]] = [3, 2, 4]
    repeated = np.repeat(np.arange(len(y)), w.astype(int))
    a = fitted(X, y, sample_weight=w)
    b = fitted(X[repeated], y[repeated])
    assert_close(a.params, b.host_params(), rtol=1e-11)


def test_zero_weights_drop_rows_and_uniform_weights_change_nothing():
    X, y = spiral()
    w = np.ones(len(y))
    w[::3] = 0.0
    assert_close(fitted(X, y, sample_weight=w).params, fitted(X[w > 0], y[w > 0]).host_params(),
                 rtol=1e-11)
    for batch_size in (None, 16):
        plain = fitted(X, y, batch_size=batch_size).host_params()
        uniform = fitted(X, y, batch_size=batch_size, sample_weight=np.full(len(y), 2.5))
        assert_close(uniform.params, plain, rtol=1e-11)
        # l2_per_weight divides the L2 term by the mean weight: with unit weights a no-op.
        ones = fitted(X, y, batch_size=batch_size, sample_weight=np.ones(len(y)),
                      l2_per_weight=True)
        assert_close(ones.params, plain, rtol=1e-11)


def test_weighted_epoch_loss_averages_the_weighted_batch_losses_by_size():
    """Each batch's loss is its weighted mean; the epoch's is their mean weighted by batch size
    (as documented in History, and as scikit-learn's loss_curve_)."""
    X, y = spiral()
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    model = pn.MLP([2, 9, 3], dtype="float64", seed=1)
    sizes = [40, 40, 10]
    history = model.fit(X, y, lr=1e-9, epochs=1, batch_size=40, shuffle=False, sample_weight=w)
    # A tiny rate: every batch sees (nearly) the initial weights.
    P = pn.MLP([2, 9, 3], dtype="float64", seed=1).predict_proba(X)
    nll = -np.log(P[np.arange(len(y)), y])
    edges = np.cumsum([0] + sizes)
    batch_losses = [np.average(nll[a:b], weights=w[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    assert history.loss[0] == pytest.approx(np.dot(batch_losses, sizes) / len(y), rel=1e-6)


def test_sample_weight_is_refused_with_a_clear_message():
    X, y = spiral()
    model = pn.MLP([2, 9, 3])
    for bad, match in [(np.ones(5), r"shape \(90,\)"), (-np.ones(len(y)), "non-negative"),
                       (np.zeros(len(y)), "positive sum"), (np.full(len(y), np.nan), "finite"),
                       (np.array(["a"] * len(y)), "real numbers")]:
        with pytest.raises((ValueError, TypeError), match=match):
            model.fit(X, y, epochs=1, sample_weight=bad)


def test_weighted_minibatches_match_numpy_on_every_backend(backend):
    X, y = spiral()
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(y))
    options = dict(lr=0.05, l2=1e-3, epochs=5, batch_size=16, optimizer="momentum",
                   sample_weight=w, l2_per_weight=True)
    reference = pn.MLP([2, 9, 3], dtype="float64", seed=1)
    reference.fit(X, y, **options)
    model = pn.MLP([2, 9, 3], backend=backend.name, dtype="float64", seed=1)
    model.fit(X, y, **options)
    assert_close(model.params, reference.host_params())


def test_poisson_regression_learns_counts():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 2))
    rate = np.exp(0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.3)
    y = rng.poisson(rate).astype(np.float64)
    model = pn.MLP([2, 8, 1], activation="tanh", output="poisson", dtype="float64", seed=0)
    history = model.fit(X, y, optimizer="adam", lr=0.01, epochs=300)
    assert history.loss[-1] < 0.8 * history.loss[0]
    pred = model.predict(X)
    assert pred.shape == (400,) and (pred > 0).all()
    assert np.corrcoef(pred, rate)[0, 1] > 0.9
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(X, -y, epochs=1)
    with pytest.raises(ValueError, match="predict_proba needs a classifier"):
        model.predict_proba(X)


def test_multilabel_sigmoid_outputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5], axis=1).astype(int)
    model = pn.MLP([4, 16, 3], output="sigmoid", dtype="float64", seed=0)
    history = model.fit(X, Y, optimizer="adam", lr=0.01, epochs=300)
    assert 0 <= history.accuracy[-1] <= 1 and history.accuracy[-1] > history.accuracy[0]
    pred, proba = model.predict(X), model.predict_proba(X)
    assert pred.shape == (300, 3) and set(np.unique(pred)) <= {0, 1}
    assert proba.shape == (300, 3) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    subset = np.mean(np.all(pred == Y, axis=1))
    assert model.score(X, Y) == pytest.approx(subset) and subset > 0.8
    assert history.accuracy[-1] == pytest.approx(subset, abs=0.05)
    with pytest.raises(ValueError, match=r"indicator matrix of shape \(300, 3\)"):
        model.fit(X, Y[:, 0], epochs=1)
    with pytest.raises(ValueError, match="only 0 and 1"):
        model.fit(X, 2 * Y, epochs=1)


def test_row_layout_value_and_grad_takes_sample_weights():
    X, y = spiral()
    w = np.random.default_rng(2).uniform(0.0, 2.0, len(y))
    model = pn.MLP([2, 9, 3], dtype="float64", seed=1)
    loss, grads = model.value_and_grad(X, y, l2=1e-3, sample_weight=w)
    P = model.predict_proba(X)
    data = np.average(-np.log(P[np.arange(len(y)), y]), weights=w)
    penalty = 0.5 * 1e-3 * sum((W * W).sum() for W, _ in model.host_params())
    assert loss == pytest.approx(data + penalty, rel=1e-12)
    assert model.loss(X, y, l2=1e-3, sample_weight=w) == pytest.approx(loss, rel=1e-12)
    # Integer weights are repeated rows.
    w_int = np.ones(len(y))
    w_int[:4] = 3
    rows = np.repeat(np.arange(len(y)), w_int.astype(int))
    _, repeated = model.value_and_grad(X[rows], y[rows], l2=1e-3)
    _, weighted = model.value_and_grad(X, y, l2=1e-3, sample_weight=w_int)
    assert_close(weighted, tuple((np.asarray(dW), np.asarray(db)) for dW, db in repeated),
                 rtol=1e-12)
