"""``polynn.sklearn`` estimators with ``mesh=`` (JAX, many devices), in the style of
``test_distributed.py``: the in-process tests need 4 devices (``JAX_NUM_CPU_DEVICES=4`` before
JAX starts, as the jax nox session sets for that file); in a process with fewer,
``test_module_with_4_forced_cpu_devices`` runs this file again in a subprocess with the variable
set. Results must equal one device's up to rounding, the L-BFGS evaluation must be split over
the devices (its compiled HLO holds the gradient all-reduce and a quarter of the FLOPs), and an
estimator with a mesh pickles and clones."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from polynn.backend import resolve_mesh  # noqa: E402
from polynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

N = 4
ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = "POLYNN_TEST_SKLEARN_MESH_CHILD"
needs_devices = pytest.mark.skipif(
    jax.device_count() < N,
    reason=f"needs {N} JAX devices: run with JAX_NUM_CPU_DEVICES={N} (the jax nox session "
           f"does; test_module_with_4_forced_cpu_devices runs this file so)")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.skipif(jax.device_count() >= N or os.environ.get(CHILD_ENV) == "1",
                    reason=f"this process already has {N} devices: the tests ran here")
def test_module_with_4_forced_cpu_devices():
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(N), CHILD_ENV: "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-rs", "-p",
                           "no:cacheprovider", __file__], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # Skips of scikit-learn's own checks (no decision_function, ...) are fine; none for devices.
    assert " passed" in done.stdout and f"needs {N} JAX devices" not in done.stdout, \
        done.stdout[-2000:]


def data(m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


@needs_devices
@pytest.mark.parametrize("solver, m, batch_size", [
    ("adam", 150, 32),      # mini-batches, a ragged last one
    ("sgd", 120, "auto"),   # full batch (auto = all 120 rows), rows divide by 4
    ("lbfgs", 150, "auto"),  # 150 rows do not divide by 4: the constraint pads
])
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_mesh_equals_one_device(Estimator, solver, m, batch_size):
    X, y = data(m)
    if Estimator is MLPRegressor:
        y = X[:, 0] - 0.5 * X[:, 1] ** 2
    options = dict(hidden_layer_sizes=(16, 8), solver=solver, batch_size=batch_size,
                   max_iter=25, random_state=0, backend="jax", dtype="float64")
    one = Estimator(**options).fit(X, y)
    many = Estimator(**options, mesh=N).fit(X, y)
    assert many.model_.backend.mesh.shape["data"] == N
    for a, b in zip(one.coefs_ + one.intercepts_, many.coefs_ + many.intercepts_):
        assert rel(a, b) <= 1e-9
    assert rel(one.loss_curve_ if solver != "lbfgs" else [one.loss_],
               many.loss_curve_ if solver != "lbfgs" else [many.loss_]) <= 1e-9
    assert rel(one.predict(X), many.predict(X)) <= 1e-9
    assert rel(one.transform(X), many.transform(X)) <= 1e-9


@needs_devices
def test_class_weight_and_early_stopping_on_a_mesh():
    X, y = data(200, seed=1)
    options = dict(hidden_layer_sizes=(12,), max_iter=15, random_state=0, backend="jax",
                   dtype="float64", class_weight="balanced", early_stopping=True,
                   n_iter_no_change=50)
    one = MLPClassifier(**options).fit(X, y)
    many = MLPClassifier(**options, mesh=(N, 1)).fit(X, y)
    assert rel(one.coefs_[0], many.coefs_[0]) <= 1e-9
    assert rel(one.validation_scores_, many.validation_scores_) <= 1e-12


@needs_devices
def test_lbfgs_evaluation_is_split_over_the_devices():
    """The objective of each L-BFGS evaluation runs each device's rows and all-reduces the
    gradient: about 1/N of the FLOPs per device (a replicated one would do them all)."""
    from polynn.sklearn.lbfgs import objective  # noqa: F401  (the module under test)

    X, y = data(1024)
    costs = {}
    for mesh in (None, N):
        est = MLPRegressor(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=1,
                           random_state=0, dtype="float64", backend="jax", mesh=mesh)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, X[:, 0])
        model = est.model_
        backend = model.backend
        from polynn.sklearn.lbfgs import _flat_value_and_grad, pack

        shapes = tuple((tuple(W.shape), tuple(b.shape)) for W, b in model.params)
        f = _flat_value_and_grad(backend, model.activation_fn, model.output, 1e-4, shapes)
        theta = backend.asarray(pack(est._host_params()), "float64")
        Xd = backend.place_rows(X, "float64")
        Td = backend.place_rows(X[:, :1], "float64")
        compiled = f.lower(theta, Xd, Td, None).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        costs[mesh] = (cost["flops"], compiled.as_text())
    ratio = costs[N][0] / costs[None][0]
    assert ratio < 1.2 / N, ratio
    assert re.search(r"= [^=]*\ball-reduce(?:-start)?\(", costs[N][1])


@needs_devices
@pytest.mark.parametrize("mesh", [N, "all", (2, 2), {"data": 2}, "jax-mesh"])
def test_estimator_with_a_mesh_pickles_and_clones(mesh):
    if mesh == "jax-mesh":
        mesh = jax.make_mesh((N,), ("data",))
    X, y = data(64)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, mesh=mesh)
    assert clone(clf).mesh is not None
    clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert back.model_.backend.mesh is not None
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert resolve_mesh(back.mesh).shape == resolve_mesh(mesh).shape
    assert clone(back).get_params()["mesh"] == back.mesh


@needs_devices
def test_bad_mesh_is_refused_at_fit():
    X, y = data(20)
    with pytest.raises(ValueError, match="needs backend='jax'"):
        MLPClassifier(mesh=N, backend="numpy", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match=r"mesh=8 needs 8 devices"):
        MLPClassifier(mesh=8, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="give device= or mesh=, not both"):
        MLPClassifier(mesh=N, device="cpu", max_iter=1).fit(X, y)


FAST = dict(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.02, random_state=0)


# One estimator: each check compiles its own shapes (about 5 minutes on 2 shared cores); the
# regressor and lbfgs on a mesh are covered by the equality tests above.
@needs_devices
@parametrize_with_checks([MLPClassifier(**FAST, mesh=N)])
def test_estimator_checks_with_a_mesh(estimator, check):
    check(estimator)
