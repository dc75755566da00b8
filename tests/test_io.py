"""Tests for polynn.io: records written and read (``io.write`` / ``io.read``), model round trips
through the public ``model.save`` / ``polynn.load`` on every backend, safetensors
interoperability, files of the current format built byte by byte, refusal of pickles,
truncated, corrupted, mismatched and oversized files (with the memory a refusal takes
measured), atomic saves, and checkpoints of every optimizer and schedule that resume exactly."""

import copy
import dataclasses
import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import polynn
from polynn import io
from polynn.backend import to_host
from polynn.io import ModelFileError, ModelRecord, TrainingRecord, read
from polynn.io import safetensors_file as container
from polynn.nn.optim import (
    OPTIMIZER_CLASSES,
    SCHEDULE_CLASSES,
    Adam,
    Constant,
    EpochInverseScaling,
    ExponentialDecay,
    InverseScaling,
    StepDecay,
    VelocityMomentum,
)
from polynn.validate import MODEL_CONFIG_KEYS, check_model_config

load, load_checkpoint = polynn.load, polynn.load_checkpoint

# --------------------------------------------------------------------------- helpers

UNPICKLED = []


def _trap():
    """Runs only if something unpickles a Trap: the tests assert it never does."""
    UNPICKLED.append("unpickled")


class Trap:
    def __reduce__(self):
        return (_trap, ())


def data(m=90, n=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (np.argmax(X[:, :k], axis=1) + (X[:, -1] > 1)) % k
    return X, y


def host(model):
    """Parameters as host arrays: float64 models' as they are, float32 and bfloat16 models' as
    float32 (widened exactly on the device: NumPy has no bfloat16)."""
    xp = model.backend.xp
    wide = model.backend.dtype("float64" if model.dtype == "float64" else "float32")
    return [np.asarray(to_host(xp.astype(p, wide))) for W, b in model.params for p in (W, b)]


def save_checkpoint(model, path):
    model.save_checkpoint(path)


def assert_same_params(a, b):
    pa, pb = host(a), host(b)
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def entries(path):
    """The file's tensors (host arrays) plus its metadata: config and training decoded from
    JSON, the checksum dropped (``write`` recomputes it)."""
    arrays = safetensors.numpy.load_file(path)
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    for key, text in metadata.items():
        if key != io.CHECKSUM_KEY:
            arrays[key.split(".")[-1]] = json.loads(text)
    return arrays


def write(path, arrays):
    """Write ``entries``-style ``arrays`` as a safetensors file at exactly ``path``, with the
    metadata JSON-encoded and a correct checksum, so that only the intended change is wrong."""
    tensors, metadata = {}, {}
    for key, value in arrays.items():
        if isinstance(value, np.ndarray):
            tensors[key] = value
        else:
            metadata[f"polynn.{key}"] = value if isinstance(value, str) else json.dumps(value)
    metadata[io.CHECKSUM_KEY] = io.checksum(metadata, tensors)
    safetensors.numpy.save_file(tensors, path, metadata=metadata)
    return path


def digest(path) -> str:
    """The file's polynn.sha256: over its JSON texts and every tensor's name and bytes."""
    with safetensors.safe_open(path, framework="numpy") as f:
        return f.metadata()[io.CHECKSUM_KEY]


def assert_same_file(a, b):
    """Same content (safetensors orders its header's metadata freely, so not the bytes)."""
    assert digest(a) == digest(b)
    assert entries(a).keys() == entries(b).keys()


def overwrite(path, blob):
    """Replace the bytes at ``path`` in place (ext4 flushes a file truncated to zero on close,
    which makes thousands of ``write_bytes`` slow)."""
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.write(blob)
        f.truncate()


@pytest.fixture
def saved(tmp_path):
    model = polynn.MLP([3, 5, 2], dtype="float64", seed=3)
    path = tmp_path / "model.safetensors"
    model.save(path)
    return model, path


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("options", [
    dict(layer_sizes=[3, 5, 2]),
    dict(layer_sizes=[4, 6, 5, 3], activation="leaky_relu", negative_slope=0.2, dtype="float64",
         init="glorot", seed=11),
    dict(layer_sizes=[2, 4, 1], activation="tanh", output="sigmoid", seed=None),
    dict(layer_sizes=[3, 2], activation="sigmoid", output="identity", dtype="float64", seed=7),
    dict(layer_sizes=[3, 4, 3], output="sigmoid", seed=2),  # multilabel: 3 independent units
    dict(layer_sizes=[3, 4, 1], activation="tanh", output="poisson", dtype="float64"),
])
def test_round_trip_numpy(tmp_path, options):
    sizes = options.pop("layer_sizes")
    model = polynn.MLP(sizes, **options)
    X = np.random.default_rng(1).normal(size=(20, sizes[0]))
    path = tmp_path / "m.bin"
    model.save(path)
    loaded = polynn.load(str(path))
    assert isinstance(loaded, polynn.MLP)
    for attr in ("layer_sizes", "activation", "output", "init", "dtype", "negative_slope",
                 "seed"):
        assert getattr(loaded, attr) == getattr(model, attr), attr
    assert loaded.backend.name == "numpy"
    assert_same_params(loaded, model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))


def test_trained_model_round_trip_and_overwrite(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 8, 3], dtype="float64", seed=2)
    path = tmp_path / "model"
    model.save(path)
    model.fit(X, y, epochs=3, batch_size=16)
    model.save(path)  # overwrites the untrained file
    loaded = load(path)
    assert_same_params(loaded, model)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert "training" not in entries(path)  # save() keeps no training state
    assert read(path).training is None


def test_file_is_plain_safetensors_with_json_config(saved):
    model, path = saved
    arrays = entries(path)
    assert sorted(arrays) == ["config", "layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    config = arrays["config"]
    assert config["format"] == "polynn" and config["format_version"] == io.FORMAT_VERSION
    assert config["layer_sizes"] == [3, 5, 2] and config["dtype"] == "float64"
    assert config["polynn_version"] == polynn.__version__
    assert arrays["layers.0.W"].dtype == np.float64 and arrays["layers.0.W"].shape == (3, 5)
    W, b = model.host_params()[1]
    np.testing.assert_array_equal(arrays["layers.1.W"], W)
    np.testing.assert_array_equal(arrays["layers.1.b"], b)


def test_checkpoint_opens_with_safetensors_numpy_and_torch(tmp_path):
    """A polynn file is what users of safetensors expect: their own loaders open it, with the
    documented tensor names."""
    torch = pytest.importorskip("torch")
    import safetensors.torch

    X, y = data()
    model = polynn.MLP([4, 8, 3], dtype="float64", seed=2)
    model.fit(X, y, epochs=2, batch_size=32, optimizer="adam")
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(model, path)
    names = [f"{p}.{layer}.{w}" for p in ("layers", "optimizer.first", "optimizer.second")
             for layer in (0, 1) for w in "Wb"]
    with_numpy = safetensors.numpy.load_file(path)
    with_torch = safetensors.torch.load_file(path)
    assert sorted(with_numpy) == sorted(with_torch) == sorted(names)
    state = read(path, checkpoint=True).training.state
    expected = {"layers": model.host_params(), "optimizer.first": state.first,
                "optimizer.second": state.second}
    for prefix, tree in expected.items():
        for layer, pair in enumerate(tree):
            for w, value in zip("Wb", pair):
                key = f"{prefix}.{layer}.{w}"
                np.testing.assert_array_equal(with_numpy[key], np.asarray(value))
                assert with_torch[key].dtype == torch.float64
                np.testing.assert_array_equal(with_torch[key].numpy(), np.asarray(value))
    training = entries(path)["training"]
    assert training["step"] == state.count == 6  # 3 batches of 90 rows, 2 epochs
    assert training["optimizer"]["class"] == "Adam"


@pytest.mark.parametrize("name", ["weights", "weights.bin", "weights.npz", "w.polynn-tmp-x"])
def test_saved_name_is_exactly_the_path(tmp_path, name):
    polynn.MLP([2, 3, 2]).save(tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    assert load(tmp_path / name).layer_sizes == [2, 3, 2]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_file_has_the_usual_permissions(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    polynn.MLP([2, 3, 2]).save(tmp_path / "m")
    assert os.stat(tmp_path / "m").st_mode == os.stat(tmp_path / "plain").st_mode


def test_dtype_override(saved):
    model, path = saved
    loaded = load(path, dtype="float32")
    assert loaded.dtype == "float32"
    np.testing.assert_array_equal(host(loaded)[0], host(model)[0].astype(np.float32))


def _backend(name):
    if name != "numpy":
        pytest.importorskip(name)
    return name


@pytest.mark.parametrize("source,target", [("numpy", "jax"), ("jax", "numpy"),
                                           ("numpy", "torch"), ("torch", "numpy"),
                                           ("jax", "torch")])
def test_cross_backend(tmp_path, source, target):
    source, target = _backend(source), _backend(target)
    X, y = data()
    model = polynn.MLP([4, 8, 3], backend=source, seed=5)
    if source != "jax":  # (compiling a JAX training loop costs seconds)
        model.fit(X, y, epochs=2, batch_size=32, seed=0)
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m", backend=target)
    assert loaded.backend.name == target and loaded.dtype == "float32"
    assert_same_params(loaded, model)  # the bits travel unchanged
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("source", ["jax", "torch"])
def test_bfloat16_is_stored_as_float32(tmp_path, source):
    _backend(source)
    model = polynn.MLP([3, 5, 2], backend=source, dtype="bfloat16", seed=4)
    model.save(tmp_path / "m")
    arrays = entries(tmp_path / "m")
    assert arrays["config"]["dtype"] == "bfloat16" and arrays["layers.0.W"].dtype == np.float32
    same = load(tmp_path / "m", backend=source)
    assert same.dtype == "bfloat16" and "bfloat16" in str(same.params[0][0].dtype)
    assert_same_params(same, model)
    with pytest.raises(ValueError, match="dtype='float32'"):
        load(tmp_path / "m", backend="numpy")
    widened = load(tmp_path / "m", backend="numpy", dtype="float32")
    assert_same_params(widened, model)


# --------------------------------------------------------------------------- refusals


def test_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Trap()))
    with pytest.raises(ModelFileError, match="carries Python objects; polynn never loads"):
        load(path)
    assert UNPICKLED == []


def test_not_a_model_file(tmp_path):
    (tmp_path / "text").write_text("hello, world\n")
    with pytest.raises(ModelFileError, match="more than polynn reads"):
        load(tmp_path / "text")  # 8 bytes of text read as a header length: 7.8e17
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="NumPy .npy array"):
        load(tmp_path / "one.npy")
    np.savez(tmp_path / "old.npz", W0=np.zeros((2, 2)))
    with pytest.raises(ModelFileError, match=r"\.npz archive.*save it again with this one"):
        load(tmp_path / "old.npz")
    safetensors.numpy.save_file({"weight": np.zeros(3)}, tmp_path / "other.safetensors",
                                metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="a safetensors file, but not a polynn model"):
        load(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def test_every_truncation_is_a_clear_error(saved, tmp_path):
    _, path = saved
    blob = path.read_bytes()
    cut = tmp_path / "cut"
    for n in range(len(blob)):
        overwrite(cut, blob[:n])
        with pytest.raises(ModelFileError, match="truncated or corrupted") as err:
            load(cut)
        assert repr(str(cut)) in str(err.value)


def test_every_flipped_byte_is_caught(tmp_path):
    """Flip each byte of a checkpoint: the header's structure, its JSON and polynn.sha256 (over
    the JSON and every tensor) leave no byte whose corruption loads."""
    X, y = data()
    model = polynn.MLP([4, 3, 2], seed=1)
    model.fit(X, y % 2, epochs=1, batch_size=45, optimizer="momentum")
    path = tmp_path / "ckpt"
    save_checkpoint(model, path)
    blob = path.read_bytes()
    bad = tmp_path / "bad"
    for i in range(len(blob)):
        flipped = bytearray(blob)
        flipped[i] ^= 0xFF
        overwrite(bad, bytes(flipped))
        with pytest.raises(ModelFileError):
            load_checkpoint(bad)


def test_changed_weight_fails_the_checksum(saved, tmp_path):
    _, path = saved
    blob = bytearray(path.read_bytes())
    at = blob.index(entries(path)["layers.1.W"].tobytes()[:8])
    blob[at + 3] ^= 0x01  # one low mantissa bit: a finite, plausible, wrong weight
    (tmp_path / "bad").write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="truncated or corrupted.*sha256 does not match"):
        load(tmp_path / "bad")


def _set(key, value):
    def change(arrays):
        arrays[key] = value

    return change


def _set_json(section, key, value):
    """An edit of one JSON section of a saved file (``KeyError``: delete the key)."""

    def change(arrays):
        if value is KeyError:
            del arrays[section][key]
        else:
            arrays[section][key] = value

    return change


def _config(key, value):
    return _set_json("config", key, value)


def _drop(key):
    return lambda arrays: arrays.pop(key)


MISMATCHES = [
    (_set("layers.0.W", np.zeros((3, 4))),
     r"'layers.0.W' has shape \(3, 4\) but the configuration needs \(3, 5\)"),
    (_set("layers.1.b", np.zeros((5,))), r"'layers.1.b' has shape \(5,\)"),
    (_drop("layers.1.b"), r"lacks \['layers.1.b'\]"),
    (_set("layers.2.W", np.zeros((2, 2))), r"has unknown \['layers.2.W'\]"),
    (_set("W0", np.zeros(2)), r"has unknown \['W0'\]"),
    (_drop("config"), "no 'polynn.config': a safetensors file, but not a polynn model"),
    (_set("colour", "red"), r"unknown metadata \['polynn.colour'\]"),
    (_set("layers.0.W", np.zeros((3, 5), dtype=np.int64)),
     "'layers.0.W' has dtype 'I64' .a safetensors dtype.; polynn files hold F32 or F64"),
    (_set("layers.0.W", np.zeros((3, 5), dtype=np.float32)),
     "'layers.0.W' has dtype float32; the configuration .dtype 'float64'. needs float64"),
    (_set("layers.0.b", np.array([0.0, np.nan, 0, 0, 0])),
     "'layers.0.b' contains NaN or infinity"),
    (_set("config", '{"format": "polynn",'), "configuration is not valid JSON"),
    (_set("config", '{"format": "polynn", "format": "polynn"}'), "'format' appears twice"),
    (_set("config", "[1, 2]"), "configuration is not a JSON object"),
    (_config("format", "keras"), "not a polynn model file"),
    (_config("format_version", 2), "format version 2, written by a newer polynn"),
    (_config("format_version", 0), "invalid format version 0"),
    (_config("format_version", "1"), "invalid format version '1'"),
    (_config("activation", KeyError), r"config lacks \['activation'\]"),
    (_config("colour", "red"), r"config has unknown \['colour'\]"),
    (_config("activation", "swish"), r"config: unknown activation 'swish'; choose one of"),
    (_config("output", None), "unknown output None"),
    (_config("init", "zeros"), "unknown init 'zeros'"),
    (_config("dtype", "float16"), "unknown dtype 'float16'"),
    (_config("layer_sizes", [3, 6, 2]),
     r"'layers.0.W' has shape \(3, 5\) but the configuration needs \(3, 6\)"),
    (_config("layer_sizes", [3, 5, 2, 2]), r"lacks \['layers.2.W', 'layers.2.b'\]"),
    (_config("layer_sizes", [3, 0, 2]), r"layer_sizes\[1\] is 0"),
    (_config("layer_sizes", [3, True, 2]), r"layer_sizes\[1\] is True"),
    (_config("layer_sizes", "35"), "layer_sizes must be a sequence"),
    (_config("negative_slope", "x"), "negative_slope must be a positive finite number"),
    (_config("negative_slope", 0), "negative_slope must be a positive finite number, got 0"),
    (_config("negative_slope", 1e999), "not valid JSON .1e999 is not a finite number"),
    (_config("seed", 1.5), "seed must be None, a non-negative integer or a list of them, got 1.5"),
    (_config("seed", -1), "seed must be .*, got -1"),
    (_config("seed", []), "seed must be .*, got an empty list"),
    (_config("polynn_version", 1), "polynn_version=1 is not a string"),
    (_config("seed", 10 ** 200), "number longer than 100 digits"),
]


@pytest.mark.parametrize("change,message", MISMATCHES)
def test_mismatched_file_is_a_clear_error(saved, tmp_path, change, message):
    _, path = saved
    arrays = entries(path)
    change(arrays)
    if isinstance(arrays.get("config"), dict) and arrays["config"].get("negative_slope") == 1e999:
        arrays["config"] = json.dumps(arrays["config"]).replace("Infinity", "1e999")
    bad = write(tmp_path / "bad.safetensors", arrays)
    with pytest.raises(ModelFileError, match=message) as err:
        load(bad)
    assert repr(str(bad)) in str(err.value)


# --------------------------------------------------------------------------- save agrees with load


def _nan_weight(record):
    (W0, b0), (W, b) = record.params
    return dataclasses.replace(record, params=((W0, b0), (W, b * np.nan)))


def _inf_moment(record):
    state = record.training.state
    (W, b), *rest = state.first
    state = state._replace(first=((W, b + np.inf), *rest))
    return dataclasses.replace(record, training=dataclasses.replace(record.training,
                                                                    state=state))


def _nan_slope(record):
    return dataclasses.replace(record, config={**record.config, "negative_slope": np.nan})


def _nan_hyper_parameter(record):
    # Adam(beta1=nan) is refused when built (tests/test_hostile_state.py): forced past it.
    optimizer = copy.copy(record.training.optimizer)
    object.__setattr__(optimizer, "beta1", float("nan"))
    return dataclasses.replace(record, training=dataclasses.replace(record.training,
                                                                    optimizer=optimizer))


@pytest.mark.parametrize("spoil,message", [
    (_nan_weight, "'layers.1.b' contains NaN or infinity"),
    (_inf_moment, "'optimizer.first.0.b' contains NaN or infinity"),
    (_nan_slope, "negative_slope must be a positive finite number, got nan"),
    (_nan_hyper_parameter, "JSON cannot carry"),
])
def test_write_refuses_what_read_would_refuse(tmp_path, spoil, message):
    """write() and read() run the same checks: a record whose file read() would refuse is not
    written (ValueError, nothing written, the previous file intact)."""
    X, y = data()
    model = polynn.MLP([4, 5, 3], dtype="float64", seed=4)
    model.fit(X, y, epochs=1, batch_size=30, optimizer="adam")
    path, good = tmp_path / "m", tmp_path / "good"
    save_checkpoint(model, good)
    model.save(path)
    before = path.read_bytes()
    record = read(good, checkpoint=True)
    with pytest.raises(ValueError, match=message) as err:
        io.write(path, spoil(record))
    assert "polynn.load would refuse" in str(err.value) and repr(str(path)) in str(err.value)
    assert not isinstance(err.value, ModelFileError)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["good", "m"]
    # The same value written anyway (JSON spells a NaN "NaN"): read refuses the file.
    arrays = entries(good)
    if spoil is _nan_slope:
        arrays["config"]["negative_slope"] = float("nan")
    elif spoil is _nan_hyper_parameter:
        arrays["training"]["optimizer"]["fields"]["beta1"] = float("nan")
    else:
        key = message.split("'")[1]
        arrays[key] = np.full_like(arrays[key], np.nan)
    with pytest.raises(ModelFileError, match="NaN"):
        read(write(tmp_path / "forced", arrays), checkpoint=True)


def test_model_save_refuses_nan_weights(saved):
    model, path = saved
    before = path.read_bytes()
    W, b = model.params[1]
    model.params = (model.params[0], (W, b * float("nan")))
    with pytest.raises(ValueError, match="'layers.1.b' contains NaN.*polynn.load would refuse"):
        model.save(path)
    assert path.read_bytes() == before


def _unsaveable_records(record):
    optimizer, state = record.training.optimizer, record.training.state
    training = record.training
    yield record.params, "expected a polynn.io.ModelRecord, got tuple"
    yield dataclasses.replace(record, config={**record.config, "colour": 1}), \
        r"model configuration has unknown \['colour'\]"
    yield dataclasses.replace(record, params=record.params[:1]), r"lacks \['layers.1.W'"
    yield dataclasses.replace(record, params=tuple((W.astype(np.float32), b)
                                                   for W, b in record.params)), \
        "'layers.0.W' has dtype float32; the configuration .dtype 'float64'. needs float64"
    yield dataclasses.replace(record, training=dataclasses.replace(
        training, optimizer=dataclasses.replace(optimizer, learning_rate=lambda t: 0.1))), \
        "learning-rate schedule .* cannot be saved"
    yield dataclasses.replace(record, training=dataclasses.replace(
        training, state=state[:2])), r"optimizer state is not \(count, first, second\)"
    yield dataclasses.replace(record, training=dataclasses.replace(
        training, state=state._replace(count=2.5))), "step count is 2.5, not an integer"
    yield dataclasses.replace(record, training=dataclasses.replace(training, state=None)), \
        "an optimizer but no optimizer state"
    yield dataclasses.replace(record, training=dataclasses.replace(
        training, shuffle={"bit_generator": "os.system"})), "shuffling generator"


def test_write_refuses_records_no_file_holds(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 5, 3], dtype="float64", seed=4)
    model.fit(X, y, epochs=1, batch_size=30, optimizer="adam")
    save_checkpoint(model, tmp_path / "good")
    record = read(tmp_path / "good", checkpoint=True)
    for bad, message in _unsaveable_records(record):
        with pytest.raises(ValueError, match=message):
            io.write(tmp_path / "bad", bad)
    assert os.listdir(tmp_path) == ["good"]


# --------------------------------------------------------------------------- file limits


def _peak_rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def _refusal_memory(call):
    """Run ``call``, which must raise ModelFileError; return (its message, the peak of Python
    allocations during it in bytes (tracemalloc, which NumPy reports to), and the growth of
    the process's peak resident memory in bytes where Linux lets it be reset, else None)."""
    import gc
    import tracemalloc

    gc.collect()
    rss_before = None
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size (VmHWM) to the current one
        rss_before = _peak_rss_kib()
    except OSError:
        pass
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as err:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss = None if rss_before is None else (_peak_rss_kib() - rss_before) * 1024
    return str(err.value), peak, rss


def _raw_file(path, header: bytes, data: bytes = b"", declared=None):
    """A file of safetensors layout: length (``declared`` or the true one), header, data."""
    length = len(header) if declared is None else declared
    path.write_bytes(length.to_bytes(8, "little") + header + data)
    return path


MiB = 1 << 20


def test_header_declaring_more_data_than_the_file_holds(saved, tmp_path):
    """A header that describes 1.6 GB of weights in a file of a few hundred bytes is refused
    from the header alone, without allocating the weights."""
    _, path = saved
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    config = json.loads(metadata["polynn.config"])
    config["layer_sizes"] = [20_000, 10_000, 2]
    metadata["polynn.config"] = json.dumps(config)
    sizes = {"layers.0.W": [20_000, 10_000], "layers.0.b": [10_000], "layers.1.W": [10_000, 2],
             "layers.1.b": [2]}
    header, offset = {"__metadata__": metadata}, 0
    for key, shape in sizes.items():
        nbytes = 8 * int(np.prod(shape))
        header[key] = {"dtype": "F64", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    assert offset > 1.5e9
    bad = _raw_file(tmp_path / "liar", json.dumps(header).encode(), b"\0" * 64)
    message, peak, rss = _refusal_memory(lambda: load(bad))
    assert "truncated or corrupted" in message and "bytes of tensor data but the file holds 64" \
        in message
    assert peak < 2 * MiB, peak
    assert rss is None or rss < 16 * MiB, rss


@pytest.mark.parametrize("declared", [io.MAX_HEADER_BYTES + 1, 64 * MiB, 1 << 62])
def test_huge_header_is_refused_before_it_is_read(tmp_path, declared):
    """A header longer than polynn's limit is refused from its 8-byte length, before a byte of
    it is read, even when the file really holds it (a sparse file here)."""
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.write(declared.to_bytes(8, "little") + b'{"a":')
        f.truncate(min(declared, 64 * MiB) + 8)
    message, peak, rss = _refusal_memory(lambda: load(path))
    assert f"header declares {declared} bytes, more than polynn reads" in message
    assert peak < 1 * MiB, peak
    assert rss is None or rss < 16 * MiB, rss


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["config", "training", "header"])
@pytest.mark.parametrize("depth", [40, 100_000, 2_000_000])
def test_deeply_nested_json_is_refused_with_bounded_memory(saved, tmp_path, where, depth):
    """JSON nested 40, 100,000 or 2,000,000 deep (4 MB) in the configuration, the training
    state or the safetensors header itself: ModelFileError, never RecursionError, and memory
    proportional to the text (Python's json would recurse once per level)."""
    _, path = saved
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    tensors = safetensors.numpy.load_file(path)
    if where == "header":
        header = json.dumps({"__metadata__": metadata, "x": "PLACE"}).encode()
        header = header.replace(b'"PLACE"', _nested(depth).encode())
        bad = _raw_file(tmp_path / "nested", header)
        call = load
    else:
        key = f"polynn.{where}"
        metadata[key] = '{"a": ' + _nested(depth) + "}"
        bad = tmp_path / "nested"
        safetensors.numpy.save_file(tensors, bad, metadata=metadata)
        call = load_checkpoint if where == "training" else load
    message, peak, rss = _refusal_memory(lambda: call(bad))
    text_bytes = 2 * depth
    if depth > io.MAX_JSON_CONTAINERS:
        assert "more than 262144 JSON arrays and objects" in message
    else:
        assert f"nested {depth + 1} deep (polynn reads at most" in message
    assert peak < 6 * text_bytes + 2 * MiB, (peak, text_bytes)
    assert rss is None or rss < 8 * text_bytes + 16 * MiB, (rss, text_bytes)


def test_many_values_and_long_strings_stay_within_limits(saved, tmp_path):
    _, path = saved
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    tensors = safetensors.numpy.load_file(path)
    metadata["polynn.config"] = "[" + "0," * (io.MAX_JSON_VALUES + 1) + "0]"
    safetensors.numpy.save_file(tensors, tmp_path / "values", metadata=metadata)
    message, peak, _ = _refusal_memory(lambda: load(tmp_path / "values"))
    assert "more than 2097152 JSON values" in message
    assert peak < 5 * 4 * MiB + 2 * MiB, peak  # the text is 4 MB
    metadata["polynn.config"] = "\"" + "\\\\" * MiB  # an unterminated string of escapes
    safetensors.numpy.save_file(tensors, tmp_path / "string", metadata=metadata)
    message, peak, _ = _refusal_memory(lambda: load(tmp_path / "string"))
    assert "configuration is not valid JSON" in message


def test_layer_count_is_checked_against_the_tensors_first(saved, tmp_path):
    """A small configuration that declares a million layers costs nothing per layer."""
    _, path = saved
    arrays = entries(path)
    arrays["config"]["layer_sizes"] = [1] * 1_000_000
    bad = write(tmp_path / "layers", arrays)
    message, peak, _ = _refusal_memory(lambda: load(bad))
    assert "has 999999 layers but the file holds 4 tensors" in message
    assert peak < 24 * MiB, peak  # the parsed list itself: 2 MB of text, 8 MB of pointers


def test_read_does_not_trust_the_header_layout(saved, tmp_path):
    """Overlapping, gapped or oversized byte ranges are refused before any tensor is read."""
    _, path = saved
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    cases = []
    for change, message in [
        (lambda h: h["layers.0.b"].update(data_offsets=[0, 40]), "not contiguous"),
        (lambda h: h["layers.0.b"].update(shape=[6]), r"needs 48 bytes but its data_offsets"),
        (lambda h: h["layers.0.b"].update(dtype="F16"),
         "dtype 'F16' .a safetensors dtype."),
        (lambda h: h["layers.0.b"].update(shape=[-5]), r"has shape \[-5\]"),
        (lambda h: h["layers.0.b"].update(extra=1), "not described by dtype, shape"),
        (lambda h: h.update(__metadata__={"polynn.config": 5}), "not an object of strings"),
    ]:
        changed = json.loads(json.dumps(header))
        change(changed)
        cases.append((json.dumps(changed).encode(), message))
    for i, (text, message) in enumerate(cases):
        bad = _raw_file(tmp_path / f"bad{i}", text, data)
        with pytest.raises(ModelFileError, match=message):
            load(bad)


# --------------------------------------------------------------------------- atomic save


def _fail_fsync(fd):
    raise OSError(errno.EIO, "disk on fire")


def _fail_replace(src, dst):
    raise OSError("rename failed")


def _interrupt(fd):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where,patch,expected", [
    ("fsync", _fail_fsync, OSError),
    ("replace", _fail_replace, OSError),
    ("fsync", _interrupt, KeyboardInterrupt),
])
def test_crash_mid_save_keeps_the_previous_file(saved, monkeypatch, where, patch, expected):
    model, path = saved
    before = path.read_bytes()
    listing = sorted(os.listdir(path.parent))
    monkeypatch.setattr(os, where, patch)
    other = polynn.MLP([3, 5, 2], dtype="float64", seed=99)
    with pytest.raises(expected):
        other.save(path)
    with pytest.raises(expected):
        save_checkpoint(other, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == listing  # no temporary file left behind
    assert_same_params(load(path), model)


def test_crash_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", _fail_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        polynn.MLP([2, 3, 2]).save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


KILLED_SAVE = """
import os, signal, sys
import polynn
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
polynn.MLP([2, 3, 2], seed=5).save(sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_temporary_of_a_killed_save_is_removed_by_the_next_save(saved, tmp_path):
    """A save killed between writing and renaming leaves its temporary; the next save of the
    same target removes it (and leaves other targets' temporaries and live ones alone)."""
    model, path = saved
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], capture_output=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [os.path.dirname(os.path.dirname(polynn.__file__)),
                               os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = [n for n in os.listdir(tmp_path) if n.startswith(f".{path.name}.polynn-tmp-")]
    assert len(left) == 1 and path.read_bytes() == before
    assert left[0].startswith(os.path.basename(container.temporary_name(path, 1, "x"))[:-3])
    alive = tmp_path / container.temporary_name(path, os.getpid(), "0000")
    other = tmp_path / container.temporary_name(tmp_path / "other", 999999999, "0000")
    alive.write_bytes(b"in progress")
    other.write_bytes(b"someone else's")
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, alive.name, other.name])
    assert_same_params(load(path), model)


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_saving_through_a_symlink_replaces_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.safetensors"
    polynn.MLP([2, 3, 2], seed=1).save(target)
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    new = polynn.MLP([2, 4, 2], seed=2)
    new.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load(target).layer_sizes == [2, 4, 2]
    assert sorted(os.listdir(tmp_path / "real")) == ["model.safetensors"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "real" / "new.safetensors")
    new.save(dangling)  # as open(..., "wb") would: the file is created where the link points
    assert dangling.is_symlink() and load(tmp_path / "real" / "new.safetensors").layer_sizes \
        == [2, 4, 2]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="POSIX permissions (root may write anything)")
def test_read_only_file_is_refused_not_replaced(saved, tmp_path):
    model, path = saved
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        with pytest.raises(PermissionError) as err:
            polynn.MLP([3, 5, 2], seed=8).save(path)
        with pytest.raises(PermissionError):
            np.save(path, np.zeros(2))  # the behaviour polynn matches
    finally:
        path.chmod(0o644)
    assert err.value.filename == str(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]


def test_file_that_cannot_be_opened_for_writing_is_refused(saved, monkeypatch):
    """The same refusal where permissions cannot be tested (as root): polynn asks the OS whether
    the target opens for writing, exactly the test ``open(path, "wb")`` faces."""
    model, path = saved
    before = path.read_bytes()
    real_open = os.open

    def read_only(name, flags, *args):
        if os.fspath(name) == str(path) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(PermissionError, match="Permission denied") as err:
        polynn.MLP([3, 5, 2], seed=8).save(path)
    monkeypatch.undo()
    assert err.value.filename == str(path)
    assert path.read_bytes() == before and os.listdir(path.parent) == [path.name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_replacing_a_file_keeps_its_mode(saved):
    _, path = saved
    path.chmod(0o600)
    polynn.MLP([3, 5, 2], seed=8).save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_saving_onto_a_directory_or_into_a_missing_one(tmp_path):
    with pytest.raises(IsADirectoryError):
        polynn.MLP([2, 3, 2]).save(tmp_path)
    with pytest.raises(FileNotFoundError, match="directory does not exist"):
        polynn.MLP([2, 3, 2]).save(tmp_path / "no" / "m")


# --------------------------------------------------------------------------- checkpoints

RESUME = [
    ("adam", {}),
    ("momentum", {"momentum": 0.8}),
    ("nesterov", {}),
    ("sgd", {"schedule": StepDecay(0.2, gamma=0.5, every=7)}),
    ("momentum", {"schedule": StepDecay(0.05, gamma=0.7, every=4)}),
]


def _resumed(make, fit, tmp_path, X, y, epochs=(5, 5), seed=42, **load_options):
    """``(uninterrupted, resumed)``: one model fitted ``sum(epochs)`` epochs; another fitted
    ``epochs[0]``, checkpointed, loaded and fitted ``epochs[1]`` more without a seed (so the
    saved shuffling stream continues)."""
    a = make()
    a.fit(X, y, epochs=sum(epochs), seed=seed, **fit)
    b = make()
    b.fit(X, y, epochs=epochs[0], seed=seed, **fit)
    b.save_checkpoint(tmp_path / "ckpt")
    c = load_checkpoint(tmp_path / "ckpt", **load_options)
    c.fit(X, y, epochs=epochs[1], **fit)
    return a, c


@pytest.mark.parametrize("batch_size", [32, None])
@pytest.mark.parametrize("optimizer,options", RESUME)
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, optimizer, options, batch_size):
    X, y = data()
    fit = dict(batch_size=batch_size, optimizer=optimizer, l2=1e-3, **options)
    a, c = _resumed(lambda: polynn.MLP([4, 8, 3], dtype="float64", seed=1), fit, tmp_path, X, y)
    # Bit-identical on NumPy float64: weights, optimizer, its state and count, shuffling stream.
    a.save_checkpoint(tmp_path / "a")
    c.save_checkpoint(tmp_path / "c")
    assert_same_file(tmp_path / "a", tmp_path / "c")


# Every optimizer and every schedule polynn ships (symptom 1: VelocityMomentum, which every
# polynn.sklearn model with solver="sgd" trains with, could not be checkpointed).
SCHEDULES = {"Constant": Constant(0.05), "InverseScaling": InverseScaling(0.2, power=0.7),
             "StepDecay": StepDecay(0.1, gamma=0.6, every=5),
             "ExponentialDecay": ExponentialDecay(0.1, gamma=0.5, every=9),
             "EpochInverseScaling": EpochInverseScaling(0.1, power=0.5, n_samples=120,
                                                        steps_per_epoch=4, t0=240)}


def test_every_shipped_class_is_covered():
    assert SCHEDULES.keys() == SCHEDULE_CLASSES.keys()
    assert all(type(s) is SCHEDULE_CLASSES[name] for name, s in SCHEDULES.items())
    assert "VelocityMomentum" in OPTIMIZER_CLASSES


@pytest.mark.parametrize("batch_size", [16, None])
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_CLASSES))
def test_every_optimizer_and_schedule_resumes_bit_for_bit(tmp_path, optimizer, schedule,
                                                          batch_size):
    X, y = data()
    opt = OPTIMIZER_CLASSES[optimizer](SCHEDULES[schedule])
    fit = dict(batch_size=batch_size, optimizer=opt, l2=1e-3)
    a, c = _resumed(lambda: polynn.MLP([4, 6, 3], dtype="float64", seed=2), fit, tmp_path, X,
                    y, epochs=(3, 4))
    a.save_checkpoint(tmp_path / "a")
    c.save_checkpoint(tmp_path / "c")
    assert_same_file(tmp_path / "a", tmp_path / "c")
    training = entries(tmp_path / "c")["training"]
    assert training["optimizer"]["class"] == optimizer
    assert training["optimizer"]["fields"]["learning_rate"]["class"] == schedule
    assert read(tmp_path / "c", checkpoint=True).training.optimizer == opt


def test_velocity_momentum_state_is_named_velocity(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 6, 3], dtype="float64", seed=2)
    model.fit(X, y, epochs=2, batch_size=30, optimizer=VelocityMomentum(Constant(0.05)))
    model.save_checkpoint(tmp_path / "c")
    names = sorted(safetensors.numpy.load_file(tmp_path / "c"))
    assert names == sorted(f"{p}.{layer}.{w}" for p in ("layers", "optimizer.velocity")
                           for layer in (0, 1) for w in "Wb")
    state = read(tmp_path / "c", checkpoint=True).training.state
    assert type(state) is VelocityMomentum.State and state.count == 6


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_CLASSES))
def test_checkpoint_resume_on_every_backend(backend, tmp_path, optimizer):
    """On every backend: load_checkpoint + fit continues as the uninterrupted fit, within the
    tolerance of float32 (compiled JAX loops may fuse differently), and the checkpoint loads
    on another backend with the same bits."""
    X, y = data()
    opt = OPTIMIZER_CLASSES[optimizer](InverseScaling(0.05))
    fit = dict(batch_size=32, optimizer=opt)
    a, c = _resumed(lambda: polynn.MLP([4, 8, 3], backend=backend, seed=1), fit, tmp_path, X,
                    y, epochs=(2, 2), seed=3, backend=backend)
    for x, z in zip(host(c), host(a)):
        np.testing.assert_allclose(z, x, rtol=2e-4, atol=2e-5)
    c.save_checkpoint(tmp_path / "c")
    a.save_checkpoint(tmp_path / "a")
    ra, rc = read(tmp_path / "a", checkpoint=True), read(tmp_path / "c", checkpoint=True)
    assert rc.training.state.count == ra.training.state.count == 12  # 4 epochs of 3 batches
    assert rc.training.shuffle == ra.training.shuffle
    on_numpy = load_checkpoint(tmp_path / "c", backend="numpy")
    on_numpy.save_checkpoint(tmp_path / "n")
    assert_same_file(tmp_path / "n", tmp_path / "c")


def test_count_is_written_as_an_int(tmp_path):
    """A compiled JAX loop leaves the state's count as a 0-d integer array: a record may hold
    any integer scalar, and the file holds an int."""
    params = polynn.MLP([4, 8, 3], seed=1).host_params()
    moments = tuple((abs(W) + 1, abs(b) + 2) for W, b in params)  # (second moments are >= 0)
    counts = [9, np.int32(9), np.asarray(9, np.int64)]
    try:
        import jax.numpy as jnp

        counts.append(jnp.asarray(9, dtype=jnp.int32))
    except ImportError:
        pass
    shuffle = np.random.default_rng(5).bit_generator.state
    optimizer = Adam(Constant(0.003), beta2=0.99)
    config = dict(layer_sizes=[4, 8, 3], activation="relu", output="softmax",
                  negative_slope=0.01, init="he", dtype="float32", seed=1)
    for count in counts:
        state = optimizer.State(count, moments, moments)
        io.write(tmp_path / "ckpt", ModelRecord(config, params,
                                                TrainingRecord(optimizer, state, shuffle)))
        assert entries(tmp_path / "ckpt")["training"]["step"] == 9
        back = read(tmp_path / "ckpt", checkpoint=True).training
        assert back.state.count == 9 and type(back.state.count) is int
        assert back.optimizer == optimizer and back.shuffle == shuffle
        for saved, restored in zip(moments, back.state.second):
            for x, z in zip(saved, restored):
                np.testing.assert_array_equal(z, x)


def test_checkpoint_before_training_and_load_of_a_checkpoint(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 8, 3], dtype="float64", seed=6)
    save_checkpoint(model, tmp_path / "ckpt")
    resumed = load_checkpoint(tmp_path / "ckpt")
    training = read(tmp_path / "ckpt", checkpoint=True).training
    assert training.optimizer is None and training.state is None
    model.fit(X, y, epochs=2, batch_size=32)
    resumed.fit(X, y, epochs=2, batch_size=32)
    assert_same_params(resumed, model)
    plain = read(tmp_path / "ckpt")  # read() without checkpoint=True: the model alone
    assert plain.training is None and plain.config["seed"] == 6
    assert_same_params(load(tmp_path / "ckpt"), load_checkpoint(tmp_path / "ckpt"))


def test_load_checkpoint_of_a_plain_file(saved):
    _, path = saved
    with pytest.raises(ModelFileError, match="without training state.*polynn.load"):
        load_checkpoint(path)


def test_checkpoint_with_foreign_schedule_is_refused(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 8, 3], seed=6)
    model.fit(X, y, epochs=1, schedule=lambda t: 0.1)
    with pytest.raises(ValueError, match="cannot save to .*: the learning-rate schedule .* "
                                         "cannot be saved"):
        save_checkpoint(model, tmp_path / "ckpt")
    assert os.listdir(tmp_path) == []
    model.save(tmp_path / "model")  # the weights alone save fine


def _training(key, value):
    return _set_json("training", key, value)


def _optimizer_field(path, value):
    def change(arrays):
        spec = arrays["training"]["optimizer"]
        for key in path[:-1]:
            spec = spec[key]
        spec[path[-1]] = value

    return change


BAD_CHECKPOINTS = [
    (_set("optimizer.first.0.W", np.zeros((4, 7), np.float32)),
     r"'optimizer.first.0.W' has shape \(4, 7\) but the configuration needs \(4, 8\)"),
    (_drop("optimizer.second.1.b"), r"lacks \['optimizer.second.1.b'\]"),
    (_set("optimizer.third.0.W", np.zeros((4, 8), np.float32)),
     r"has unknown \['optimizer.third.0.W'\]"),
    (_set("optimizer.first.1.W", np.zeros((8, 3))),
     "'optimizer.first.1.W' has dtype float64; the configuration"),
    (_set("optimizer.first.0.b", np.full(8, np.inf, np.float32)),
     "'optimizer.first.0.b' contains NaN or infinity"),
    (_training("step", -1), "step count is -1"),
    (_training("step", 2.5), "step count is 2.5"),
    (_training("step", None), "optimizer without its step count"),
    (_training("shuffle_rng", KeyError), r"training state lacks \['shuffle_rng'\]"),
    (_training("shuffle_rng", {"bit_generator": "os.system"}), "shuffling generator"),
    (_training("shuffle_rng", {"bit_generator": "PCG64", "state": 5}), "shuffling generator"),
    (_optimizer_field(["class"], "Evil"), "unknown optimizer 'Evil'"),
    (_optimizer_field(["class"], "Momentum"), "has fields"),
    (_optimizer_field(["fields", "beta3"], 0.5), "has fields"),
    (_optimizer_field(["fields", "beta1"], "0.9"), "beta1='0.9', not a finite number"),
    (_optimizer_field(["fields", "learning_rate", "class"], "Cyclic"),
     "unknown learning-rate schedule 'Cyclic'"),
    (_optimizer_field(["fields", "learning_rate", "fields", "lr"], [0.1]),
     "lr=.0.1., not a finite number"),
    (_drop("training"), "without training state.*polynn.load"),
]


@pytest.mark.parametrize("change,message", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_a_clear_error(tmp_path, change, message):
    X, y = data()
    model = polynn.MLP([4, 8, 3], seed=6)
    model.fit(X, y, epochs=1, batch_size=32, optimizer="adam")
    save_checkpoint(model, tmp_path / "ckpt")
    arrays = entries(tmp_path / "ckpt")
    change(arrays)
    bad = write(tmp_path / "bad", arrays)
    with pytest.raises(ModelFileError, match=message):
        load_checkpoint(bad)


# --------------------------------------------------------------------------- the format, pinned


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _format_v1_file(path, tensors: dict, config: dict, training=None):
    """A polynn file of format version 1 built byte by byte as the format defines it (not by
    polynn): 8-byte little-endian header length, the safetensors header JSON, the data; the
    checksum over the length-prefixed JSON texts, then each tensor's name, a zero byte and its
    little-endian bytes, in name order."""
    texts = {"polynn.config": _canonical(config)}
    if training is not None:
        texts["polynn.training"] = _canonical(training)
    digest = hashlib.sha256()
    for key in ("polynn.config", "polynn.training"):
        text = texts.get(key, "").encode()
        digest.update(len(text).to_bytes(8, "little") + text)
    for name in sorted(tensors):
        digest.update(name.encode() + b"\0" + tensors[name].astype(
            tensors[name].dtype.newbyteorder("<")).tobytes())
    header, data = {"__metadata__": {**texts, "polynn.sha256": digest.hexdigest()}}, b""
    for name, array in tensors.items():
        code = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}[array.dtype]
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + array.nbytes]}
        data += array.tobytes()
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


V1_CONFIG = {"format": "polynn", "format_version": 1, "polynn_version": polynn.__version__,
             "layer_sizes": [2, 3, 2], "activation": "tanh", "output": "softmax",
             "negative_slope": 0.01, "init": "he", "dtype": "float32", "seed": 7}


def _v1_tensors(prefixes, dtype=np.float32):
    rng = np.random.default_rng(0)
    return {f"{p}.{layer}.{w}": rng.normal(size=shape).astype(dtype)
            for p in prefixes for layer, shapes in enumerate([((2, 3), (3,)), ((3, 2), (2,))])
            for w, shape in zip("Wb", shapes)}


def test_files_of_format_version_1_load(tmp_path):
    """A model file and a checkpoint as the current version writes them (tensor names,
    metadata keys, JSON layout, checksum) load, and polynn writes them back unchanged."""
    tensors = _v1_tensors(["layers"])
    path = _format_v1_file(tmp_path / "model", tensors, V1_CONFIG)
    record = read(path)
    assert record.config == {k: V1_CONFIG[k] for k in MODEL_CONFIG_KEYS}
    assert record.training is None
    for layer, (W, b) in enumerate(record.params):
        np.testing.assert_array_equal(W, tensors[f"layers.{layer}.W"])
        np.testing.assert_array_equal(b, tensors[f"layers.{layer}.b"])
    model = load(path)
    assert model.activation == "tanh" and model.seed == 7
    np.testing.assert_array_equal(model.host_params()[1][0], tensors["layers.1.W"])
    model.save(tmp_path / "again")
    assert digest(tmp_path / "again") == digest(path)

    rng_state = np.random.default_rng(11).bit_generator.state
    training = {"optimizer": {"class": "Adam", "fields": {
        "learning_rate": {"class": "StepDecay", "fields": {"lr": 0.01, "gamma": 0.5,
                                                           "every": 10}},
        "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}}, "step": 4, "shuffle_rng": rng_state}
    tensors = _v1_tensors(["layers", "optimizer.first", "optimizer.second"])
    tensors = {k: np.abs(v) if k.startswith("optimizer.second") else v
               for k, v in tensors.items()}
    path = _format_v1_file(tmp_path / "ckpt", tensors, V1_CONFIG, training)
    back = read(path, checkpoint=True).training
    assert back.optimizer == Adam(StepDecay(0.01, 0.5, 10), 0.9, 0.999, 1e-8)
    assert back.state.count == 4 and back.shuffle == rng_state
    np.testing.assert_array_equal(back.state.second[0][1], tensors["optimizer.second.0.b"])
    load_checkpoint(path).save_checkpoint(tmp_path / "again")
    assert digest(tmp_path / "again") == digest(path)
    io.write(tmp_path / "record", read(path, checkpoint=True))
    assert digest(tmp_path / "record") == digest(path)


def test_velocity_momentum_checkpoint_of_format_version_1_loads(tmp_path):
    training = {"optimizer": {"class": "VelocityMomentum", "fields": {
        "learning_rate": {"class": "InverseScaling", "fields": {"lr": 0.1, "power": 0.5}},
        "momentum": 0.9, "nesterov": True}}, "step": 3,
        "shuffle_rng": np.random.default_rng(1).bit_generator.state}
    config = {**V1_CONFIG, "dtype": "float64"}
    path = _format_v1_file(tmp_path / "ckpt",
                           _v1_tensors(["layers", "optimizer.velocity"], np.float64), config,
                           training)
    back = read(path, checkpoint=True).training
    assert back.optimizer == VelocityMomentum(InverseScaling(0.1, 0.5), 0.9, True)
    assert back.state._fields == ("count", "velocity") and back.state.count == 3


# --------------------------------------------------------------------------- one owner of the rules

BAD_CONFIGS = [
    {"layer_sizes": [3]}, {"layer_sizes": [3, -1]}, {"layer_sizes": [3.0, 2]},
    {"activation": "swish"}, {"activation": 1}, {"output": "softplus"}, {"init": "ones"},
    {"dtype": "float16"}, {"negative_slope": 0.0}, {"negative_slope": float("inf")},
    {"negative_slope": True}, {"seed": -1}, {"seed": 1.5}, {"seed": [1, -2]}, {"seed": "3"},
]
GOOD_CONFIG = dict(layer_sizes=[3, 4, 2], activation="leaky_relu", output="sigmoid",
                   negative_slope=0.2, init="glorot", dtype="float64", seed=[1, 2])


@pytest.mark.parametrize("change", BAD_CONFIGS, ids=lambda c: repr(c))
def test_a_file_refuses_what_the_constructor_refuses(change):
    """check_model_config (what files are checked with) and MLP(...) agree: same exception
    type, the field named."""
    config = {**GOOD_CONFIG, **change}
    with pytest.raises((TypeError, ValueError)) as by_file:
        check_model_config(config)
    sizes = config.pop("layer_sizes")
    with pytest.raises((TypeError, ValueError)) as by_constructor:
        polynn.MLP(sizes, **config)
    assert type(by_file.value) is type(by_constructor.value)
    assert next(iter(change)) in str(by_file.value)


def test_check_model_config_normalises_and_needs_every_key():
    config = check_model_config({**GOOD_CONFIG, "layer_sizes": (3, np.int64(4), 2),
                                 "negative_slope": 1, "seed": (np.uint8(1), 2)})
    assert config == {**GOOD_CONFIG, "negative_slope": 1.0}
    assert type(config["layer_sizes"][1]) is int and type(config["negative_slope"]) is float
    with pytest.raises(ValueError, match=r"lacks \['seed'\]; has unknown \['colour'\]"):
        check_model_config({**{k: v for k, v in GOOD_CONFIG.items() if k != "seed"},
                            "colour": "red"})
    with pytest.raises(TypeError, match="must be a dict"):
        check_model_config(list(GOOD_CONFIG.items()))


# --------------------------------------------------------------------------- every backend


def test_round_trip_on_every_backend(backend, tmp_path):
    """A model saved on any backend is the same record; loaded back on its backend it predicts
    the same."""
    X, _ = data()
    model = polynn.MLP([4, 8, 3], backend=backend, seed=5)
    model.save(tmp_path / "m")
    record = read(tmp_path / "m")
    assert record.config["dtype"] == "float32" and record.params[0][0].dtype == np.float32
    reference = polynn.MLP([4, 8, 3], seed=5).host_params()
    for (W, b), (W0, b0) in zip(record.params, reference):
        np.testing.assert_array_equal(W, W0)  # initial weights: the same bits everywhere
        np.testing.assert_array_equal(b, b0)
    loaded = load(tmp_path / "m", backend=backend)
    assert_same_params(loaded, model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
