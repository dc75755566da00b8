"""Records to files and back: :func:`write` and :func:`read`."""

from __future__ import annotations

import errno
import os
import stat

import safetensors.numpy

from polynn.io.errors import ModelFileError, Refused, bounded
from polynn.io.record import ModelRecord, from_contents, to_contents
from polynn.io.safetensors_file import (
    MAX_HEADER_BYTES,
    read_header,
    read_tensor,
    write_atomically,
)
from polynn.io.schema import CHECKSUM_KEY, check_finite, checksum, natural, plan


def _encode(record: ModelRecord) -> bytes:
    """The file's bytes, after the reader's own checks: what :func:`read` would refuse is not
    written."""
    tensors, metadata = to_contents(record)
    plan({**metadata, CHECKSUM_KEY: "0" * 64},  # (the checksum comes last, over all else)
         {key: (a.dtype, a.shape) for key, a in tensors.items()},
         checkpoint=record.training is not None)
    for key in sorted(tensors, key=natural):
        check_finite(key, tensors[key])
    metadata[CHECKSUM_KEY] = checksum(metadata, tensors)
    blob = safetensors.numpy.save(tensors, metadata=metadata)
    header = int.from_bytes(blob[:8], "little")
    if header > MAX_HEADER_BYTES:
        raise Refused(f"its header would take {header} bytes, more than polynn reads "
                      f"({MAX_HEADER_BYTES})")
    return blob


def write(path: str | os.PathLike[str], record: ModelRecord) -> None:
    """Write ``record`` to a safetensors file, atomically: the previous file at ``path``, if
    any, stays intact until the new one is complete. Through a symlink, the file it points to
    is replaced.

    Parameters
    ----------
    path : str or path-like
        The file (exactly that name; nothing is appended).
    record : ModelRecord
        A record with a ``training`` state makes a checkpoint.

    Raises
    ------
    ValueError
        Writing nothing: a record that :func:`read` would refuse (NaN or infinite values, a
        configuration ``MLP(...)`` refuses, tensors that do not match it) or that no file can
        hold (an optimizer or schedule that is not polynn's own).
    PermissionError, IsADirectoryError
        As ``open(path, "wb")``: ``path`` exists and may not be written, or is a directory.
    """
    name = os.fspath(path)
    try:
        blob = _encode(record)
    except Refused as err:
        why = "" if err.unsaveable else " (polynn.load would refuse the file)"
        raise ValueError(f"cannot save to {name!r}: {bounded(err.detail)}{why}") from None
    write_atomically(name, blob)


def open_regular(name: str):
    """``name`` opened for reading in binary, refused (``Refused``) unless it is a regular
    file: a FIFO, a device or a socket would block or never end. The open itself does not
    block (O_NONBLOCK, cleared once the file is known to be regular)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    fd = os.open(name, flags | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
        if not stat.S_ISREG(mode):
            raise Refused("not a regular file (a FIFO, device or socket); polynn reads model "
                          "files only from regular files")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read(name: str, checkpoint: bool):
    """``(plan, {tensor: host array})`` of the file at ``name``, every check passed.

    The file is opened once: its header and its tensors come from the same open file, so that
    a file replaced (atomically, by a rename) meanwhile is seen whole, old or new."""
    with open_regular(name) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise Refused("the file is empty", corrupt=True)
        metadata, described, starts = read_header(f, size)
        checked = plan(metadata, described, checkpoint=checkpoint)
        arrays = {key: read_tensor(f, starts[key], *described[key])
                  for key in sorted(checked.shapes, key=natural)}
    if checksum(metadata, arrays) != metadata[CHECKSUM_KEY]:
        raise Refused(f"its {CHECKSUM_KEY} does not match its content", corrupt=True)
    for key in sorted(arrays, key=natural):
        check_finite(key, arrays[key])
    return checked, arrays


def read(path: str | os.PathLike[str], *, checkpoint: bool = False) -> ModelRecord:
    """The :class:`ModelRecord` of the polynn file at ``path``.

    Every field is checked before anything is built from it: the header's length and JSON
    within polynn's limits, each tensor's dtype, shape and byte range, the configuration by the
    rules ``MLP(...)`` applies, the checksum, finite values.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`write` (or ``MLP.save``).
    checkpoint : bool, default False
        The file must hold a training state, returned in the record's ``training``; without
        it ``training`` is None (a model that starts afresh).

    Returns
    -------
    ModelRecord

    Raises
    ------
    ModelFileError
        A ``ValueError`` naming the file: not a polynn file, truncated or corrupted, beyond
        polynn's limits, or not matching itself.
    OSError
        FileNotFoundError and others, as ``open`` raises them.
    """
    name = os.fspath(path)
    try:
        checked, arrays = _read(name, checkpoint)
    except Refused as err:
        detail = bounded(err.detail)
        if err.corrupt:
            raise ModelFileError(f"{name!r} is truncated or corrupted: {detail}") from None
        raise ModelFileError(f"{name!r}: {detail}") from None
    return from_contents(checked, arrays, checkpoint=checkpoint)
