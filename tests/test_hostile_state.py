"""Issue 15 §2 and §5: hostile training state, optimizer and schedule numbers.

Property-based: the training-state JSON of a checkpoint is fuzzed structure-aware (each leaf of
the optimizer, the step count and every bit generator's state replaced by hostile values), and
every optimizer and schedule constructor is fed bad numbers. Each case is either accepted (and
then trains) or refused with one message naming the file and the field. The inputs that used to
kill the interpreter (SIGSEGV) run in a subprocess, which must exit normally.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polynn as pn
from polynn import io
from polynn.io.errors import Refused
from polynn.io.shuffle_state import LAYOUTS, check_shuffle
from polynn.nn import optim

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=15)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data(m=60):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(m, 4))
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)


def states():
    """One live ``bit_generator.state`` of each generator polynn restores, after a few draws
    (so Philox's buffer and the uint32 flags are in use)."""
    out = {}
    for name in LAYOUTS:
        bit_generator = getattr(np.random, name)(7)
        generator = np.random.Generator(bit_generator)
        generator.random(3)
        generator.integers(0, 2**32, size=3, dtype=np.uint32)
        out[name] = json.loads(io_dumps(bit_generator.state))
    return out


def io_dumps(obj):
    from polynn.io.bounded_json import dumps

    return dumps(obj)


STATES = states()


def leaf_paths(layout, prefix=()):
    for key, spec in layout.items():
        if isinstance(spec, dict):
            yield from leaf_paths(spec, (*prefix, key))
        else:
            yield (*prefix, key), spec


PATHS = [(name, path, spec) for name, layout in LAYOUTS.items()
         for path, spec in leaf_paths(layout)]

hostile_ints = st.one_of(
    st.sampled_from([-1, 2**31 - 1, -2**31, 2**32, 2**63, -2**63, 2**64, 2**128, 700, 99, 5,
                     625, 624, 4, 0, 1]),
    st.integers(), st.integers(min_value=-2**130, max_value=2**130))
hostile_values = st.one_of(
    hostile_ints, st.booleans(), st.none(), st.floats(), st.text(max_size=3),
    st.lists(hostile_ints, max_size=8), st.dictionaries(st.text(max_size=2), st.integers(),
                                                        max_size=2))


def _set(state, path, value):
    state = copy.deepcopy(state)
    target = state
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return state


def _within(spec, value) -> bool:
    """Whether ``value`` satisfies a leaf's own range (what an accepted value must satisfy)."""
    kind, a, b = spec
    if kind == "int":
        return type(value) is int and a <= value <= b
    return (isinstance(value, list) and len(value) == a
            and all(type(v) is int and 0 <= v < 2**b for v in value))


def _draws_fine(state) -> None:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    generator = np.random.Generator(bit_generator)
    assert sorted(generator.permutation(700)) == list(range(700))


# --- §2: the shuffling state, leaf by leaf -----------------------------------------------------
@SETTINGS
@given(case=st.sampled_from(PATHS), value=hostile_values)
def test_each_shuffle_field_is_checked_against_the_generator(case, value):
    name, path, spec = case
    state = _set(STATES[name], path, value)
    try:
        checked = check_shuffle(state)
    except Refused as err:
        assert "shuffle_rng" in err.detail and path[-1] in err.detail, err.detail
        assert len(err.detail) < 300
        return
    assert _within(spec, value), (name, path, value)
    _draws_fine(checked)


whole_words = st.lists(st.integers(min_value=-2**70, max_value=2**70), max_size=700)


@SETTINGS
@given(name=st.sampled_from(sorted(LAYOUTS)), key=st.text(max_size=8), value=hostile_values,
       drop=st.booleans())
def test_shuffle_state_keys_must_be_exactly_the_generators(name, key, value, drop):
    state = copy.deepcopy(STATES[name])
    if drop:
        state.pop(sorted(state)[hash(key) % len(state)], None)
    else:
        state[key] = value
    try:
        check_shuffle(state)
    except Refused as err:
        assert "shuffle_rng" in err.detail
        return
    assert state.keys() == STATES[name].keys() and state[key] == STATES[name][key]


@FEW
@given(words=whole_words, pos=hostile_ints)
def test_mt19937_key_and_pos(words, pos):
    state = {"bit_generator": "MT19937", "state": {"key": words, "pos": pos}}
    try:
        _draws_fine(check_shuffle(state))
    except Refused as err:
        assert "state.key" in err.detail or "state.pos" in err.detail, err.detail
        return
    assert len(words) == 624 and 0 <= pos <= 624 and all(0 <= w < 2**32 for w in words)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_saved_stream_continues_exactly(name):
    bit_generator = getattr(np.random, name)(3)
    generator = np.random.Generator(bit_generator)
    generator.random(5)
    checked = check_shuffle(json.loads(io_dumps(bit_generator.state)))
    restored = getattr(np.random, name)()
    restored.state = checked
    np.testing.assert_array_equal(np.random.Generator(restored).random(9), generator.random(9))


def test_degenerate_generator_states_are_refused():
    pcg = _set(STATES["PCG64"], ("state", "inc"), 2)
    with pytest.raises(Refused, match="state.inc is even"):
        check_shuffle(pcg)
    mt = {"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}}
    with pytest.raises(Refused, match="state.key is all zero"):
        check_shuffle(mt)


# --- the checkpoint file: structure-aware fuzzing of polynn.training ---------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    X, y = data()
    model = pn.MLP([4, 6, 3], seed=1)
    model.fit(X, y, epochs=1, batch_size=16, optimizer="adam",
              schedule=optim.StepDecay(0.01, 0.5, 3))
    path = tmp_path_factory.mktemp("state") / "ckpt.safetensors"
    model.save_checkpoint(path)
    return path


def entries(path):
    tensors = safetensors.numpy.load_file(path)
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
    return tensors, {k: v for k, v in metadata.items() if k != io.CHECKSUM_KEY}


def rewrite(path, tensors, metadata):
    """Write a file whose checksum is right, so that only the intended change is wrong."""
    metadata = dict(metadata)
    metadata[io.CHECKSUM_KEY] = io.checksum(metadata, tensors)
    safetensors.numpy.save_file(tensors, path, metadata=metadata)
    return path


def training_leaves(obj, path=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from training_leaves(value, (*path, key))
    elif isinstance(obj, list) and len(obj) > 8:
        yield path  # (a key: replaced whole)
    else:
        yield path


def _load_and_fit(path):
    model = pn.load_checkpoint(path)
    X, y = data()
    model.fit(X, y, epochs=1, batch_size=16, optimizer="adam")


@FEW
@given(data_=st.data(), value=hostile_values)
def test_fuzzed_training_json_is_refused_naming_file_and_field(checkpoint, tmp_path_factory,
                                                               data_, value):
    tensors, metadata = entries(checkpoint)
    training = json.loads(metadata[io.TRAINING_KEY])
    paths = sorted(training_leaves(training), key=str)
    path = data_.draw(st.sampled_from(paths))
    spoiled = _set(training, path, value)
    metadata[io.TRAINING_KEY] = json.dumps(spoiled)
    target = rewrite(tmp_path_factory.mktemp("fuzz") / "f.safetensors", tensors, metadata)
    try:
        _load_and_fit(target)
    except (ValueError, TypeError) as err:
        message = str(err)
        assert str(target) in message, message
        named = [str(p) for p in path if not str(p).isdigit()]
        assert any(part in message for part in named[-2:]) or "training state" in message, \
            (path, message)


@pytest.mark.parametrize("field,value,message", [
    (("optimizer", "fields", "beta1"), 1, "beta1"),
    (("optimizer", "fields", "beta2"), -0.5, "beta2"),
    (("optimizer", "fields", "eps"), -1, "eps"),
    (("optimizer", "fields", "learning_rate", "fields", "lr"), -1, "lr"),
    (("optimizer", "fields", "learning_rate", "fields", "every"), 0, "every"),
    (("optimizer", "fields", "learning_rate", "fields", "gamma"), -0.5, "gamma"),
    (("step",), 2**31, "step"),
    (("step",), -1, "step"),
])
def test_bad_checkpoint_numbers_name_file_and_field(checkpoint, tmp_path, field, value,
                                                    message):
    tensors, metadata = entries(checkpoint)
    training = _set(json.loads(metadata[io.TRAINING_KEY]), field, value)
    metadata[io.TRAINING_KEY] = json.dumps(training)
    target = rewrite(tmp_path / "bad.safetensors", tensors, metadata)
    with pytest.raises(io.ModelFileError, match=message) as err:
        pn.load_checkpoint(target)
    assert str(target) in str(err.value)


def test_negative_second_moment_is_refused(checkpoint, tmp_path):
    tensors, metadata = entries(checkpoint)
    tensors["optimizer.second.0.W"] = tensors["optimizer.second.0.W"].copy()
    tensors["optimizer.second.0.W"][0, 0] = -1e-3
    target = rewrite(tmp_path / "neg.safetensors", tensors, metadata)
    with pytest.raises(io.ModelFileError, match=r"optimizer\.second\.0\.W.*negative") as err:
        pn.load_checkpoint(target)
    assert str(target) in str(err.value)


def test_largest_step_loads_and_trains_on_every_backend(checkpoint, tmp_path, backend):
    tensors, metadata = entries(checkpoint)
    training = json.loads(metadata[io.TRAINING_KEY])
    training["step"] = 2**31 - 1000
    metadata[io.TRAINING_KEY] = json.dumps(training)
    target = rewrite(tmp_path / "big.safetensors", tensors, metadata)
    model = pn.load_checkpoint(target, backend=backend)
    X, y = data()
    model.fit(X, y, epochs=1, batch_size=16, optimizer="adam")


# --- the inputs that used to kill the interpreter, in a subprocess -----------------------------
CRASHERS = [
    ("MT19937", ("state", "pos"), 2**31 - 1),
    ("MT19937", ("state", "pos"), -2**31),
    ("MT19937", ("state", "pos"), 700),
    ("MT19937", ("state", "key"), [1, 2, 3]),
    ("Philox", ("buffer_pos",), -2**31),
    ("Philox", ("buffer_pos",), 99),
]

CHILD = r"""
import json, sys
import polynn as pn
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4)); y = (X[:, 0] > 0).astype(np.int64)
for path in sys.argv[1:]:
    try:
        model = pn.load_checkpoint(path)
        model.fit(X, y, epochs=2, batch_size=8, shuffle=True)
        print("ACCEPTED", path)
    except ValueError as err:
        print("REFUSED", json.dumps(str(err)))
"""


def test_former_sigsegv_states_are_refused_in_a_subprocess(tmp_path):
    X, y = data()
    paths = []
    for i, (name, field, value) in enumerate(CRASHERS):
        model = pn.MLP([4, 5, 2], seed=0)
        model.fit(X, (y > 0).astype(np.int64), epochs=1, batch_size=16)
        good = tmp_path / f"good{i}.safetensors"
        model.save_checkpoint(good)
        tensors, metadata = entries(good)
        training = json.loads(metadata[io.TRAINING_KEY])
        training["shuffle_rng"] = _set(STATES[name], field, value)
        metadata[io.TRAINING_KEY] = json.dumps(training)
        paths.append(str(rewrite(tmp_path / f"bad{i}.safetensors", tensors, metadata)))
    env = {**os.environ, "PYTHONPATH": ROOT, "POLYNN_BACKEND": "numpy"}
    done = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert len(lines) == len(CRASHERS), done.stdout
    for line, path, (_, field, _value) in zip(lines, paths, CRASHERS):
        assert line.startswith("REFUSED"), line
        message = json.loads(line.split(" ", 1)[1])
        assert path in message and field[-1] in message and "shuffle_rng" in message, message


# --- §5: optimizer and schedule constructors ---------------------------------------------------
bad_numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1.0, True, "0.1", None]),
    st.floats(), st.integers(min_value=-10, max_value=10))

# (class, parameter, whether value is acceptable, the other arguments)
RULES = {
    (optim.Constant, "lr"): lambda v: v > 0,
    (optim.InverseScaling, "lr"): lambda v: v > 0,
    (optim.InverseScaling, "power"): lambda v: v >= 0,
    (optim.StepDecay, "lr"): lambda v: v > 0,
    (optim.StepDecay, "gamma"): lambda v: 0 <= v <= 1,
    (optim.StepDecay, "every"): lambda v: isinstance(v, int) and v >= 1,
    (optim.ExponentialDecay, "gamma"): lambda v: 0 <= v <= 1,
    (optim.ExponentialDecay, "every"): lambda v: v > 0,
    (optim.EpochInverseScaling, "n_samples"): lambda v: isinstance(v, int) and v >= 1,
    (optim.EpochInverseScaling, "steps_per_epoch"): lambda v: isinstance(v, int) and v >= 1,
    (optim.EpochInverseScaling, "t0"): lambda v: isinstance(v, int) and v >= 0,
    (optim.Adam, "beta1"): lambda v: 0 <= v < 1,
    (optim.Adam, "beta2"): lambda v: 0 <= v < 1,
    (optim.Adam, "eps"): lambda v: v > 0,
    (optim.Momentum, "momentum"): lambda v: 0 <= v <= 1,
    (optim.VelocityMomentum, "momentum"): lambda v: 0 <= v <= 1,
    (optim.SGD, "learning_rate"): lambda v: v > 0,
}
BASE = {optim.Constant: {"lr": 0.1}, optim.InverseScaling: {"lr": 0.1},
        optim.StepDecay: {"lr": 0.1}, optim.ExponentialDecay: {"lr": 0.1},
        optim.EpochInverseScaling: {"lr": 0.1, "power": 0.5, "n_samples": 10,
                                    "steps_per_epoch": 2},
        optim.Adam: {"learning_rate": optim.Constant(0.1)},
        optim.Momentum: {"learning_rate": optim.Constant(0.1)},
        optim.VelocityMomentum: {"learning_rate": optim.Constant(0.1)},
        optim.SGD: {}}


def _legal(rule, value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and rule(value)


@SETTINGS
@given(case=st.sampled_from(sorted(RULES, key=lambda k: (k[0].__name__, k[1]))),
       value=bad_numbers)
def test_constructors_refuse_bad_numbers_naming_the_parameter(case, value):
    cls, name = case
    try:
        obj = cls(**{**BASE[cls], name: value})
    except (TypeError, ValueError) as err:
        assert f"{cls.__name__}: {name}" in str(err) or (
            name == "learning_rate" and "lr" in str(err)), str(err)
        assert not _legal(RULES[case], value), (case, value, str(err))
        return
    assert _legal(RULES[case], value), (case, value)
    hash(obj)  # still usable as a compiled loop's static key


@pytest.mark.parametrize("build,name", [
    (lambda: optim.Adam(optim.Constant(-1.0)), "lr"),
    (lambda: optim.Adam(optim.Constant(0.1), beta1=1), "beta1"),
    (lambda: optim.StepDecay(0.1, every=0), "every"),
    (lambda: optim.Momentum(optim.Constant(0.1), nesterov="no"), "nesterov"),
])
def test_issue_examples_are_refused_when_built(build, name):
    with pytest.raises((TypeError, ValueError), match=name):
        build()


def test_a_number_as_learning_rate_becomes_constant():
    assert optim.SGD(0.5) == optim.SGD(optim.Constant(0.5))
    assert optim.Adam(np.float32(0.25)).learning_rate == optim.Constant(0.25)
