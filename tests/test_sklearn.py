"""polynn.sklearn: scikit-learn's estimator checks, the model-selection tools, label handling,
the alpha/learning-rate mapping against scikit-learn's own updates, and the digits bar."""

import pickle
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402  (a scikit-learn dependency)

import polynn as pn  # noqa: E402
from polynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.02, random_state=0)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """These matrices are small: multi-threaded BLAS only adds overhead, and on a shared 2-core
    machine its oversubscription made both polynn and scikit-learn 10-30x slower."""
    with threadpool_limits(limits=1):
        yield


@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST),
                          MLPClassifier(**FAST, solver="lbfgs")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --- model selection ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moons():
    X, y = pn.datasets.moons(n_samples=200, noise=0.15, seed=0)
    order = np.random.default_rng(0).permutation(200)  # moons come sorted along the arcs
    return X[order] * 5.0 + 3.0, y[order]  # off-centre and wide, so the scaler matters


def test_pipeline_grid_search_and_cross_val_score(moons):
    X, y = moons
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=40, batch_size=32,
                                                         learning_rate_init=0.03, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(2,), (32,)]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_ == {"mlpclassifier__hidden_layer_sizes": (32,)}
    assert grid.best_estimator_[-1].model_.layer_sizes == [2, 32, 1]
    assert grid.best_score_ > 0.9
    assert grid.score(X, y) > 0.9
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.85


def test_get_set_params_and_clone_keep_polynn_parameters():
    from sklearn.base import clone

    clf = MLPClassifier(hidden_layer_sizes=(7, 3), solver="sgd", backend="numpy",
                        dtype="float64")
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 3) and params["backend"] == "numpy"
    assert params["dtype"] == "float64" and params["solver"] == "sgd"
    assert set(SkMLPClassifier().get_params()) < set(params)  # every scikit-learn parameter
    assert set(SkMLPRegressor().get_params()) < set(MLPRegressor().get_params())
    other = clone(clf).set_params(alpha=0.5, device="cpu")
    assert other.alpha == 0.5 and other.device == "cpu" and clf.alpha == 1e-4


# --- labels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [np.array(["bird", "cat", "dog"]), np.array([3, 7, 42]),
                                    np.array([-1.0, 0.0, 2.0])],
                         ids=["strings", "sparse-ints", "whole-floats"])
def test_labels_round_trip(labels):
    X, codes = pn.datasets.spiral(n_per_class=40, n_classes=3, noise=0.1, seed=0)
    y = labels[codes]
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=150, learning_rate_init=0.02,
                        random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and pred.shape == y.shape
    assert set(np.unique(pred)) <= set(labels)
    assert clf.model_.output == "softmax" and clf.model_.n_outputs == 3
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)


def test_binary_labels_train_one_sigmoid_unit(moons):
    X, y = moons
    X = StandardScaler().fit_transform(X)
    labels = np.array([True, False])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, batch_size=50,
                        learning_rate_init=0.02, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, [False, True])
    assert clf.model_.output == "sigmoid" and clf.model_.n_outputs == 1
    assert clf.out_activation_ == "logistic"
    assert clf.predict(X).dtype == bool and clf.score(X, labels) > 0.85
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_multilabel_targets_train_one_logistic_unit_per_label():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=300,
                        random_state=0).fit(X, Y)
    assert clf.model_.output == "sigmoid" and clf.model_.n_outputs == 3
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    pred, proba = clf.predict(X), clf.predict_proba(X)
    assert pred.shape == (150, 3) and proba.shape == (150, 3)
    np.testing.assert_array_equal(pred, proba > 0.5)
    assert clf.score(X, Y) > 0.9  # subset accuracy: all three labels right


def test_partial_fit_needs_classes_then_continues(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1])
    W0 = clf.coefs_[0].copy()
    for _ in range(30):
        clf.partial_fit(X, y)
    # As scikit-learn: n_iter_ counts the epochs of the last call; loss_curve_ and t_ all of them.
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 31 and clf.t_ == 50 + 30 * 200
    assert not np.allclose(W0, clf.coefs_[0])
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X[:3], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="not the same"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :1], y)


def test_bad_parameters_raise_at_fit_not_init(moons):
    X, y = moons
    for bad in [dict(solver="nesterov"), dict(activation="swish"), dict(alpha=-1.0),
                dict(batch_size=0), dict(max_iter=0), dict(learning_rate="optimal"),
                dict(hidden_layer_sizes=(4, 0)), dict(momentum=1.5),
                dict(early_stopping=True, validation_fraction=1.0)]:
        clf = MLPClassifier(**bad)  # storing is never an error
        with pytest.raises(ValueError):
            clf.fit(X, y)


# --- training semantics -----------------------------------------------------------------------
def test_tol_stopping_and_convergence_warning(moons):
    X, y = moons
    # A tolerance nothing can meet: the first epoch improves on inf, the next
    # n_iter_no_change + 1 do not, then training stops -- as in scikit-learn.
    kw = dict(hidden_layer_sizes=(8,), tol=10.0, n_iter_no_change=3, max_iter=50, random_state=0)
    clf = MLPClassifier(**kw).fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert SkMLPClassifier(**kw).fit(X, y).n_iter_ == 5
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)


def test_adaptive_learning_rate_stops_like_scikit_learn(moons, capsys):
    X, y = moons
    # tol=10 never improves after the first epoch: each stall divides the rate by 5 until it
    # is <= 1e-6, then training stops.
    kw = dict(hidden_layer_sizes=(4,), learning_rate="adaptive", tol=10.0, n_iter_no_change=1,
              max_iter=100, random_state=0)
    clf = MLPClassifier(solver="sgd", verbose=True, **kw).fit(X, y)
    assert clf.n_iter_ == SkMLPClassifier(solver="sgd", **kw).fit(X, y).n_iter_ == 13
    out = capsys.readouterr().out
    assert "Iteration 13, loss = " in out and "Setting learning rate to 0.000200" in out
    assert out.rstrip().endswith("Stopping.")


def test_early_stopping_restores_best_weights(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, early_stopping=True,
                        validation_fraction=0.2, n_iter_no_change=5, max_iter=300,
                        random_state=0).fit(X, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_
    assert clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The restored weights score the best validation score on the same held-out rows: the
    # split scikit-learn makes, from random_state after the initial weights are drawn.
    from sklearn.model_selection import train_test_split

    rs = np.random.RandomState(0)
    for fan_in, fan_out in [(2, 16), (16, 1)]:
        rs.uniform(size=fan_in * fan_out + fan_out)
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=rs)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)
    # partial_fit refuses early stopping, with scikit-learn's message.
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        clf.partial_fit(X, y)


def test_fit_is_deterministic_and_pickles(moons):
    X, y = moons
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=3).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), c.predict_proba(X))
    c.partial_fit(X, y)  # an unpickled model keeps training
    assert c.n_iter_ == 1 and len(c.loss_curve_) == 21


@pytest.mark.parametrize("case", ["multiclass-nesterov", "binary-adam", "regression-momentum",
                                  "regression-2-outputs-sgd", "regression-invscaling",
                                  "multilabel-adaptive", "poisson-adam", "weighted-sgd"])
def test_updates_match_scikit_learn(case):
    """Same random_state (so the same initial weights), unshuffled mini-batches of equal size,
    float64: every update of polynn.sklearn equals scikit-learn's, which pins the init, the
    alpha -> l2 mapping, the loss scalings, momentum/Nesterov, Adam's betas and epsilon, and the
    learning-rate schedules."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    common = dict(hidden_layer_sizes=(6, 4), alpha=0.3, batch_size=10, shuffle=False,
                  max_iter=3, tol=0.0, n_iter_no_change=100, learning_rate_init=0.05,
                  random_state=1)
    if case == "multiclass-nesterov":
        y = rng.integers(0, 3, size=40)
        kw, Est, Sk = dict(solver="sgd", momentum=0.8), MLPClassifier, SkMLPClassifier
    elif case == "binary-adam":
        y = np.array(["no", "yes"])[rng.integers(0, 2, size=40)]
        kw, Est, Sk = dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-3), \
            MLPClassifier, SkMLPClassifier
    elif case == "regression-momentum":
        y = rng.normal(size=40)
        kw, Est, Sk = dict(solver="sgd", momentum=0.5, nesterovs_momentum=False), \
            MLPRegressor, SkMLPRegressor
    elif case == "regression-2-outputs-sgd":
        y = rng.normal(size=(40, 2))
        kw, Est, Sk = dict(solver="sgd", momentum=0.0), MLPRegressor, SkMLPRegressor
    elif case == "regression-invscaling":
        y = rng.normal(size=40)
        kw, Est, Sk = dict(solver="sgd", learning_rate="invscaling", power_t=0.3), \
            MLPRegressor, SkMLPRegressor
    elif case == "multilabel-adaptive":
        y = rng.integers(0, 2, size=(40, 3))
        kw, Est, Sk = dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1,
                           tol=100.0, max_iter=6), MLPClassifier, SkMLPClassifier
    elif case == "poisson-adam":
        y = rng.poisson(2.0, size=40)
        kw, Est, Sk = dict(solver="adam", loss="poisson", activation="tanh"), \
            MLPRegressor, SkMLPRegressor
    else:
        y = rng.integers(0, 3, size=40)
        kw, Est, Sk = dict(solver="sgd"), MLPClassifier, SkMLPClassifier
    weights = rng.uniform(0.1, 3.0, size=40) if case == "weighted-sgd" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Est(**common | kw).fit(X, y, sample_weight=weights)
        sk = Sk(**common | kw).fit(X, y, sample_weight=weights)
    assert est.coefs_[0].dtype == np.float64 and est.n_iter_ == sk.n_iter_
    for mine, theirs in zip(est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)
    # Reported losses: scikit-learn's squared-error value for k > 1 outputs is its own (module
    # docstring), and with sample weights polynn averages an epoch's batches by their weight
    # sums where scikit-learn uses their sizes.
    if case not in ("regression-2-outputs-sgd", "weighted-sgd"):
        np.testing.assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-9)
    if case == "multilabel-adaptive":
        assert est._optimizer.learning_rate == sk._optimizer.learning_rate < 0.05


@pytest.mark.parametrize("Est,Sk", [(MLPClassifier, SkMLPClassifier),
                                    (MLPRegressor, SkMLPRegressor)], ids=["classifier",
                                                                          "regressor"])
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_same_seed_same_weights_as_scikit_learn(Est, Sk, solver):
    """random_state draws scikit-learn's initial weights (Glorot factor, biases, draw order),
    so a full-batch float64 fit ends where scikit-learn's does. (L-BFGS runs 20 iterations: its
    line searches amplify last-bit differences of the sums, to ~1e-2 after 60 iterations.)"""
    X, y = pn.datasets.moons(n_samples=120, noise=0.2, seed=0)
    if Est is MLPRegressor:
        y = X[:, 0] * y + np.sin(X[:, 1])
    kw = dict(hidden_layer_sizes=(8, 5), activation="logistic", solver=solver,
              max_iter=20 if solver == "lbfgs" else 60,
              batch_size=120, learning_rate_init=0.1, alpha=1e-3, random_state=7, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = Est(**kw).fit(X, y), Sk(**kw).fit(X, y)
    for mine, ref in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-7)


# --- the weights ----------------------------------------------------------------------------
def test_coefs_are_assignable_and_in_place_edits_are_used(moons):
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    assert all(type(W) is np.ndarray for W in clf.coefs_ + clf.intercepts_)
    before = clf.predict_proba(X)
    clf.coefs_[1] *= -1.0  # in place: the next predict must see it
    clf.intercepts_[1] *= -1.0
    np.testing.assert_allclose(clf.predict_proba(X), before[:, ::-1], atol=1e-12)
    clf.coefs_ = [np.zeros_like(W) for W in clf.coefs_]  # assigned: used as well
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    np.testing.assert_allclose(clf.predict_proba(X), 0.5)
    clf.partial_fit(X, y)  # training continues from the assigned weights
    assert np.abs(clf.coefs_[1]).max() > 0
    host = clf.model_.host_params()  # the polynn model holds exactly these weights
    np.testing.assert_array_equal(host[0][0], clf.coefs_[0])
    clf.coefs_[0] = np.zeros((2, 5))
    with pytest.raises(ValueError, match="do not chain"):
        clf.predict(X)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_weights_follow_the_input_dtype(Estimator, moons):
    X, y = moons
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    for X_in, expected in [(X.astype(np.float32), np.float32), (X, np.float64)]:
        est = Estimator(**kw).fit(X_in, y)
        assert {W.dtype for W in est.coefs_ + est.intercepts_} == {np.dtype(expected)}
        out = est.predict_proba(X_in) if Estimator is MLPClassifier else est.predict(X_in)
        assert out.dtype == expected
    est = Estimator(**kw, dtype="float32").fit(X, y)
    assert est.coefs_[0].dtype == np.float32 and est.model_.dtype == "float32"


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_integer_sample_weights_equal_repeated_rows(solver, moons):
    X, y = moons
    w = np.random.default_rng(0).integers(0, 3, size=len(y))
    rows = np.repeat(np.arange(len(y)), w)
    # Full batch: the weighted loss (Σ wᵢ lᵢ / Σ wᵢ plus alpha / Σ wᵢ) is the repeated one.
    kw = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=15, batch_size=10**6, alpha=0.01,
              random_state=0, learning_rate_init=0.05, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**kw).fit(X, y, sample_weight=w)
        repeated = MLPClassifier(**kw).fit(X[rows], y[rows])
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    with pytest.raises(ValueError, match="[Nn]egative values"):
        MLPClassifier(**kw).fit(X, y, sample_weight=-np.ones(len(y)))


def test_sample_weight_is_routed_by_metadata_routing(moons):
    import sklearn
    from sklearn.model_selection import cross_validate

    X, y = moons
    w = np.where(y == 1, 5.0, 0.2)
    kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = MLPClassifier(**kw).set_fit_request(sample_weight=True).set_score_request(
            sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), clf)
        routed = cross_validate(pipe, X, y, cv=2, params={"sample_weight": w},
                                return_estimator=True)
    plain = cross_validate(make_pipeline(StandardScaler(), MLPClassifier(**kw)), X, y, cv=2,
                           return_estimator=True)
    # The weights reached fit: the class weighted up is predicted more often.
    share = [est.predict(X).mean() for est in routed["estimator"]]
    plain_share = [est.predict(X).mean() for est in plain["estimator"]]
    assert min(share) > max(plain_share)


def test_sparse_X_is_densified_or_refused(moons, monkeypatch):
    import scipy.sparse

    import polynn.sklearn.inputs as sklearn_inputs

    X, y = moons
    dense = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20,
                          random_state=0).fit(X, y)
    sparse = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20,
                           random_state=0).fit(scipy.sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.coefs_[0], sparse.coefs_[0])
    np.testing.assert_array_equal(sparse.predict(scipy.sparse.csc_matrix(X)), dense.predict(X))
    monkeypatch.setattr(sklearn_inputs, "MAX_DENSE_ELEMENTS", 100)
    with pytest.raises(ValueError, match="sparse matrix of shape.*partial_fit"):
        MLPClassifier(max_iter=2).fit(scipy.sparse.csr_matrix(X), y)


def test_ctrl_c_stops_training_with_a_consistent_model():
    """Ctrl-C (SIGINT) stops every fit after the current step: a warning as scikit-learn's,
    the completed epochs counted, finite weights that predict, no IndexError."""
    import os
    import signal
    import threading

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2000, 20)), rng.integers(0, 2, size=2000)  # noise: no convergence
    for solver in ["sgd", "lbfgs"]:
        # Far more work than the half second before the interrupt: reaching max_iter (or
        # converging) would mean the interrupt was ignored.
        clf = MLPClassifier(hidden_layer_sizes=(64, 64), solver=solver, max_iter=20000,
                            max_fun=10**6, batch_size=8, tol=0.0, n_iter_no_change=np.inf,
                            random_state=0)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.warns(UserWarning, match="Training interrupted by user"):
                clf.fit(X, y)
        finally:
            timer.cancel()
        assert clf.n_iter_ < 20000
        if solver == "sgd":
            assert len(clf.loss_curve_) == clf.n_iter_
        assert all(np.isfinite(W).all() for W in clf.coefs_ + clf.intercepts_)
        assert clf.predict(X).shape == y.shape


def test_array_api_dispatch_keeps_the_input_namespace():
    """With array_api_dispatch, torch and JAX inputs train on their backend and come back in
    their namespace; without it, every output is NumPy. (A subprocess: scikit-learn requires
    SCIPY_ARRAY_API=1 before scipy is imported.)"""
    import os
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("torch")
    pytest.importorskip("jax")
    script = textwrap.dedent("""
        import numpy as np, sklearn, torch, jax.numpy as jnp
        from polynn.sklearn import MLPClassifier, MLPRegressor
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 3)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
        kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
        for conv, name, kind in [(torch.asarray, "torch", torch.Tensor),
                                 (jnp.asarray, "jax", type(jnp.zeros(1)))]:
            with sklearn.config_context(array_api_dispatch=True):
                clf = MLPClassifier(**kw).fit(conv(X), conv(y))
                assert clf.model_.backend.name == name, clf.model_.backend.name
                for out in (clf.predict(conv(X)), clf.predict_proba(conv(X)),
                            clf.predict_log_proba(conv(X))):
                    assert isinstance(out, kind), type(out)
                assert isinstance(clf.predict(X), np.ndarray)  # NumPy in, NumPy out
                assert 0 <= clf.score(conv(X), conv(y)) <= 1
                reg = MLPRegressor(**kw).fit(conv(X), conv(X[:, 0]))
                assert isinstance(reg.predict(conv(X)), kind)
                assert np.isfinite(reg.score(conv(X), conv(X[:, 0])))
            ref = MLPClassifier(**kw).fit(X, y)
            np.testing.assert_allclose(np.asarray(clf.predict_proba(conv(X))),
                                       ref.predict_proba(X), rtol=1e-4, atol=1e-5)
            # Without dispatch: trained on the default backend, NumPy out.
            plain = MLPClassifier(**kw).fit(conv(X), conv(y))
            assert plain.model_.backend.name == "numpy"
            for out in (plain.predict(conv(X)), plain.predict_proba(conv(X))):
                assert isinstance(out, np.ndarray), type(out)
        print("ok")
    """)
    env = dict(os.environ, SCIPY_ARRAY_API="1", POLYNN_BACKEND="numpy",
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


# --- regression -------------------------------------------------------------------------------
def test_regressor_learns_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    y = np.sin(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    reg = MLPRegressor(hidden_layer_sizes=(32, 32), learning_rate_init=0.01, max_iter=200,
                       random_state=0).fit(X[:300], y[:300])
    pred = reg.predict(X[300:])
    assert pred.shape == (100,) and pred.dtype == np.float64
    assert reg.score(X[300:], y[300:]) > 0.95
    assert reg.loss_curve_[-1] < 0.1 * reg.loss_curve_[0]


def test_regressor_two_outputs():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 3))
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] * 2.0])
    reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100,
                       random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.9
    reg1 = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, Y[:, :1])
    assert reg1.predict(X).shape == (200,)  # one output column: 1-D, as scikit-learn
    n_iter = reg.n_iter_
    reg.partial_fit(X, Y)
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == n_iter + 1
    with pytest.raises(ValueError, match="output"):
        reg.partial_fit(X, Y[:, 0])


# --- backends ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_backend_reaches_the_model(name, moons):
    pytest.importorskip(name)
    X, y = moons
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf = MLPClassifier(backend=name, **kw).fit(X, y)
    assert clf.model_.backend.name == name
    ref = MLPClassifier(backend="numpy", **kw).fit(X, y)
    np.testing.assert_allclose(clf.loss_curve_, ref.loss_curve_, rtol=1e-4)
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray)
    np.testing.assert_allclose(proba, ref.predict_proba(X), atol=1e-4)


# --- the bar from the issue -------------------------------------------------------------------
def test_digits_default_classifier_matches_scikit_learn(backend):
    X, y = pn.datasets.digits()
    X_tr, X_te, y_tr, y_te = pn.datasets.train_test_split(X, y, test_size=0.25, seed=0,
                                                          stratify=True)
    tic = time.perf_counter()
    ours = MLPClassifier(random_state=0, backend=backend.name).fit(X_tr, y_tr)
    ours_time = time.perf_counter() - tic
    tic = time.perf_counter()
    ref = SkMLPClassifier(hidden_layer_sizes=ours.hidden_layer_sizes, random_state=0,
                          max_iter=ours.max_iter).fit(X_tr, y_tr)
    ref_time = time.perf_counter() - tic
    acc, ref_acc = ours.score(X_te, y_te), ref.score(X_te, y_te)
    print(f"\ndigits test accuracy: polynn {acc:.4f} ({ours.model_.backend.name} "
          f"{ours.dtype}, {ours.n_iter_} epochs, {ours_time:.2f} s) vs scikit-learn "
          f"{ref_acc:.4f} (float64, {ref.n_iter_} epochs, {ref_time:.2f} s), one BLAS thread")
    assert acc >= ref_acc


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_stream_trains_the_same_model_from_host_memory(backend, solver, tmp_path):
    """stream=True (issue 11) keeps X on the host, a memmap included, and gives the same
    weights as the resident run."""
    X, y = load_digits(return_X_y=True)
    path = tmp_path / "X.npy"
    np.save(path, (X / 16).astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    options = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=3, batch_size=64,
                   random_state=0, backend=backend.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        resident = MLPClassifier(**options).fit(np.asarray(mapped), y)
        streamed = MLPClassifier(**options, stream=True).fit(mapped, y)
    for a, b in zip(streamed.coefs_ + streamed.intercepts_,
                    resident.coefs_ + resident.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert streamed.get_params()["stream"] is True


# --- the estimator's state: host data and configuration (issue 14) ---------------------------
def _run_python(script, **env_extra):
    """Run ``script`` in a fresh Python process with this checkout importable; its stdout."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, POLYNN_BACKEND="numpy", **env_extra,
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _plain(value, path="estimator"):
    """Assert ``value`` (a pickled state) holds only host data and configuration: no backend,
    no module, no polynn model, no array of a library other than NumPy."""
    import types

    from sklearn.preprocessing import LabelBinarizer

    from polynn.backend import Backend
    from polynn.model import MLP

    assert not isinstance(value, (Backend, MLP, types.ModuleType)), path
    if isinstance(value, dict):
        for key, item in value.items():
            _plain(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{path}[{i}]")
    elif isinstance(value, np.ndarray):
        assert value.dtype.kind in "fiub" or value.dtype.kind in "USO", path
    elif hasattr(value, "__dict__") and not isinstance(value, LabelBinarizer):
        _plain(vars(value), path)
    else:
        assert isinstance(value, (str, bytes, int, float, bool, type(None), np.generic,
                                  LabelBinarizer)), f"{path}: {type(value)}"


def _float64(backend):
    if backend.name == "jax":
        pytest.importorskip("jax")
    return "float64"


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_pickled_state_is_host_data_and_resumes_exactly(backend, solver, moons):
    """Symptom 3: __getstate__ holds host arrays and configuration only (no cached model,
    Backend or module), and training continues bit for bit after a round trip (the optimizer's
    velocities / moments travel as host arrays)."""
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0,
                        backend=backend.name, dtype=_float64(backend)).fit(X, y)
    clf.predict(X)  # a cached backend model exists now
    _plain(clf.__getstate__())
    copy = pickle.loads(pickle.dumps(clf))
    assert copy.model_.backend.name == backend.name and copy.model_.dtype == "float64"
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    for a, b in zip(clf.coefs_ + clf.intercepts_, copy.coefs_ + copy.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_pickle_loads_in_a_fresh_process_with_its_dtype_and_without_its_library(backend,
                                                                                tmp_path):
    """Symptom 3: a float64 estimator pickled and loaded in a fresh process computes and returns
    float64 (on JAX too: x64 is turned on again); where its library cannot be imported it still
    loads, and predicts with NumPy after set_params(backend="numpy")."""
    X, y = pn.datasets.spiral(n_per_class=20, n_classes=3, noise=0.1, seed=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                        backend=backend.name, dtype=_float64(backend)).fit(X, y)
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", clf.predict_proba(X))
    load = f"""
import pickle, numpy as np
X, expected = np.load({str(tmp_path / "X.npy")!r}), np.load({str(tmp_path / "proba.npy")!r})
clf = pickle.loads(open({str(path)!r}, "rb").read())
"""
    fresh = load + """
proba = clf.predict_proba(X)
assert proba.dtype == np.float64 and clf.model_.dtype == "float64", proba.dtype
np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-14)
print("ok")
"""
    assert _run_python(fresh).strip().endswith("ok")
    # As if no library but NumPy were installed: every import of one fails.
    blocked = """
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("jax", "jaxlib", "torch", "array_api_strict", "cupy"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, NotInstalled())
""" + load + """
proba = clf.set_params(backend="numpy").predict_proba(X)
assert proba.dtype == np.float64, proba.dtype
np.testing.assert_allclose(proba, expected, rtol=1e-10, atol=1e-12)
assert not {"jax", "torch", "array_api_strict"} & {m.split(".")[0] for m in sys.modules}
print("ok")
"""
    assert _run_python(blocked).strip().endswith("ok")


def test_skops_round_trips_every_estimator(backend, moons):
    """Symptom 3: skops refused every estimator (the cached model held a module)."""
    sio = pytest.importorskip("skops.io")
    X, y = moons
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, backend=backend.name)
    for est in (MLPClassifier(**kw, solver="sgd").fit(X, y),
                MLPClassifier(**kw, solver="lbfgs").fit(X, y),
                MLPRegressor(**kw, early_stopping=True).fit(X, X[:, 0])):
        data = sio.dumps(est)
        untrusted = sio.get_untrusted_types(data=data)
        assert all(t.startswith(("polynn.", "numpy.", "builtins.")) for t in untrusted), untrusted
        loaded = sio.loads(data, trusted=untrusted)
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


# --- the backend model follows the parameters (issue 14) --------------------------------------
def _host_forward(clf, X, hidden):
    A = X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        A = hidden(A @ W + b)
    return A @ clf.coefs_[-1] + clf.intercepts_[-1]


def test_set_params_reaches_the_backend_model(backend, moons):
    """Symptom 6: after set_params(activation=...), predictions use the new activation."""
    X, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                        backend=backend.name, dtype=_float64(backend)).fit(X, y)
    relu = clf.predict_proba(X)
    np.testing.assert_allclose(relu[:, 1], 1 / (1 + np.exp(-_host_forward(
        clf, X, lambda Z: np.maximum(Z, 0))[:, 0])), rtol=1e-10)
    clf.set_params(activation="tanh")
    assert clf.model_.activation == "tanh"
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-_host_forward(
        clf, X, np.tanh)[:, 0])), rtol=1e-10)
    clf.set_params(backend="numpy")
    assert clf.model_.backend.name == "numpy"


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_training_after_set_params_uses_the_new_activation(backend, how, moons):
    """Symptom 6: training after set_params(activation="tanh") (a warm_start fit, or
    partial_fit) uses tanh: the same weights as an estimator built with tanh from the same
    starting weights (sgd without momentum: no optimizer state to differ)."""
    X, y = moons
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, max_iter=4,
              random_state=0, backend=backend.name, dtype=_float64(backend))
    relu = MLPClassifier(**kw).fit(X, y)
    tanh = MLPClassifier(**kw, activation="tanh").fit(X, y)
    tanh.coefs_ = [W.copy() for W in relu.coefs_]
    tanh.intercepts_ = [b.copy() for b in relu.intercepts_]
    relu.set_params(activation="tanh")
    for est in (relu, tanh):
        if how == "warm_start":
            est.set_params(warm_start=True).fit(X, y)
        else:
            est.partial_fit(X, y)
    for a, b in zip(relu.coefs_ + relu.intercepts_, tanh.coefs_ + tanh.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_predict_leaves_the_estimator_unchanged(backend, Estimator):
    """Symptom 7: with early_stopping, the first predict after fit rebound internal state."""
    from sklearn.utils.estimator_checks import check_dict_unchanged

    est = Estimator(hidden_layer_sizes=(6,), max_iter=20, early_stopping=True,
                    backend=backend.name)
    check_dict_unchanged(Estimator.__name__, est)


def test_array_api_dispatch_on_every_backend(backend):
    """Symptom 4: with array_api_dispatch, an input of each backend's library (array-api-strict
    devices included) trains on it and comes back there; NumPy X with y of another library
    trains on NumPy (it failed: 'Tensor' object has no attribute 'astype')."""
    if backend.name == "numpy":
        pytest.skip("dispatch concerns the libraries other than NumPy")
    devices = ["CPU_DEVICE", "device1"] if backend.name == "array_api_strict" else [None]
    script = f"""
import numpy as np, sklearn
import polynn as pn
from polynn.sklearn import MLPClassifier, MLPRegressor
from polynn.sklearn.inputs import backend_of
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64)
kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
ref = MLPClassifier(**kw).fit(X, y)
for device in {devices!r}:
    b = pn.get_backend({backend.name!r}, device)
    where = backend_of(b.asarray(X))
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(**kw).fit(b.asarray(X), b.asarray(y))
        assert clf.model_.backend.name == {backend.name!r}
        for out in (clf.predict(b.asarray(X)), clf.predict_proba(b.asarray(X))):
            assert backend_of(out) == where, (backend_of(out), where)
        np.testing.assert_allclose(pn.backend.to_host(clf.predict_proba(b.asarray(X))),
                                   ref.predict_proba(X), rtol=1e-4, atol=1e-5)
        assert 0 <= clf.score(b.asarray(X), b.asarray(y)) <= 1
        reg = MLPRegressor(**kw).fit(b.asarray(X), b.asarray(X[:, 0]))
        assert backend_of(reg.predict(b.asarray(X))) == where
        mixed = MLPClassifier(**kw).fit(X, b.asarray(y))
        assert mixed.model_.backend.name == "numpy"
        np.testing.assert_array_equal(mixed.coefs_[0], ref.coefs_[0])
        mixed.partial_fit(X, b.asarray(y))
print("ok")
"""
    assert _run_python(script, SCIPY_ARRAY_API="1").strip().endswith("ok")
