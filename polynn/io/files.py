"""Records to files and back: :func:`write` and :func:`read`."""

from __future__ import annotations

import os

import safetensors
import safetensors.numpy

from polynn.io.errors import ModelFileError, Refused
from polynn.io.record import ModelRecord, from_contents, to_contents
from polynn.io.safetensors_file import MAX_HEADER_BYTES, read_header, write_atomically
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


def write(path, record: ModelRecord) -> None:
    """Write ``record`` to the safetensors file ``path`` (exactly that name; nothing is
    appended), atomically: the previous file at ``path``, if any, stays intact until the new
    one is complete. A record with a ``training`` state makes a checkpoint. Through a symlink,
    the file it points to is replaced.

    Raises ValueError (and writes nothing) for a record that :func:`read` would refuse (NaN or
    infinite values, a configuration ``MLP(...)`` refuses, tensors that do not match it) or
    that no file can hold (an optimizer or schedule that is not polynn's own); as
    ``open(path, "wb")``: PermissionError naming ``path`` when it exists and may not be
    written, IsADirectoryError when it is a directory."""
    name = os.fspath(path)
    try:
        blob = _encode(record)
    except Refused as err:
        why = "" if err.unsaveable else " (polynn.load would refuse the file)"
        raise ValueError(f"cannot save to {name!r}: {err.detail}{why}") from None
    write_atomically(name, blob)


def _read(name: str, checkpoint: bool):
    """``(plan, {tensor: host array})`` of the file at ``name``, every check passed."""
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise Refused("the file is empty", corrupt=True)
        metadata, described = read_header(f, size)
    checked = plan(metadata, described, checkpoint=checkpoint)
    arrays = {}
    try:
        # safetensors maps the file and checks the header again; a file replaced since the
        # header was read is caught by comparing its metadata and each tensor's dtype/shape.
        with safetensors.safe_open(name, framework="numpy") as f:
            if (f.metadata() or {}) != metadata or set(f.keys()) != set(described):
                raise Refused("the file changed while it was read", corrupt=True)
            for key in sorted(checked.shapes, key=natural):
                array = f.get_tensor(key)
                if array.dtype != checked.dtype or array.shape != tuple(checked.shapes[key]):
                    raise Refused("the file changed while it was read", corrupt=True)
                arrays[key] = array
    except safetensors.SafetensorError as err:
        raise Refused(f"safetensors refuses it ({err})", corrupt=True) from err
    if checksum(metadata, arrays) != metadata[CHECKSUM_KEY]:
        raise Refused(f"its {CHECKSUM_KEY} does not match its content", corrupt=True)
    for key in sorted(arrays, key=natural):
        check_finite(key, arrays[key])
    return checked, arrays


def read(path, *, checkpoint: bool = False) -> ModelRecord:
    """The :class:`ModelRecord` of the polynn file at ``path``. With ``checkpoint`` the file
    must hold a training state (written from a record with ``training``), returned in the
    record's ``training``; without it ``training`` is None (a model that starts afresh).

    Every field is checked before anything is built from it: the header's length and JSON
    within polynn's limits, each tensor's dtype, shape and byte range, the configuration by the
    rules ``MLP(...)`` applies, the checksum, finite values. Raises :class:`ModelFileError` (a
    ValueError) naming the file when it is not a polynn file, is truncated or corrupted,
    exceeds polynn's limits, or does not match itself; FileNotFoundError and other OSErrors as
    ``open`` does."""
    name = os.fspath(path)
    try:
        checked, arrays = _read(name, checkpoint)
    except Refused as err:
        if err.corrupt:
            raise ModelFileError(f"{name!r} is truncated or corrupted: {err.detail}") from None
        raise ModelFileError(f"{name!r}: {err.detail}") from None
    return from_contents(checked, arrays, checkpoint=checkpoint)
