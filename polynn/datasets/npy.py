""".npy files opened memory-mapped and written chunk by chunk, for data larger than memory."""

from __future__ import annotations

import errno
import math
import os
import stat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from polynn.datasets.idx import check_mmap_mode
from polynn.datasets.paths import regular_file
from polynn.validate import check_int, check_real


def _npy_header(path):
    """``(shape, dtype)`` of the ``.npy`` file at ``path``, its declared size checked against
    the file's before anything is allocated or mapped (a 900-byte file can declare 80 TB)."""
    size = os.stat(path).st_size
    if size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes), not a .npy array")
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(f"{path} is an .npz archive of several arrays, not one .npy array")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _, dtype = reader(f)
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            raise ValueError(f"{path}: not a .npy array, or its header is damaged "
                             f"({_bounded(str(err))})") from None
        data_start = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: holds Python objects (dtype {dtype}); polynn never "
                         "unpickles: expected numbers")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise ValueError(f"{path}: expected numbers, got dtype {dtype}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > size - data_start:
        raise ValueError(f"{path}: truncated or damaged: its header declares shape "
                         f"{_bounded(str(shape))} of "
                         f"{dtype} ({declared} bytes) but the file holds {size - data_start} "
                         "bytes of data")
    return shape, dtype


def _bounded(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (a header's text can be long)."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def load_npy(path: str | os.PathLike[str], *,
             mmap_mode: Literal["r", "r+", "c"] | None = "r") -> np.ndarray:
    """Open a ``.npy`` array, memory-mapped by default.

    A mapped array is read from disk only as its rows are used, so a file larger than memory
    can be trained on (``MLP.fit`` gathers and casts one batch at a time). Never unpickles:
    object arrays are refused. ``numpy.load(path, mmap_mode="r")`` works as well; this adds
    the checks.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file.
    mmap_mode : {"r", "r+", "c", None}, default "r"
        As :func:`numpy.load`; None reads the array into memory.

    Returns
    -------
    numpy.ndarray
        With its stored shape and dtype (a ``numpy.memmap`` when mapped).

    Raises
    ------
    FileNotFoundError, IsADirectoryError, ValueError
        Naming the file: not a regular file, an empty file, an ``.npz`` archive, object or
        non-numeric data, a header declaring more data than the file holds (checked before
        anything is allocated).
    """
    check_mmap_mode(mmap_mode)
    path = regular_file(path, ".npy file")
    _npy_header(path)
    try:
        data = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle; a corrupt header
        raise ValueError(f"{path}: cannot load as a plain .npy array ({err})") from err
    if not isinstance(data, np.ndarray):
        data.close()
        raise ValueError(f"{path} is an .npz archive of several arrays, not one .npy array")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
        raise ValueError(f"{path}: expected numbers, got dtype {data.dtype}")
    return data


def _numeric_dtype(dtype, name="dtype") -> np.dtype:
    """``dtype`` as a NumPy dtype of numbers (or bool), else TypeError naming ``name``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{name} must be a NumPy dtype of numbers such as 'float32', got "
                        f"{dtype!r} ({err})") from None
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric dtype, got {dtype}")
    return dtype


def _check_replaceable(path: Path) -> None:
    """Refuse, as ``open(path, "wb")`` (and so ``numpy.save``) would, to replace what the user
    may not write: the rename of a temporary would otherwise replace a read-only file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: not a regular file (a FIFO, device or socket); write_npy "
                         "will not replace it")
    try:  # opening for writing (no truncation) is exactly the permission test open() applies
        os.close(os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0)))
    except PermissionError:
        raise PermissionError(errno.EACCES, "Permission denied (write_npy does not replace a "
                              "read-only file)", str(path)) from None


def write_npy(path: str | os.PathLike[str], X: Any, *, dtype: Any = None,
              scale: float | None = None, chunk_rows: int | None = None) -> np.ndarray:
    """Write ``X`` to a ``.npy`` file chunk by chunk, so that converting data larger than
    memory never holds more than one chunk. The write is atomic (a temporary file in the
    target's directory, renamed at the end).

    Parameters
    ----------
    path : str or path-like
        The file to write.
    X : array, shape (m, ...)
        Any array NumPy can slice by rows, a memmap included.
    dtype : numeric dtype, optional
        The file's dtype (default: X's).
    scale : float, optional
        Multiply every value by it (e.g. ``1 / 255``).
    chunk_rows : int, optional
        Rows per chunk (default: about 64 MiB of output).

    Returns
    -------
    numpy.memmap
        The new file memory-mapped read-only (:func:`load_npy`).

    Raises
    ------
    TypeError
        Before anything is written: an ``X`` or ``dtype`` that is not numeric, a ``scale``
        that is not a real number (:class:`polynn.validate.ParameterError`).
    ValueError
        Before anything is written: a NaN or infinite ``scale``, or one with an integer
        ``dtype``.
    PermissionError, IsADirectoryError
        As ``numpy.save``: ``path`` exists and may not be written (it is not replaced), or is
        a directory.
    """
    path = Path(path)
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = np.asarray(X)  # a Python list or the like: small, since it is in memory already
    if X.ndim < 1:
        raise ValueError(f"X must have at least one dimension, got shape {X.shape}")
    x_dtype = _numeric_dtype(X.dtype, "X's dtype")
    dtype = _numeric_dtype(dtype if dtype is not None else x_dtype)
    if scale is not None:
        if not np.issubdtype(dtype, np.inexact):
            raise ValueError(f"scale needs a floating dtype, got dtype {dtype}")
        scale = check_real("scale", scale)
    _check_replaceable(path)
    m = X.shape[0]
    row_bytes = max(1, math.prod(X.shape[1:]) * dtype.itemsize)
    if chunk_rows is None:
        chunk_rows = max(1, (64 << 20) // row_bytes)
    chunk_rows = check_int("chunk_rows", chunk_rows, 1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=X.shape)
        except OSError as err:  # name the file asked for, not the temporary
            raise type(err)(err.errno, f"{err.strerror} (writing a temporary file next to "
                            "it)", str(path)) from None
        for start in range(0, m, chunk_rows):
            block = np.asarray(X[start : start + chunk_rows])
            if scale is not None:
                block = block.astype(np.result_type(dtype, np.float32)) * scale
            out[start : start + chunk_rows] = block
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return load_npy(path, mmap_mode="r")
