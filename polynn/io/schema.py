"""What a polynn file holds: tensor names, the plan of a file against its configuration, the
checksum.

Tensors (C order, little-endian, in the host storage dtype of the configuration's dtype):
``layers.{l}.W`` ``(n_l, n_{l+1})`` and ``layers.{l}.b`` ``(n_{l+1},)``; in checkpoints also
``optimizer.{field}.{l}.W|b``, one tree per field of the optimizer's state NamedTuple after its
count (``velocity``; ``first`` and ``second``). Metadata: ``polynn.config`` (JSON),
``polynn.training`` (JSON, checkpoints only), ``polynn.classes`` (JSON, a classifier's class
values, when known; files without it load with classes None) and ``polynn.sha256``.

:func:`plan` checks the metadata strings and the tensors' ``{name: (dtype, shape)}`` against
each other before any tensor data is read; writing runs the same function on what it is about
to write, so it refuses exactly what reading would refuse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np

from polynn.backend import dtype_info
from polynn.datasets.labels import check_model_classes
from polynn.io.bounded_json import loads
from polynn.io.errors import Refused, differences
from polynn.io.training import check_training
from polynn.nn import optim
from polynn.validate import MODEL_CONFIG_KEYS, OPTIONAL_CONFIG, check_model_config, dropout_value

FORMAT = "polynn"
FORMAT_VERSION = 1
CONFIG_KEY, TRAINING_KEY, CHECKSUM_KEY = "polynn.config", "polynn.training", "polynn.sha256"
#: A classifier's class values: a JSON list of integers, real numbers or strings (one kind).
CLASSES_KEY = "polynn.classes"
#: The configuration's keys that describe the file rather than the model.
FILE_KEYS = ("format", "format_version", "polynn_version")
CONFIG_KEYS = frozenset(FILE_KEYS + MODEL_CONFIG_KEYS)


def host_dtype(name: str) -> np.dtype:
    """The NumPy dtype tensors of a model of dtype ``name`` are stored in."""
    return np.dtype(dtype_info(name).host)


# --- tensor names -----------------------------------------------------------------------------
def leaf_name(prefix: str, path) -> str:
    """``prefix.0.W`` for the W of layer 0's ``(W, b)`` pair; dotted indices elsewhere."""
    *outer, last = path
    pair = len(path) == 2 and last < 2
    return ".".join([prefix, *map(str, outer), "Wb"[last] if pair else str(last)])


def leaves(tree, path=()):
    """``[(path, leaf), ...]`` of a nested tuple, depth first (lists are leaves)."""
    if isinstance(tree, tuple):
        return [item for i, child in enumerate(tree) for item in leaves(child, (*path, i))]
    return [(path, tree)]


def rebuild(template, values: dict, path=()):
    """A nested tuple shaped like ``template`` whose leaves are ``values[path]``."""
    if isinstance(template, tuple):
        return tuple(rebuild(child, values, (*path, i)) for i, child in enumerate(template))
    return values[path]


def natural(name: str):
    """Sort key: layers.2 before layers.10."""
    return [int(part) if part.isdigit() else part for part in name.split(".")]


# --- the configuration ------------------------------------------------------------------------
def check_config(config) -> dict:
    """The file's configuration JSON object checked: the format keys here, the model's own keys
    by :func:`polynn.validate.check_model_config` (the rules ``MLP(...)`` applies)."""
    if not isinstance(config, dict):
        raise Refused("the configuration is not a JSON object")
    if config.get("format") != FORMAT:
        raise Refused(f"not a polynn model file (format {config.get('format')!r}, expected "
                      f"{FORMAT!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Refused(f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise Refused(f"format version {version}, written by a newer polynn "
                      f"({config.get('polynn_version')}); this polynn reads format version "
                      f"{FORMAT_VERSION}: upgrade polynn")
    # Keys added after format version 1 (dropout) are optional: older files lack them.
    keys = config.keys() - OPTIONAL_CONFIG.keys()
    if keys != CONFIG_KEYS:
        raise Refused(f"config {differences(keys, CONFIG_KEYS)}")
    if not isinstance(config["polynn_version"], str):
        raise Refused(f"config polynn_version={config['polynn_version']!r} is not a string")
    model_keys = [key for key in (*MODEL_CONFIG_KEYS, *OPTIONAL_CONFIG) if key in config]
    return {**{key: config[key] for key in FILE_KEYS},
            **model_config({key: config[key] for key in model_keys})}


def model_config(config) -> dict:
    """A model's configuration (exactly :data:`~polynn.validate.MODEL_CONFIG_KEYS`, and any of
    :data:`~polynn.validate.OPTIONAL_CONFIG`), checked as ``MLP(...)`` checks its arguments."""
    try:
        return check_model_config(config)
    except (TypeError, ValueError) as err:
        raise Refused(f"config: {err}") from None


def recorded_config(config: dict) -> dict:
    """A checked model configuration as a file records it: a per-layer ``activation`` as a
    list, ``dropout`` as one rate or a list, and left out when it is 0 everywhere (so that a
    file of a model without dropout is the file earlier versions wrote and read)."""
    out = dict(config)
    if not isinstance(out["activation"], str):
        out["activation"] = list(out["activation"])
    rates = out.pop("dropout", ())
    if any(rates):
        out["dropout"] = dropout_value(rates)
    return out


# --- the plan of a file -----------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    """What a file holds, checked: configuration, training state, and the shape and dtype of
    every tensor that must be (and may be) there."""

    config: dict            # the whole configuration, file keys included
    shapes: dict            # tensor name -> shape
    dtype: np.dtype         # every tensor's storage dtype
    param_template: tuple   # ([n_in, n_out], [n_out]) per layer: shapes as lists (leaves)
    training: tuple | None  # (optimizer, step, shuffle state dict) or None
    classes: object = None  # the class values (a 1-D NumPy array) or None


def _check_metadata_keys(metadata: dict) -> None:
    if CONFIG_KEY not in metadata:
        raise Refused(f"its metadata has no {CONFIG_KEY!r}: a safetensors file, but not a "
                      "polynn model file")
    unknown = set(metadata) - {CONFIG_KEY, TRAINING_KEY, CLASSES_KEY, CHECKSUM_KEY}
    if unknown:
        raise Refused(f"unknown metadata {sorted(unknown)}")
    if not re.fullmatch(r"[0-9a-f]{64}", metadata.get(CHECKSUM_KEY, "")):
        raise Refused(f"its metadata has no valid {CHECKSUM_KEY!r}", corrupt=True)


def _layer_count_fits(config, tensors: dict) -> None:
    """Refuse a configuration declaring more layers than the file has tensors (each layer has
    two) before anything is built per layer: a small text can declare a million layers."""
    sizes = config.get("layer_sizes") if isinstance(config, dict) else None
    if isinstance(sizes, list) and len(sizes) - 1 > len(tensors):
        raise Refused(f"the configuration has {len(sizes) - 1} layers but the file holds "
                      f"{len(tensors)} tensors")


def plan(metadata: dict, tensors: dict, *, checkpoint: bool) -> Plan:
    """Check the metadata strings and the tensors' ``{name: (dtype, shape)}`` against each
    other; ``checkpoint``: the file must hold a training state."""
    _check_metadata_keys(metadata)
    config = loads(metadata[CONFIG_KEY], "the configuration")
    _layer_count_fits(config, tensors)
    config = check_config(config)
    sizes = config["layer_sizes"]
    template = tuple(([sizes[i], sizes[i + 1]], [sizes[i + 1]]) for i in range(len(sizes) - 1))
    shapes = {leaf_name("layers", path): shape for path, shape in leaves(template)}
    training = None
    if TRAINING_KEY in metadata:
        training = check_training(loads(metadata[TRAINING_KEY], "the training state"))
        if training[0] is not None:
            for field in optim.state_fields(training[0]):
                shapes.update((leaf_name(f"optimizer.{field}", path), shape)
                              for path, shape in leaves(template))
    elif checkpoint:
        raise Refused("holds a model without training state (written by save(), not "
                      "save_checkpoint()); open it with polynn.load()")
    if tensors.keys() != shapes.keys():
        raise Refused(f"the tensors do not match the configuration (layer_sizes {sizes}): "
                      f"{differences(tensors.keys(), shapes.keys())}")
    dtype = host_dtype(config["dtype"])
    for key in sorted(shapes, key=natural):
        tensor_dtype, shape = tensors[key]
        if tensor_dtype != dtype:
            raise Refused(f"tensor {key!r} has dtype {tensor_dtype}; the configuration "
                          f"(dtype {config['dtype']!r}) needs {dtype}")
        if tuple(shape) != tuple(shapes[key]):
            raise Refused(f"tensor {key!r} has shape {tuple(shape)} but the configuration "
                          f"needs {tuple(shapes[key])}")
    classes = None
    if CLASSES_KEY in metadata:
        classes = check_file_classes(loads(metadata[CLASSES_KEY], "the classes"), config)
    return Plan(config, shapes, dtype, template, training, classes)


def check_file_classes(value, config: dict):
    """The file's class values (a JSON list) checked by :mod:`polynn.datasets.labels`' rules
    and against the configuration's output layer; a 1-D NumPy array."""
    if not isinstance(value, list):
        raise Refused("the classes are not a JSON list")
    if any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in value):
        raise Refused("the classes hold values that are not integers, real numbers or "
                      "strings")
    try:
        return check_model_classes(value, config["output"], config["layer_sizes"][-1])
    except (TypeError, ValueError, OverflowError) as err:
        raise Refused(str(err)) from None


# --- values -----------------------------------------------------------------------------------
def check_finite(key: str, array: np.ndarray) -> None:
    """Refuse a tensor holding NaN or infinity, or a negative value in an optimizer state's
    field that holds none (:data:`polynn.nn.optim.NONNEGATIVE_STATE_FIELDS`: Adam's
    ``second`` moments, whose square root the next step takes)."""
    if not array.size:
        return
    # min/max propagate NaN and ±inf without a mask the size of the array.
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        raise Refused(f"tensor {key!r} contains NaN or infinity")
    parts = key.split(".")
    if parts[0] == "optimizer" and parts[1] in optim.NONNEGATIVE_STATE_FIELDS and low < 0:
        raise Refused(f"tensor {key!r} holds negative values (the smallest is {low:.3g}); "
                      f"the optimizer's {parts[1]!r} moments are >= 0")


def checksum(metadata: dict, tensors: dict) -> str:
    """The ``polynn.sha256`` of a file: SHA-256 over the config and training JSON texts, the
    classes JSON text when there is one (so that files without it keep their checksum), and
    each tensor's name and little-endian C-order bytes, tensors in name order.

    Parameters
    ----------
    metadata : dict of str to str
        The safetensors header's ``__metadata__`` (JSON texts by key).
    tensors : dict of str to numpy.ndarray
        The file's tensors by name.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    keys = (CONFIG_KEY, TRAINING_KEY, *((CLASSES_KEY,) if CLASSES_KEY in metadata else ()))
    for key in keys:
        text = metadata.get(key, "").encode("utf-8")
        digest.update(len(text).to_bytes(8, "little") + text)
    for key in sorted(tensors):
        array = np.ascontiguousarray(tensors[key])
        digest.update(key.encode("utf-8") + b"\0")
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(np.ascontiguousarray(little).data)
    return digest.hexdigest()
