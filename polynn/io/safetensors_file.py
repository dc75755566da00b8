"""The safetensors container: its header read within limits, and files written atomically.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON header (each
tensor's dtype, shape and byte range, plus string ``__metadata__``), then the raw little-endian
tensor data. :func:`read_header` checks all of it against the file's size before any tensor is
read. :func:`write_atomically` writes a temporary ``.{name}.polynn-tmp-{host}-{pid}-{token}``
next to the target, fsyncs and renames it onto the target, so the previous file stays intact
until the new one is complete; temporaries left behind by killed writes are removed by the next
write of the same target.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import secrets
import socket
import stat
import time

import numpy as np

from polynn.io.bounded_json import loads
from polynn.io.errors import Refused

#: Largest safetensors header polynn reads (and writes): ~15,000 layers with Adam's state.
MAX_HEADER_BYTES = 8 << 20
#: The tensor dtypes a polynn file holds, by safetensors code.
DTYPE_CODES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_SAFETENSORS_DTYPES = ("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
                       "I32", "U32", "F32", "F64", "I64", "U64")
PICKLE_MESSAGE = "file carries Python objects; polynn never loads pickles"
TEMP_MARK = ".polynn-tmp-"
#: This host, in the names of temporaries (a live process is recognised on its own host only).
HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


# --- reading ----------------------------------------------------------------------------------
def sniff(prefix: bytes) -> str | None:
    """What a file that is not safetensors is, from its first bytes, when that is telling
    (asked only of a file whose first 8 bytes are no plausible header length)."""
    if prefix[:1] == b"\x80" and prefix[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        # PROTO opcode and a protocol number: what every pickle since protocol 2 starts with.
        return f"{PICKLE_MESSAGE} (it is a pickle)"
    if prefix.startswith(b"\x93NUMPY"):
        return "it is a NumPy .npy array, not a polynn model file (a safetensors file)"
    if prefix.startswith(b"PK\x03\x04"):
        return ("it is a zip or .npz archive, not a polynn model file (a safetensors file). "
                "polynn no longer reads the .npz files of its first releases: load the model "
                "with the polynn that wrote it and save it again with this one")
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_text(f, size: int) -> str:
    """The header's JSON text of the open file ``f`` of ``size`` bytes, its length checked
    against :data:`MAX_HEADER_BYTES` and the file before a byte of it is read."""
    prefix = f.read(8)
    n = int.from_bytes(prefix, "little")
    if len(prefix) < 8 or n > MAX_HEADER_BYTES or n > size - 8:
        # Not a safetensors file: say what it is when its first bytes tell. (Only when the
        # length does not fit the file: a genuine header's length may well start with a
        # pickle's 0x80, and a damaged byte after it is damage, not a pickle.)
        known = sniff(prefix)
        if known is not None:
            raise Refused(known)
    if len(prefix) < 8:
        raise Refused(f"the file has {len(prefix)} bytes, fewer than the 8 of a safetensors "
                      "header length", corrupt=True)
    if n > MAX_HEADER_BYTES:
        raise Refused(f"its header declares {n} bytes, more than polynn reads "
                      f"({MAX_HEADER_BYTES}): not a polynn model file, or corrupted")
    if n > size - 8:
        raise Refused(f"its header declares {n} bytes but the file holds {size - 8} after the "
                      "length", corrupt=True)
    f.seek(8)
    raw = f.read(n)
    if len(raw) != n:
        raise Refused(f"the header has {len(raw)} bytes, expected {n}", corrupt=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Refused(f"the header is not UTF-8 ({err})", corrupt=True) from None
    if not text.startswith("{"):
        raise Refused("the header is not a JSON object: not a safetensors file", corrupt=True)
    return text


def _described(key, info):
    """``(dtype, shape, offsets)`` of one tensor entry of the header, checked."""
    if not (isinstance(info, dict) and info.keys() == {"dtype", "shape", "data_offsets"}):
        raise Refused(f"tensor {key!r} is not described by dtype, shape and data_offsets",
                      corrupt=True)
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in DTYPE_CODES:
        what = "a safetensors dtype" if code in _SAFETENSORS_DTYPES else "not a dtype"
        raise Refused(f"tensor {key!r} has dtype {code!r} ({what}); polynn files hold "
                      f"{' or '.join(DTYPE_CODES)}")
    if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
        raise Refused(f"tensor {key!r} has shape {shape!r}", corrupt=True)
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(_is_int(o) and o >= 0 for o in offsets) and offsets[0] <= offsets[1]):
        raise Refused(f"tensor {key!r} has data_offsets {offsets!r}", corrupt=True)
    nbytes = math.prod(shape) * DTYPE_CODES[code].itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise Refused(f"tensor {key!r} of shape {tuple(shape)} needs {nbytes} bytes but "
                      f"its data_offsets span {offsets[1] - offsets[0]}", corrupt=True)
    return DTYPE_CODES[code], tuple(shape), offsets


def read_header(f, size: int):
    """``(metadata, {tensor: (dtype, shape)}, {tensor: absolute byte offset})`` from the header
    of the open file ``f`` of ``size`` bytes, checked: its length, its JSON, each tensor's
    dtype, shape and byte range, and that the ranges tile the data exactly. The offsets are
    where each tensor's bytes start in ``f`` (read them from the same open file: a file
    replaced by a rename since is not seen)."""
    # root object, tensor object, shape/offsets list: a safetensors header is 3 deep.
    header = loads(_header_text(f, size), "the safetensors header", max_depth=3)
    if not isinstance(header, dict):
        raise Refused("the header is not a JSON object", corrupt=True)
    metadata = header.pop("__metadata__", {})
    if not (isinstance(metadata, dict)
            and all(isinstance(v, str) for v in metadata.values())):
        raise Refused("the header's __metadata__ is not an object of strings", corrupt=True)
    data_start = f.tell()  # (f is just past the header)
    data_size = size - data_start
    tensors, ranges, starts = {}, [], {}
    for key, info in header.items():
        dtype, shape, offsets = _described(key, info)
        tensors[key] = (dtype, shape)
        starts[key] = data_start + offsets[0]
        ranges.append((offsets[0], offsets[1], key))
    end = 0
    for begin, stop, key in sorted(ranges):
        if begin != end:
            raise Refused(f"tensor {key!r} starts at byte {begin}, not {end}: the data is not "
                          "contiguous", corrupt=True)
        end = stop
    if end != data_size:
        raise Refused(f"the header declares {end} bytes of tensor data but the file holds "
                      f"{data_size}", corrupt=True)
    return metadata, tensors, starts


def read_tensor(f, start: int, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """The tensor of ``dtype`` and ``shape`` whose bytes start at ``start`` in the open file
    ``f``, read into a new native-order array (one copy, no mapping of the file)."""
    array = np.empty(shape, dtype=dtype)
    view = memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    f.seek(start)
    done = 0
    while done < len(view):
        got = f.readinto(view[done:])
        if not got:
            raise Refused(f"the file ended {len(view) - done} bytes before the end of its "
                          "data", corrupt=True)
        done += got
    return array.astype(dtype.newbyteorder("="), copy=False)


# --- writing ----------------------------------------------------------------------------------
def _target(name: str) -> str:
    """The file a write to ``name`` replaces: a symlink (chain) is followed, as ``open`` does."""
    return os.path.realpath(name) if os.path.islink(name) else name


def _check_writable(target: str, name: str):
    """Refuse, as ``open(target, "wb")`` would, a target the user may not write; returns the
    existing file's stat (or None)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file, polynn will not replace it", name)
    try:  # opening for writing (no truncation) is exactly the permission test open() applies
        os.close(os.open(target, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0)))
    except PermissionError:
        raise PermissionError(errno.EACCES, "Permission denied", name) from None
    return st


def temporary_name(target: str, pid: int, token: str) -> str:
    """The temporary a write of ``target`` by process ``pid`` of this host uses."""
    directory, base = os.path.split(os.path.abspath(target))
    return os.path.join(directory, f".{base}{TEMP_MARK}{HOST_TAG}-{pid}-{token}")


def remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete the temporaries that killed writes of ``base`` left in ``directory``: those of
    processes of this host that no longer run, and any older than a day."""
    prefix = f".{base}{TEMP_MARK}"
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return
    for entry in names:
        host, _, rest = entry[len(prefix):].partition("-")
        pid = rest.partition("-")[0]
        path = os.path.join(directory, entry)
        try:
            stale = time.time() - os.lstat(path).st_mtime > 86400
            if not stale and host == HOST_TAG and pid.isdigit() and os.name == "posix":
                try:
                    os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
                except ProcessLookupError:
                    stale = True
                except (PermissionError, OverflowError):
                    pass
            if stale:
                os.unlink(path)
        except OSError:
            continue


def _create_temporary(target: str, name: str):
    """A new file next to ``target`` (same directory, so the rename is atomic), opened for
    writing. Created with mode 0o666 so the umask applies as for any new file (mkstemp would
    make it 0o600, and reading the umask means setting it, which is not thread-safe)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = temporary_name(target, os.getpid(), secrets.token_hex(4))
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory (its directory "
                                    "does not exist)", name) from None
        except PermissionError:
            raise PermissionError(errno.EACCES, "Permission denied (cannot create a file in "
                                  "its directory)", name) from None
    raise FileExistsError(f"could not create a temporary file next to {name!r}")


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; directories cannot be opened on
    Windows)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_atomically(path, blob: bytes) -> None:
    """Write ``blob`` at ``path`` (exactly that name): temporary file, fsync, rename. Through
    a symlink the file it points to is replaced; an existing file keeps its mode. As
    ``open(path, "wb")``: PermissionError naming ``path`` for a file the user may not write,
    IsADirectoryError for a directory, FileNotFoundError for a missing directory."""
    name = os.fspath(path)
    target = _target(name)
    existing = _check_writable(target, name)
    directory, base = os.path.split(os.path.abspath(target))
    remove_stale_temporaries(directory, base)
    tmp, fd = _create_temporary(target, name)
    try:
        with os.fdopen(fd, "wb") as f:
            if existing is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), stat.S_IMODE(existing.st_mode))  # keep the target's mode
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
