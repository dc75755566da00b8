"""skops saves and loads polynn's estimators (issue 16 §6): a fitted estimator, trained on any
backend, round-trips through ``skops.io.dump`` / ``load`` with an explicit list of trusted
types, predicts exactly as before, and continues training as the original does (the
optimizer's state survives)."""

from __future__ import annotations

import numpy as np
import pytest

sio = pytest.importorskip("skops.io", reason="the skops round trip needs skops (test extra)")
pytest.importorskip("sklearn", reason="the estimators need the sklearn extra")
from polynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Every type of polynn's that a fitted estimator's state holds, beyond skops' defaults (NumPy,
# builtins, scikit-learn's LabelBinarizer): the estimators, the optimizer's state as host data
# and its objects, and the stochastic solvers' learning-rate bookkeeping. A user reviews this
# list once instead of trusting whatever a file names.
TRUSTED = [
    "polynn.nn.optim.Adam",
    "polynn.nn.optim.Constant",
    "polynn.nn.optim.EpochInverseScaling",
    "polynn.nn.optim.VelocityMomentum",
    "polynn.sklearn.backend_model.TrainingState",
    "polynn.sklearn.classifier.MLPClassifier",
    "polynn.sklearn.regressor.MLPRegressor",
    "polynn.sklearn.stochastic._Solver",
]

CONFIGS = {
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling"),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", nesterovs_momentum=False),
    "adam-early-stopping": dict(solver="adam", early_stopping=True),
    "lbfgs": dict(solver="lbfgs"),
}


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3)).astype(np.float32)
    labels = np.array(["low", "mid", "high"])[(X[:, 0] > -0.4).astype(int) + (X[:, 0] > 0.4)]
    return X, {"classifier": labels, "binary": (X[:, 1] > 0).astype(int),
               "multilabel": (X[:, :2] > 0).astype(int), "regressor": X[:, 0] - 2 * X[:, 2]}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("target", ["classifier", "binary", "multilabel", "regressor"])
def test_skops_round_trip_with_explicit_trusted_types(backend, tmp_path, config, target):
    X, targets = _data()
    y = targets[target]
    Estimator = MLPRegressor if target == "regressor" else MLPClassifier
    est = Estimator(hidden_layer_sizes=(6,), max_iter=4, random_state=0, backend=backend.name,
                    **CONFIGS[config]).fit(X, y)
    path = tmp_path / "estimator.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(TRUSTED), sorted(set(untrusted) - set(TRUSTED))
    loaded = sio.load(path, trusted=TRUSTED)
    assert type(loaded) is Estimator and loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if Estimator is MLPClassifier:
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    if est.solver != "lbfgs" and not est.early_stopping:
        # The optimizer's state came back: one more epoch moves both alike.
        for model in (est, loaded):
            model.partial_fit(X, y)
        for a, b in zip(loaded.coefs_ + loaded.intercepts_, est.coefs_ + est.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_skops_refuses_an_untrusted_estimator(tmp_path):
    """Loading without trusting polynn's types fails (skops' default), naming them."""
    X, targets = _data()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(
        X, targets["binary"])
    path = tmp_path / "estimator.skops"
    sio.dump(est, path)
    with pytest.raises(Exception, match="polynn.sklearn.classifier.MLPClassifier"):
        sio.load(path)
