"""Tests for polynn.io: save/load round trips on every backend, refusal of pickles, truncated,
corrupted and mismatched files, atomic saves, and optimizer checkpoints that resume exactly."""

import json
import os
import pickle

import numpy as np
import pytest

import polynn
from polynn import io
from polynn.io import ModelFileError, load, load_checkpoint, save_checkpoint
from polynn.nn.optim import StepDecay

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
    """Parameters as float64 host arrays (bfloat16 widened exactly)."""
    return [np.asarray(io._host(p, model.backend, "float64")) for W, b in model.params
            for p in (W, b)]


def assert_same_params(a, b):
    pa, pb = host(a), host(b)
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def entries(path):
    """The file's entries as a dict of host arrays, config and training decoded from JSON."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key in ("config", "training"):
        if key in arrays:
            arrays[key] = json.loads(arrays[key].tobytes().decode())
    return arrays


def write(path, arrays):
    """Write ``arrays`` (config/training as dicts) as an .npz at exactly ``path``."""
    out = dict(arrays)
    for key in ("config", "training"):
        if isinstance(out.get(key), dict):
            out[key] = np.frombuffer(json.dumps(out[key]).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **out)
    return path


def overwrite(path, blob):
    """Replace the bytes at ``path`` in place (ext4 flushes a file truncated to zero on close,
    which makes thousands of ``write_bytes`` slow)."""
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.write(blob)
        f.truncate()


@pytest.fixture
def saved(tmp_path):
    model = polynn.MLP([3, 5, 2], dtype="float64", seed=3)
    path = tmp_path / "model.polynn"
    model.save(path)
    return model, path


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("options", [
    dict(layer_sizes=[3, 5, 2]),
    dict(layer_sizes=[4, 6, 5, 3], activation="leaky_relu", negative_slope=0.2, dtype="float64",
         init="glorot", seed=11),
    dict(layer_sizes=[2, 4, 1], activation="tanh", output="sigmoid", seed=None),
    dict(layer_sizes=[3, 2], activation="sigmoid", output="identity", dtype="float64", seed=7),
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
    assert loaded._optimizer is None and loaded._opt_state is None  # save() keeps no training


def test_file_is_a_plain_npz_with_json_config(saved):
    model, path = saved
    arrays = entries(path)
    assert sorted(arrays) == ["W0", "W1", "b0", "b1", "config"]
    config = arrays["config"]
    assert config["format"] == "polynn" and config["format_version"] == io.FORMAT_VERSION
    assert config["layer_sizes"] == [3, 5, 2] and config["dtype"] == "float64"
    assert config["polynn_version"] == polynn.__version__
    assert arrays["W0"].dtype == np.float64 and arrays["W0"].shape == (3, 5)


@pytest.mark.parametrize("name", ["weights", "weights.bin", "weights.npz", "w.polynn.tmp"])
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
    assert arrays["config"]["dtype"] == "bfloat16" and arrays["W0"].dtype == np.float32
    same = load(tmp_path / "m", backend=source)
    assert same.dtype == "bfloat16" and "bfloat16" in str(same.params[0][0].dtype)
    assert_same_params(same, model)
    with pytest.raises(ValueError, match="dtype='float32'"):
        load(tmp_path / "m", backend="numpy")
    widened = load(tmp_path / "m", backend="numpy", dtype="float32")
    assert_same_params(widened, model)


# --------------------------------------------------------------------------- refusals


def test_object_array_is_refused_and_never_unpickled(saved, tmp_path):
    _, path = saved
    arrays = entries(path)
    arrays["W0"] = np.array([[Trap()] * 5] * 3, dtype=object)
    bad = write(tmp_path / "objects.npz", arrays)
    with pytest.raises(ModelFileError, match="carries Python objects; polynn never loads"):
        load(bad)
    with pytest.raises(ValueError, match="never loads pickles"):
        load_checkpoint(bad)
    assert UNPICKLED == []


def test_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Trap()))
    with pytest.raises(ModelFileError, match="carries Python objects"):
        load(path)
    assert UNPICKLED == []


def test_not_a_model_file(tmp_path):
    (tmp_path / "text").write_text("hello, world\n")
    with pytest.raises(ModelFileError, match="not an .npz archive"):
        load(tmp_path / "text")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="single .npy array"):
        load(tmp_path / "one.npy")
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


def test_corrupted_bytes_are_caught_or_harmless(saved, tmp_path):
    """Flip bytes all over the file: each load raises ModelFileError, or (for bytes no reader
    checks, such as zip timestamps) gives back exactly the saved model."""
    model, path = saved
    blob = path.read_bytes()
    bad = tmp_path / "bad"
    errors = 0
    for i in range(0, len(blob), 3):
        flipped = bytearray(blob)
        flipped[i] ^= 0xFF
        overwrite(bad, bytes(flipped))
        try:
            loaded = load(bad)
        except ModelFileError:
            errors += 1
            continue
        assert loaded.layer_sizes == model.layer_sizes and loaded.dtype == model.dtype
        assert_same_params(loaded, model)
    assert errors > len(blob) // 6


def test_corrupted_weight_bytes_fail_the_checksum(saved, tmp_path):
    _, path = saved
    blob = bytearray(path.read_bytes())
    at = blob.index(np.asarray(entries(path)["W1"]).tobytes()[:8])
    blob[at + 3] ^= 0x01
    (tmp_path / "bad").write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="truncated or corrupted.*CRC"):
        load(tmp_path / "bad")


def _set(key, value):
    def change(arrays):
        arrays[key] = value

    return change


def _set_json(section, key, value):
    """An edit of one JSON entry of a saved file (``KeyError``: delete it)."""

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
    (_set("W0", np.zeros((3, 4))), r"'W0' has shape \(3, 4\) but the configuration needs"),
    (_set("b1", np.zeros((5,))), r"'b1' has shape \(5,\)"),
    (_drop("b1"), r"lacks \['b1'\]"),
    (_set("W2", np.zeros((2, 2))), r"has unknown \['W2'\]"),
    (_set("extra", np.zeros(2)), "unknown entry 'extra.npy'"),
    (_drop("config"), "no 'config' entry"),
    (_set("W0", np.zeros((3, 5), dtype=np.int64)), "dtype int64; expected floating"),
    (_set("W0", np.zeros((3, 5), dtype=np.float32)), "dtype float32; the file's configuration"),
    (_set("b0", np.array([0.0, np.nan, 0, 0, 0])), "'b0' contains NaN or infinity"),
    (_set("config", np.frombuffer(b"\xff{not json", dtype=np.uint8)), "not UTF-8 JSON"),
    (_set("config", np.array(["{}"])), "entry 'config' has dtype <U2"),
    (_config("format", "keras"), "not a polynn model file"),
    (_config("format_version", 2), "format version 2, written by a newer polynn"),
    (_config("format_version", 0), "invalid format version 0"),
    (_config("format_version", "1"), "invalid format version '1'"),
    (_config("activation", KeyError), r"config lacks \['activation'\]"),
    (_config("colour", "red"), r"config has unknown \['colour'\]"),
    (_config("activation", "swish"), "activation='swish' is invalid"),
    (_config("dtype", "float16"), "dtype='float16' is invalid"),
    (_config("layer_sizes", [3, 6, 2]), r"'W0' has shape \(3, 5\) but the configuration needs "
                                        r"\(3, 6\)"),
    (_config("layer_sizes", [3, 5, 2, 2]), r"lacks \['W2', 'b2'\]"),
    (_config("layer_sizes", [3, 0, 2]), "layer_sizes"),
    (_config("output", "sigmoid"), "one output unit with output='sigmoid'"),
    (_config("negative_slope", "x"), "negative_slope"),
    (_config("seed", 1.5), "seed=1.5 is invalid"),
    (_config("seed", -1), "seed=-1 is invalid"),
]


@pytest.mark.parametrize("change,message", MISMATCHES)
def test_mismatched_file_is_a_clear_error(saved, tmp_path, change, message):
    _, path = saved
    arrays = entries(path)
    change(arrays)
    bad = write(tmp_path / "bad.npz", arrays)
    with pytest.raises(ModelFileError, match=message) as err:
        load(bad)
    assert repr(str(bad)) in str(err.value)


# --------------------------------------------------------------------------- atomic save


def _crash_in_savez(file, **arrays):
    file.write(b"PK\x03\x04 half of a file")
    raise RuntimeError("disk full")


def _crash_in_replace(src, dst):
    raise OSError("rename failed")


@pytest.mark.parametrize("where", ["savez", "replace", "interrupt"])
def test_crash_mid_save_keeps_the_previous_file(saved, monkeypatch, where):
    model, path = saved
    before = path.read_bytes()
    listing = sorted(os.listdir(path.parent))
    if where == "savez":
        monkeypatch.setattr(np, "savez", _crash_in_savez)
        expected = RuntimeError
    elif where == "replace":
        monkeypatch.setattr(os, "replace", _crash_in_replace)
        expected = OSError
    else:
        def interrupted(file, **arrays):
            raise KeyboardInterrupt

        monkeypatch.setattr(np, "savez", interrupted)
        expected = KeyboardInterrupt
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
    monkeypatch.setattr(np, "savez", _crash_in_savez)
    with pytest.raises(RuntimeError, match="disk full"):
        polynn.MLP([2, 3, 2]).save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- checkpoints

RESUME = [
    ("adam", {}),
    ("momentum", {"momentum": 0.8}),
    ("nesterov", {}),
    ("sgd", {"schedule": StepDecay(0.2, gamma=0.5, every=7)}),
    ("momentum", {"schedule": StepDecay(0.05, gamma=0.7, every=4)}),
]


@pytest.mark.parametrize("batch_size", [32, None])
@pytest.mark.parametrize("optimizer,options", RESUME)
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, optimizer, options, batch_size):
    X, y = data()

    def fresh():
        return polynn.MLP([4, 8, 3], dtype="float64", seed=1)

    fit = dict(batch_size=batch_size, optimizer=optimizer, l2=1e-3, **options)
    a = fresh()
    a.fit(X, y, epochs=10, seed=42, **fit)
    b = fresh()
    b.fit(X, y, epochs=5, seed=42, **fit)
    save_checkpoint(b, tmp_path / "ckpt")
    c = load_checkpoint(tmp_path / "ckpt")
    assert c._optimizer == b._optimizer
    assert c._shuffle_rng.bit_generator.state == b._shuffle_rng.bit_generator.state
    c.fit(X, y, epochs=5, **fit)  # no seed: continue the saved shuffling stream
    assert_same_params(c, a)  # bit-identical on NumPy float64
    assert c._opt_state[0] == a._opt_state[0]


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
def test_checkpoint_resume_on_eager_backends(tmp_path, backend):
    _backend(backend)
    X, y = data()
    fit = dict(batch_size=32, optimizer="adam")
    a = polynn.MLP([4, 8, 3], backend=backend, seed=1)
    a.fit(X, y, epochs=4, seed=3, **fit)
    b = polynn.MLP([4, 8, 3], backend=backend, seed=1)
    b.fit(X, y, epochs=2, seed=3, **fit)
    save_checkpoint(b, tmp_path / "ckpt")
    c = load_checkpoint(tmp_path / "ckpt", backend=backend)
    c.fit(X, y, epochs=2, **fit)
    assert_same_params(c, a)


def test_checkpoint_of_a_jax_state(tmp_path):
    """A compiled JAX loop leaves the step count as a 0-d JAX array: it is saved as an int, and
    the state loads on another backend. (Training on JAX is left to the parity tests: compiling
    costs seconds.)"""
    _backend("jax")
    import jax.numpy as jnp

    from polynn.nn.optim import Adam, Constant

    b = polynn.MLP([4, 8, 3], backend="jax", seed=1)
    b._optimizer = Adam(Constant(0.003), beta2=0.99)
    moments = tuple((W + 1, b_ + 2) for W, b_ in b.params)
    b._opt_state = (jnp.asarray(9, dtype=jnp.int32), moments, moments)
    b._shuffle_rng.permutation(10)
    save_checkpoint(b, tmp_path / "ckpt")
    for backend in ("numpy", "jax"):
        c = load_checkpoint(tmp_path / "ckpt", backend=backend)
        assert c._opt_state[0] == 9 and isinstance(c._opt_state[0], int)
        assert c._optimizer == b._optimizer
        assert c._shuffle_rng.bit_generator.state == b._shuffle_rng.bit_generator.state
        for saved, restored in zip(moments, c._opt_state[2]):
            for x, z in zip(saved, restored):
                np.testing.assert_array_equal(np.asarray(z), np.asarray(x))


def test_checkpoint_before_training_and_load_of_a_checkpoint(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 8, 3], dtype="float64", seed=6)
    save_checkpoint(model, tmp_path / "ckpt")
    resumed = load_checkpoint(tmp_path / "ckpt")
    assert resumed._optimizer is None and resumed._opt_state is None
    model.fit(X, y, epochs=2, batch_size=32)
    resumed.fit(X, y, epochs=2, batch_size=32)
    assert_same_params(resumed, model)
    plain = load(tmp_path / "ckpt")  # load() reads a checkpoint's model, not its training
    assert plain._optimizer is None


def test_load_checkpoint_of_a_plain_file(saved):
    _, path = saved
    with pytest.raises(ModelFileError, match="without training state.*polynn.load"):
        load_checkpoint(path)


def test_checkpoint_with_foreign_schedule_is_refused(tmp_path):
    X, y = data()
    model = polynn.MLP([4, 8, 3], seed=6)
    model.fit(X, y, epochs=1, schedule=lambda t: 0.1)
    with pytest.raises(ValueError, match="cannot save the learning-rate schedule"):
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
    (_set("opt0", np.zeros((4, 7), np.float32)),
     r"'opt0' \(optimizer state state\[1\]\[0\]\[0\]\) has shape \(4, 7\)"),
    (_drop("opt3"), "names entry 'opt3', which the file lacks"),
    (_set("opt99", np.zeros(2, np.float32)), "uses entries"),
    (_set("opt2", np.zeros((8, 3))), "'opt2' has dtype float64; the file's dtype needs"),
    (_set("opt1", np.full(8, np.inf, np.float32)), "'opt1' contains NaN or infinity"),
    (_training("opt_state", [3, [["opt0", "opt1"], ["opt2", "opt3"]],
                             ["opt4", "opt5", "opt6", "opt7"]]), "does not match Adam's state"),
    (_training("opt_state", ["opt0", [["opt1", "opt2"], ["opt3", "opt4"]],
                             [["opt5", "opt6"], ["opt7", 1]]]), "should be a step count"),
    (_training("opt_state", None), "optimizer without its state"),
    (_training("shuffle_rng", KeyError), r"training state lacks \['shuffle_rng'\]"),
    (_training("shuffle_rng", {"bit_generator": "os.system"}), "shuffling generator"),
    (_training("shuffle_rng", {"bit_generator": "PCG64", "state": 5}), "shuffling generator"),
    (_optimizer_field(["class"], "Evil"), "unknown optimizer 'Evil'"),
    (_optimizer_field(["fields", "beta3"], 0.5), "has fields"),
    (_optimizer_field(["fields", "beta1"], "0.9"), "beta1='0.9', not a number"),
    (_optimizer_field(["fields", "learning_rate", "class"], "Cyclic"),
     "unknown learning-rate schedule 'Cyclic'"),
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
