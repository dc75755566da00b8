"""polynn.sklearn's additions for issue 17: ``class_weight``, ``transform`` /
``get_feature_names_out`` (hidden features in a Pipeline), and ``dropout`` / per-layer
``activation`` passed to :class:`polynn.MLP`; scikit-learn's estimator checks with each new
parameter set. (``mesh=`` is tested on 4 devices in ``test_sklearn_mesh.py``.)"""

import inspect
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn", minversion="1.6")

import scipy.sparse  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import polynn as pn  # noqa: E402
from polynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.02, random_state=0)


def _has_dropout() -> bool:
    return "dropout" in inspect.signature(pn.MLP.from_params).parameters


def _has_layer_activations() -> bool:
    try:
        pn.MLP([2, 3, 3, 1], activation=["relu", "tanh"])
    except (TypeError, ValueError):
        return False
    return True


NEEDS_DROPOUT = pytest.mark.skipif(
    not _has_dropout(), reason="polynn.MLP has no dropout= yet (issue 17 §2, the model "
                               "engineer's work): the estimators' dropout= passes it through")
NEEDS_LAYER_ACTIVATIONS = pytest.mark.skipif(
    not _has_layer_activations(),
    reason="polynn.MLP takes no per-layer activation list yet (issue 17 §4, the model "
           "engineer's work): the estimators' activation=[...] passes it through")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _checked(estimator, *marks):
    return pytest.param(estimator, marks=marks) if marks else estimator


@parametrize_with_checks([
    MLPClassifier(**FAST, class_weight="balanced"),
    MLPClassifier(**FAST, solver="lbfgs", class_weight="balanced"),
    MLPRegressor(**{**FAST, "hidden_layer_sizes": (16, 8)}, transform_layer=0),
    MLPClassifier(**{**FAST, "hidden_layer_sizes": (16, 8)}, transform_layer=-2),
])
def test_estimator_checks_with_the_new_parameters(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [
    pytest.param(MLPClassifier(**FAST, dropout=0.2), marks=NEEDS_DROPOUT),
    pytest.param(MLPRegressor(**FAST, dropout=0.2), marks=NEEDS_DROPOUT),
    pytest.param(MLPClassifier(**{**FAST, "hidden_layer_sizes": (16, 8)},
                               activation=["relu", "tanh"]), marks=NEEDS_LAYER_ACTIVATIONS),
    pytest.param(MLPRegressor(**{**FAST, "hidden_layer_sizes": (16, 8)},
                              activation=["tanh", "logistic"]), marks=NEEDS_LAYER_ACTIVATIONS),
])
def test_estimator_checks_with_the_model_parameters(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    expected = {}
    if estimator.dropout:
        why = ("dropout draws a mask per example: a repeated row gets masks of its own, a row "
               "of weight 2 one mask, so the two trainings differ (as they would in any library)")
        expected = {"check_sample_weight_equivalence_on_dense_data": why,
                    "check_sample_weight_equivalence_on_sparse_data": why}
    check_estimator(estimator, expected_failed_checks=expected)


@pytest.fixture(scope="module")
def imbalanced():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 4))
    y = np.where(X[:, 0] + X[:, 1] ** 2 > 1.5, "rare", np.where(X[:, 2] > 0, "b", "a"))
    return X, y


# --- class weights ----------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("class_weight", ["balanced", {"rare": 4.0, "a": 0.5}])
def test_class_weight_equals_the_equivalent_sample_weight(backend, solver, class_weight,
                                                          imbalanced):
    X, y = imbalanced
    sample_weight = np.random.default_rng(1).integers(1, 4, size=len(y)).astype(float)
    classes = np.unique(y)
    per_class = compute_class_weight(class_weight, classes=classes, y=y,
                                     sample_weight=sample_weight)
    equivalent = per_class[np.searchsorted(classes, y)] * sample_weight
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0,
                   backend=backend.name, dtype="float64", batch_size=32)
    weighted = MLPClassifier(**options, class_weight=class_weight).fit(
        X, y, sample_weight=sample_weight)
    expected = MLPClassifier(**options).fit(X, y, sample_weight=equivalent)
    for a, b in zip(weighted.coefs_ + weighted.intercepts_,
                    expected.coefs_ + expected.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert weighted.loss_ == pytest.approx(expected.loss_, rel=1e-9)
    plain = MLPClassifier(**options).fit(X, y, sample_weight=sample_weight)
    assert not np.allclose(plain.coefs_[0], expected.coefs_[0])


def test_balanced_class_weight_raises_recall_of_the_rare_class(imbalanced):
    X, y = imbalanced
    options = dict(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01,
                   random_state=0)
    recall = [np.mean(MLPClassifier(**options, class_weight=cw).fit(X, y).predict(X[y == "rare"])
                      == "rare") for cw in (None, "balanced")]
    assert recall[1] > recall[0]


def test_multilabel_class_weight_is_compute_sample_weights():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    Y = np.stack([X[:, 0] > 0.8, X[:, 1] > 0, X[:, 2] > -0.5], axis=1).astype(int)
    options = dict(hidden_layer_sizes=(6,), max_iter=10, random_state=0, solver="lbfgs")
    for class_weight in ("balanced", [{0: 1, 1: 3}, {0: 2, 1: 1}, {0: 1, 1: 1}]):
        weighted = MLPClassifier(**options, class_weight=class_weight).fit(X, Y)
        expected = MLPClassifier(**options).fit(
            X, Y, sample_weight=compute_sample_weight(class_weight, Y))
        np.testing.assert_allclose(weighted.coefs_[0], expected.coefs_[0], rtol=1e-9)
    with pytest.raises(ValueError, match="list of dicts, or the string 'balanced'"):
        MLPClassifier(**options, class_weight={0: 1, 1: 2}).fit(X, Y)
    with pytest.raises(ValueError, match="one dict"):
        MLPClassifier(**options, class_weight=[{0: 1, 1: 2}]).fit(X, Y)


def test_class_weight_in_partial_fit_and_bad_values(imbalanced):
    X, y = imbalanced
    classes = np.unique(y)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, class_weight="balanced")
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        clf.partial_fit(X, y, classes=classes)
    table = {"rare": 3.0}
    a = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, class_weight=table,
                      dtype="float64").partial_fit(X[:50], y[:50], classes=classes)
    b = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, dtype="float64").partial_fit(
        X[:50], y[:50], classes=classes, sample_weight=np.where(y[:50] == "rare", 3.0, 1.0))
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-12)
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="inverse").fit(X, y)
    with pytest.raises(ValueError, match="list of dicts is for multilabel"):
        MLPClassifier(class_weight=[{"a": 1.0}]).fit(X, y)
    with pytest.raises(ValueError, match="every sample weight 0"):
        MLPClassifier(class_weight={"a": 0, "b": 0, "rare": 0}).fit(X, y)
    # An estimator with class weights pickles and clones as scikit-learn's do.
    assert clone(pickle.loads(pickle.dumps(a))).class_weight == table


# --- hidden features: transform, get_feature_names_out, Pipeline ------------------------------
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_transform_returns_the_hidden_activations(backend, Estimator, imbalanced):
    X, y = imbalanced
    if Estimator is MLPRegressor:
        y = X[:, 0] - X[:, 1]
    est = Estimator(hidden_layer_sizes=(9, 5), activation="tanh", max_iter=5, random_state=0,
                    backend=backend.name, dtype="float64").fit(X, y)
    (W0, b0), (W1, b1) = zip(est.coefs_[:2], est.intercepts_[:2])
    first = np.tanh(X @ W0 + b0)
    expected = {0: first, -2: first, 1: np.tanh(first @ W1 + b1), -1: np.tanh(first @ W1 + b1)}
    for layer, H in expected.items():
        est.set_params(transform_layer=layer)
        out = est.transform(X)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == H.shape
        np.testing.assert_allclose(out, H, rtol=1e-10, atol=1e-12)
        prefix = Estimator.__name__.lower()
        assert list(est.get_feature_names_out()) == [f"{prefix}{i}" for i in range(H.shape[1])]
    sparse = est.transform(scipy.sparse.csr_matrix(X))
    np.testing.assert_allclose(sparse, expected[-1], rtol=1e-10, atol=1e-12)


def test_transform_in_a_pipeline_and_a_grid_search(imbalanced):
    X, y = imbalanced
    mlp = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=150, learning_rate_init=0.01,
                        random_state=0)
    pipe = make_pipeline(mlp, LogisticRegression(max_iter=500)).fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe[0].transform(X).shape == (len(X), 8)
    grid = GridSearchCV(pipe, {"mlpclassifier__transform_layer": [0, -1]}, cv=2).fit(X, y)
    assert grid.best_params_["mlpclassifier__transform_layer"] in (0, -1)
    np.testing.assert_array_equal(mlp.fit_transform(X, y), clone(mlp).fit(X, y).transform(X))
    reg = make_pipeline(MLPRegressor(hidden_layer_sizes=(16,), max_iter=100, random_state=0),
                        Ridge()).fit(X, X[:, 0])
    assert reg.predict(X).shape == (len(X),)


def test_transform_set_output_feature_names_and_errors(imbalanced):
    pd = pytest.importorskip("pandas")
    X, y = imbalanced
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2", "f3"])
    clf = MLPClassifier(hidden_layer_sizes=(6, 3), max_iter=5, random_state=0).fit(frame, y)
    out = clf.set_output(transform="pandas").transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["mlpclassifier0", "mlpclassifier1", "mlpclassifier2"]
    assert clf.get_feature_names_out(["f0", "f1", "f2", "f3"]).shape == (3,)
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        clf.get_feature_names_out(["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"transform_layer=2: layer must be an integer in "
                                         r"\[-2, 1\]"):
        clf.set_params(transform_layer=2).transform(frame)
    none = MLPClassifier(hidden_layer_sizes=(), max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="no hidden layer"):
        none.transform(X)
    with pytest.raises(AttributeError):
        MLPClassifier().get_feature_names_out()  # NotFittedError, before fit
    float32 = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(
        X.astype(np.float32), X[:, 0])
    assert float32.transform(X.astype(np.float32)).dtype == np.float32


# --- dropout and per-layer activations, passed to polynn.MLP -----------------------------------
@NEEDS_DROPOUT
def test_dropout_reaches_the_model_and_trains_differently(imbalanced):
    X, y = imbalanced
    options = dict(hidden_layer_sizes=(32,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MLPClassifier(**options).fit(X, y)
        dropped = MLPClassifier(**options, dropout=0.3).fit(X, y)
        again = MLPClassifier(**options, dropout=0.3).fit(X, y)
    assert dropped.model_.dropout in (0.3, (0.3,), [0.3])
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    np.testing.assert_array_equal(dropped.coefs_[0], again.coefs_[0])  # seeded masks
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))
    with pytest.raises(ValueError, match="dropout=0.3 needs solver='sgd' or 'adam'"):
        MLPClassifier(**options, solver="lbfgs", dropout=0.3).fit(X, y)


@pytest.mark.skipif(_has_dropout(), reason="polynn.MLP has dropout=: the pass-through runs")
def test_dropout_without_the_model_support_is_refused_by_name(imbalanced):
    X, y = imbalanced
    with pytest.raises(ValueError, match=r"dropout=0.3 needs polynn.MLP\(dropout=...\)"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, dropout=0.3).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0).fit(X, y)  # outside [0, 1): the parameter table


@NEEDS_LAYER_ACTIVATIONS
def test_per_layer_activations_reach_the_model(imbalanced):
    X, y = imbalanced
    clf = MLPClassifier(hidden_layer_sizes=(8, 6), activation=["logistic", "tanh"],
                        max_iter=5, random_state=0, dtype="float64").fit(X, y)
    assert tuple(clf.model_.activation) == ("sigmoid", "tanh")
    (W0, b0), (W1, b1) = zip(clf.coefs_[:2], clf.intercepts_[:2])
    first = 1 / (1 + np.exp(-(X @ W0 + b0)))
    np.testing.assert_allclose(clf.transform(X), np.tanh(first @ W1 + b1), rtol=1e-10)


def test_per_layer_activation_names_are_checked(imbalanced):
    X, y = imbalanced
    with pytest.raises(ValueError, match="each entry must be one of"):
        MLPClassifier(hidden_layer_sizes=(4, 4), activation=["relu", "swish"]).fit(X, y)
    if not _has_layer_activations():
        with pytest.raises(ValueError, match="one per hidden layer"):
            MLPClassifier(hidden_layer_sizes=(4, 4), activation=["relu", "tanh"],
                          max_iter=2).fit(X, y)


def test_initial_weights_use_each_layers_activation():
    one = MLPClassifier(hidden_layer_sizes=(5, 4), activation="logistic", max_iter=1,
                        random_state=3, solver="lbfgs")
    # scikit-learn's bound sqrt(f / (fan_in + fan_out)): f = 2 for logistic, 6 otherwise.
    rs = np.random.RandomState(3)
    one._validate_params()
    one._label_binarizer = None
    one._initialize(np.zeros((20, 1)), [3, 5, 4, 1], "float64", rs)
    mixed = clone(one).set_params(activation=["tanh", "logistic"])
    mixed._initialize(np.zeros((20, 1)), [3, 5, 4, 1], "float64", np.random.RandomState(3))
    bound = [np.sqrt(f / (a + b)) for f, a, b in ((6, 3, 5), (2, 5, 4), (2, 4, 1))]
    for W, limit in zip(mixed.coefs_, bound):
        assert np.abs(W).max() <= limit
    assert np.abs(mixed.coefs_[0]).max() > np.sqrt(2 / 8)  # the tanh layer's wider bound


@settings(max_examples=60, deadline=None)
@given(codes=st.lists(st.integers(0, 3), min_size=2, max_size=30),
       weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), min_size=30,
                        max_size=30),
       table=st.dictionaries(st.sampled_from(["ant", "bee", "cat", "dog"]),
                             st.floats(0.0, 5.0), min_size=4, max_size=4),
       balanced=st.booleans())
def test_class_sample_weight_is_compute_class_weights(codes, weights, table, balanced):
    """Per-sample weights for any labels, weights and table: scikit-learn's
    ``compute_class_weight`` (over the samples that weigh, for "balanced") times
    ``sample_weight``."""
    from sklearn.preprocessing import LabelBinarizer

    from polynn.sklearn.class_weight import class_sample_weight

    labels = np.array(["ant", "bee", "cat", "dog"])[codes]
    sw = np.array(weights[: len(codes)])
    assume(sw.sum() > 0)
    binarizer = LabelBinarizer().fit(labels)
    Y = binarizer.transform(labels)
    classes = binarizer.classes_
    if balanced:
        keep = sw > 0
        present = np.unique(labels[keep])
        per_class = dict(zip(present, compute_class_weight(
            "balanced", classes=present, y=labels[keep], sample_weight=sw[keep])))
        expected = np.array([per_class.get(label, 1.0) for label in labels]) * sw
    else:
        expected = np.array([table[label] for label in labels]) * sw
    if not expected.sum() > 0:
        with pytest.raises(ValueError, match="every sample weight 0"):
            class_sample_weight(table, classes, Y, False, sw)
        return
    actual = class_sample_weight("balanced" if balanced else table, classes, Y, False, sw)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
