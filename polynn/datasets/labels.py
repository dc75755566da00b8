"""Class labels: the one owner of their rules.

Two views of the same labels, as scikit-learn's ``classes_`` has them:

- label *values*, as a user or a file gives them (ints such as 1..3 or -1, floats, strings),
  and a model's ``classes``: the sorted distinct values it was trained on
  (:func:`check_classes`, :func:`label_values` for text cells, :func:`encode_labels`, which
  maps values to indices through given classes and refuses a value that is not one of them);
- class *indices* 0..k-1, what the loss pairs take (:func:`as_labels`), and the target matrix
  built from them (:func:`encode_targets`, :func:`one_hot`).

Regression targets are numbers, not labels: :func:`encode_targets` passes them to
:func:`polynn.validate.targets.regression_targets`.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np

from polynn.validate import check_finite, check_int, check_rows, host_array
from polynn.validate.arrays import check_kind
from polynn.validate.targets import regression_targets

#: Most classes a model may have (its output layer has one unit per class).
MAX_CLASSES = 1 << 20
#: Longest class name (characters): labels are names, not documents.
MAX_LABEL_CHARS = 1000
_MAX_LABEL = 2**31 - 1  # class indices beyond this are data errors, not classes
_MAX_ONE_HOT = 2**30  # elements (8 GiB of float64): beyond it, a label is surely a mistake
_SHOWN = 5  # values named in an error message


def _shown(values) -> str:
    """At most ``_SHOWN`` values as a short list: strings quoted (cut to 40 characters),
    numbers as written."""
    values = list(values)
    items = []
    for value in values[:_SHOWN]:
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, str) and len(value) > 40:
            value = value[:37] + "..."
        items.append(repr(value))
    more = len(values) - _SHOWN
    return "[" + ", ".join(items) + (f", ... ({more} more)" if more > 0 else "") + "]"


def _text(value) -> str:
    """A label value as a user wrote it: 3, -1, 0.5, cat (no NumPy type names)."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, str) else repr(value)


def label_text(value) -> str:
    """One label value as text for output (``3``, ``0.5``, ``cat``), the inverse of
    :func:`label_values` for a value it produced."""
    return _text(value)


# --- class values -----------------------------------------------------------------------------
def _value_kind(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` (1-D) as int64, float64 (finite) or str: the three kinds of label values."""
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.int64)
    if kind in "iu":
        if values.size and (values.max() > np.iinfo(np.int64).max):
            raise ValueError(f"{name} has a label above the int64 range: {_text(values.max())}")
        return values.astype(np.int64)
    if kind == "f":
        check_finite(values, name)
        return values.astype(np.float64)
    if kind == "U":
        return values
    if kind == "S":
        raise TypeError(f"{name} holds bytes; give labels as text (decode them)")
    if kind == "O":
        items = values.tolist()
        if all(isinstance(v, str) for v in items):
            return np.array(items, dtype=str) if items else np.zeros(0, str)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            big = [v for v in items if not -(2**63) <= v < 2**63]
            if big:
                raise ValueError(f"{name} has a label outside the int64 range: {big[0]}")
            return np.array(items, dtype=np.int64)
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               for v in items):
            return _value_kind(np.array(items, dtype=np.float64), name)
    raise TypeError(f"{name} must hold labels: integers, real numbers or strings, got dtype "
                    f"{values.dtype}")


def _kind(value) -> str:
    if isinstance(value, str):
        return "strings"
    if isinstance(value, (float, np.floating)):
        return "real numbers"
    return "integers" if isinstance(value, (int, np.integer)) else type(value).__name__


def check_classes(classes, name="classes") -> np.ndarray:
    """A model's class values checked: a 1-D sequence of distinct integers (int64), finite
    real numbers (float64) or strings (at most :data:`MAX_LABEL_CHARS` characters, no line
    breaks or other control characters), at least 1 and at most :data:`MAX_CLASSES` of them,
    all of one kind.

    Returns the classes as a 1-D NumPy array of that kind, in the given order (index i of the
    output layer is class ``classes[i]``). Raises TypeError/ValueError naming ``name``."""
    if isinstance(classes, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels, got a single string {classes!r}")
    if isinstance(classes, (list, tuple)) and len(classes) > MAX_CLASSES:
        raise ValueError(f"{name} has {len(classes)} values; at most {MAX_CLASSES} classes")
    if isinstance(classes, (list, tuple)) and len({_kind(v) for v in classes}) > 1:
        # NumPy would turn [1, 2.5] into floats and [1, "a"] into strings: say it instead.
        raise TypeError(f"{name} mixes {' and '.join(sorted({_kind(v) for v in classes}))}: "
                        "give every class as one kind")
    values = host_array(classes, name)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {values.shape}")
    if values.size > MAX_CLASSES:
        raise ValueError(f"{name} has {values.size} values; at most {MAX_CLASSES} classes")
    values = _value_kind(values, name)
    if values.dtype.kind == "U":
        long = [v for v in values.tolist() if len(v) > MAX_LABEL_CHARS]
        if long:
            raise ValueError(f"{name} has a label of {len(long[0])} characters; at most "
                             f"{MAX_LABEL_CHARS}")
        broken = [v for v in values.tolist() if any(unicodedata.category(c) == "Cc" for c in v)]
        if broken:
            raise ValueError(f"{name} has a label with a line break or another control "
                             f"character: {_shown(broken)}")
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size != values.size:
        raise ValueError(f"{name} must be distinct; repeated: {_shown(distinct[counts > 1])}")
    return values


def check_model_classes(classes, output, n_outputs, name="classes"):
    """:func:`check_classes`, and one class per output of a classifier: ``n_outputs`` classes
    for softmax, 2 for one sigmoid unit. ``classes`` None stays None (unknown: the classes are
    the indices 0..k-1); a regression or multilabel model has none."""
    if classes is None:
        return None
    if output not in ("softmax", "sigmoid") or (output == "sigmoid" and n_outputs > 1):
        kind = "multilabel" if output == "sigmoid" else f"output={output!r}"
        raise ValueError(f"{name}: a {kind} model has no class values (only None)")
    classes = check_classes(classes, name)
    expected = n_outputs if output == "softmax" else 2
    if classes.size != expected:
        raise ValueError(f"{name} has {classes.size} values but the model predicts {expected} "
                         f"classes (output={output!r}, {n_outputs} output unit(s))")
    return classes


def label_values(cells, name="labels") -> np.ndarray:
    """Label values from text ``cells`` (a CSV column): int64 when every cell is a whole
    number, float64 when every cell is a number, else the strings themselves (stripped).

    Raises ValueError for an empty cell or a number that is not finite (``nan``, ``inf``)."""
    cells = [str(c).strip() for c in cells]
    if "" in cells:
        raise ValueError(f"{name}: empty label on data row {cells.index('') + 1}")
    numbers = []
    for cell in cells:
        try:
            numbers.append(float(cell))
        except ValueError:
            return np.array(cells, dtype=str)
    if not all(math.isfinite(v) for v in numbers):
        bad = next(c for c, v in zip(cells, numbers, strict=True) if not math.isfinite(v))
        raise ValueError(f"{name} must be finite numbers or names, got {bad!r}")
    values = np.array(numbers, dtype=np.float64)
    if values.size and np.all(values == np.round(values)) and np.abs(values).max() < 2**63:
        # Whole numbers: parsed as ints from the text (exact beyond 2**53, as written).
        return np.array([int(c) if _is_int(c) else int(v) for c, v in
                         zip(cells, numbers, strict=True)], dtype=np.int64)
    return values


def _is_int(cell: str) -> bool:
    try:
        int(cell)
    except ValueError:
        return False
    return True


def encode_labels(y, classes=None, name="y"):
    """Label values ``y`` ``(m,)`` as class indices: ``(indices, classes)``, ``indices`` int64
    ``(m,)`` with ``classes[indices] == y``.

    ``classes`` None: the sorted distinct values of ``y`` (a fresh encoding, for training).
    Given (a model's classes): ``y`` is mapped through them, never re-encoded from its own
    values; a value that is not one of them is a ValueError naming it. Numbers compare by
    value (1 == 1.0); against string classes, ``y`` compares as text."""
    y = host_array(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
    values = _value_kind(y, name)
    if classes is None:
        classes, indices = np.unique(values, return_inverse=True)
        return indices.reshape(-1).astype(np.int64), classes
    classes = check_classes(classes)
    keys = _comparable(values, classes.dtype.kind == "U")
    order = np.argsort(classes, kind="stable")
    ranked = classes[order]
    where = np.clip(np.searchsorted(ranked, keys), 0, len(ranked) - 1)
    unseen = ranked[where] != keys
    if np.any(unseen):
        missing = np.unique(values[unseen])
        raise ValueError(f"{name} has labels the model was not trained on: {_shown(missing)}; "
                         f"its classes are {_shown(classes)}")
    return order[where].astype(np.int64), classes


def _comparable(values: np.ndarray, text: bool) -> np.ndarray:
    """``values`` in the kind of the classes they are compared with: as text against string
    classes, as numbers against numeric ones (a string that is no number: NaN, never equal)."""
    if text:
        return values if values.dtype.kind == "U" else np.array(
            [_text(v) for v in values.tolist()], dtype=str)
    if values.dtype.kind != "U":
        return values
    parsed = []
    for value in values.tolist():
        try:
            parsed.append(float(value))
        except ValueError:
            parsed.append(math.nan)
    return np.array(parsed, dtype=np.float64)


# --- class indices ----------------------------------------------------------------------------
def as_labels(y, name="y", n_classes=None, context=""):
    """Class indices as a 1-D int64 array: the one rule for labels 0..k-1.

    ``y``: ``(m,)`` (or ``(m, 1)``) integers, bools or whole-number floats; negative values and
    values ``>= n_classes`` (when given; else above 2**31 - 1) are refused. ``context`` is added
    to the out-of-range message (what takes these labels). Raises TypeError for values that are
    not numbers, ValueError otherwise, naming ``name``."""
    y = host_array(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels of shape (m,), got shape "
                         f"{y.shape}")
    check_kind(y, name, "integer class labels")
    if y.dtype.kind == "f":
        check_finite(y, name)
        fractional = y != np.round(y)
        if fractional.any():
            raise ValueError(f"{name} must hold whole-number class labels 0..k-1; it has "
                             f"non-integer values such as {y[fractional][:3].tolist()}")
    # Compare in y's own dtype (before the int64 cast, which would overflow 1e20 or 2**64-1),
    # and show the values as given.
    top = _MAX_LABEL if n_classes is None else n_classes - 1
    outside = (y < 0) | (y > top)
    if outside.any():
        what = ("class labels are >= 0" if n_classes is None and y.min() < 0 else
                "not a class index" if n_classes is None else f"out of range for {n_classes} "
                f"class(es)")
        raise ValueError(f"{name} has labels outside 0..{top} (e.g. {y[outside][:3].tolist()}): "
                         f"{what}{context}")
    return y.astype(np.int64)


def encode_targets(y, output, n_outputs, m, name="y", dtype=None) -> np.ndarray:
    """Labels/targets as the float64 target matrix ``(m, n_outputs)`` the loss pairs expect:
    one-hot rows (softmax), one 0/1 column (sigmoid), a 0/1 indicator matrix (sigmoid with
    several units: multilabel), the values themselves (identity, poisson).

    ``y``: ``(m,)`` or ``(m, 1)`` class indices 0..k-1 (:func:`as_labels`: whole-number floats
    and bools accepted) for classifiers; ``(m,)`` or ``(m, n_outputs)`` real values for
    regression (:func:`polynn.validate.targets.regression_targets`), finite in the model's
    ``dtype`` (a ``DType`` record) when given."""
    y = check_rows(y, m, name)
    if output in ("identity", "poisson"):
        return regression_targets(y, output, n_outputs, m, name, dtype)
    if output == "sigmoid" and n_outputs > 1:
        return _indicator(y, n_outputs, m, name)
    n_classes = 2 if output == "sigmoid" else n_outputs
    labels = as_labels(y, name, n_classes, f"; output={output!r} with {n_outputs} output "
                                           f"unit(s) takes labels 0..{n_classes - 1}")
    if output == "sigmoid":
        return labels.reshape(m, 1).astype(np.float64)
    T = np.zeros((m, n_outputs))
    T[np.arange(m), labels] = 1.0
    return T


def _indicator(y, n_outputs, m, name) -> np.ndarray:
    """Multilabel targets: a 0/1 indicator matrix ``(m, n_outputs)``, one column per unit."""
    check_kind(y, name, "integer class labels")
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(f"{name} must be a 0/1 indicator matrix of shape ({m}, {n_outputs}) "
                         f"for output='sigmoid' with {n_outputs} units (multilabel), got "
                         f"shape {y.shape}")
    check_finite(y, name)
    T = y.astype(np.float64)
    if not np.all((T == 0) | (T == 1)):
        raise ValueError(f"{name} must hold only 0 and 1 for multilabel output='sigmoid' "
                         f"(e.g. {y[(T != 0) & (T != 1)][:3].tolist()})")
    return T


def one_hot(y: Any, n_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer labels.

    Parameters
    ----------
    y : array-like of int, shape (m,)
        Labels 0..n_classes-1.
    n_classes : int >= 1, optional
        Default ``max(y) + 1``.

    Returns
    -------
    numpy.ndarray of float64, shape (m, n_classes)

    Raises
    ------
    ValueError
        A label outside ``0..n_classes-1`` (or not a whole number), or an empty ``y`` without
        ``n_classes``.

    Examples
    --------
    >>> from polynn.datasets import one_hot
    >>> one_hot([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    y = as_labels(y)
    if n_classes is None:
        if y.size == 0:
            raise ValueError("n_classes is required when y is empty")
        n_classes = int(y.max()) + 1
    n_classes = check_int("n_classes", n_classes, 1)
    if y.shape[0] * n_classes > _MAX_ONE_HOT:
        raise ValueError(f"one_hot of {y.shape[0]} labels with n_classes={n_classes} would hold "
                         f"{y.shape[0] * n_classes} floats (limit {_MAX_ONE_HOT})")
    y = as_labels(y, "y", n_classes)
    out = np.zeros((y.shape[0], n_classes), dtype=np.float64)
    out[np.arange(y.shape[0]), y] = 1.0
    return out
