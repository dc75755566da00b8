""".npy files opened memory-mapped and written chunk by chunk, for data larger than memory."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from polynn.datasets.idx import check_mmap_mode
from polynn.validate import check_int


def load_npy(path, *, mmap_mode="r"):
    """Open a ``.npy`` array, memory-mapped by default (``mmap_mode`` "r", "r+", "c" as
    :func:`numpy.load`; None reads it into memory). A mapped array is read from disk only as its
    rows are used, so a file larger than memory can be trained on (``MLP.fit`` gathers and casts
    one batch at a time). Never unpickles: object arrays are refused.

    Returns the array (a ``numpy.memmap`` when mapped) with its stored shape and dtype. Raises
    FileNotFoundError or ValueError naming the file (an ``.npz`` archive, object or non-numeric
    data). ``numpy.load(path, mmap_mode="r")`` works as well; this adds the checks.
    """
    check_mmap_mode(mmap_mode)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f".npy file not found: {path}")
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


def write_npy(path, X, *, dtype=None, scale=None, chunk_rows=None):
    """Write ``X`` (any array NumPy can slice by rows, a memmap included) to a ``.npy`` file
    chunk by chunk, cast to ``dtype`` (default: X's) and multiplied by ``scale`` when given, so
    that converting data larger than memory never holds more than one chunk (``chunk_rows``,
    default about 64 MiB of output). The write is atomic (a temporary file in the target's
    directory, renamed at the end). Returns the new file memory-mapped read-only
    (:func:`load_npy`).
    """
    path = Path(path)
    dtype = np.dtype(dtype if dtype is not None else X.dtype)
    if scale is not None and not np.issubdtype(dtype, np.inexact):
        raise ValueError(f"scale needs a floating dtype, got dtype {dtype}")
    if X.ndim < 1:
        raise ValueError(f"X must have at least one dimension, got shape {X.shape}")
    m = X.shape[0]
    row_bytes = max(1, math.prod(X.shape[1:]) * dtype.itemsize)
    if chunk_rows is None:
        chunk_rows = max(1, (64 << 20) // row_bytes)
    chunk_rows = check_int("chunk_rows", chunk_rows, 1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=X.shape)
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
