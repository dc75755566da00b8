"""Class weights: ``MLP.fit(class_weight=...)`` and ``MLPClassifier(class_weight=...)`` equal
training with the equivalent per-example ``sample_weight``, on every backend; "balanced" is
scikit-learn's ``compute_class_weight`` (the oracle of the property tests)."""

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import polynn as pn
from polynn.model.class_weight import example_weights
from polynn.validate import check_fit_options

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402


def data(m=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    y = np.minimum((X[:, 0] > -0.3).astype(int) + (X[:, 1] > 0.6), k - 1)
    return X, y


def trained(backend, layer_sizes, output, **fit):
    model = pn.MLP(layer_sizes, output=output, backend=backend, dtype="float64", seed=3)
    model.fit(*fit.pop("data"), lr=0.05, epochs=4, batch_size=16, **fit)
    return model.host_params()


@pytest.mark.parametrize("output,k", [("softmax", 3), ("sigmoid", 2)])
@pytest.mark.parametrize("class_weight", [{0: 3.0, 2: 0.25}, "balanced"])
def test_class_weight_equals_the_equivalent_sample_weight(backend, output, k, class_weight):
    if output == "sigmoid" and isinstance(class_weight, dict):
        class_weight = {0: 3.0, 1: 0.25}
    X, y = data(k=k)
    sample_weight = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    sizes = [4, 8, k if output == "softmax" else 1]
    if class_weight == "balanced":
        classes = np.unique(y)
        per_class = np.ones(k)
        per_class[classes] = compute_class_weight("balanced", classes=classes, y=y,
                                                  sample_weight=sample_weight)
    else:
        per_class = np.array([class_weight.get(c, 1.0) for c in range(k)])
    expected = trained(backend, sizes, output, data=(X, y),
                       sample_weight=per_class[y] * sample_weight)
    actual = trained(backend, sizes, output, data=(X, y), sample_weight=sample_weight,
                     class_weight=class_weight)
    assert_close(actual, expected, "float64")
    unweighted = trained(backend, sizes, output, data=(X, y), sample_weight=sample_weight)
    assert not np.allclose(unweighted[0][0], expected[0][0])  # the weights did change training


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(0, 4), min_size=1, max_size=40),
       weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), min_size=40,
                        max_size=40),
       table=st.dictionaries(st.integers(0, 4), st.floats(0.0, 10.0), max_size=5),
       balanced=st.booleans())
def test_example_weights_are_scikit_learns(labels, weights, table, balanced):
    y = np.array(labels)
    sw = np.array(weights[: len(y)])
    if not sw.sum() > 0:
        sw = sw + 1.0
    T = np.eye(5)[y].T  # one-hot columns (k, m)
    if balanced:
        present = np.unique(y[sw > 0]) if (sw > 0).any() else np.unique(y)
        per_class = np.ones(5)
        keep = sw > 0
        per_class[present] = compute_class_weight("balanced", classes=present, y=y[keep],
                                                  sample_weight=sw[keep])
        expected = per_class[y] * sw
        np.testing.assert_allclose(example_weights("balanced", T, "softmax", sw), expected,
                                   rtol=1e-12)
        return
    expected = np.array([table.get(c, 1.0) for c in range(5)])[y] * sw
    if not expected.sum() > 0:
        with pytest.raises(ValueError, match="weight 0"):
            example_weights(table, T, "softmax", sw)
        return
    assert np.array_equal(example_weights(table, T, "softmax", sw), expected)


@pytest.mark.parametrize("value,error,match", [
    ("inverse", TypeError, "class_weight must be None, 'balanced' or a dict"),
    ([1.0, 2.0], TypeError, "class_weight must be None"),
    ({"cat": 1.0}, TypeError, "class_weight key must be a non-negative integer"),
    ({-1: 1.0}, ValueError, "class_weight key must be a non-negative integer"),
    ({0: -1.0}, ValueError, r"class_weight\[0\] must be a non-negative"),
    ({0: float("nan")}, ValueError, r"class_weight\[0\]"),
    ({True: 1.0}, TypeError, "class_weight key"),
])
def test_bad_class_weight_is_refused_by_name(value, error, match):
    with pytest.raises(error, match=match):
        check_fit_options({"class_weight": value})


def test_class_weight_needs_a_single_label_classifier_and_known_classes():
    X, y = data()
    with pytest.raises(ValueError, match="class_weight names class"):
        pn.MLP([4, 3]).fit(X, y, epochs=1, class_weight={3: 2.0})
    with pytest.raises(ValueError, match="class_weight needs one class per example"):
        pn.MLP([4, 1], output="identity").fit(X, X[:, 0], epochs=1, class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight needs one class per example"):
        pn.MLP([4, 2], output="sigmoid").fit(X, np.eye(2, dtype=int)[y % 2], epochs=1,
                                             class_weight={0: 1.0})
    with pytest.raises(ValueError, match="every training row weight 0"):
        pn.MLP([4, 3]).fit(X, y, epochs=1, class_weight={0: 0.0, 1: 0.0, 2: 0.0})
    tiny = np.where(y == 0, 1e-320, 1.0)  # class 0's balanced weight overflows
    with pytest.raises(ValueError, match="overflows"):
        pn.MLP([4, 3]).fit(X, y, epochs=1, class_weight="balanced", sample_weight=tiny)
