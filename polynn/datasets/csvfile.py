"""CSV tables: UTF-8 rows read with errors that name the file, line and column (both counted
from 1, as editors and spreadsheets count them); a header inferred from the first row;
classification tables and prediction data."""

from __future__ import annotations

import csv
import math
import os
import re

import numpy as np

from polynn.datasets.labels import encode_labels, label_values
from polynn.datasets.paths import regular_file
from polynn.validate import check_int

# Undecodable bytes, kept by errors="surrogateescape" as lone surrogates, so that the error can
# name the line and column where they are.
_UNDECODED = re.compile("[\udc80-\udcff]")


def _read_rows(path, delimiter=","):
    """Non-blank rows of a UTF-8 CSV file as (line number, stripped cells) pairs.

    Raises FileNotFoundError, IsADirectoryError or ValueError naming a file that is missing, a
    directory or not a regular file, and ValueError naming the file and line for an
    empty file, bytes that are not UTF-8, a field longer than Python's csv limit or a
    malformed quote."""
    path = regular_file(path, "CSV file")
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
                    raise ValueError(f"{path}: line {line}, column {column + 1}: byte "
                                     f"0x{byte:02x} "
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
    _check_delimiter(path, rows, delimiter)
    return rows


_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _check_delimiter(path, rows, delimiter):
    """Refuse, naming it, a file whose fields are separated by another delimiter than
    ``delimiter``: each of its first rows is then one field holding the same number of, say,
    semicolons (a file that would otherwise be read as one column of text)."""
    head = rows[:5]
    if any(len(cells) != 1 for _, cells in head):
        return
    for other, name in _DELIMITER_NAMES.items():
        counts = {cells[0].count(other) for _, cells in head}
        if other != delimiter and len(counts) == 1 and counts != {0}:
            expected = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
            raise ValueError(
                f"{path}: line {head[0][0]} has no {expected} but {counts.pop()} {name}: the "
                f"file's fields look separated by {name} ({other!r}), not {expected}; save it "
                f"with {expected}, or read it with load_csv(..., delimiter={other!r})")


def _shown(cell, limit=60) -> str:
    """A cell as a message quotes it: its repr, cut to about ``limit`` characters (a field can
    hold 131,072)."""
    text = repr(cell)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(cell)} characters)"


def _listed(names, most=10) -> str:
    """Column names as a message lists them: at most ``most``, each :func:`_shown`."""
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return "[" + ", ".join(_shown(n) for n in names[:most]) + more + "]"


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
            raise ValueError(f"{path}: label column {_shown(label_column)} {problem}; "
                             f"columns: {_listed(names)}")
        return names.index(label_column)
    index = check_int("label_column", label_column, -width)
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
                where = f"column {col + 1}" + (f" ({_shown(names[col])})" if names else "")
                raise ValueError(f"{path}: line {line}, {where}: {_shown(row[col])} is not a "
                                 "number")
    return X


def _parse_labels(path, raw):
    """Map labels to 0..k-1 via their sorted unique values (:mod:`polynn.datasets.labels`'
    rules: numeric when they all parse)."""
    return encode_labels(label_values(raw, f"{path}: labels"))


def load_csv(path: str | os.PathLike[str], *, label_column: int | str = -1,
             header: bool | str = "infer",
             delimiter: str = ",") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load a classification table from a UTF-8 CSV file (blank lines are skipped).

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    label_column : int or str, default -1
        The label column: an index (negative counts from the end) or a header name.
    header : {True, False, "infer"}, default "infer"
        "infer": a header is assumed when a name is given or when no cell of the first row is
        a number (a first row with some numbers is data, and its non-numeric feature cells
        are errors).
    delimiter : str, default ","
        The field separator.

    Returns
    -------
    X : numpy.ndarray of float64, shape (m, n_columns - 1)
    y : numpy.ndarray of int64, shape (m,)
        Labels 0..k-1.
    classes : numpy.ndarray, shape (k,)
        The sorted original label values (int64 when all are whole numbers, float64 when
        numeric, else strings): ``classes[y]`` gives the labels back. Labels already 0..k-1
        are kept as they are (``classes == arange(k)``).

    Raises
    ------
    ValueError
        Naming the file and the problem: an empty file, ragged rows, non-numeric features
        (with line and column), bytes that are not UTF-8, a field longer than Python's csv
        limit, or an unknown label column.
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


def load_csv_features(path: str | os.PathLike[str], n_features: int, *,
                      delimiter: str = ",") -> tuple[np.ndarray, np.ndarray | None]:
    """Prediction data from a UTF-8 CSV file: the model's ``n_features`` features, optionally
    followed by a label column.

    The first row is a header only when none of its cells is a number, so that every data row
    gives one prediction.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    n_features : int
        The model's number of features.
    delimiter : str, default ","
        The field separator.

    Returns
    -------
    X : numpy.ndarray of float64, shape (m, n_features)
    labels : numpy.ndarray, shape (m,), or None
        The label column's values as :func:`load_csv` reads them (int64 when all are whole
        numbers, float64 when all are numbers, else strings), to be mapped through a model's
        classes; None without a label column.

    Raises
    ------
    ValueError
        Naming the file (and line and column): a width that is neither ``n_features`` nor
        ``n_features + 1``, ragged rows or a feature that is not a finite number.
    """
    rows = _read_rows(path, delimiter)
    if _header_row(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: no data rows")
    width = len(rows[0][1])
    if width not in (n_features, n_features + 1):
        raise ValueError(f"{path} has {width} columns; the model takes {n_features} features "
                         "(optionally followed by a label column)")
    X = np.empty((len(rows), n_features))
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {width}")
        for c in range(n_features):
            value = float(row[c]) if _is_number(row[c]) else math.nan
            if not math.isfinite(value):
                raise ValueError(f"{path}: line {line}, column {c + 1}: {_shown(row[c])} is not a "
                                 "number")
            X[r, c] = value
    labels = None
    if width == n_features + 1:
        labels = label_values([row[-1] for _, row in rows], f"{path}: labels")
    return X, labels
