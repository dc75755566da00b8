"""IDX files (MNIST and its relatives): read plain or gzip, or memory-mapped when plain."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

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


def _idx_header(path, head, data_bytes):
    """Parse an IDX header from its first bytes ``head`` (at least 4, up to the full header).

    Returns ``(dims, big-endian dtype, header length)``; ``data_bytes(header_len)`` gives the
    number of bytes after the header, checked against what the header promises."""
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
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} bytes, need {header_len})")
    dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    got = data_bytes(header_len)
    if got < expected:
        raise ValueError(
            f"{path}: truncated data: header promises shape {dims} ({expected} bytes), "
            f"file holds {got} bytes"
        )
    if got > expected:
        raise ValueError(
            f"{path}: {got - expected} unexpected bytes after the data for shape {dims}"
        )
    return dims, dtype, header_len


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
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


def read_idx(path, *, mmap_mode=None):
    """Read one IDX file (plain or gzip) into an array of its stored shape and dtype.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32; the data follows, big-endian, row-major. Returns a native-byte-order ndarray of shape
    ``dims``. Raises ValueError naming the file for a bad magic number, an unknown type code, or
    a data size that differs from what the header promises.

    ``mmap_mode`` ("r", "r+" or "c", as :class:`numpy.memmap`) maps an *uncompressed* file
    instead of reading it: nothing is loaded until rows are used, so a file larger than memory
    works. The result is a ``numpy.memmap`` that keeps the file's byte order (big-endian
    ``>i2``/``>i4``/``>f4``/``>f8`` for multi-byte types, read correctly by NumPy; converting to
    native order would copy the data). A gzip file cannot be mapped and raises ValueError.
    """
    if check_mmap_mode(mmap_mode) is not None:
        return _map_idx(path, mmap_mode)
    path = Path(path)
    buf = _read_bytes(path)
    dims, dtype, header_len = _idx_header(path, buf[: 4 + 4 * 255],
                                          lambda header_len: len(buf) - header_len)
    data = np.frombuffer(buf, dtype=dtype, count=math.prod(dims), offset=header_len)
    return data.astype(dtype.newbyteorder("=")).reshape(dims)


def load_idx(images_path, labels_path=None, *, mmap_mode=None):
    """Read an IDX images file and, optionally, its IDX labels file.

    Returns the images as stored (ndarray of shape ``(m, ...)``, native dtype) when
    ``labels_path`` is None, else ``(images, labels)`` with labels int64 of shape ``(m,)``.
    Raises ValueError naming both files when the counts differ or the labels are not 1-D.
    ``mmap_mode`` maps the (uncompressed) images file, as :func:`read_idx`; the labels, small,
    are always read into memory (plain or gzip).
    See :func:`load_mnist` for flattened float64 features in [0, 1].
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


def load_mnist(directory, kind="train", *, mmap_mode=None):
    """MNIST (or Fashion-MNIST, KMNIST...) from a local directory of IDX files.

    Looks for ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]``
    (``t10k-...`` for ``kind="test"``). Returns ``X`` float64 ``(m, rows * cols)`` in [0, 1]
    (pixel / 255) and ``y`` int64 ``(m,)``.

    With ``mmap_mode`` ("r", "r+" or "c") the uncompressed images file is memory-mapped and
    ``X`` is a ``(m, rows * cols)`` uint8 ``numpy.memmap`` of the raw pixels 0..255, *not*
    scaled (scaling would copy the data into memory). To train from disk on [0, 1] features,
    write them once with ``write_npy(path, X, dtype="float32", scale=1 / 255)``, which returns
    the new file memory-mapped; :func:`load_npy` opens it again later.
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
