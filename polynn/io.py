"""Saving and loading models and training checkpoints: one ``.npz`` file, no pickle anywhere.

The file is a plain NumPy ``.npz`` archive (``np.load(path)`` opens it too) holding only numeric
arrays:

``config``
    uint8 ``(n,)``: UTF-8 JSON ``{"format": "polynn", "format_version": 1, "polynn_version",
    "layer_sizes", "activation", "output", "negative_slope", "init", "dtype", "seed"}``.
``W0, b0, W1, b1, ...``
    The parameters, ``W{l}`` ``(n_l, n_{l+1})`` and ``b{l}`` ``(n_{l+1},)``, in the model's dtype
    (bfloat16 is stored exactly as float32; ``config["dtype"]`` says "bfloat16").

A checkpoint (:func:`save_checkpoint`) adds the training state:

``training``
    uint8 ``(n,)``: UTF-8 JSON ``{"optimizer", "opt_state", "shuffle_rng"}``. ``optimizer`` is
    the optimizer dataclass as ``{"class": "Adam", "fields": {...}}`` (its ``learning_rate``
    schedule nested the same way), or null before the first ``fit``. ``opt_state`` is the
    optimizer state's nested tuple as JSON lists whose leaves are ints (the step count) or the
    names of the arrays below. ``shuffle_rng`` is ``bit_generator.state`` of the shuffling stream.
``opt0, opt1, ...``
    The optimizer state arrays (momentum velocities, Adam moments), stored like the parameters.

Loading never unpickles: the archive is read member by member with :mod:`zipfile` and NumPy's
``.npy`` header parser; a member whose dtype holds Python objects is refused from its header,
before a byte of it is interpreted. Every entry is checked against the configuration (names,
shapes, dtypes, finite values) and each failure raises :class:`ModelFileError` (a
``ValueError``) naming the file. Saving writes a temporary file in the target's directory,
fsyncs it and renames it onto the target, so a crash mid-save never leaves a broken file.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import re
import secrets
import struct
import zipfile
import zlib

import numpy as np

from polynn.backend import DTYPES, get_backend, to_host
from polynn.init import INITIALIZERS
from polynn.nn import optim
from polynn.nn.activations import ACTIVATIONS
from polynn.nn.losses import OUTPUTS

FORMAT = "polynn"
FORMAT_VERSION = 1

_CONFIG_KEYS = frozenset({"format", "format_version", "polynn_version", "layer_sizes",
                          "activation", "output", "negative_slope", "init", "dtype", "seed"})
_TRAINING_KEYS = frozenset({"optimizer", "opt_state", "shuffle_rng"})
_ENTRY = re.compile(r"config|training|(?:W|b|opt)(?:0|[1-9][0-9]*)")
# Only polynn's own frozen dataclasses may be named in a checkpoint; nothing else is constructed.
_OPTIMIZER_CLASSES = {cls.__name__: cls for cls in (optim.SGD, optim.Momentum, optim.Adam)}
_SCHEDULE_CLASSES = {cls.__name__: cls for cls in optim.SCHEDULES.values()}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
_PICKLE_MESSAGE = "file carries Python objects; polynn never loads pickles"


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be loaded: it is not a polynn file, it is truncated or
    corrupted, it carries Python objects, or its entries do not match its configuration."""


# --- public API -------------------------------------------------------------------------------
def save(model, path) -> None:
    """Write ``model``'s weights and configuration to ``path`` (exactly that name; no ``.npz``
    is appended), atomically: the previous file at ``path``, if any, stays intact until the new
    one is complete. The training state is not saved; see :func:`save_checkpoint`."""
    _write(path, _model_arrays(model))


def load(path, backend=None, device=None, dtype=None):
    """The :class:`~polynn.MLP` saved at ``path`` (by :func:`save` or :func:`save_checkpoint`),
    on ``backend``/``device`` (default: ``$POLYNN_BACKEND`` or "numpy") in ``dtype`` (default:
    the saved dtype). The model starts with a fresh training state, as a new one would.

    Raises :class:`ModelFileError` (a ValueError) naming the file when it is not a polynn model
    file, is truncated or corrupted, carries Python objects, or does not match itself."""
    name = _name(path)
    arrays = _read_archive(name)
    return _build_model(name, arrays, backend, device, dtype, checkpoint=False)


def save_checkpoint(model, path) -> None:
    """Like :func:`save`, plus the training state: the optimizer (class, hyper-parameters and
    learning-rate schedule), its state (step count, momentum or Adam moments) and the shuffling
    stream, so that :func:`load_checkpoint` followed by ``fit`` (without ``seed=``, with the
    same optimizer options) continues exactly as an uninterrupted ``fit`` would."""
    arrays = _model_arrays(model)
    arrays.update(_training_arrays(model))
    _write(path, arrays)


def load_checkpoint(path, backend=None, device=None, dtype=None):
    """The model saved by :func:`save_checkpoint` with its training state restored: the next
    ``fit`` with the same optimizer options continues the optimizer state and the shuffling
    stream. ``backend``, ``device`` and ``dtype`` as in :func:`load`."""
    name = _name(path)
    arrays = _read_archive(name)
    if "training" not in arrays:
        raise ModelFileError(f"{name!r} holds a model without training state (written by "
                             "save(), not save_checkpoint()); open it with polynn.load()")
    return _build_model(name, arrays, backend, device, dtype, checkpoint=True)


# --- writing ----------------------------------------------------------------------------------
def _name(path) -> str:
    return os.fspath(path)


def _storage_dtype(dtype: str) -> str:
    return "float32" if dtype == "bfloat16" else dtype


def _host(x, backend, dtype: str) -> np.ndarray:
    """A host copy of backend array ``x`` in the storage dtype of ``dtype``."""
    if "bfloat16" in str(getattr(x, "dtype", "")):
        # NumPy has no bfloat16 of its own (and torch's .numpy() refuses it): widen on the device.
        x = backend.xp.astype(x, backend.xp.float32)
    return np.asarray(to_host(x)).astype(_storage_dtype(dtype), copy=False)


def _json_array(obj) -> np.ndarray:
    def default(value):
        if isinstance(value, np.ndarray):  # MT19937's key in a bit_generator state
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(obj, default=default, allow_nan=False, sort_keys=True)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def _seed_for_json(seed):
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    if isinstance(seed, (list, tuple)) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed):
        return [int(s) for s in seed]
    raise ValueError(f"cannot save a model whose seed is {seed!r}: polynn files record an int, "
                     "a list of ints or None")


def _model_arrays(model) -> dict:
    import polynn

    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "polynn_version": polynn.__version__,
        "layer_sizes": [int(n) for n in model.layer_sizes],
        "activation": model.activation,
        "output": model.output,
        "negative_slope": float(model.negative_slope),
        "init": model.init,
        "dtype": model.dtype,
        "seed": _seed_for_json(model.seed),
    }
    arrays = {"config": _json_array(config)}
    for layer, (W, b) in enumerate(model.params):
        arrays[f"W{layer}"] = _host(W, model.backend, model.dtype)
        arrays[f"b{layer}"] = _host(b, model.backend, model.dtype)
    return arrays


def _encode_dataclass(obj, classes: dict, what: str):
    """``{"class": name, "fields": {...}}`` for one of polynn's optimizers or schedules."""
    if classes.get(type(obj).__name__) is not type(obj):
        raise ValueError(f"cannot save the {what} {obj!r} in a checkpoint: only polynn's own "
                         f"({', '.join(sorted(classes))}) can be saved (polynn files carry no "
                         "Python objects); save() still saves the weights")
    fields = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name == "learning_rate" and classes is _OPTIMIZER_CLASSES:
            value = _encode_dataclass(value, _SCHEDULE_CLASSES, "learning-rate schedule")
        elif isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (bool, int, float, dict)):
            raise ValueError(f"cannot save the {what} {obj!r}: field {field.name}={value!r} "
                             "is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot save the {what} {obj!r}: field {field.name} is {value}")
        fields[field.name] = value
    return {"class": type(obj).__name__, "fields": fields}


def _training_arrays(model) -> dict:
    arrays = {}

    def flatten(node):
        if isinstance(node, (tuple, list)):
            return [flatten(child) for child in node]
        if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
            return int(node)
        if tuple(node.shape) == () and "int" in str(node.dtype):  # t from a compiled JAX loop
            return int(to_host(node))
        key = f"opt{len(arrays)}"
        arrays[key] = _host(node, model.backend, model.dtype)
        return key

    optimizer = model._optimizer
    state = model._opt_state
    training = {
        "optimizer": None if optimizer is None
        else _encode_dataclass(optimizer, _OPTIMIZER_CLASSES, "optimizer"),
        "opt_state": None if optimizer is None or state is None else flatten(state),
        "shuffle_rng": model._shuffle_rng.bit_generator.state,
    }
    arrays["training"] = _json_array(training)
    return arrays


def _create_temporary(target: str):
    """A new file next to ``target`` (same directory, so the rename is atomic), opened for
    writing. Created with mode 0o666 so the umask applies as for any new file (mkstemp would
    make it 0o600, and reading the umask means setting it, which is not thread-safe)."""
    directory, base = os.path.split(os.path.abspath(target))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "directory does not exist", target) from None
    raise FileExistsError(f"could not create a temporary file next to {target!r}")


def _write(path, arrays: dict) -> None:
    """Write ``arrays`` as an .npz at exactly ``path``: temp file, fsync, rename."""
    target = _name(path)
    tmp, fd = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # to a file object: no ".npz" is appended to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; directories cannot be opened on Windows)
        dir_fd = os.open(os.path.dirname(tmp), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- reading ----------------------------------------------------------------------------------
def _corrupt(name: str, detail: str) -> ModelFileError:
    return ModelFileError(f"{name!r} is truncated or corrupted: {detail}")


def _read_archive(name: str) -> dict:
    """Every entry of the .npz at ``name`` as a host array, read without unpickling."""
    with open(name, "rb") as f:
        head = f.read(6)
        if not head:
            raise _corrupt(name, "the file is empty")
        if head[:1] == b"\x80":
            raise ModelFileError(f"{name!r}: {_PICKLE_MESSAGE} (it is a pickle)")
        if head.startswith(b"\x93NUMPY"):
            raise ModelFileError(f"{name!r} is a single .npy array, not a polynn model file "
                                 "(an .npz archive)")
        if not (head.startswith(b"PK") or b"PK".startswith(head)):  # zip, or cut short
            raise ModelFileError(f"{name!r} is not a polynn model file: it is not an .npz "
                                 "archive (or it is truncated or corrupted)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as archive:
                arrays = {}
                for info in archive.infolist():
                    key = info.filename[:-4] if info.filename.endswith(".npy") else None
                    if key is None or not _ENTRY.fullmatch(key):
                        raise ModelFileError(f"{name!r} has an unknown entry "
                                             f"{info.filename!r}: not a polynn model file")
                    if key in arrays:
                        raise _corrupt(name, f"entry {info.filename!r} appears twice")
                    arrays[key] = _read_member(name, archive, info, key)
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                struct.error, zlib.error, NotImplementedError, RuntimeError, UnicodeError,
                OverflowError, KeyError, IndexError) as err:
            raise _corrupt(name, f"{type(err).__name__}: {err}") from err
    return arrays


def _read_member(name: str, archive, info, key: str) -> np.ndarray:
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except ValueError as err:
            raise _corrupt(name, f"entry {key!r} has no valid .npy header ({err})") from err
        if dtype.hasobject:
            raise ModelFileError(f"{name!r}: {_PICKLE_MESSAGE} (entry {key!r} has dtype "
                                 f"{dtype})")
        expected = "u" if key in ("config", "training") else "f"
        if dtype.kind != expected or (expected == "u" and dtype.itemsize != 1):
            want = "uint8 (JSON text)" if expected == "u" else "floating point"
            raise ModelFileError(f"{name!r}: entry {key!r} has dtype {dtype}; expected {want}")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if member.tell() + nbytes != info.file_size:
            raise _corrupt(name, f"entry {key!r} declares shape {shape} ({nbytes} bytes) but "
                                 f"holds {info.file_size - member.tell()} bytes")
        data = member.read(nbytes)  # reading to the end checks the entry's CRC-32
        if len(data) != nbytes or member.read(1):
            raise _corrupt(name, f"entry {key!r} has {len(data)} bytes, expected {nbytes}")
    array = np.frombuffer(data, dtype=dtype, count=count)
    array = array.reshape(shape, order="F" if fortran else "C")
    return np.array(array, dtype=dtype.newbyteorder("="), order="C")


def _json_entry(name: str, arrays: dict, key: str) -> dict:
    array = arrays[key]
    if array.ndim != 1:
        raise ModelFileError(f"{name!r}: entry {key!r} has shape {array.shape}; expected 1-D "
                             "UTF-8 JSON bytes")

    def refuse_constant(constant):
        raise ValueError(f"{constant} is not valid JSON")

    try:
        value = json.loads(array.tobytes().decode("utf-8"), parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise _corrupt(name, f"entry {key!r} is not UTF-8 JSON ({err})") from err
    if not isinstance(value, dict):
        raise ModelFileError(f"{name!r}: entry {key!r} is not a JSON object")
    return value


def _differences(present, expected) -> str:
    """'lacks [...]; has unknown [...]' for two sets of names."""
    parts = []
    if set(expected) - set(present):
        parts.append(f"lacks {sorted(set(expected) - set(present))}")
    if set(present) - set(expected):
        parts.append(f"has unknown {sorted(set(present) - set(expected))}")
    return "; ".join(parts)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_config(name: str, arrays: dict) -> dict:
    if "config" not in arrays:
        raise ModelFileError(f"{name!r} has no 'config' entry: not a polynn model file")
    config = _json_entry(name, arrays, "config")
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{name!r} is not a polynn model file (format "
                             f"{config.get('format')!r}, expected {FORMAT!r})")
    version = config.get("format_version")
    if not _is_int(version) or version < 1:
        raise ModelFileError(f"{name!r} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{name!r} has format version {version}, written by a newer "
                             f"polynn ({config.get('polynn_version')}); this polynn reads "
                             f"format version {FORMAT_VERSION}: upgrade polynn")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{name!r} has unsupported format version {version}; this "
                             f"polynn reads format version {FORMAT_VERSION}")
    if config.keys() != _CONFIG_KEYS:
        raise ModelFileError(f"{name!r}: config {_differences(config.keys(), _CONFIG_KEYS)}")

    def bad(key, expected):
        return ModelFileError(f"{name!r}: config {key}={config[key]!r} is invalid; expected "
                              f"{expected}")

    sizes = config["layer_sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 2
            and all(_is_int(n) and n >= 1 for n in sizes)):
        raise bad("layer_sizes", "a list of at least 2 positive integers")
    for key, names in (("activation", ACTIVATIONS), ("output", OUTPUTS),
                       ("init", INITIALIZERS), ("dtype", DTYPES)):
        if not isinstance(config[key], str) or config[key] not in names:
            raise bad(key, f"one of {sorted(names)}")
    if config["output"] == "sigmoid" and sizes[-1] != 1:
        raise bad("layer_sizes", "one output unit with output='sigmoid'")
    slope = config["negative_slope"]
    if not (isinstance(slope, (int, float)) and not isinstance(slope, bool)
            and math.isfinite(slope)):
        raise bad("negative_slope", "a finite number")
    seed = config["seed"]
    if not (seed is None or (_is_int(seed) and seed >= 0)
            or (isinstance(seed, list) and all(_is_int(s) and s >= 0 for s in seed))):
        raise bad("seed", "a non-negative int, a list of them or null")
    if not isinstance(config["polynn_version"], str):
        raise bad("polynn_version", "a string")
    return config


def _check_float_entry(name: str, arrays: dict, key: str, shape, dtype: str) -> np.ndarray:
    array = arrays[key]
    if array.shape != tuple(shape):
        raise ModelFileError(f"{name!r}: entry {key!r} has shape {array.shape} but the "
                             f"configuration needs {tuple(shape)}")
    if array.dtype != np.dtype(dtype):
        raise ModelFileError(f"{name!r}: entry {key!r} has dtype {array.dtype}; the file's "
                             f"configuration needs {dtype}")
    if not np.isfinite(array).all():
        raise ModelFileError(f"{name!r}: entry {key!r} contains NaN or infinity")
    return array


def _build_model(name, arrays, backend, device, dtype, *, checkpoint: bool):
    from polynn.model import MLP

    config = _parse_config(name, arrays)
    sizes = config["layer_sizes"]
    n_layers = len(sizes) - 1
    expected = {"config"} | {f"{p}{i}" for i in range(n_layers) for p in "Wb"}
    training = None
    if "training" in arrays:
        training = _json_entry(name, arrays, "training")
        expected |= {"training"} | {k for k in arrays if k.startswith("opt")}
    if arrays.keys() != expected:
        raise ModelFileError(f"{name!r} does not match its configuration (layer_sizes "
                             f"{sizes}): {_differences(arrays.keys(), expected)}")
    stored = _storage_dtype(config["dtype"])
    host = tuple(
        (_check_float_entry(name, arrays, f"W{i}", (sizes[i], sizes[i + 1]), stored),
         _check_float_entry(name, arrays, f"b{i}", (sizes[i + 1],), stored))
        for i in range(n_layers)
    )
    restored = _parse_training(name, arrays, training, stored) if checkpoint else None

    target = get_backend(backend, device)
    if dtype is None:
        dtype = config["dtype"]
        try:
            target.dtype(dtype)
        except ValueError as err:
            raise ValueError(f"{err}; {name!r} holds a {dtype} model: load it in another "
                             "dtype with dtype='float32'") from err
    model = MLP(sizes, activation=config["activation"], output=config["output"],
                backend=target, dtype=dtype, init=config["init"], seed=config["seed"],
                negative_slope=config["negative_slope"])
    model.params = model._to_backend(host)
    if restored is not None:
        _restore_training(name, arrays, model, *restored)
    return model


# --- training state ---------------------------------------------------------------------------
def _decode_dataclass(name: str, spec, classes: dict, what: str):
    if not (isinstance(spec, dict) and spec.keys() == {"class", "fields"}
            and isinstance(spec["fields"], dict)):
        raise ModelFileError(f"{name!r}: the saved {what} is not {{'class', 'fields'}}")
    cls = classes.get(spec["class"]) if isinstance(spec["class"], str) else None
    if cls is None:
        raise ModelFileError(f"{name!r}: unknown {what} {spec['class']!r}; polynn knows "
                             f"{sorted(classes)}")
    names = {field.name for field in dataclasses.fields(cls)}
    if spec["fields"].keys() != names:
        raise ModelFileError(f"{name!r}: the saved {what} {spec['class']} has fields "
                             f"{sorted(spec['fields'])}; expected {sorted(names)}")
    fields = {}
    for key, value in spec["fields"].items():
        if isinstance(value, dict):
            value = _decode_dataclass(name, value, _SCHEDULE_CLASSES, "learning-rate schedule")
        elif not isinstance(value, (bool, int, float)):
            raise ModelFileError(f"{name!r}: the saved {what} {spec['class']} has "
                                 f"{key}={value!r}, not a number")
        fields[key] = value
    return cls(**fields)


def _parse_training(name, arrays, training: dict, stored: str):
    """(optimizer or None, opt_state structure or None, numpy Generator), validated."""
    if training.keys() != _TRAINING_KEYS:
        raise ModelFileError(f"{name!r}: training state "
                             f"{_differences(training.keys(), _TRAINING_KEYS)}")
    optimizer, structure = training["optimizer"], training["opt_state"]
    if optimizer is not None:
        optimizer = _decode_dataclass(name, optimizer, _OPTIMIZER_CLASSES, "optimizer")
    if (optimizer is None) != (structure is None):
        raise ModelFileError(f"{name!r}: training state has an optimizer without its state "
                             "or a state without its optimizer")
    used = []

    def leaves(node):
        if isinstance(node, list):
            for child in node:
                leaves(child)
        elif isinstance(node, str):
            if node not in arrays or not node.startswith("opt"):
                raise ModelFileError(f"{name!r}: the optimizer state names entry {node!r}, "
                                     "which the file lacks")
            used.append(node)
        elif not (_is_int(node) and node >= 0):
            raise ModelFileError(f"{name!r}: the optimizer state holds {node!r}; expected "
                                 "lists, step counts and entry names")

    if structure is not None:
        leaves(structure)
    present = sorted(k for k in arrays if k.startswith("opt"))
    if sorted(used) != present or len(set(used)) != len(used):
        raise ModelFileError(f"{name!r}: the optimizer state uses entries {sorted(used)} but "
                             f"the file holds {present}")
    for key in present:
        if arrays[key].dtype != np.dtype(stored):
            raise ModelFileError(f"{name!r}: entry {key!r} has dtype {arrays[key].dtype}; the "
                                 f"file's dtype needs {stored}")
        if not np.isfinite(arrays[key]).all():
            raise ModelFileError(f"{name!r}: entry {key!r} contains NaN or infinity")
    rng_state = training["shuffle_rng"]
    try:
        if not isinstance(rng_state, dict) or rng_state.get("bit_generator") not in \
                _BIT_GENERATORS:
            raise ValueError(f"unknown bit generator in {rng_state!r}"[:200])
        bit_generator = getattr(np.random, rng_state["bit_generator"])()
        bit_generator.state = rng_state
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise ModelFileError(f"{name!r}: the shuffling generator's state is invalid "
                             f"({err})") from err
    return optimizer, structure, np.random.Generator(bit_generator)


def _restore_training(name, arrays, model, optimizer, structure, rng) -> None:
    """Put the checked training state on ``model``; the state's structure and shapes must match
    what ``optimizer.init(model.params)`` makes."""

    def rebuild(node, template, where):
        if isinstance(template, (tuple, list)):
            if not isinstance(node, list) or len(node) != len(template):
                raise ModelFileError(f"{name!r}: the optimizer state at {where} does not match "
                                     f"{type(optimizer).__name__}'s state for this model")
            return tuple(rebuild(n, t, f"{where}[{i}]")
                         for i, (n, t) in enumerate(zip(node, template)))
        if _is_int(template):
            if not _is_int(node):
                raise ModelFileError(f"{name!r}: the optimizer state at {where} should be a "
                                     f"step count, not {node!r}")
            return node
        if not isinstance(node, str):
            raise ModelFileError(f"{name!r}: the optimizer state at {where} should be an "
                                 f"array, not {node!r}")
        array = arrays[node]
        if array.shape != tuple(template.shape):
            raise ModelFileError(f"{name!r}: entry {node!r} (optimizer state {where}) has "
                                 f"shape {array.shape}; the model needs {tuple(template.shape)}")
        return model.backend.asarray(array, model.dtype)

    state = None
    if optimizer is not None:
        state = rebuild(structure, optimizer.init(model.params), "state")
    model._optimizer, model._opt_state, model._shuffle_rng = optimizer, state, rng
