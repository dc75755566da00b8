"""polynn.onnx: the exported graph computes what polynn computes (onnxruntime's outputs equal
``predict`` / ``predict_proba`` to 1e-6 in float32, and to rounding in float64) for every output
pair and hidden activation, for ``pn.MLP`` and the estimators; skl2onnx converts the estimators
inside a Pipeline once ``polynn.onnx`` is imported (and not before)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="polynn.onnx needs the onnx extra: pip install 'polynn[onnx]'")
pytest.importorskip("onnxruntime",
                    reason="the export tests run graphs with onnxruntime (the onnx extra)")
pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx_helpers import TOLERANCE, assert_values, data, decided, run, run_python  # noqa: E402

import polynn as pn  # noqa: E402
import polynn.onnx  # noqa: E402
from polynn.nn.activations import ACTIVATIONS  # noqa: E402
from polynn.nn.losses import OUTPUTS  # noqa: E402
from polynn.onnx.graph import build_model  # noqa: E402
from polynn.onnx.network import HiddenActivation, Network, hidden_activations  # noqa: E402

# Shapes of the output units per output pair: (output, n_outputs).
OUTPUT_UNITS = [("softmax", 3), ("sigmoid", 1), ("sigmoid", 3), ("identity", 1),
                ("identity", 2), ("poisson", 2)]


def _assert_same(got, model, X):
    """The graph's outputs ``got`` equal ``model``'s predictions on ``X``."""
    tol = TOLERANCE[model.dtype]
    pred = model.predict(X)
    if model.output in ("identity", "poisson"):
        assert_values(got["variable"], pred, model.output, model.dtype)
        return
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X), rtol=0, atol=tol)
    Z, label = pn.backend.to_host(model.forward(X)).astype(np.float64), got["label"]
    keep = decided(Z, model.output)
    np.testing.assert_array_equal(label[keep], pred[keep])
    # Near a tie either label is right: the graph's is one of the (nearly) largest scores.
    if model.output == "softmax":
        assert np.all(Z[np.arange(len(Z)), label] >= Z.max(axis=1) - 1e-4)
    else:
        assert np.all(np.where(label.reshape(Z.shape) == 1, Z > -1e-4, Z < 1e-4))


# --- pn.MLP: every output pair and activation ------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("output,k", OUTPUT_UNITS)
def test_export_equals_predict_for_every_output_and_activation(tmp_path, output, k,
                                                                 activation, dtype):
    model = pn.MLP([5, 16, 8, k], activation=activation, output=output, dtype=dtype, seed=3,
                   negative_slope=0.2)
    X = data(5, dtype)
    path = tmp_path / "model.onnx"
    proto = polynn.onnx.export(model, path)
    assert path.read_bytes() == proto.SerializeToString()
    got = run(proto, X)
    assert {v.dtype for k_, v in got.items() if k_ != "label"} == {np.dtype(dtype)}
    _assert_same(got, model, X)


def test_every_activation_and_output_is_covered():
    """A new activation or output pair must get an ONNX form (and a row in the grid above)."""
    assert {o for o, _ in OUTPUT_UNITS} == set(OUTPUTS)
    for name in ACTIVATIONS:
        network = Network(((np.eye(2), np.zeros(2)), (np.eye(2), np.zeros(2))),
                          (HiddenActivation(name),), "identity", None, np.dtype("float64"))
        build_model(network)  # raises for an activation without an ONNX form


@settings(max_examples=25, deadline=None)
@given(hidden=st.lists(st.integers(1, 12), min_size=0, max_size=3),
       activation=st.sampled_from(sorted(ACTIVATIONS)),
       output=st.sampled_from(OUTPUT_UNITS), dtype=st.sampled_from(["float32", "float64"]),
       slope=st.floats(0.01, 3.0), seed=st.integers(0, 2**16), rows=st.integers(1, 40))
def test_export_equals_predict_property(hidden, activation, output, dtype, slope, seed, rows):
    """Any depth (no hidden layer included), width, slope (leaky_relu above 1 too), row count."""
    out, k = output
    model = pn.MLP([4, *hidden, k], activation=activation, output=out, dtype=dtype,
                   seed=seed, negative_slope=slope)
    X = data(4, dtype, rows=rows, seed=seed)
    _assert_same(run(polynn.onnx.export(model, None), X), model, X)


def test_export_of_a_trained_model_on_every_backend(backend):
    """A model trained on any backend exports its weights (host copies) and the graph predicts
    as it does; float64 where the backend has it."""
    dtype = "float64" if backend.supports("float64") else "float32"
    X, y = pn.datasets.moons(n_samples=120, noise=0.2, seed=0)
    model = pn.MLP([2, 12, 2], activation="tanh", backend=backend, dtype=dtype, seed=0)
    model.fit(X, y, lr=0.1, epochs=20)
    X = X.astype(dtype)
    _assert_same(run(polynn.onnx.export(model, None), X), model, X)


def test_per_layer_activations_and_the_float32_export_of_a_float64_model():
    """Each hidden layer's own activation (the network holds a list), checked against NumPy;
    and ``dtype="float32"`` exports a float64 model's weights in float32."""
    rng = np.random.default_rng(0)
    params = tuple((rng.normal(size=(a, b)), rng.normal(size=b))
                   for a, b in [(3, 6), (6, 5), (5, 4), (4, 2)])
    names = ["leaky_relu", "tanh", "sigmoid"]
    acts = hidden_activations(names, [0.3, 0.01, 0.01], 3)
    network = Network(params, acts, "identity", None, np.dtype("float64"))
    X = rng.normal(size=(20, 3))
    A = X
    steps = [lambda Z: np.maximum(Z, 0.3 * Z), np.tanh, lambda Z: 1 / (1 + np.exp(-Z))]
    for (W, b), step in zip(params[:-1], steps):
        A = step(A @ W + b)
    expected = A @ params[-1][0] + params[-1][1]
    np.testing.assert_allclose(run(build_model(network), X)["variable"], expected, rtol=1e-12)
    model = pn.MLP.from_params(params, output="identity", dtype="float64")
    got = run(polynn.onnx.export(model, None, dtype="float32"), X.astype(np.float32))
    assert got["variable"].dtype == np.float32
    np.testing.assert_allclose(got["variable"], model.predict(X), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="2 hidden layer"):
        hidden_activations(["relu"], 0.01, 2)


@pytest.mark.parametrize("output,k,classes", [("softmax", 3, ["cat", "dog", "eel"]),
                                              ("softmax", 3, [3, 5, 9]),
                                              ("sigmoid", 1, ["no", "yes"])])
def test_export_of_a_model_with_classes_emits_the_class_values(output, k, classes):
    """A ``pn.MLP`` whose ``classes`` is set (a model file that carries labels) exports them as
    the ``label`` output: ``classes[predict(X)]``; without classes, the indices."""
    model = pn.MLP([4, 8, k], output=output, dtype="float64", seed=0)
    X = data(4, np.float64, rows=40)
    indices = run(polynn.onnx.export(model, None), X)["label"]
    model.classes = classes
    got = run(polynn.onnx.export(model, None), X)
    keep = decided(pn.backend.to_host(model.forward(X)), output)
    expected = model.classes[model.predict(X)]
    np.testing.assert_array_equal(got["label"].reshape(-1)[keep], expected[keep])
    np.testing.assert_array_equal(np.asarray(classes)[indices.reshape(-1)][keep], expected[keep])


def test_export_refuses_what_it_cannot_write(tmp_path):
    model = pn.MLP([2, 3, 2])
    with pytest.raises(TypeError, match="polynn.MLP or a fitted polynn.sklearn estimator"):
        polynn.onnx.export(object(), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        polynn.onnx.export(model, None, dtype="int8")
    with pytest.raises(ValueError, match="opset must be between 13"):
        polynn.onnx.export(model, None, opset=9)
    with pytest.raises(FileNotFoundError):
        polynn.onnx.export(model, tmp_path / "missing" / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_import_polynn_onnx_without_onnx_names_the_extra():
    out = run_python("""
        import sys
        sys.modules["onnx"] = None
        try:
            import polynn.onnx
        except ImportError as e:
            print(e)
    """)
    assert 'pip install "polynn[onnx]"' in out
