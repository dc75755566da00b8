"""polynn.onnx and the estimators: ``export`` of every estimator kind (onnxruntime's outputs
equal ``predict`` / ``predict_proba`` to 1e-6 in float32), and skl2onnx's ``to_onnx`` on the
estimators inside a Pipeline, which works once ``polynn.onnx`` is imported (and not before)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="polynn.onnx needs the onnx extra: pip install 'polynn[onnx]'")
pytest.importorskip("onnxruntime", reason="the export tests run graphs with onnxruntime")
pytest.importorskip("sklearn", reason="the estimators need the sklearn extra")
skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra installs skl2onnx")
from onnx_helpers import TOLERANCE, assert_values, data, decided, run, run_python, session  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import polynn as pn  # noqa: E402
import polynn.onnx  # noqa: E402
from polynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


SK_ACTIVATIONS = ["relu", "leaky_relu", "tanh", "logistic", "identity"]


def _fit_estimators(X, backend_name=None, activation="relu", dtype=None):
    """One fitted estimator per output pair: multiclass (string labels), binary (integer
    labels), multilabel, regression with one and two outputs, poisson."""
    kw = dict(hidden_layer_sizes=(10, 6), max_iter=30, random_state=0, activation=activation,
              backend=backend_name, dtype=dtype)
    cls3 = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    binary = np.where(X[:, 2] > 0, 7, -3)
    multilabel = (X[:, :3] > 0).astype(int)
    counts = np.floor(np.exp(0.5 * X[:, :2]))
    return [MLPClassifier(**kw).fit(X, cls3), MLPClassifier(**kw).fit(X, binary),
            MLPClassifier(**kw).fit(X, multilabel), MLPRegressor(**kw).fit(X, X[:, 0] - X[:, 1]),
            MLPRegressor(**kw).fit(X, X[:, :2]), MLPRegressor(loss="poisson", **kw).fit(X, counts)]


def _assert_estimator_same(got, est, X):
    dtype = str(np.asarray(est.coefs_[0]).dtype)
    tol = TOLERANCE[dtype]
    if isinstance(est, MLPRegressor):
        pred = est.predict(X)
        assert_values(got["variable"], pred, est.model_.output, dtype)
        return
    np.testing.assert_allclose(got["probabilities"], est.predict_proba(X), rtol=0, atol=tol)
    Z = est.model_.forward(X.astype(dtype))
    keep = decided(pn.backend.to_host(Z).astype(np.float64), est.model_.output)
    np.testing.assert_array_equal(got["label"][keep], est.predict(X)[keep])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", SK_ACTIVATIONS)
def test_export_of_every_estimator_kind(tmp_path, activation, dtype):
    X = data(4, dtype, rows=120)
    for est in _fit_estimators(X, activation=activation):
        got = run(polynn.onnx.export(est, tmp_path / "est.onnx"), X)
        _assert_estimator_same(got, est, X)


def test_export_of_estimators_trained_on_every_backend(backend):
    X = data(4, "float32", rows=120)
    for est in _fit_estimators(X, backend_name=backend.name, activation="tanh"):
        _assert_estimator_same(run(polynn.onnx.export(est, None), X), est, X)


def test_export_of_an_unfitted_estimator_says_so():
    with pytest.raises(NotFittedError):
        polynn.onnx.export(MLPClassifier(), None)


# --- skl2onnx ---------------------------------------------------------------------------------


def _pipeline(est, X, y):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), est).fit(X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_skl2onnx_converts_the_estimators_in_a_pipeline(dtype):
    """skl2onnx.to_onnx on StandardScaler + each estimator kind: outputs equal the pipeline's
    predict / predict_proba (float32: the pipeline's float64 computation to float32's
    rounding)."""
    X = data(4, np.float64, rows=150) * 3.0 + 1.0
    tol = 1e-5 if dtype == "float32" else 1e-10
    kw = dict(hidden_layer_sizes=(8,), max_iter=40, random_state=0, activation="leaky_relu")
    labels = np.array(["cat", "dog", "emu"])[(X[:, 0] > 1).astype(int) + (X[:, 1] > 2)]
    cases = [(MLPClassifier(**kw), labels), (MLPClassifier(**kw), (X[:, 2] > 1).astype(int)),
             (MLPClassifier(**kw), (X[:, :3] > 1).astype(int)),
             (MLPRegressor(**kw), X[:, 0] - X[:, 1]),
             (MLPRegressor(loss="poisson", **kw), np.floor(np.exp(0.3 * X[:, 0])))]
    for est, y in cases:
        pipe = _pipeline(est, X, y)
        options = {id(est): {"zipmap": False}} if isinstance(est, MLPClassifier) else None
        proto = skl2onnx.to_onnx(pipe, X[:1].astype(dtype), options=options)
        got = run(proto, X.astype(dtype))
        Xs = pipe[0].transform(X)
        if isinstance(est, MLPRegressor):
            np.testing.assert_allclose(got["variable"][:, 0], pipe.predict(X), rtol=tol,
                                       atol=tol)
            continue
        np.testing.assert_allclose(got["probabilities"], pipe.predict_proba(X), atol=tol)
        keep = decided(pn.backend.to_host(est.model_.forward(Xs)), est.model_.output)
        np.testing.assert_array_equal(got["label"][keep], pipe.predict(X)[keep])


def test_skl2onnx_zipmap_by_default():
    """Without options, skl2onnx's classifier convention: probabilities as a ZipMap keyed by
    classes_."""
    X = data(3, np.float64, rows=80)
    y = np.where(X[:, 0] > 0, "yes", "no")
    pipe = _pipeline(MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0), X, y)
    label, proba = session(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))).run(
        None, {"X": X.astype(np.float32)})
    assert set(proba[0]) == {"no", "yes"}
    expected = pipe.predict_proba(X)
    np.testing.assert_allclose([[row["no"], row["yes"]] for row in proba], expected, atol=1e-5)


def test_registration_happens_on_import_polynn_onnx_only():
    """Importing polynn (and polynn.sklearn) neither imports onnx nor registers anything;
    skl2onnx refuses the estimator until polynn.onnx is imported."""
    out = run_python("""
        import sys, numpy as np
        import polynn, polynn.sklearn
        assert "onnx" not in sys.modules and "polynn.onnx" not in sys.modules
        import skl2onnx
        X = np.random.default_rng(0).normal(size=(40, 3))
        clf = polynn.sklearn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(
            X, X[:, 0] > 0)
        try:
            skl2onnx.to_onnx(clf, X[:1].astype(np.float32))
        except Exception as e:
            print("refused:", type(e).__name__)
        import polynn.onnx
        assert polynn.onnx.SKL2ONNX_REGISTERED
        skl2onnx.to_onnx(clf, X[:1].astype(np.float32))
        print("ok")
    """)
    assert "refused: MissingShapeCalculator" in out and out.strip().endswith("ok")




@pytest.mark.parametrize("classes", [[False, True], [0.0, 1.0], [3, 5, 9]])
def test_labels_of_every_class_type(classes):
    """Boolean, float and integer classes_: ``export`` maps labels through them (float labels
    as float), skl2onnx gives int64 (its convention); both equal ``predict``."""
    X = data(4, np.float64, rows=90)
    y = np.array(classes)[(X[:, 0] > 0).astype(int) + (len(classes) > 2) * (X[:, 1] > 0)]
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    keep = decided(pn.backend.to_host(clf.model_.forward(X)), clf.model_.output)
    for proto in (polynn.onnx.export(clf, None),
                  skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})):
        got = run(proto, X)
        np.testing.assert_array_equal(got["label"][keep], clf.predict(X)[keep])
        np.testing.assert_allclose(got["probabilities"], clf.predict_proba(X), atol=1e-12)


def test_skl2onnx_nocl_gives_class_indices():
    X = data(4, np.float64, rows=90)
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    got = run(skl2onnx.to_onnx(clf, X[:1], options={"nocl": True, "zipmap": False}), X)
    keep = decided(pn.backend.to_host(clf.model_.forward(X)), "softmax")
    assert got["label"].dtype == np.int64
    np.testing.assert_array_equal(clf.classes_[got["label"]][keep], clf.predict(X)[keep])
