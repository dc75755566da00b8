"""Datasets, returned as host NumPy arrays.

Every loader returns ``X`` as float64 of shape ``(m, n_features)`` (examples are rows) and, for
classification, ``y`` as int64 of shape ``(m,)`` holding labels ``0 .. k-1``. Random draws come
from ``numpy.random.default_rng(seed)``, never from NumPy's global state, so a seed fixes the data.
Nothing here touches the network.

Synthetic: :func:`spiral`, :func:`moons`, :func:`circles`.
Bundled with scikit-learn (optional extra): :func:`digits`.
Local files: :func:`load_idx` / :func:`load_mnist` (MNIST IDX, plain or gzip), :func:`load_csv`.
Helpers: :func:`train_test_split`, :func:`standardize` / :class:`Standardizer`, :func:`one_hot`.
Registry for the CLI: :func:`get`.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polynn.validate import check_bool, check_finite, check_real, check_seed, check_X, host_array
from polynn.validate import check_int as _check_int

__all__ = [
    "DATASETS",
    "Standardizer",
    "circles",
    "digits",
    "get",
    "load_csv",
    "load_idx",
    "load_mnist",
    "moons",
    "one_hot",
    "read_idx",
    "spiral",
    "standardize",
    "train_test_split",
]


# --------------------------------------------------------------------------- validation helpers


def _check_nonneg(name, value):
    return check_real(name, value, 0)


def _as_labels(y, name="y"):
    """Integer class labels as a 1-D int64 array; whole-number floats are accepted."""
    y = host_array(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (m,), got shape {y.shape}")
    if y.dtype.kind not in "iubf":
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        check_finite(y, name)
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold whole-number class labels, got e.g. "
                             f"{y[y != np.round(y)][:3].tolist()}")
    # Range checks in y's own dtype, before the int64 cast that would overflow 1e20.
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0, got {y.min()!r}")
    if y.size and y.max() > _MAX_LABEL:
        raise ValueError(f"{name} has a label {y.max()!r} above {_MAX_LABEL}: not a class index")
    return y.astype(np.int64)


_MAX_LABEL = 2**31 - 1  # class indices beyond this are data errors, not classes


# --------------------------------------------------------------------------- synthetic data


def spiral(n_per_class=100, n_classes=3, *, noise=0.2, seed=0):
    """The cs231n spiral: ``n_classes`` interleaved arms in the plane.

    For class j: ``r = linspace(0, 1, n_per_class)``,
    ``t = linspace(4j, 4(j+1), n_per_class) + noise * N(0, 1)``, points ``(r sin t, r cos t)``.

    Returns ``X`` float64 ``(n_per_class * n_classes, 2)`` and ``y`` int64 of the same length,
    rows ordered class by class (all of class 0, then class 1, ...).
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    n_classes = _check_int("n_classes", n_classes, 1)
    noise = _check_nonneg("noise", noise)
    rng = np.random.default_rng(check_seed(seed))
    r = np.linspace(0.0, 1.0, n_per_class)
    blocks = []
    for j in range(n_classes):
        t = np.linspace(j * 4, (j + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * noise
        blocks.append(np.c_[r * np.sin(t), r * np.cos(t)])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    return np.concatenate(blocks).astype(np.float64), y


def _split_two(n_samples):
    n_samples = _check_int("n_samples", n_samples, 2)
    n_out = n_samples // 2
    return n_out, n_samples - n_out


def _two_class(xs, ys, n_out, noise, seed):
    """Stack two point sets (class 0 then class 1) and add Gaussian noise of std ``noise``."""
    X = np.column_stack([xs, ys]).astype(np.float64)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_out, len(xs) - n_out])
    rng = np.random.default_rng(check_seed(seed))
    return X + rng.normal(scale=noise, size=X.shape), y


def moons(n_samples=200, *, noise=0.1, seed=0):
    """Two interleaving half circles (the geometry of scikit-learn's ``make_moons``).

    Class 0 is the upper moon (``n_samples // 2`` points), class 1 the lower one; Gaussian noise of
    std ``noise`` is added to every coordinate. Rows are ordered class by class (not shuffled).

    Returns ``X`` float64 ``(n_samples, 2)`` and ``y`` int64 ``(n_samples,)`` in {0, 1}.
    """
    n_out, n_in = _split_two(n_samples)
    noise = _check_nonneg("noise", noise)
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    xs = np.concatenate([np.cos(t_out), 1.0 - np.cos(t_in)])
    ys = np.concatenate([np.sin(t_out), 1.0 - np.sin(t_in) - 0.5])
    return _two_class(xs, ys, n_out, noise, seed)


def circles(n_samples=200, *, noise=0.05, factor=0.5, seed=0):
    """A large circle (class 0) around a smaller one (class 1), as scikit-learn's ``make_circles``.

    The inner radius is ``factor`` (0 <= factor < 1), the outer 1; Gaussian noise of std ``noise``
    is added. Rows are ordered class by class (not shuffled).

    Returns ``X`` float64 ``(n_samples, 2)`` and ``y`` int64 ``(n_samples,)`` in {0, 1}.
    """
    n_out, n_in = _split_two(n_samples)
    noise = _check_nonneg("noise", noise)
    factor = float(factor)
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"factor must be in [0, 1), got {factor}")
    t_out = np.linspace(0.0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2 * np.pi, n_in, endpoint=False)
    xs = np.concatenate([np.cos(t_out), factor * np.cos(t_in)])
    ys = np.concatenate([np.sin(t_out), factor * np.sin(t_in)])
    return _two_class(xs, ys, n_out, noise, seed)


# --------------------------------------------------------------------------- scikit-learn digits


def digits():
    """The 8x8 handwritten digits bundled with scikit-learn (no download).

    Returns ``X`` float64 ``(1797, 64)`` scaled to [0, 1] (pixel / 16) and ``y`` int64 ``(1797,)``
    in 0..9. Needs scikit-learn: ``pip install "polynn[sklearn]"``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            'digits() needs scikit-learn, which is not installed: pip install "polynn[sklearn]"'
        ) from err
    data = load_digits()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target, dtype=np.int64)


# --------------------------------------------------------------------------- IDX (MNIST) files

# IDX type code -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from err


def read_idx(path):
    """Read one IDX file (plain or gzip) into an array of its stored shape and dtype.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32; the data follows, big-endian, row-major. Returns a native-byte-order ndarray of shape
    ``dims``. Raises ValueError naming the file for a bad magic number, an unknown type code, or
    a data size that differs from what the header promises.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(buf)} bytes, need at least 4)")
    if buf[0] != 0 or buf[1] != 0:
        raise ValueError(
            f"{path}: bad magic number 0x{buf[:4].hex()} (an IDX file starts with two zero bytes)"
        )
    code, ndim = buf[2], buf[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(buf)} bytes, need {header_len})")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    got = len(buf) - header_len
    if got < expected:
        raise ValueError(
            f"{path}: truncated data: header promises shape {dims} ({expected} bytes), "
            f"file holds {got} bytes"
        )
    if got > expected:
        raise ValueError(
            f"{path}: {got - expected} unexpected bytes after the data for shape {dims}"
        )
    data = np.frombuffer(buf, dtype=dtype, count=math.prod(dims), offset=header_len)
    return data.astype(dtype.newbyteorder("=")).reshape(dims)


def load_idx(images_path, labels_path=None):
    """Read an IDX images file and, optionally, its IDX labels file.

    Returns the images as stored (ndarray of shape ``(m, ...)``, native dtype) when
    ``labels_path`` is None, else ``(images, labels)`` with labels int64 of shape ``(m,)``.
    Raises ValueError naming both files when the counts differ or the labels are not 1-D.
    See :func:`load_mnist` for flattened float64 features in [0, 1].
    """
    images = read_idx(images_path)
    if labels_path is None:
        return images
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels must be 1-D, got shape {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"count mismatch: {images_path} holds {images.shape[0]} images but "
            f"{labels_path} holds {labels.shape[0]} labels"
        )
    return images, labels.astype(np.int64)


_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _find_file(directory, stem):
    """The first of ``stem``, ``stem.gz`` (or the ``.idx3-ubyte`` spelling) found in directory."""
    alt = stem.replace("-idx", ".idx")
    tried = [Path(directory) / name for name in (stem, stem + ".gz", alt, alt + ".gz")]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError("no IDX file found; tried: " + ", ".join(str(p) for p in tried))


def load_mnist(directory, kind="train"):
    """MNIST (or Fashion-MNIST, KMNIST...) from a local directory of IDX files.

    Looks for ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]``
    (``t10k-...`` for ``kind="test"``). Returns ``X`` float64 ``(m, rows * cols)`` in [0, 1]
    (pixel / 255) and ``y`` int64 ``(m,)``.
    """
    if kind not in _MNIST_PREFIX:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    prefix = _MNIST_PREFIX[kind]
    images_path = _find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = load_idx(images_path, labels_path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (m, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return X, labels


# --------------------------------------------------------------------------- CSV files


# Undecodable bytes, kept by errors="surrogateescape" as lone surrogates, so that the error can
# name the line and column where they are.
_UNDECODED = re.compile("[\udc80-\udcff]")


def _read_rows(path, delimiter=","):
    """Non-blank rows of a UTF-8 CSV file as (line number, stripped cells) pairs.

    Raises FileNotFoundError naming the file, and ValueError naming the file and line for an
    empty file, bytes that are not UTF-8, a field longer than Python's csv limit or a
    malformed quote."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    rows = []
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            for row in reader:
                line = reader.line_num
                cells = [c.strip() for c in row]
                joined = "".join(cells)
                if not joined:
                    continue
                if not joined.isascii() and _UNDECODED.search(joined):
                    column = next(i for i, c in enumerate(cells) if _UNDECODED.search(c))
                    byte = ord(_UNDECODED.search(cells[column]).group()) - 0xDC00
                    raise ValueError(f"{path}: line {line}, column {column}: byte 0x{byte:02x} "
                                     "is not UTF-8 text; save the file as UTF-8")
                rows.append((line, cells))
        except csv.Error as err:
            line, detail = reader.line_num, str(err)
            if "field larger than field limit" in detail:
                detail = (f"a field is longer than {csv.field_size_limit()} characters "
                          "(Python's csv limit)")
            raise ValueError(f"{path}: line {line}: {detail}") from None
    if not rows:
        raise ValueError(f"{path}: empty file (no rows)")
    return rows


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header_row(first_row):
    """A first row is a header only when none of its cells is a number: a typo such as
    ``1,2x`` in the first data row is a bad cell, not a header."""
    return not any(_is_number(c) for c in first_row)


def _label_index(path, label_column, names, width):
    """Resolve ``label_column`` (index, negative allowed, or header name) to a column index."""
    if isinstance(label_column, str):
        if names is None:
            raise ValueError(
                f"{path}: label_column={label_column!r} is a name but there is no header"
            )
        if names.count(label_column) != 1:
            problem = "is not a column" if label_column not in names else "names several columns"
            raise ValueError(f"{path}: label column {label_column!r} {problem}; columns: {names}")
        return names.index(label_column)
    index = _check_int("label_column", label_column, -width)
    if index >= width:
        raise ValueError(f"{path}: label_column={index} out of range for {width} columns")
    return index % width


def _has_header(header, first_row, label_column):
    if header == "infer":
        return isinstance(label_column, str) or _header_row(first_row)
    if header is True or header is False:
        return header
    raise ValueError(f"header must be 'infer', True or False, got {header!r}")


def _parse_features(path, rows, label, names):
    """Float64 features of every row (all columns but ``label``), naming any bad cell."""
    feature_cols = [i for i in range(len(rows[0][1])) if i != label]
    if not feature_cols:
        raise ValueError(f"{path}: no feature columns (only the label column)")
    X = np.empty((len(rows), len(feature_cols)), dtype=np.float64)
    for r, (line, row) in enumerate(rows):
        for c, col in enumerate(feature_cols):
            try:
                X[r, c] = float(row[col])
            except ValueError:
                X[r, c] = np.nan
            if not math.isfinite(X[r, c]):
                where = f"column {col}" + (f" ({names[col]!r})" if names else "")
                raise ValueError(f"{path}: line {line}, {where}: {row[col]!r} is not a number")
    return X


def _parse_labels(path, raw):
    """Map labels to 0..k-1 via their sorted unique values (numeric when they all parse)."""
    if "" in raw:
        raise ValueError(f"{path}: empty label on data row {raw.index('') + 1}")
    if all(_is_number(s) for s in raw):
        values = np.array([float(s) for s in raw])
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{path}: labels must be finite")
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    else:
        values = np.array(raw)
    classes, y = np.unique(values, return_inverse=True)
    return y.reshape(-1).astype(np.int64), classes


def load_csv(path, *, label_column=-1, header="infer", delimiter=","):
    """Load a classification table from a CSV file.

    ``label_column`` is a column index (negative counts from the end) or a header name.
    ``header`` is True, False or "infer" (a header is assumed when a name is given or when no
    cell of the first row is a number; a first row with some numbers is data, and its
    non-numeric feature cells are errors). Blank lines are skipped. The file must be UTF-8.

    Returns ``(X, y, classes)``: ``X`` float64 ``(m, n_columns - 1)``, ``y`` int64 ``(m,)`` in
    0..k-1 and ``classes`` the sorted original label values (int64 when all labels are whole
    numbers, float64 when numeric, else strings), so that ``classes[y]`` gives the labels back.
    Labels already 0..k-1 are kept as they are (``classes == arange(k)``).
    Raises ValueError naming the file and the problem for an empty file, ragged rows,
    non-numeric features (with line and column), bytes that are not UTF-8, a field longer than
    Python's csv limit, or an unknown label column.
    """
    rows = _read_rows(path, delimiter)
    names = None
    if _has_header(header, rows[0][1], label_column):
        names = rows[0][1]
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{path}: no data rows after the header")
    width = len(names) if names is not None else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {width}")
    label = _label_index(path, label_column, names, width)
    X = _parse_features(path, rows, label, names)
    y, classes = _parse_labels(path, [row[label] for _, row in rows])
    return X, y, classes


# --------------------------------------------------------------------------- helpers


def _test_count(test_size, m):
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        n_test = math.ceil(test_size * m)
    else:
        n_test = _check_int("test_size", test_size, 1)
    if not 1 <= n_test < m:
        raise ValueError(f"test_size={test_size} leaves an empty train or test set (m={m})")
    return n_test


def _stratified_test_indices(y, n_test, rng):
    """Test indices with each class's share of ``n_test`` by largest remainder."""
    classes, y_idx, counts = np.unique(_as_labels(y), return_inverse=True, return_counts=True)
    quota = counts * n_test / len(y)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n_test - take.sum()]] += 1
    members = [rng.permutation(np.flatnonzero(y_idx == k)) for k in range(len(classes))]
    return np.concatenate([idx[:t] for idx, t in zip(members, take, strict=True)])


def train_test_split(X, y, *, test_size=0.25, seed=0, stratify=False):
    """Shuffle and split ``(X, y)`` into train and test sets.

    ``test_size`` is a fraction in (0, 1) (the test set gets ``ceil(test_size * m)`` rows) or an
    integer count. With ``stratify=True`` (integer labels ``y``) each class contributes to the
    test set in proportion to its size. Rows of both sets come out shuffled.

    Returns ``(X_train, X_test, y_train, y_test)``, with the dtypes of the inputs.
    """
    X, y = host_array(X, "X"), host_array(y, "y")
    stratify = check_bool("stratify", stratify)
    m = X.shape[0] if X.ndim else 0
    if X.ndim == 0 or y.ndim == 0 or y.shape[0] != m:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape} and {y.shape}")
    n_test = _test_count(test_size, m)
    rng = np.random.default_rng(check_seed(seed))
    if stratify:
        test = rng.permutation(_stratified_test_indices(y, n_test, rng))
        train = rng.permutation(np.setdiff1d(np.arange(m), test))
    else:
        perm = rng.permutation(m)
        test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature standardization ``(X - mean) / std`` with statistics fit on training data.

    ``mean`` and ``std`` are float64 of shape ``(n_features,)``; a constant feature gets std 1,
    so it maps to 0 instead of dividing by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X):
        """Statistics of ``X`` (m, n_features); population std (ddof=0)."""
        X = _as_matrix(X, "X")
        if X.shape[0] == 0:
            raise ValueError("cannot fit a Standardizer on 0 rows")
        mean, std = X.mean(axis=0), X.std(axis=0)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        return cls(mean=mean, std=np.where(std <= tiny, 1.0, std))

    def transform(self, X):
        """``(X - mean) / std`` as float64 of the shape of ``X``."""
        return (self._check(X) - self.mean) / self.std

    def inverse_transform(self, X):
        """Undo :meth:`transform`."""
        return self._check(X) * self.std + self.mean

    def _check(self, X):
        X = _as_matrix(X, "X")
        if X.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, the Standardizer was fit on {self.mean.shape[0]}"
            )
        return X


def _as_matrix(X, name):
    """``X`` as a float64 ``(m, n_features)`` array of finite real numbers (complex and text
    are refused, not cast)."""
    X = check_X(X, None, name, allow_empty=True)
    return X.astype(np.float64, copy=False)


def standardize(X_train, X_test=None):
    """Fit a :class:`Standardizer` on ``X_train`` and apply it to both sets.

    Returns ``(X_train_std, X_test_std, scaler)``: float64 arrays of the input shapes
    (``X_test_std`` is None when ``X_test`` is None) and the fitted scaler, to apply later
    with ``scaler.transform(X_new)``.
    """
    _as_matrix(X_train, "X_train")  # errors name the argument
    if X_test is not None:
        _as_matrix(X_test, "X_test")
    scaler = Standardizer.fit(X_train)
    X_test_std = None if X_test is None else scaler.transform(X_test)
    return scaler.transform(X_train), X_test_std, scaler


_MAX_ONE_HOT = 2**30  # elements (8 GiB of float64): beyond it, a label is surely a mistake


def one_hot(y, n_classes=None):
    """One-hot encode integer labels ``y`` of shape ``(m,)`` into float64 ``(m, n_classes)``.

    ``n_classes`` defaults to ``max(y) + 1``; a label outside ``0..n_classes-1`` raises ValueError.
    """
    y = _as_labels(y)
    if n_classes is None:
        if y.size == 0:
            raise ValueError("n_classes is required when y is empty")
        n_classes = int(y.max()) + 1
    n_classes = _check_int("n_classes", n_classes, 1)
    if y.shape[0] * n_classes > _MAX_ONE_HOT:
        raise ValueError(f"one_hot of {y.shape[0]} labels with n_classes={n_classes} would hold "
                         f"{y.shape[0] * n_classes} floats (limit {_MAX_ONE_HOT})")
    if y.size and y.max() >= n_classes:
        raise ValueError(f"label {y.max()} out of range for n_classes={n_classes}")
    out = np.zeros((y.shape[0], n_classes), dtype=np.float64)
    out[np.arange(y.shape[0]), y] = 1.0
    return out


# --------------------------------------------------------------------------- registry


DATASETS = {"spiral": spiral, "moons": moons, "circles": circles, "digits": digits}
_PREFIXED = {
    "csv:": lambda path, **kw: load_csv(path, **kw)[:2],
    "idx:": load_mnist,
}


def get(name, **kw):
    """Dataset by name for the CLI: returns ``(X, y)`` (float64 ``(m, n)``, int64 ``(m,)``).

    Names: ``spiral``, ``moons``, ``circles``, ``digits``, ``csv:PATH`` (:func:`load_csv`, the
    classes mapping dropped), ``idx:DIR`` (:func:`load_mnist`). Keyword arguments go to the loader.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {name!r}")
    if name in DATASETS:
        return DATASETS[name](**kw)
    for prefix, loader in _PREFIXED.items():
        if name.startswith(prefix):
            target = name[len(prefix) :]
            if not target:
                raise ValueError(f"dataset {name!r} needs a path after {prefix!r}")
            return loader(os.path.expanduser(target), **kw)
    known = ", ".join([*DATASETS, "csv:PATH", "idx:DIR"])
    raise ValueError(f"unknown dataset {name!r}; known: {known}")
