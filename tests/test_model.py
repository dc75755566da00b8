"""The MLP class: shapes and dtypes of what it returns, and clear errors for bad input."""

import sys

import numpy as np
import pytest

import polynn as pn


@pytest.fixture
def spiral():
    return pn.datasets.spiral(n_per_class=20, seed=0)


def test_shapes_and_dtypes(backend):
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    model = pn.MLP([2, 8, 5, 3], backend=backend.name, seed=0)
    assert len(model.params) == 3
    for (W, b), (n_in, n_out) in zip(model.params, [(2, 8), (8, 5), (5, 3)]):
        assert W.shape == (n_in, n_out) and b.shape == (n_out,)
        assert W.dtype == b.dtype == backend.dtype("float32")
    history = model.fit(X, y, lr=0.1, epochs=3)
    assert len(history.loss) == 3 and all(isinstance(v, float) for v in history.loss)
    proba = model.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = model.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (60,)
    assert 0.0 <= model.score(X, y) <= 1.0


def test_sigmoid_output_binary_labels():
    X, y = pn.datasets.moons(n_samples=100, seed=0)
    model = pn.MLP([2, 16, 1], output="sigmoid", dtype="float64", seed=0)
    model.fit(X, y.reshape(-1, 1), lr=0.5, epochs=500)  # (m, 1) labels are accepted too
    proba = model.predict_proba(X)
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(model.predict(X))) <= {0, 1}
    assert model.score(X, y) > 0.85


def test_identity_output_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = pn.MLP([3, 16, 1], activation="tanh", output="identity", dtype="float64", seed=0)
    history = model.fit(X, y, lr=0.05, epochs=800)
    assert history.accuracy == []  # no accuracy for regression
    assert model.predict(X).shape == (200,)
    assert model.score(X, y) > 0.95
    with pytest.raises(ValueError, match="predict_proba needs a classifier"):
        model.predict_proba(X)


def test_from_params_accepts_any_backend_arrays(backend):
    source = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=4)
    copy = pn.MLP.from_params(source.params, activation="relu", output="softmax",
                              backend="numpy")
    assert copy.layer_sizes == [2, 6, 3] and copy.dtype == "float64"
    for (W, b), (W0, b0) in zip(copy.host_params(), source.host_params()):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_from_params_copies_numpy_input():
    W, b = np.ones((2, 3)), np.zeros(3)
    model = pn.MLP.from_params([(W, b)], backend="numpy")
    model.fit(np.ones((4, 2)), np.array([0, 1, 2, 0]), lr=0.1, epochs=2)
    assert (W == 1).all() and not b.any()  # the caller's arrays are untouched


def test_from_params_rejects_layers_that_do_not_chain():
    with pytest.raises(ValueError, match="do not chain"):
        pn.MLP.from_params([(np.ones((2, 3)), np.zeros(3)), (np.ones((4, 2)), np.zeros(2))])


def test_value_and_grad_shapes():
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 25, 3], dtype="float64")
    loss, grads = model.value_and_grad(X, y, l2=1e-3)
    assert isinstance(loss, float) and loss > 0
    assert [(dW.shape, db.shape) for dW, db in grads] == [((2, 25), (25,)), ((25, 3), (3,))]


def test_default_backend_comes_from_environment(monkeypatch):
    monkeypatch.setenv("POLYNN_BACKEND", "array_api_strict")
    pytest.importorskip("array_api_strict")
    assert pn.MLP([2, 3]).backend.name == "array_api_strict"
    monkeypatch.setenv("POLYNN_BACKEND", "numpy")
    assert pn.MLP([2, 3]).backend.name == "numpy"


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("X, y, match", [
    (np.ones((5, 2)), np.zeros(4, int), "5 rows but y has shape"),
    (np.ones(10), np.zeros(10, int), "must be 2-D"),
    (np.ones((2, 5, 2)), np.zeros(2, int), "must be 2-D"),
    (np.array([[0.0, np.nan], [1, 1]]), np.zeros(2, int), "NaN or infinity.*row 0, column 1"),
    (np.array([[0.0, 1], [np.inf, 1]]), np.zeros(2, int), "NaN or infinity"),
    (np.ones((3, 2)), np.array([0, 1, 3]), r"outside 0\.\.2"),
    (np.ones((3, 2)), np.array([0, -1, 2]), r"outside 0\.\.2"),
    (np.ones((3, 2)), np.array([0, 1.5, 2]), "non-integer"),
    (np.ones((3, 4)), np.array([0, 1, 2]), "4 features but the model's first layer expects 2"),
    (np.ones((0, 2)), np.zeros(0, int), "no rows"),
])
def test_bad_input_raises_clear_errors(X, y, match):
    model = pn.MLP([2, 4, 3])
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, lr=0.1, epochs=1)


def test_non_numeric_inputs_are_refused():
    model = pn.MLP([2, 4, 3])
    with pytest.raises(TypeError, match="must hold numbers"):
        model.fit(np.array([["a", "b"]]), np.array([0]), epochs=1)
    with pytest.raises(TypeError, match="integer class labels"):
        model.fit(np.ones((1, 2)), np.array(["cat"]), epochs=1)


def test_sigmoid_labels_must_be_binary():
    model = pn.MLP([2, 4, 1], output="sigmoid")
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        model.fit(np.ones((3, 2)), np.array([0, 1, 2]), epochs=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="swish"), "unknown activation 'swish'"),
    (dict(output="softplus"), "unknown output 'softplus'"),
    (dict(backend="tensorflow"), "unknown backend 'tensorflow'"),
    (dict(init="zeros"), "unknown init 'zeros'"),
    (dict(dtype="float16"), "unknown dtype 'float16'"),
    (dict(backend="numpy", device="cuda:0"), "runs on 'cpu' only"),
])
def test_unknown_names_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pn.MLP([2, 4, 3], **kwargs)


@pytest.mark.parametrize("sizes", [[2], [], [2, 0, 3], [2, -1], "abc"])
def test_bad_layer_sizes(sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        pn.MLP(sizes)


def test_sigmoid_output_with_several_units_is_multilabel():
    X, y = pn.datasets.spiral(n_per_class=5, n_classes=2, seed=0)
    model = pn.MLP([2, 4, 2], output="sigmoid")
    with pytest.raises(ValueError, match=r"0/1 indicator matrix of shape \(10, 2\)"):
        model.fit(X, y, epochs=1)


def test_regression_target_columns_must_match():
    model = pn.MLP([2, 4, 2], output="identity")
    with pytest.raises(ValueError, match="1 target column.*2 output unit"):
        model.fit(np.ones((3, 2)), np.ones(3), epochs=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1.0), "lr must be a positive"),
    (dict(l2=-0.1), "l2 must be a non-negative"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(epochs=-3), "epochs must be a non-negative integer"),
    (dict(optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
    (dict(patience=3), "needs validation_split or validation_data"),
    (dict(validation_split=1.5), r"validation_split must be in \(0, 1\)"),
])
def test_bad_fit_options(kwargs, match):
    X, y = pn.datasets.spiral(n_per_class=5, seed=0)
    with pytest.raises(ValueError, match=match):
        pn.MLP([2, 4, 3]).fit(X, y, **{"epochs": 1, **kwargs})


def test_available_backends_reports_numpy():
    status = pn.available_backends()
    assert status["numpy"] is None and set(status) == set(pn.backends.BACKENDS)


def test_models_pickle_and_keep_their_backend(backend):
    import pickle

    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=0)
    model.fit(X, y, lr=0.1, epochs=3, optimizer="momentum")
    clone = pickle.loads(pickle.dumps(model))
    assert clone.backend == model.backend
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    model.fit(X, y, lr=0.1, epochs=2, optimizer="momentum")
    clone.fit(X, y, lr=0.1, epochs=2, optimizer="momentum")
    for (W, _), (W0, _) in zip(clone.host_params(), model.host_params()):
        np.testing.assert_array_equal(W, W0)


def test_changing_only_the_learning_rate_keeps_the_optimizer_state():
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], dtype="float64", seed=0)
    model.fit(X, y, lr=0.1, epochs=3, optimizer="momentum")
    t, velocity = model.opt_state
    model.fit(X, y, lr=0.02, epochs=1, optimizer="momentum")
    assert model.opt_state[0] == t + 1  # continued, not restarted
    model.fit(X, y, lr=0.02, epochs=1, optimizer="momentum", momentum=0.5)
    assert model.opt_state[0] == 1  # other hyper-parameters: a fresh state


def test_data_already_on_the_backend_is_used_in_place(backend):
    X, y = pn.datasets.spiral(n_per_class=15, seed=0)
    host = pn.MLP([2, 8, 3], backend=backend.name, dtype="float64", seed=0)
    host.fit(X, y, lr=0.2, epochs=20, batch_size=16, seed=1)
    resident = pn.MLP([2, 8, 3], backend=backend.name, dtype="float64", seed=0)
    X_dev, y_dev = backend.asarray(X), backend.asarray(y)  # float64 data and labels on device
    resident.fit(X_dev, y_dev, lr=0.2, epochs=20, batch_size=16, seed=1)
    np.testing.assert_array_equal(resident.predict(X_dev), host.predict(X))
    for (W, _), (W0, _) in zip(resident.host_params(), host.host_params()):
        np.testing.assert_allclose(W, W0, rtol=1e-12)
    bad = np.array(X)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        resident.fit(backend.asarray(bad), y_dev, epochs=1)
    with pytest.raises(ValueError, match="features"):
        resident.predict(backend.asarray(np.ones((4, 5))))


# --- the model is the truth during fit (issue 14, symptom 5) ------------------------------------
@pytest.mark.parametrize("batch_size", [None, 16])
def test_callback_sees_the_current_state_on_the_model(backend, tmp_path, batch_size):
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=0)
    initial = model.host_params()
    seen = []

    def callback(info):
        path = tmp_path / f"epoch{info.epoch}.safetensors"
        model.save_checkpoint(path)  # the usual "checkpoint every epoch" callback
        loaded = pn.load_checkpoint(path, backend="numpy")
        current = tuple((pn.backends.to_host(W).copy(), pn.backends.to_host(b).copy())
                        for W, b in info.params)
        with_info = pn.MLP.from_params(info.params, backend=backend.name, dtype="float64")
        np.testing.assert_array_equal(model.predict_proba(X), with_info.predict_proba(X))
        assert abs(model.loss(X, y) - with_info.loss(X, y)) <= 1e-12
        assert loaded.opt_state[0] == info.history.steps  # the optimizer state is current too
        seen.append((current, loaded.host_params(), model.params))

    model.fit(X, y, epochs=4, lr=0.5, optimizer="momentum", batch_size=batch_size,
              callback=callback)
    assert len(seen) == 4
    for current, saved, held in seen:
        for (W, b), (Ws, bs), (Wh, bh) in zip(current, saved, held):
            np.testing.assert_array_equal(Ws, W)
            np.testing.assert_array_equal(bs, b)
            # What the model held during the callback is not overwritten by later steps.
            np.testing.assert_array_equal(pn.backends.to_host(Wh), W)
            np.testing.assert_array_equal(pn.backends.to_host(bh), b)
    assert not np.array_equal(seen[0][0][0][0], initial[0][0])
    for (W, _), (W_last, _) in zip(model.host_params(), seen[-1][0]):
        np.testing.assert_array_equal(W, W_last)


# --- bfloat16 (symptom 2) and one output dtype on every backend ----------------------------------
def bfloat16_or_skip(backend):
    try:
        backend.dtype_record("bfloat16")
    except ValueError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("options", [
    {}, {"validation_split": 0.2}, {"batch_size": 16}, {"batch_size": 16, "validation_split": 0.2},
    {"sample_weight": np.linspace(0.5, 1.5, 60)},
])
def test_bfloat16_trains(backend, options):
    bfloat16_or_skip(backend)
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    model = pn.MLP([2, 16, 3], backend=backend.name, dtype="bfloat16", seed=0)
    history = model.fit(X, y, epochs=30, lr=0.5, **options)
    assert np.all(np.isfinite(history.loss)) and history.loss[-1] < history.loss[0]
    assert model.params[0][0].dtype == backend.dtype_record("bfloat16").native
    assert model.predict_proba(X).dtype == np.float32
    assert model.predict(X).dtype == np.int64
    assert all(W.dtype == b.dtype == np.float32 for W, b in model.host_params())


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_host_outputs_have_one_dtype_on_every_backend(backend, dtype):
    if dtype == "bfloat16":
        bfloat16_or_skip(backend)
    X, y = pn.datasets.spiral(n_per_class=5, seed=0)
    host = backend.dtype_record(dtype).host  # float32 for bfloat16, which NumPy lacks
    classifier = pn.MLP([2, 4, 3], backend=backend.name, dtype=dtype, seed=0)
    regressor = pn.MLP([2, 4, 2], backend=backend.name, dtype=dtype, output="identity", seed=0)
    assert classifier.predict_proba(X).dtype == host
    assert regressor.predict(X).dtype == host
    assert classifier.host_params()[0][0].dtype == host


# --- pickling: the record and the backend's spec (symptom 3 for pn.MLP) -------------------------
PICKLE_CHILD = """
import io, pickle, sys
import numpy as np
model = pickle.loads(sys.stdin.buffer.read())
X = np.linspace(-1, 1, 40).reshape(20, 2)
P = model.predict_proba(X)
assert model.dtype == "float64" and P.dtype == np.float64, (model.dtype, P.dtype)
assert str(model.params[0][0].dtype) == "float64", model.params[0][0].dtype
buffer = io.BytesIO()
np.save(buffer, P)
sys.stdout.buffer.write(buffer.getvalue())
"""


def test_float64_jax_model_unpickles_in_a_fresh_process_as_float64():
    import io
    import pickle
    import subprocess
    from pathlib import Path

    try:
        pn.get_backend("jax")
    except pn.BackendUnavailableError as err:
        pytest.skip(str(err))
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], backend="jax", dtype="float64", seed=0)
    model.fit(X, y, epochs=3, lr=0.1, optimizer="adam")
    blob = pickle.dumps(model)
    assert b"Backend" not in blob and b"jaxlib" not in blob  # plain data and a backend spec
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", PICKLE_CHILD], input=blob, capture_output=True,
                          env={"PYTHONPATH": root, "JAX_PLATFORMS": "cpu",
                               "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    probabilities = np.load(io.BytesIO(done.stdout))
    X_child = np.linspace(-1, 1, 40).reshape(20, 2)
    np.testing.assert_allclose(probabilities, model.predict_proba(X_child), rtol=1e-12)
    clone = pickle.loads(blob)
    assert clone.opt_state[0] == model.opt_state[0] and clone.optimizer == model.optimizer


def test_record_round_trip(backend):
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=3)
    model.fit(X, y, epochs=2, lr=0.1, batch_size=8, optimizer="adam")
    record = model.to_record(checkpoint=True)
    assert record.config["dtype"] == "float64" and record.config["seed"] == 3
    assert all(isinstance(W, np.ndarray) for W, _ in record.params)
    assert isinstance(record.training.state.count, int)
    clone = pn.MLP.from_record(record, backend=backend.name)
    for history in (model.fit(X, y, epochs=2, lr=0.1, batch_size=8, optimizer="adam"),
                    clone.fit(X, y, epochs=2, lr=0.1, batch_size=8, optimizer="adam")):
        assert len(history.loss) == 2
    for (W, b), (W0, b0) in zip(clone.host_params(), model.host_params()):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    assert model.to_record().training is None


def test_place_keeps_data_where_the_model_reads_it(backend):
    X, y = pn.datasets.spiral(n_per_class=10, seed=0)
    model = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=0)
    placed = model.place(X)
    if backend.host_memory:
        assert placed is X  # host data is read where it is
    else:
        assert backend.owns(placed) and placed.dtype == backend.dtype_record("float64").native
    assert model.place(placed) is placed or backend.device is not None
    other = pn.MLP([2, 6, 3], backend=backend.name, dtype="float64", seed=0)
    model.fit(placed, y, epochs=3, batch_size=8, lr=0.1)
    other.fit(X, y, epochs=3, batch_size=8, lr=0.1)
    for (W, _), (W0, _) in zip(model.host_params(), other.host_params()):
        np.testing.assert_array_equal(W, W0)
