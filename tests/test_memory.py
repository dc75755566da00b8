"""Memory: training and prediction never copy the whole data set (issue 11).

NumPy reports its data allocations to ``tracemalloc``, so the peak of traced memory during a call
is the extra host memory that call needed (array-api-strict wraps NumPy arrays, so it is seen
too). Each property is checked as a *slope*: the extra peak on a large X minus the extra peak on a
small X, against the difference of their sizes. Whatever does not grow with the data (weights,
optimizer state, one batch's activations, compiled code) cancels out, and a full-size copy of X
(a permuted copy per epoch, a whole-array dtype cast, all activations at once) shows up as a
slope near 1 or more. Nothing here measures time.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import polynn as pn
import polynn.placement
import polynn.train
from polynn.datasets.labels import encode_targets

BATCH = 256
FIT_BOUND = 0.10  # extra peak of a fit epoch per byte of X
PREDICT_BOUND = 0.25  # extra peak of predict / predict_proba / score per byte of X


def traced_peak(fn) -> int:
    """Peak traced bytes above the level at the start while ``fn()`` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def data(m, n, n_classes=4, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, n), dtype=dtype), rng.integers(0, n_classes, m)


def slope(measure, m_small, m_big, n):
    """(peak(m_big) - peak(m_small)) / (bytes of X_big - bytes of X_small), after a warm-up."""
    measure(*data(BATCH + 3, n))  # first-call costs (caches, compilation) are not the data's
    sizes, peaks = [], []
    for m in (m_small, m_big):
        X, y = data(m, n)
        sizes.append(X.nbytes)
        peaks.append(traced_peak(lambda X=X, y=y: measure(X, y)))
        del X, y
    return (peaks[1] - peaks[0]) / (sizes[1] - sizes[0]), peaks


# PyTorch's own allocations are not traced, but on the CPU its batches are gathered and cast by
# NumPy (traced) and shared with torch without a copy: a whole-array cast would show here.
FIT_CASES = [
    pytest.param("numpy", "float32", id="numpy-float32"),
    pytest.param("numpy", "float64", id="numpy-float64"),  # float32 data: cast batch by batch
    pytest.param("array_api_strict", "float32", id="strict-float32"),
    pytest.param("array_api_strict", "float64", id="strict-float64"),
    pytest.param("torch", "float64", id="torch-float64"),
]


def model(backend_name, dtype, sizes):
    try:
        return pn.MLP(sizes, backend=backend_name, dtype=dtype, seed=0)
    except pn.backend.BackendUnavailableError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize(("backend_name", "dtype"), FIT_CASES)
def test_fit_epoch_makes_no_copy_of_the_data(backend_name, dtype):
    n = 512
    net = model(backend_name, dtype, [n, 32, 4])

    def fit(X, y):
        net.fit(X, y, epochs=1, batch_size=BATCH, lr=0.01)

    ratio, peaks = slope(fit, 2048, 16384, n)
    assert ratio < FIT_BOUND, f"extra peak grows by {ratio:.2f} x the data (peaks {peaks})"


def test_fit_with_validation_split_makes_no_copy_of_the_data(monkeypatch):
    # Validation runs in chunks of EVAL_CHUNK_BYTES; made small so that both sizes here span
    # several chunks (the default, 8 MiB, would hold all of the small case's validation rows).
    monkeypatch.setattr(polynn.placement, "EVAL_CHUNK_BYTES", 1 << 20)
    n = 512
    net = model("numpy", "float32", [n, 32, 4])

    def fit(X, y):
        net.fit(X, y, epochs=1, batch_size=BATCH, lr=0.01, validation_split=0.2)

    ratio, peaks = slope(fit, 2048, 16384, n)
    assert ratio < FIT_BOUND, f"extra peak grows by {ratio:.2f} x the data (peaks {peaks})"


def test_fit_from_a_memory_mapped_file_matches_in_memory_and_copies_nothing(tmp_path):
    n = 256
    X, y = data(16384, n)
    np.save(tmp_path / "x.npy", X)
    mapped = pn.datasets.load_npy(tmp_path / "x.npy")
    a, b = (pn.MLP([n, 16, 4], seed=3) for _ in range(2))
    a.fit(X, y, epochs=2, batch_size=BATCH, lr=0.05)
    b.fit(mapped, y, epochs=2, batch_size=BATCH, lr=0.05)
    for (Wa, ba), (Wb, bb) in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    extra = traced_peak(lambda: b.fit(mapped, y, epochs=1, batch_size=BATCH, lr=0.05))
    assert extra < FIT_BOUND * X.nbytes + 2_000_000, f"extra peak {extra} for {X.nbytes} of data"


PREDICT_CASES = [
    pytest.param("numpy", "float32", id="numpy-float32"),
    pytest.param("numpy", "float64", id="numpy-float64"),
    pytest.param("array_api_strict", "float32", id="strict-float32"),
]


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "forward"])
@pytest.mark.parametrize(("backend_name", "dtype"), PREDICT_CASES)
def test_inference_runs_in_bounded_chunks(backend_name, dtype, method):
    # Hidden layers as wide as the input: all activations at once would cost several X's.
    n = 256
    net = model(backend_name, dtype, [n, n, n, 4])

    def infer(X, y):
        if method == "score":
            net.score(X, y)
        else:
            getattr(net, method)(X)

    ratio, peaks = slope(infer, 8192, 32768, n)  # both above one default chunk (~2,700 rows)
    assert ratio < PREDICT_BOUND, f"extra peak grows by {ratio:.2f} x the data (peaks {peaks})"


OUTPUT_CASES = [("softmax", 4), ("sigmoid", 1), ("sigmoid", 3), ("identity", 2),
                ("poisson", 1)]


def targets(output, k, m, rng):
    if output == "softmax":
        return rng.integers(0, k, m)
    if output == "sigmoid":
        return rng.integers(0, 2, (m, k)) if k > 1 else rng.integers(0, 2, m)
    if output == "poisson":
        return rng.poisson(2.0, m).astype(float)
    return rng.normal(size=(m, k))


@pytest.mark.parametrize(("output", "k"), OUTPUT_CASES)
def test_chunked_inference_gives_the_one_chunk_answer(output, k):
    rng = np.random.default_rng(1)
    X, y = rng.random((101, 6)), targets(output, k, 101, rng)
    w = rng.uniform(0.0, 2.0, 101)
    w[:10] = 0.0  # a whole chunk of weight 0
    net = pn.MLP([6, 8, k], output=output, dtype="float64", seed=1)
    net.fit(X, y, epochs=2, batch_size=16, lr=0.01)
    methods = ["predict", "score", "loss", "forward"]
    methods += ["predict_proba"] if output in ("softmax", "sigmoid") else []
    for method in methods:
        args = (X, y) if method in ("score", "loss") else (X,)
        whole = getattr(net, method)(*args, batch_size=1000)
        chunked = getattr(net, method)(*args, batch_size=10)
        np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), rtol=1e-12,
                                   err_msg=method)
        assert np.asarray(chunked).shape == np.asarray(whole).shape
    weighted = [net.loss(X, y, sample_weight=w, l2=0.1, batch_size=b) for b in (1000, 10, 1)]
    np.testing.assert_allclose(weighted, weighted[0], rtol=1e-12)
    reference = pn.nn.mlp.loss(net.params, X, encode_targets(y, output, k, 101),
                               net.activation_fn, output, 0.1, w)
    np.testing.assert_allclose(weighted[0], float(reference), rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_inference_batch_size_is_checked(bad):
    net = pn.MLP([3, 2])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        net.predict(np.zeros((4, 3)), batch_size=bad)


# --------------------------------------------------------------------------- streaming (JAX)


def jax_or_skip():
    try:
        pn.backend.get_backend("jax")
    except pn.backend.BackendUnavailableError as err:
        pytest.skip(str(err))
    import jax

    return jax


@pytest.mark.parametrize(("dtype", "source", "weighted"), [
    ("float32", "array", False), ("float64", "memmap", False),
    ("float32", "memmap", True), ("float64", "array", True),
])
def test_streaming_gives_the_resident_parameters(tmp_path, monkeypatch, source, dtype, weighted):
    jax_or_skip()
    # Small transfer chunks: an epoch of 1,000 rows in batches of 64 spans several chunks of 4
    # (float64) or 8 (float32) batches, the last one partial, plus the remainder batch of 40.
    streaming = polynn.train.streaming
    monkeypatch.setattr(streaming, "STREAM_CHUNK_BYTES", 4 * 64 * 12 * 8)
    monkeypatch.setattr(streaming, "STREAM_CHUNK_SHARE", 1.0)
    transfers = []
    chunker = streaming.stream_chunk_batches
    monkeypatch.setattr(streaming, "stream_chunk_batches",
                        lambda *a: transfers.append(chunker(*a)) or transfers[-1])
    X, y = data(1000, 12, n_classes=3, dtype=np.float64, seed=2)
    X_val, y_val = data(300, 12, n_classes=3, dtype=np.float64, seed=3)
    if source == "memmap":
        np.save(tmp_path / "x.npy", X)
        X = pn.datasets.load_npy(tmp_path / "x.npy")
    options = {"validation_data": (X_val, y_val)}
    if weighted:  # sample weights, and validation rows split off by index
        X = np.concatenate([X, X_val]) if source == "array" else X
        y = np.concatenate([y, y_val]) if source == "array" else y
        weights = np.random.default_rng(4).uniform(0.5, 2.0, len(y))
        options = {"validation_split": 0.2, "sample_weight": weights, "l2_per_weight": True}
    models = [pn.MLP([12, 16, 3], backend="jax", dtype=dtype, seed=5) for _ in range(2)]
    histories = [
        net.fit(X, y, epochs=2, batch_size=64, lr=0.1, optimizer="momentum", l2=1e-3,
                stream=stream, **options)
        for net, stream in zip(models, [False, True], strict=True)
    ]
    for (Wa, ba), (Wb, bb) in zip(*(net.host_params() for net in models), strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    assert transfers == [4 if dtype == "float64" else 8] * 2  # one sizing per streamed epoch
    assert histories[0].loss == histories[1].loss
    np.testing.assert_allclose(histories[0].val_loss, histories[1].val_loss, rtol=1e-6)


def device_bytes_after_each_epoch(net, X, y, **fit_options):
    """The bytes of every live JAX array, seen from the per-epoch callback."""
    import jax

    seen = []
    net.fit(X, y, callback=lambda info: seen.append(
        sum(a.nbytes for a in jax.live_arrays())), **fit_options)
    return max(seen)


def test_jax_holds_one_device_copy_and_streaming_none():
    jax_or_skip()
    n = 256
    X, y = data(8192, n)
    options = dict(epochs=2, batch_size=BATCH, lr=0.01)
    net = pn.MLP([n, 32, 4], backend="jax", seed=0)
    weights = sum(W.nbytes + b.nbytes for W, b in net.params)
    baseline = device_bytes_after_each_epoch(net, X[:BATCH * 2], y[:BATCH * 2], **options)
    resident = device_bytes_after_each_epoch(net, X, y, **options)
    streamed = device_bytes_after_each_epoch(net, X, y, stream=True, **options)
    assert resident - baseline < 1.10 * X.nbytes, (resident, baseline, X.nbytes)
    assert resident - baseline > 0.9 * X.nbytes  # the one resident copy is visible
    assert streamed - baseline < 0.10 * X.nbytes + 4 * weights, (streamed, baseline, X.nbytes)


def test_stream_needs_mini_batches_and_host_data():
    jax_or_skip()
    X, y = data(100, 4)
    net = pn.MLP([4, 3], backend="jax")
    with pytest.raises(ValueError, match="stream=True streams mini-batches"):
        net.fit(X, y, epochs=1, stream=True)
    with pytest.raises(ValueError, match="already a jax array"):
        net.fit(net.backend.asarray(X), y, epochs=1, batch_size=10, stream=True)


def test_cli_stream_trains_the_same_model(tmp_path, capsys):
    jax_or_skip()
    from polynn.cli import main

    common = ["train", "--backend", "jax", "--dataset", "moons", "--layers", "8",
              "--epochs", "3", "--dtype", "float32", "--quiet", "--batch-size", "32"]
    assert main([*common, "--save", str(tmp_path / "resident.npz")]) == 0
    assert main([*common, "--stream", "--save", str(tmp_path / "streamed.npz")]) == 0
    resident, streamed = (pn.load(tmp_path / name).host_params()
                          for name in ("resident.npz", "streamed.npz"))
    for (Wa, ba), (Wb, bb) in zip(resident, streamed, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    capsys.readouterr()
    assert main([*common[:-2], "--stream"]) != 0  # full batch: refused, and why
    err = capsys.readouterr().err  # in the command line's words (issue 16 §4)
    assert "--stream moves mini-batches" in err and "stream=True" not in err


def test_mnist_from_disk_end_to_end(tmp_path):
    """IDX images mapped, scaled once to a float32 .npy on disk, trained on from the mapping:
    the same model as training on the in-memory load_mnist data cast to float32."""
    import struct

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(300, 4, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=300, dtype=np.uint8)
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        head = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (tmp_path / name).write_bytes(head + array.tobytes())
    pixels, y = pn.datasets.load_mnist(tmp_path, mmap_mode="r")
    X = pn.datasets.write_npy(tmp_path / "x.npy", pixels, dtype="float32", scale=1 / 255)
    X_memory, y_memory = pn.datasets.load_mnist(tmp_path)
    np.testing.assert_allclose(X, X_memory, rtol=1e-6)
    a, b = (pn.MLP([16, 8, 10], seed=0) for _ in range(2))
    a.fit(X, y, epochs=2, batch_size=32, lr=0.1)
    b.fit(np.asarray(X_memory, dtype=np.float32), y_memory, epochs=2, batch_size=32, lr=0.1)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_streaming_divergence_keeps_the_same_weights_as_resident(monkeypatch):
    jax_or_skip()
    streaming = polynn.train.streaming
    monkeypatch.setattr(streaming, "STREAM_CHUNK_SHARE", 1.0)
    monkeypatch.setattr(streaming, "STREAM_CHUNK_BYTES", 2 * 32 * 6 * 4)  # 2 batches a chunk
    X, _ = data(320, 6, seed=7)
    y = X @ np.arange(6.0) * 100.0
    errors, nets = [], []
    for stream in (False, True):
        net = pn.MLP([6, 16, 1], backend="jax", output="identity", activation="tanh", seed=1)
        net.fit(X, y, epochs=1, batch_size=32, lr=1e-3, stream=stream)
        with pytest.raises(pn.train.DivergenceError) as err:
            net.fit(X, y, epochs=5, batch_size=32, lr=10.0, stream=stream)
        errors.append(err.value)
        nets.append(net)
    assert str(errors[0]) == str(errors[1])
    assert errors[0].history.loss == errors[1].history.loss
    for (Wa, ba), (Wb, bb) in zip(*(net.host_params() for net in nets), strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    assert all(np.isfinite(W).all() for W, _ in nets[1].host_params())
