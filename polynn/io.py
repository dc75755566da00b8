"""Saving and loading models and training checkpoints: one safetensors file, no pickle anywhere.

A polynn file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_ file, so
``safetensors.numpy.load_file(path)`` and ``safetensors.torch.load_file(path)`` open it too: an
8-byte little-endian header length N, N bytes of JSON header (each tensor's dtype, shape and
byte range, plus string metadata), then the raw little-endian tensor data.

Tensors (C order, in the model's dtype; bfloat16 is stored exactly as float32 because NumPy has
no bfloat16, and the configuration says "bfloat16"):

``layers.{l}.W`` ``(n_l, n_{l+1})`` and ``layers.{l}.b`` ``(n_{l+1},)``, ``l = 0 .. L-1``
    The parameters, in the rows convention ``Z = A @ W + b``.
``optimizer.{slot}.{l}.W`` and ``optimizer.{slot}.{l}.b`` (checkpoints only)
    The optimizer state, one tree per slot shaped like the parameters: ``velocity`` for
    momentum and Nesterov, ``first`` and ``second`` (the moment estimates) for Adam; plain SGD
    has none.

Metadata (safetensors' ``__metadata__``, strings):

``polynn.config``
    JSON ``{"format": "polynn", "format_version": 1, "polynn_version", "layer_sizes",
    "activation", "output", "negative_slope", "init", "dtype", "seed"}``.
``polynn.training`` (checkpoints only)
    JSON ``{"optimizer", "step", "shuffle_rng"}``: ``optimizer`` is the optimizer dataclass as
    ``{"class": "Adam", "fields": {...}}`` (its ``learning_rate`` schedule nested the same way)
    or null before the first ``fit``; ``step`` is the optimizer's step count (null with no
    optimizer); ``shuffle_rng`` is ``bit_generator.state`` of the shuffling stream. The
    optimizer state is ``(step, *slots)``, each slot a tuple of ``(W, b)`` pairs.
``polynn.sha256``
    SHA-256 of the two JSON texts and every tensor (name, then bytes, in name order): safetensors
    has no checksum of its own, and a flipped bit in a weight would otherwise load silently.

Reading trusts nothing before it is checked: the header length against
:data:`MAX_HEADER_BYTES` and the file size; the header's JSON (and each metadata JSON) for
nesting depth, container count and number length before it is parsed, and for duplicate keys
and non-finite numbers while it is; every tensor's dtype, shape and byte range against the
data size and the configuration; then the tensors are read through safetensors' memory map and
checked for NaN and infinity. Each failure raises :class:`ModelFileError` (a ValueError) naming
the file. :func:`save` runs the same checks on what it is about to write, so it refuses exactly
what :func:`load` would refuse (NaN weights, an unsaveable configuration) with a ValueError.

Saving is atomic: a temporary ``.{name}.polynn-tmp-*`` is written next to the target, fsynced
and renamed onto it, so the previous file stays intact until the new one is complete; a
temporary left behind by a killed save is removed by the next save of the same target. Saving
through a symlink replaces the file it points to, and a file the user may not write is refused
with PermissionError (as ``numpy.save`` would), not replaced.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import secrets
import socket
import stat
import time

import numpy as np
import safetensors
import safetensors.numpy

from polynn.backend import DTYPES, get_backend, to_host
from polynn.init import INITIALIZERS
from polynn.model import MLP
from polynn.nn import optim
from polynn.nn.activations import ACTIVATIONS
from polynn.nn.losses import OUTPUTS

FORMAT = "polynn"
FORMAT_VERSION = 1
CONFIG_KEY, TRAINING_KEY, CHECKSUM_KEY = "polynn.config", "polynn.training", "polynn.sha256"

#: Largest safetensors header polynn reads (and writes): ~15,000 layers with Adam's state.
MAX_HEADER_BYTES = 8 << 20
#: Limits on any JSON polynn parses, checked on the raw text before parsing.
MAX_JSON_DEPTH = 32
MAX_JSON_CONTAINERS = 1 << 18
MAX_JSON_VALUES = 1 << 21
MAX_NUMBER_DIGITS = 100

_CONFIG_KEYS = frozenset({"format", "format_version", "polynn_version", "layer_sizes",
                          "activation", "output", "negative_slope", "init", "dtype", "seed"})
_TRAINING_KEYS = frozenset({"optimizer", "step", "shuffle_rng"})
# Only polynn's own frozen dataclasses may be named in a checkpoint; nothing else is constructed.
_OPTIMIZER_CLASSES = optim.OPTIMIZER_CLASSES
_SCHEDULE_CLASSES = optim.SCHEDULE_CLASSES
# The optimizer state is (step, *slots); each slot is named here and mirrors the parameters.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
_DTYPE_CODES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_SAFETENSORS_DTYPES = ("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
                       "I32", "U32", "F32", "F64", "I64", "U64")
_PICKLE_MESSAGE = "file carries Python objects; polynn never loads pickles"
_TEMP_MARK = ".polynn-tmp-"


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be loaded: it is not a polynn file, it is truncated or
    corrupted, it exceeds polynn's limits, or its tensors do not match its configuration."""


class _Refused(Exception):
    """One check failed; ``detail`` says which. load() reports it as a ModelFileError naming the
    file, save() as a ValueError saying it would write a file that load() refuses."""

    def __init__(self, detail: str, *, corrupt: bool = False, unsaveable: bool = False):
        super().__init__(detail)
        self.detail, self.corrupt, self.unsaveable = detail, corrupt, unsaveable


# --- public API -------------------------------------------------------------------------------
def save(model, path) -> None:
    """Write ``model``'s weights and configuration to the safetensors file ``path`` (exactly
    that name; nothing is appended), atomically: the previous file at ``path``, if any, stays
    intact until the new one is complete. The training state is not saved; see
    :func:`save_checkpoint`. Through a symlink, the file it points to is replaced.

    Raises ValueError (and writes nothing) for a model that :func:`load` could not read back,
    e.g. one with NaN or infinite weights; PermissionError naming ``path`` when it exists and
    may not be written (as ``numpy.save`` would), IsADirectoryError when it is a directory.

    With several processes (:mod:`polynn.distributed`) every process calls it (gathering
    parameters split over devices is collective) and only process 0 writes."""
    if _gathered_elsewhere(model, checkpoint=False):
        return
    _write(path, model, checkpoint=False)


def load(path, backend=None, device=None, dtype=None, mesh=None) -> MLP:
    """The :class:`~polynn.MLP` saved at ``path`` (by :func:`save` or :func:`save_checkpoint`),
    on ``backend``/``device`` (default: ``$POLYNN_BACKEND`` or "numpy") in ``dtype`` (default:
    the saved dtype). The model starts with a fresh training state, as a new one would.
    ``mesh`` (JAX): load onto many devices, as ``MLP(mesh=...)``.

    Raises :class:`ModelFileError` (a ValueError) naming the file when it is not a polynn model
    file, is truncated or corrupted, exceeds polynn's limits, or does not match itself."""
    return _load(path, backend, device, dtype, checkpoint=False, mesh=mesh)


def save_checkpoint(model, path) -> None:
    """Like :func:`save`, plus the training state: the optimizer (class, hyper-parameters and
    learning-rate schedule), its state (step count, momentum or Adam moments) and the shuffling
    stream, so that :func:`load_checkpoint` followed by ``fit`` (without ``seed=``, with the
    same optimizer options) continues exactly as an uninterrupted ``fit`` would. Several
    processes: as :func:`save`."""
    if _gathered_elsewhere(model, checkpoint=True):
        return
    _write(path, model, checkpoint=True)


def _gathered_elsewhere(model, *, checkpoint: bool) -> bool:
    """On a process other than 0: take part in gathering the model's arrays (a collective when
    they are split over processes) and return True, so that only process 0 writes."""
    from polynn.distributed import is_main_process

    if is_main_process():
        return False
    model.host_params()
    if checkpoint and model._opt_state is not None:
        for tree in model._opt_state[1:]:
            for W, b in tree:
                to_host(W), to_host(b)
    return True


def load_checkpoint(path, backend=None, device=None, dtype=None, mesh=None) -> MLP:
    """The model saved by :func:`save_checkpoint` with its training state restored: the next
    ``fit`` with the same optimizer options continues the optimizer state and the shuffling
    stream. ``backend``, ``device``, ``dtype`` and ``mesh`` as in :func:`load`."""
    return _load(path, backend, device, dtype, checkpoint=True, mesh=mesh)


# --- bounded JSON -----------------------------------------------------------------------------
# A JSON string, closing quote optional so that an unterminated one is still consumed in one
# linear pass (a regex that must backtrack from every quote is quadratic on hostile input).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_LONG_NUMBER = re.compile(f"[0-9]{{{MAX_NUMBER_DIGITS + 1}}}")


def _refuse_constant(constant):
    raise ValueError(f"{constant} is not a finite number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _unique_keys(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {duplicate!r} appears twice")
    return obj


def _loads(text: str, what: str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(text)`` once the text is known to stay within the limits: nesting depth,
    number of containers and values, digits per number. Memory and time stay proportional to
    ``len(text)`` whatever the text holds (no RecursionError, no quadratic number parsing)."""
    bare = _JSON_STRING.sub('""', text)
    if _LONG_NUMBER.search(bare):
        raise _Refused(f"{what} holds a number longer than {MAX_NUMBER_DIGITS} digits")
    if bare.count(",") > MAX_JSON_VALUES:
        raise _Refused(f"{what} has more than {MAX_JSON_VALUES} JSON values")
    brackets = _NOT_BRACKET.sub("", bare)
    del bare  # (peak memory: a few copies of the text at most)
    if len(brackets) > 2 * MAX_JSON_CONTAINERS:
        raise _Refused(f"{what} has more than {MAX_JSON_CONTAINERS} JSON arrays and objects")
    depth = level = 0
    for start in range(0, len(brackets), 1 << 16):  # in chunks: memory independent of the text
        codes = np.frombuffer(brackets[start:start + (1 << 16)].encode("ascii"), np.uint8)
        levels = level + np.cumsum(np.where((codes == 91) | (codes == 123), 1, -1))  # [ {
        depth, level = max(depth, int(levels.max())), int(levels[-1])
    if depth > max_depth:
        raise _Refused(f"{what} is nested {depth} deep (polynn reads at most {max_depth})")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise _Refused(f"{what} is not valid JSON ({err})", corrupt=True) from err


def _dumps(obj) -> str:
    def default(value):
        if isinstance(value, np.ndarray):  # MT19937's key in a bit_generator state
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(obj, default=default, allow_nan=False, sort_keys=True,
                      separators=(",", ":"))


# --- the checks shared by save and load -------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _differences(present, expected) -> str:
    """'lacks [...]; has unknown [...]' for two sets of names."""
    parts = []
    if set(expected) - set(present):
        parts.append(f"lacks {sorted(set(expected) - set(present))}")
    if set(present) - set(expected):
        parts.append(f"has unknown {sorted(set(present) - set(expected))}")
    return "; ".join(parts)


def _check_config(config) -> dict:
    if not isinstance(config, dict):
        raise _Refused("the configuration is not a JSON object")
    if config.get("format") != FORMAT:
        raise _Refused(f"not a polynn model file (format {config.get('format')!r}, expected "
                       f"{FORMAT!r})")
    version = config.get("format_version")
    if not _is_int(version) or version < 1:
        raise _Refused(f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise _Refused(f"format version {version}, written by a newer polynn "
                       f"({config.get('polynn_version')}); this polynn reads format version "
                       f"{FORMAT_VERSION}: upgrade polynn")
    if config.keys() != _CONFIG_KEYS:
        raise _Refused(f"config {_differences(config.keys(), _CONFIG_KEYS)}")

    def bad(key, expected):
        return _Refused(f"config {key}={config[key]!r} is invalid; expected {expected}")

    sizes = config["layer_sizes"]
    if not (isinstance(sizes, list) and len(sizes) >= 2
            and all(_is_int(n) and n >= 1 for n in sizes)):
        raise bad("layer_sizes", "a list of at least 2 positive integers")
    for key, names in (("activation", ACTIVATIONS), ("output", OUTPUTS),
                       ("init", INITIALIZERS), ("dtype", DTYPES)):
        if not isinstance(config[key], str) or config[key] not in names:
            raise bad(key, f"one of {sorted(names)}")
    slope = config["negative_slope"]
    if not (_is_number(slope) and math.isfinite(slope) and slope > 0):  # as MLP(...) checks
        raise bad("negative_slope", "a positive finite number")
    seed = config["seed"]
    if not (seed is None or (_is_int(seed) and seed >= 0)
            or (isinstance(seed, list) and seed and all(_is_int(s) and s >= 0 for s in seed))):
        raise bad("seed", "a non-negative int, a list of them or null")
    if not isinstance(config["polynn_version"], str):
        raise bad("polynn_version", "a string")
    return config


def _decode_dataclass(spec, classes: dict, what: str):
    if not (isinstance(spec, dict) and spec.keys() == {"class", "fields"}
            and isinstance(spec["fields"], dict)):
        raise _Refused(f"the saved {what} is not {{'class', 'fields'}}")
    cls = classes.get(spec["class"]) if isinstance(spec["class"], str) else None
    if cls is None:
        raise _Refused(f"unknown {what} {spec['class']!r}; polynn knows {sorted(classes)}")
    names = {field.name for field in dataclasses.fields(cls)}
    if spec["fields"].keys() != names:
        raise _Refused(f"the saved {what} {spec['class']} has fields "
                       f"{sorted(spec['fields'])}; expected {sorted(names)}")
    fields = {}
    for key, value in spec["fields"].items():
        if isinstance(value, dict) and classes is _OPTIMIZER_CLASSES:
            value = _decode_dataclass(value, _SCHEDULE_CLASSES, "learning-rate schedule")
        elif not (isinstance(value, bool) or (_is_number(value) and math.isfinite(value))):
            raise _Refused(f"the saved {what} {spec['class']} has {key}={value!r}, not a "
                           "finite number")
        fields[key] = value
    try:
        return cls(**fields)
    except (TypeError, ValueError) as err:
        raise _Refused(f"the saved {what} {spec['class']} is invalid ({err})") from err


def _check_training(training):
    """(optimizer or None, step or None, numpy Generator) from the training JSON."""
    if not isinstance(training, dict):
        raise _Refused("the training state is not a JSON object")
    if training.keys() != _TRAINING_KEYS:
        raise _Refused(f"training state {_differences(training.keys(), _TRAINING_KEYS)}")
    optimizer, step = training["optimizer"], training["step"]
    if optimizer is not None:
        optimizer = _decode_dataclass(optimizer, _OPTIMIZER_CLASSES, "optimizer")
    if (optimizer is None) != (step is None):
        raise _Refused("training state has an optimizer without its step count or a step "
                       "count without its optimizer")
    if step is not None and not (_is_int(step) and step >= 0):
        raise _Refused(f"the optimizer's step count is {step!r}; expected an integer >= 0")
    rng_state = training["shuffle_rng"]
    try:
        if not isinstance(rng_state, dict) or rng_state.get("bit_generator") not in \
                _BIT_GENERATORS:
            raise ValueError(f"unknown bit generator in {rng_state!r}"[:200])
        bit_generator = getattr(np.random, rng_state["bit_generator"])()
        bit_generator.state = rng_state
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise _Refused(f"the shuffling generator's state is invalid ({err})") from err
    return optimizer, step, np.random.Generator(bit_generator)


def _leaf_name(prefix: str, path) -> str:
    """``prefix.0.W`` for the W of layer 0's ``(W, b)`` pair; dotted indices elsewhere."""
    *outer, last = path
    pair = len(path) == 2 and last < 2
    return ".".join([prefix, *map(str, outer), "Wb"[last] if pair else str(last)])


def _leaves(tree, path=()):
    """``[(path, leaf), ...]`` of a nested tuple, depth first (lists are leaves)."""
    if isinstance(tree, tuple):
        return [item for i, child in enumerate(tree) for item in _leaves(child, (*path, i))]
    return [(path, tree)]


def _rebuild(template, leaves: dict, path=()):
    """A nested tuple shaped like ``template`` whose leaves are ``leaves[path]``."""
    if isinstance(template, tuple):
        return tuple(_rebuild(child, leaves, (*path, i)) for i, child in enumerate(template))
    return leaves[path]


@dataclasses.dataclass
class _Plan:
    """What a file holds, checked: configuration, training state, and the shape and dtype of
    every tensor that must be (and may be) there."""

    config: dict
    shapes: dict            # tensor name -> shape
    dtype: np.dtype         # every tensor's storage dtype
    param_template: tuple   # ([n_in, n_out], [n_out]) per layer: shapes as lists (leaves)
    training: tuple | None  # (optimizer, step, rng) or None


def _plan(metadata: dict, tensors: dict, *, checkpoint: bool) -> _Plan:
    """Check the metadata strings and the tensors' ``{name: (dtype, shape)}`` against each
    other before any tensor data is read."""
    if CONFIG_KEY not in metadata:
        raise _Refused(f"its metadata has no {CONFIG_KEY!r}: a safetensors file, but not a "
                       "polynn model file")
    unknown = set(metadata) - {CONFIG_KEY, TRAINING_KEY, CHECKSUM_KEY}
    if unknown:
        raise _Refused(f"unknown metadata {sorted(unknown)}")
    if not re.fullmatch(r"[0-9a-f]{64}", metadata.get(CHECKSUM_KEY, "")):
        raise _Refused(f"its metadata has no valid {CHECKSUM_KEY!r}", corrupt=True)
    config = _check_config(_loads(metadata[CONFIG_KEY], "the configuration"))
    sizes = config["layer_sizes"]
    if len(sizes) - 1 > len(tensors):  # (each layer has 2) before building anything per layer
        raise _Refused(f"the configuration has {len(sizes) - 1} layers but the file holds "
                       f"{len(tensors)} tensors")
    template = tuple(([sizes[i], sizes[i + 1]], [sizes[i + 1]]) for i in range(len(sizes) - 1))
    shapes = {_leaf_name("layers", path): shape for path, shape in _leaves(template)}
    training = None
    if TRAINING_KEY in metadata:
        training = _check_training(_loads(metadata[TRAINING_KEY], "the training state"))
        if training[0] is not None:
            for slot in optim.state_fields(training[0]):
                shapes.update((_leaf_name(f"optimizer.{slot}", path), shape)
                              for path, shape in _leaves(template))
    elif checkpoint:
        raise _Refused("holds a model without training state (written by save(), not "
                       "save_checkpoint()); open it with polynn.load()")
    if tensors.keys() != shapes.keys():
        raise _Refused(f"the tensors do not match the configuration (layer_sizes {sizes}): "
                       f"{_differences(tensors.keys(), shapes.keys())}")
    dtype = np.dtype("float32" if config["dtype"] == "bfloat16" else config["dtype"])
    for key in sorted(shapes, key=_natural):
        tensor_dtype, shape = tensors[key]
        if tensor_dtype != dtype:
            raise _Refused(f"tensor {key!r} has dtype {tensor_dtype}; the configuration "
                           f"(dtype {config['dtype']!r}) needs {dtype}")
        if tuple(shape) != tuple(shapes[key]):
            raise _Refused(f"tensor {key!r} has shape {tuple(shape)} but the configuration "
                           f"needs {tuple(shapes[key])}")
    return _Plan(config, shapes, dtype, template, training)


def _check_finite(key: str, array: np.ndarray) -> None:
    # min/max propagate NaN and ±inf without a mask the size of the array.
    if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise _Refused(f"tensor {key!r} contains NaN or infinity")


def checksum(metadata: dict, tensors: dict) -> str:
    """The ``polynn.sha256`` of a file: SHA-256 over the config and training JSON texts and
    each tensor's name and little-endian C-order bytes, tensors in name order."""
    digest = hashlib.sha256()
    for key in (CONFIG_KEY, TRAINING_KEY):
        text = metadata.get(key, "").encode("utf-8")
        digest.update(len(text).to_bytes(8, "little") + text)
    for key in sorted(tensors):
        array = np.ascontiguousarray(tensors[key])
        digest.update(key.encode("utf-8") + b"\0")
        digest.update(memoryview(array.astype(array.dtype.newbyteorder("<"), copy=False)))
    return digest.hexdigest()


def _natural(name: str):
    """Sort key: layers.2 before layers.10."""
    return [int(part) if part.isdigit() else part for part in name.split(".")]


# --- writing ----------------------------------------------------------------------------------
def _host(x, backend, dtype: str) -> np.ndarray:
    """A C-contiguous host copy of backend array ``x`` in the storage dtype of ``dtype``."""
    if "bfloat16" in str(getattr(x, "dtype", "")):
        # NumPy has no bfloat16 of its own (and torch's .numpy() refuses it): widen on the device.
        x = backend.xp.astype(x, backend.xp.float32)
    storage = "float32" if dtype == "bfloat16" else dtype
    return np.ascontiguousarray(np.asarray(to_host(x)).astype(storage, copy=False))


def _seed_for_json(seed):
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    if isinstance(seed, (list, tuple)) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed):
        return [int(s) for s in seed]
    raise _Refused(f"its seed is {seed!r}: polynn files record an int, a list of ints or None",
                   unsaveable=True)


def _encode_dataclass(obj, classes: dict, what: str):
    """``{"class": name, "fields": {...}}`` for one of polynn's optimizers or schedules."""
    if classes.get(type(obj).__name__) is not type(obj):
        raise _Refused(f"the {what} {obj!r} cannot be saved in a checkpoint: only polynn's own "
                       f"({', '.join(sorted(classes))}) can (polynn files carry no Python "
                       "objects); save() still saves the weights", unsaveable=True)
    fields = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name == "learning_rate" and classes is _OPTIMIZER_CLASSES:
            value = _encode_dataclass(value, _SCHEDULE_CLASSES, "learning-rate schedule")
        elif isinstance(value, np.generic):
            value = value.item()
        fields[field.name] = value
    return {"class": type(obj).__name__, "fields": fields}


def _step_count(t):
    if _is_int(t) or isinstance(t, np.integer):
        return int(t)
    if tuple(getattr(t, "shape", (None,))) == () and "int" in str(t.dtype):
        return int(to_host(t))  # a 0-d array from a compiled JAX loop
    raise _Refused(f"the optimizer's step count is {t!r}, not an integer", unsaveable=True)


def _contents(model, checkpoint: bool):
    """The file's tensors ``{name: host array}`` and metadata ``{key: JSON text}``."""
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
    _check_config(config)  # before dumps: a NaN is named, not a JSON encoding error
    metadata = {CONFIG_KEY: _dumps(config)}
    tensors = {_leaf_name("layers", path): _host(x, model.backend, model.dtype)
               for path, x in _leaves(model.params)}
    if checkpoint:
        optimizer, state = model._optimizer, model._opt_state
        training = {"optimizer": None, "step": None,
                    "shuffle_rng": model._shuffle_rng.bit_generator.state}
        if optimizer is not None:
            training["optimizer"] = _encode_dataclass(optimizer, _OPTIMIZER_CLASSES,
                                                      "optimizer")
            slots = optim.state_fields(optimizer)
            if not (isinstance(state, tuple) and len(state) == 1 + len(slots)):
                raise _Refused(f"the optimizer state is not (step, {', '.join(slots)})",
                               unsaveable=True)
            training["step"] = _step_count(state[0])
            for slot, tree in zip(slots, state[1:]):
                leaves = _leaves(tree)
                if [path for path, _ in leaves] != [path for path, _ in _leaves(model.params)]:
                    raise _Refused(f"the optimizer state's {slot!r} is not shaped like the "
                                   "parameters", unsaveable=True)
                tensors.update((_leaf_name(f"optimizer.{slot}", path),
                                _host(x, model.backend, model.dtype)) for path, x in leaves)
        try:
            metadata[TRAINING_KEY] = _dumps(training)
        except ValueError as err:  # a NaN or infinite hyper-parameter
            raise _Refused(f"the training state holds a value JSON cannot carry ({err})") \
                from err
    return tensors, metadata


def _encode(model, checkpoint: bool) -> bytes:
    """The file's bytes, after the reader's own checks: what load() would refuse is not
    written."""
    tensors, metadata = _contents(model, checkpoint)
    _plan({**metadata, CHECKSUM_KEY: "0" * 64},  # (the checksum comes last, over all else)
          {key: (a.dtype, a.shape) for key, a in tensors.items()}, checkpoint=checkpoint)
    for key, array in tensors.items():
        _check_finite(key, array)
    metadata[CHECKSUM_KEY] = checksum(metadata, tensors)
    blob = safetensors.numpy.save(tensors, metadata=metadata)
    header = int.from_bytes(blob[:8], "little")
    if header > MAX_HEADER_BYTES:
        raise _Refused(f"its header would take {header} bytes, more than polynn reads "
                       f"({MAX_HEADER_BYTES})")
    return blob


def _target(path) -> str:
    """The file a save to ``path`` writes: a symlink (chain) is followed, as ``open`` does."""
    name = os.fspath(path)
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


_HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Delete the temporaries that killed saves of ``base`` left in ``directory``: those of
    processes of this host that no longer run, and any older than a day."""
    prefix = f".{base}{_TEMP_MARK}"
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
            if not stale and host == _HOST_TAG and pid.isdigit() and os.name == "posix":
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
    directory, base = os.path.split(os.path.abspath(target))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory,
                           f".{base}{_TEMP_MARK}{_HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}")
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


def _write(path, model, *, checkpoint: bool) -> None:
    """Encode ``model`` and write it at ``path``: temp file, fsync, rename."""
    name = os.fspath(path)
    try:
        blob = _encode(model, checkpoint)
    except _Refused as err:
        why = "" if err.unsaveable else " (polynn.load would refuse the file)"
        raise ValueError(f"cannot save to {name!r}: {err.detail}{why}") from None
    target = _target(name)
    existing = _check_writable(target, name)
    directory, base = os.path.split(os.path.abspath(target))
    _remove_stale_temporaries(directory, base)
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
    try:  # make the rename itself durable (POSIX; directories cannot be opened on Windows)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- reading ----------------------------------------------------------------------------------
def _sniff(prefix: bytes) -> str | None:
    """What a file that is not safetensors is, from its first bytes, when that is telling."""
    if prefix[:1] == b"\x80":
        return f"{_PICKLE_MESSAGE} (it is a pickle)"
    if prefix.startswith(b"\x93NUMPY"):
        return "it is a NumPy .npy array, not a polynn model file (a safetensors file)"
    if prefix.startswith(b"PK\x03\x04"):
        return ("it is a zip or .npz archive, not a polynn model file (a safetensors file). "
                "polynn no longer reads the .npz files of its first releases: load the model "
                "with the polynn that wrote it and save it again with this one")
    return None


def _read_header(f, size: int):
    """``(metadata, {tensor: (dtype, shape)})`` from the header of the open file ``f`` of
    ``size`` bytes, checked: its length, its JSON, each tensor's dtype, shape and byte range."""
    prefix = f.read(8)
    n = int.from_bytes(prefix, "little")
    if len(prefix) < 8 or n > MAX_HEADER_BYTES or n > size - 8 or f.read(1) != b"{":
        # Not a safetensors file: say what it is when its first bytes tell. (Only now: the
        # length of a genuine header may well start with a pickle's 0x80.)
        known = _sniff(prefix)
        if known is not None:
            raise _Refused(known)
    if len(prefix) < 8:
        raise _Refused(f"the file has {len(prefix)} bytes, fewer than the 8 of a safetensors "
                       "header length", corrupt=True)
    if n > MAX_HEADER_BYTES:
        raise _Refused(f"its header declares {n} bytes, more than polynn reads "
                       f"({MAX_HEADER_BYTES}): not a polynn model file, or corrupted")
    if n > size - 8:
        raise _Refused(f"its header declares {n} bytes but the file holds {size - 8} after the "
                       "length", corrupt=True)
    f.seek(8)
    raw = f.read(n)
    if len(raw) != n:
        raise _Refused(f"the header has {len(raw)} bytes, expected {n}", corrupt=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Refused(f"the header is not UTF-8 ({err})", corrupt=True) from None
    del raw
    if not text.startswith("{"):
        raise _Refused("the header is not a JSON object: not a safetensors file", corrupt=True)
    # root object, tensor object, shape/offsets list: a safetensors header is 3 deep.
    header = _loads(text, "the safetensors header", max_depth=3)
    if not isinstance(header, dict):
        raise _Refused("the header is not a JSON object", corrupt=True)
    metadata = header.pop("__metadata__", {})
    if not (isinstance(metadata, dict)
            and all(isinstance(v, str) for v in metadata.values())):
        raise _Refused("the header's __metadata__ is not an object of strings", corrupt=True)
    data_size = size - 8 - n
    tensors, ranges = {}, []
    for key, info in header.items():
        if not (isinstance(info, dict) and info.keys() == {"dtype", "shape", "data_offsets"}):
            raise _Refused(f"tensor {key!r} is not described by dtype, shape and data_offsets",
                           corrupt=True)
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _DTYPE_CODES:
            what = "a safetensors dtype" if code in _SAFETENSORS_DTYPES else "not a dtype"
            raise _Refused(f"tensor {key!r} has dtype {code!r} ({what}); polynn files hold "
                           f"{' or '.join(_DTYPE_CODES)}")
        if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
            raise _Refused(f"tensor {key!r} has shape {shape!r}", corrupt=True)
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(_is_int(o) and o >= 0 for o in offsets) and offsets[0] <= offsets[1]):
            raise _Refused(f"tensor {key!r} has data_offsets {offsets!r}", corrupt=True)
        nbytes = math.prod(shape) * _DTYPE_CODES[code].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise _Refused(f"tensor {key!r} of shape {tuple(shape)} needs {nbytes} bytes but "
                           f"its data_offsets span {offsets[1] - offsets[0]}", corrupt=True)
        tensors[key] = (_DTYPE_CODES[code], tuple(shape))
        ranges.append((offsets[0], offsets[1], key))
    end = 0
    for begin, stop, key in sorted(ranges):
        if begin != end:
            raise _Refused(f"tensor {key!r} starts at byte {begin}, not {end}: the data is not "
                           "contiguous", corrupt=True)
        end = stop
    if end != data_size:
        raise _Refused(f"the header declares {end} bytes of tensor data but the file holds "
                       f"{data_size}", corrupt=True)
    return metadata, tensors


def _read(name: str, checkpoint: bool):
    """``(plan, {tensor: host array})`` of the file at ``name``, every check passed."""
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _Refused("the file is empty", corrupt=True)
        metadata, described = _read_header(f, size)
    plan = _plan(metadata, described, checkpoint=checkpoint)
    arrays = {}
    try:
        # safetensors maps the file and checks the header again; a file replaced since the
        # header was read is caught by comparing its metadata and each tensor's dtype/shape.
        with safetensors.safe_open(name, framework="numpy") as f:
            if (f.metadata() or {}) != metadata or set(f.keys()) != set(described):
                raise _Refused("the file changed while it was read", corrupt=True)
            for key in sorted(plan.shapes, key=_natural):
                array = f.get_tensor(key)
                if array.dtype != plan.dtype or array.shape != tuple(plan.shapes[key]):
                    raise _Refused("the file changed while it was read", corrupt=True)
                arrays[key] = array
    except safetensors.SafetensorError as err:
        raise _Refused(f"safetensors refuses it ({err})", corrupt=True) from err
    if checksum(metadata, arrays) != metadata[CHECKSUM_KEY]:
        raise _Refused(f"its {CHECKSUM_KEY} does not match its content", corrupt=True)
    for key in sorted(arrays, key=_natural):
        _check_finite(key, arrays[key])
    return plan, arrays


def _load(path, backend, device, dtype, *, checkpoint: bool, mesh=None) -> MLP:
    name = os.fspath(path)
    try:
        plan, arrays = _read(name, checkpoint)
    except _Refused as err:
        if err.corrupt:
            raise ModelFileError(f"{name!r} is truncated or corrupted: {err.detail}") from None
        raise ModelFileError(f"{name!r}: {err.detail}") from None
    config = plan.config
    target = get_backend(backend, device, mesh)
    if dtype is None:
        dtype = config["dtype"]
        try:
            target.dtype(dtype)
        except ValueError as err:
            raise ValueError(f"{err}; {name!r} holds a {dtype} model: load it in another "
                             "dtype with dtype='float32'") from err
    model = MLP(config["layer_sizes"], activation=config["activation"],
                output=config["output"], backend=target, dtype=dtype, init=config["init"],
                seed=config["seed"], negative_slope=config["negative_slope"])
    host = _rebuild(plan.param_template, {path: arrays[_leaf_name("layers", path)]
                                          for path, _ in _leaves(plan.param_template)})
    model.params = model._to_backend(host)
    if checkpoint:
        optimizer, step, rng = plan.training
        state = None
        if optimizer is not None:
            slots = [_rebuild(plan.param_template,
                              {path: model.backend.asarray(
                                  arrays[_leaf_name(f"optimizer.{slot}", path)], model.dtype)
                               for path, _ in _leaves(plan.param_template)})
                     for slot in optim.state_fields(optimizer)]
            state = optimizer.State(step, *slots)
        model._optimizer, model._opt_state, model._shuffle_rng = optimizer, state, rng
    return model
