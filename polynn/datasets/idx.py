"""IDX files (MNIST and its relatives): read plain or gzip, or memory-mapped when plain."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from polynn.datasets.paths import regular_file
from polynn.validate import check_choice

_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


#: Most dimensions an IDX file may declare: NumPy's limit on an array's dimensions.
MAX_IDX_DIMS = 64
#: Bytes decompressed at a time from a gzip IDX file.
GZIP_PIECE = 1 << 20


def _read_exactly(f, n, path, what):
    """``n`` bytes of the (decompressing) file ``f``; ValueError naming the file when fewer."""
    try:
        data = f.read(n)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from None
    if len(data) < n:
        raise ValueError(f"{path}: truncated IDX header ({what}: {len(data)} bytes, need {n})")
    return data


def _read_data(f, path, dims, expected):
    """The ``expected`` bytes after the header of the open (decompressing) file ``f``, read in
    pieces of at most :data:`GZIP_PIECE`: memory grows with what the file really holds and
    reading stops as soon as it holds more than the header promises (a small gzip can inflate
    to gigabytes)."""
    buf = bytearray()
    try:
        while len(buf) <= expected:
            piece = f.read(min(GZIP_PIECE, expected + 1 - len(buf)))
            if not piece:
                break
            buf += piece
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from None
    if len(buf) < expected:
        raise ValueError(
            f"{path}: truncated data: header promises shape {dims} ({expected} bytes), "
            f"file holds {len(buf)} bytes"
        )
    if len(buf) > expected:
        raise ValueError(f"{path}: unexpected bytes after the data for shape {dims} (the "
                         f"header promises {expected} bytes)")
    return buf


def _parse_header(path, head):
    """Parse an IDX header from its first bytes ``head`` (at least 4, up to the full header).

    Returns ``(dims, big-endian dtype, header length)``. Raises ValueError naming the file for
    a bad magic number, an unknown type code, 0 or more than :data:`MAX_IDX_DIMS` dimensions,
    or a truncated header."""
    if len(head) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} bytes, need at least 4)")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(
            f"{path}: bad magic number 0x{head[:4].hex()} (an IDX file starts with two zero bytes)"
        )
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_IDX_DIMS:
        raise ValueError(f"{path}: IDX header declares {ndim} dimensions (polynn reads 1 to "
                         f"{MAX_IDX_DIMS}, NumPy's limit)")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} bytes, need {header_len})")
    dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return dims, np.dtype(_IDX_DTYPES[code]), header_len


def _check_size(path, dims, expected, got):
    """ValueError naming the file unless the ``got`` bytes after the header are the
    ``expected`` ones of shape ``dims``."""
    if got < expected:
        raise ValueError(
            f"{path}: truncated data: header promises shape {dims} ({expected} bytes), "
            f"file holds {got} bytes"
        )
    if got > expected:
        raise ValueError(
            f"{path}: {got - expected} unexpected bytes after the data for shape {dims}"
        )


def _idx_header(path, head, data_bytes):
    """``(dims, big-endian dtype, header length)`` of the header ``head``, the
    ``data_bytes(header_len)`` bytes after it checked against what the header promises."""
    dims, dtype, header_len = _parse_header(path, head)
    _check_size(path, dims, math.prod(dims) * dtype.itemsize, data_bytes(header_len))
    return dims, dtype, header_len


def _read_idx(path):
    """The IDX file at ``path`` (plain or gzip) read into memory: ``(dims, big-endian dtype,
    data bytes)``. The header is read first, and no more data than it promises (plus one
    byte, to tell that there is more) is ever held."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC  # (gzip whatever the file's name)
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw as f:
            return _read_open_idx(f, path, compressed)


def _read_open_idx(f, path, compressed):
    """:func:`_read_idx` of the open (decompressing) file ``f``."""
    head = _read_exactly(f, 4, path, "its first bytes")
    if head[:2] == b"\0\0" and 1 <= head[3] <= MAX_IDX_DIMS:
        head += _read_exactly(f, 4 * head[3], path, "the dimensions")
    dims, dtype, header_len = _parse_header(path, head)
    expected = math.prod(dims) * dtype.itemsize
    if not compressed:  # a plain file's size says at once whether the data fits
        _check_size(path, dims, expected, os.fstat(f.fileno()).st_size - header_len)
    return dims, dtype, _read_data(f, path, dims, expected)


# numpy.memmap's modes that open an existing file ("w+" would create or overwrite it).
_MMAP_MODES = ("r", "r+", "c")


def check_mmap_mode(mmap_mode):
    """``mmap_mode`` if it is None or a :class:`numpy.memmap` mode that opens an existing file
    ("r", "r+", "c"), else ValueError (shared with the ``.npy`` readers)."""
    if mmap_mode is not None and mmap_mode not in _MMAP_MODES:
        raise ValueError(
            f"mmap_mode must be None (read into memory) or one of {_MMAP_MODES}, "
            f"got {mmap_mode!r}"
        )
    return mmap_mode


def _map_idx(path, mmap_mode):
    """An uncompressed IDX file memory-mapped: a numpy.memmap over the data after the header."""
    path = regular_file(path, "IDX file")
    with path.open("rb") as f:
        head = f.read(4 + 4 * 255)  # the longest possible header
    if head[:2] == _GZIP_MAGIC:
        raise ValueError(
            f"{path} is gzip-compressed, and compressed data cannot be memory-mapped: "
            f"decompress it once (gunzip -k {path.name}) and map the plain file, or pass "
            "mmap_mode=None to read it into memory"
        )
    size = path.stat().st_size
    dims, dtype, header_len = _idx_header(path, head, lambda header_len: size - header_len)
    if math.prod(dims) == 0:  # mmap refuses an empty mapping
        return np.empty(dims, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode=mmap_mode, offset=header_len, shape=dims)


def read_idx(path: str | os.PathLike[str], *, mmap_mode: str | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip) into an array of its stored shape and dtype.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32; the data follows, big-endian, row-major.

    Parameters
    ----------
    path : str or path-like
        The IDX file, plain or gzip.
    mmap_mode : {None, "r", "r+", "c"}, default None
        As :class:`numpy.memmap`: map an *uncompressed* file instead of reading it; nothing
        is loaded until rows are used, so a file larger than memory works.

    Returns
    -------
    numpy.ndarray, shape dims
        Native byte order; mapped: a ``numpy.memmap`` that keeps the file's byte order
        (big-endian ``>i2``/``>i4``/``>f4``/``>f8`` for multi-byte types, read correctly by
        NumPy; converting to native order would copy the data).

    Raises
    ------
    ValueError
        Naming the file: a bad magic number, an unknown type code, more than 64 dimensions, a
        data size that differs from what the header promises (a gzip file is decompressed
        piece by piece and refused as soon as it holds more), or a gzip file to map.
    FileNotFoundError, IsADirectoryError
        ``path`` is not a regular file.
    """
    if check_mmap_mode(mmap_mode) is not None:
        return _map_idx(path, mmap_mode)
    dims, dtype, buf = _read_idx(regular_file(path, "IDX file"))
    data = np.frombuffer(buf, dtype=dtype, count=math.prod(dims))
    return data.astype(dtype.newbyteorder("="), copy=False).reshape(dims)


def load_idx(images_path: str | os.PathLike[str],
             labels_path: str | os.PathLike[str] | None = None, *,
             mmap_mode: str | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Read an IDX images file and, optionally, its IDX labels file.

    See :func:`load_mnist` for flattened float64 features in [0, 1].

    Parameters
    ----------
    images_path : str or path-like
        The images file (plain or gzip).
    labels_path : str or path-like, optional
        The labels file (plain or gzip); always read into memory.
    mmap_mode : {None, "r", "r+", "c"}, default None
        Map the (uncompressed) images file, as :func:`read_idx`.

    Returns
    -------
    images : numpy.ndarray, shape (m, ...)
        As stored (native dtype); alone when ``labels_path`` is None.
    labels : numpy.ndarray of int64, shape (m,)
        With ``labels_path``.

    Raises
    ------
    ValueError
        Naming both files when the counts differ; naming the labels file when they are not
        1-D or are floats that are not whole numbers (never truncated); as :func:`read_idx`.
    """
    images = read_idx(images_path, mmap_mode=mmap_mode)
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
    return images, _whole_labels(labels, labels_path)


def _whole_labels(labels, path):
    """Labels as int64, refusing float labels that are not whole (1.5, NaN, inf) or beyond
    int64 rather than truncating them."""
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) >= 2.0**63)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{path}: labels must be whole numbers; label {i} is "
                             f"{labels[i]!r} (polynn does not round or truncate labels)")
    return labels.astype(np.int64)


_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _find_file(directory, stem):
    """The first of ``stem``, ``stem.gz`` (or the ``.idx3-ubyte`` spelling) found in directory."""
    alt = stem.replace("-idx", ".idx")
    tried = [Path(directory) / name for name in (stem, stem + ".gz", alt, alt + ".gz")]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError("no IDX file found; tried: " + ", ".join(str(p) for p in tried))


def load_mnist(directory: str | os.PathLike[str], kind: str = "train", *,
               mmap_mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST, KMNIST...) from a local directory of IDX files.

    Parameters
    ----------
    directory : str or path-like
        Holds ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]`` (``t10k-...``
        for ``kind="test"``).
    kind : {"train", "test"}, default "train"
        Which pair of files.
    mmap_mode : {None, "r", "r+", "c"}, default None
        Memory-map the uncompressed images file: ``X`` is then the raw pixels, not scaled
        (scaling would copy the data into memory). To train from disk on [0, 1] features,
        write them once with ``write_npy(path, X, dtype="float32", scale=1 / 255)``, which
        returns the new file memory-mapped; :func:`load_npy` opens it again later.

    Returns
    -------
    X : numpy.ndarray, shape (m, rows * cols)
        float64 in [0, 1] (pixel / 255); mapped: a uint8 ``numpy.memmap`` of pixels 0..255.
    y : numpy.ndarray of int64, shape (m,)

    Raises
    ------
    ValueError
        An unknown ``kind``, images that are not uint8 ``(m, rows, cols)``, or as
        :func:`load_idx`.
    FileNotFoundError
        A file is missing.
    """
    prefix = _MNIST_PREFIX[check_choice("kind", kind, _MNIST_PREFIX)]
    images_path = _find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = load_idx(images_path, labels_path, mmap_mode=mmap_mode)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (m, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    flat = images.reshape(images.shape[0], -1)  # a view, also of a memmap
    if mmap_mode is not None:
        return flat, labels
    return flat.astype(np.float64) / 255.0, labels
