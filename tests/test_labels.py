"""Class labels of any value (issue 15 §1): one owner of the rules (polynn.datasets.labels), the
class values in the model file, and the round trip train -> save -> load -> predict through the
command line with arbitrary labels: ints such as 1..3, negative ints, floats, strings."""

from __future__ import annotations

import csv
import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polynn as pn
from polynn import io
from polynn.cli import main
from polynn.datasets.labels import (
    MAX_LABEL_CHARS,
    as_labels,
    check_classes,
    check_model_classes,
    encode_labels,
    encode_targets,
    label_values,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# --- strategies: distinct label values of one kind ----------------------------------------------
def _not_a_number(text):
    try:
        float(text)
    except ValueError:
        return True
    return False


ints = st.integers(-(2**62), 2**62)
small_ints = st.integers(-50, 50)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64).filter(
    lambda v: v != round(v))  # whole floats are read back from text as integers
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                min_size=1, max_size=12).map(str.strip).filter(
    lambda s: s and _not_a_number(s) and "\ufeff" not in s)


def distinct(values, low=1, high=5):
    return st.lists(values, min_size=low, max_size=high, unique=True)


any_classes = st.one_of(distinct(ints), distinct(floats), distinct(names))


# --- the rules ----------------------------------------------------------------------------------
@SETTINGS
@given(classes=any_classes, data=st.data())
def test_encode_labels_round_trips_any_values(classes, data):
    y = data.draw(st.lists(st.sampled_from(classes), min_size=1, max_size=30))
    indices, found = encode_labels(y)
    assert indices.dtype == np.int64 and list(found[indices]) == list(y)
    assert list(found) == sorted(set(y))
    # Through given classes (any order): the same values, never re-encoded from y's own.
    order = data.draw(st.permutations(classes))
    mapped, kept = encode_labels(y, order)
    assert [order[i] for i in mapped] == list(y) and list(kept) == list(order)


@SETTINGS
@given(classes=any_classes, data=st.data())
def test_a_label_the_model_never_saw_is_named(classes, data):
    known, unseen = classes[:-1], classes[-1]
    if not known:
        known = [unseen + 1] if isinstance(unseen, int) else [f"{unseen}x"]
    with pytest.raises(ValueError, match="not trained on") as err:
        encode_labels([known[0], unseen], known, name="test.csv")
    assert "test.csv" in str(err.value) and repr(unseen)[:20].strip("'\"")[:10] in str(err.value)


def test_labels_compare_by_value_and_as_text():
    assert encode_labels([2, 1.0], [1, 2])[0].tolist() == [1, 0]        # 1.0 is 1
    assert encode_labels([3, "x"], ["x", "3"])[0].tolist() == [1, 0]    # against names: text
    assert encode_labels(["2", "1.5"], [1.5, 2.0])[0].tolist() == [1, 0]  # text that is a number
    with pytest.raises(ValueError, match=r"\['cat'\]"):
        encode_labels(["cat", "1"], [1, 2])
    # The issue's case: labels 1, 2 are never read as the indices 1, 2 of classes 1..3.
    assert encode_labels([1, 2], [1, 2, 3])[0].tolist() == [0, 1]


@pytest.mark.parametrize("cells,expected,kind", [
    (["1", "3", "-2"], [1, 3, -2], "i"),
    (["1.5", "2"], [1.5, 2.0], "f"),
    (["2.0", "3"], [2, 3], "i"),
    (["cat", "1"], ["cat", "1"], "U"),
    (["9007199254740993", "1"], [9007199254740993, 1], "i"),  # exact beyond 2**53
])
def test_label_values_from_text(cells, expected, kind):
    values = label_values(cells)
    assert values.dtype.kind == kind and values.tolist() == expected


@pytest.mark.parametrize("cells,match", [(["1", ""], "empty label"), (["nan", "1"], "finite"),
                                         (["inf"], "finite")])
def test_label_values_refuses(cells, match):
    with pytest.raises(ValueError, match=match):
        label_values(cells, "f.csv")


@pytest.mark.parametrize("classes,match", [
    ([1, 1], "distinct"), ([1, 2.5], "mixes"), ([1, "a"], "mixes"), ([], "non-empty"),
    ([[1, 2]], "mixes|1-D"), ("ab", "single string"), ([math.nan, 1.0], "NaN"),
    (["a\nb", "c"], "line break"), (["x" * (MAX_LABEL_CHARS + 1)], "characters"),
    ([object()], "labels"), ([2**63], "int64|labels"), (np.array([b"a", b"b"]), "bytes"),
    (["a\tb", "c"], "control character"), (np.array(["a\x00", "a"]), "control character|distinct"),
])
def test_check_classes_refuses(classes, match):
    with pytest.raises((TypeError, ValueError, OverflowError), match=match):
        check_classes(classes)


def test_one_rule_for_class_indices():
    """as_labels is the rule encode_targets, one_hot and the splits use."""
    for y, match in [([0, 3], r"outside 0\.\.2"), ([0, -1], r"outside 0\.\.2"),
                     ([0, 1.5], "non-integer")]:
        with pytest.raises(ValueError, match=match):
            as_labels(y, "y", 3)
        with pytest.raises(ValueError, match=match):
            encode_targets(np.array(y), "softmax", 3, 2)
    with pytest.raises(TypeError, match="integer class labels"):
        encode_targets(np.array(["cat"]), "softmax", 3, 1)
    assert encode_targets(np.array([[1], [0]]), "sigmoid", 1, 2).tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize("output,units,classes,ok", [
    ("softmax", 3, ["a", "b", "c"], True), ("softmax", 3, [1, 2], False),
    ("sigmoid", 1, [-1, 1], True), ("sigmoid", 1, [0, 1, 2], False),
    ("sigmoid", 3, [0, 1, 2], False), ("identity", 1, [0.5], False), ("poisson", 1, None, True),
])
def test_classes_fit_the_output_layer(output, units, classes, ok):
    if ok:
        check_model_classes(classes, output, units)
    else:
        with pytest.raises(ValueError, match="classes"):
            check_model_classes(classes, output, units)


# --- the model and its file ---------------------------------------------------------------------
@pytest.mark.backend
def test_model_classes_survive_save_load_pickle_and_to(backend, tmp_path):
    model = pn.MLP([2, 4, 3], backend=backend.name)
    assert model.classes is None
    model.classes = ["eel", "cat", "dog"]  # any order: index i is classes[i]
    with pytest.raises(ValueError, match="3 classes"):
        model.classes = [1, 2]
    assert model.classes.tolist() == ["eel", "cat", "dog"]
    model.save(tmp_path / "m.safetensors")
    model.save_checkpoint(tmp_path / "c.safetensors")
    copies = (pn.load(tmp_path / "m.safetensors"), pn.load_checkpoint(tmp_path / "c.safetensors"),
              pickle.loads(pickle.dumps(model)), model.to())
    for copy in copies:
        assert copy.classes.tolist() == ["eel", "cat", "dog"]
    model.classes = None
    model.save(tmp_path / "n.safetensors")
    assert pn.load(tmp_path / "n.safetensors").classes is None


@settings(SETTINGS, max_examples=30)
@given(classes=any_classes)
def test_file_round_trip_keeps_values_and_kind(tmp_path_factory, classes):
    path = tmp_path_factory.mktemp("f") / "m.safetensors"
    model = pn.MLP([2, 3, len(classes)], dtype="float64")
    model.classes = classes
    model.save(path)
    back = pn.load(path).classes
    assert back.tolist() == list(classes) and back.dtype.kind == model.classes.dtype.kind


def _rewrite(path, metadata_change):
    """The file at ``path`` with its metadata changed and its checksum made right again (what
    a careful forger would do): only the checks of the value itself can refuse it."""
    import safetensors.numpy

    with open(path, "rb") as f:
        tensors = safetensors.numpy.load(f.read())
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
    metadata_change(metadata)
    metadata.pop(io.CHECKSUM_KEY)
    metadata[io.CHECKSUM_KEY] = io.checksum(metadata, tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))


@pytest.mark.parametrize("text,match", [
    ('["a","b"]', "3 classes"), ('["a","a","b"]', "distinct"), ('{"a":1}', "JSON list"),
    ('[true,false,true]', "not integers"), ('[1,2.5,3]', "mixes"), ('[null,1,2]', "not integers"),
    ('[1,2,' + "9" * 30 + "]", "int64|labels"), ('["a","b",' + json.dumps("c" * 1001) + "]",
                                                 "characters"),
    ("[1,2", "classes"),
])
def test_bad_classes_in_a_file_are_refused_by_name(tmp_path, text, match):
    path = tmp_path / "m.safetensors"
    pn.MLP([2, 3, 3]).save(path)
    _rewrite(path, lambda metadata: metadata.update({"polynn.classes": text}))
    with pytest.raises(io.ModelFileError, match=match) as err:
        pn.load(path)
    assert str(path) in str(err.value)


def test_files_without_classes_keep_their_checksum_and_load(tmp_path):
    """A file written before classes were stored: no polynn.classes key, the same checksum."""
    model = pn.MLP([2, 3, 3])
    record = model.to_record()
    tensors, metadata = io.record.to_contents(record)
    assert "polynn.classes" not in metadata
    legacy = __import__("hashlib").sha256()
    for key in (io.CONFIG_KEY, io.TRAINING_KEY):
        text = metadata.get(key, "").encode()
        legacy.update(len(text).to_bytes(8, "little") + text)
    for key in sorted(tensors):
        legacy.update(key.encode() + b"\0" + np.ascontiguousarray(tensors[key]).tobytes())
    assert io.checksum(metadata, tensors) == legacy.hexdigest()
    path = tmp_path / "old.safetensors"
    io.write(path, record)
    assert pn.load(path).classes is None
    # Removing the classes of a newer file is caught by the checksum.
    model.classes = [7, 8, 9]
    model.save(path)
    _strip = tmp_path / "stripped.safetensors"
    _strip.write_bytes(path.read_bytes())
    import safetensors.numpy
    from safetensors import safe_open

    with safe_open(str(_strip), framework="numpy") as f:
        metadata = dict(f.metadata())
    metadata.pop("polynn.classes")
    _strip.write_bytes(safetensors.numpy.save(safetensors.numpy.load_file(str(path)),
                                              metadata=metadata))
    with pytest.raises(io.ModelFileError, match="sha256"):
        pn.load(_strip)


# --- the command line: train -> save -> load -> predict -----------------------------------------
def _write_csv(path, X, labels):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["x0", "x1", "x2", "label"])
        for row, label in zip(X, labels, strict=True):
            writer.writerow([*(f"{v:.17g}" for v in row), repr(label) if isinstance(
                label, float) else label])


def _separable(classes, per_class, seed):
    """Rows far apart per class (class i near 4 * e_i in 3-D, or on a circle beyond 3): a
    network trained briefly classifies them all right."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    angles = 2 * np.pi * np.arange(k) / k
    centers = 4 * np.c_[np.cos(angles), np.sin(angles), np.zeros(k)]
    index = np.repeat(np.arange(k), per_class)
    rng.shuffle(index)
    X = centers[index] + 0.05 * rng.normal(size=(len(index), 3))
    return X, [classes[i] for i in index]


def _same(printed, label):
    if isinstance(label, str):
        return printed == label
    return float(printed) == float(label)


@settings(SETTINGS, max_examples=15)
@given(classes=st.one_of(distinct(small_ints, 2), distinct(ints, 2), distinct(floats, 2),
                         distinct(names, 2)), seed=st.integers(0, 3))
def test_cli_label_round_trip_with_any_values(tmp_path_factory, capsys, classes, seed):
    """The model file carries the classes; predict prints them and maps test labels through
    them, for ints like 1..3, negative ints, floats and strings."""
    tmp = tmp_path_factory.mktemp("labels")
    X, labels = _separable(classes, 8, seed)
    _write_csv(tmp / "train.csv", X, labels)
    model_path = tmp / "m.safetensors"
    code = main(["train", "--dataset", f"csv:{tmp / 'train.csv'}", "--layers", "8",
                 "--optimizer", "adam", "--lr", "0.05", "--epochs", "150", "--quiet",
                 "--save", str(model_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    model = pn.load(model_path)
    assert sorted(model.classes.tolist()) == sorted(classes)
    X_test, test_labels = _separable(classes, 3, seed + 10)
    test_labels = test_labels[::-1]  # a test file in another order, some classes maybe missing
    X_test = X_test[::-1]
    _write_csv(tmp / "test.csv", X_test[:5], test_labels[:5])
    for data in (str(tmp / "test.csv"), f"csv:{tmp / 'test.csv'}"):
        code = main(["predict", str(model_path), data])
        out, err = capsys.readouterr()
        assert code == 0, err
        printed = [next(csv.reader([line]))[0] for line in out.splitlines()]  # CSV-quoted
        assert all(_same(p, t) for p, t in zip(printed, test_labels[:5], strict=True)), (
            printed, test_labels[:5])
        assert "accuracy 100.00% on 5 labelled" in err
    # A label the model never saw is an error naming it, whatever its kind.
    unseen = "never-seen" if not isinstance(classes[0], str) else 12345
    _write_csv(tmp / "bad.csv", X_test[:2], [test_labels[0], unseen])
    code = main(["predict", str(model_path), str(tmp / "bad.csv")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and str(unseen) in err and "not trained on" in err


def test_issue_case_labels_one_to_three(tmp_path, capsys):
    """Issue 15 §1: labels 1..3 printed as 1..3 with the right accuracy; a test file holding
    only labels 1, 2 is not re-encoded by its own values."""
    X, labels = _separable([1, 2, 3], 20, 0)
    _write_csv(tmp_path / "animals.csv", X, labels)
    model_path = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", f"csv:{tmp_path / 'animals.csv'}", "--quiet",
                 "--epochs", "300", "--save", str(model_path)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model_path), f"csv:{tmp_path / 'animals.csv'}"]) == 0
    out, err = capsys.readouterr()
    assert sorted(set(out.split())) == ["1", "2", "3"] and "accuracy 100.00%" in err
    keep = [i for i, v in enumerate(labels) if v != 3]
    wrong = [{1: 2, 2: 1}[labels[i]] for i in keep]  # every prediction will be wrong
    _write_csv(tmp_path / "swapped.csv", X[keep], wrong)
    for data in (str(tmp_path / "swapped.csv"), f"csv:{tmp_path / 'swapped.csv'}"):
        assert main(["predict", str(model_path), data]) == 0
        assert "accuracy 0.00%" in capsys.readouterr().err
