"""Files of plain data: a model record to one safetensors file and back, no pickle anywhere.

polynn.io knows no model class: it reads and writes :class:`ModelRecord` (a configuration dict,
host NumPy parameters and an optional :class:`TrainingRecord`), and :mod:`polynn.model` converts
a model to a record and back.

A polynn file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_ file, so
``safetensors.numpy.load_file(path)`` and ``safetensors.torch.load_file(path)`` open it too.

Tensors (C order, in the model's host storage dtype: bfloat16 is stored exactly as float32
because NumPy has no bfloat16, and the configuration says "bfloat16"):

``layers.{l}.W`` ``(n_l, n_{l+1})`` and ``layers.{l}.b`` ``(n_{l+1},)``, ``l = 0 .. L-1``
    The parameters, in the rows convention ``Z = A @ W + b``.
``optimizer.{field}.{l}.W`` and ``optimizer.{field}.{l}.b`` (checkpoints only)
    The optimizer state, one tree per field of its NamedTuple after the count, shaped like the
    parameters: ``velocity`` (momentum, Nesterov, VelocityMomentum), ``first`` and ``second``
    (Adam); plain SGD has none.

Metadata (safetensors' ``__metadata__``, strings):

``polynn.config``
    JSON ``{"format": "polynn", "format_version": 1, "polynn_version", "layer_sizes",
    "activation", "output", "negative_slope", "init", "dtype", "seed"}``.
``polynn.training`` (checkpoints only)
    JSON ``{"optimizer", "step", "shuffle_rng"}`` (see :mod:`polynn.io.training`).
``polynn.classes`` (classifiers whose class values are known)
    JSON list of the class values (integers, real numbers or strings, one kind), one per class
    in the order of the output units (2 for one sigmoid unit); files without it load with
    ``classes`` None.
``polynn.sha256``
    SHA-256 of the JSON texts (the classes' only when present) and every tensor (name, then
    bytes, in name order): safetensors has no checksum of its own, and a flipped bit would
    otherwise load silently.

Modules: :mod:`~polynn.io.bounded_json` (JSON parsed within limits),
:mod:`~polynn.io.safetensors_file` (the header read within limits, atomic writes),
:mod:`~polynn.io.schema` (tensor names, the plan of a file against its configuration, the
checksum), :mod:`~polynn.io.training` (optimizer, schedule and shuffling stream as JSON),
:mod:`~polynn.io.record` (the records), :mod:`~polynn.io.files` (:func:`write`, :func:`read`).
"""

from polynn.io.bounded_json import MAX_JSON_CONTAINERS, MAX_JSON_DEPTH, MAX_JSON_VALUES
from polynn.io.errors import ModelFileError
from polynn.io.files import read, write
from polynn.io.record import ModelRecord, TrainingRecord
from polynn.io.safetensors_file import MAX_HEADER_BYTES
from polynn.io.schema import (
    CHECKSUM_KEY,
    CLASSES_KEY,
    CONFIG_KEY,
    FORMAT,
    FORMAT_VERSION,
    TRAINING_KEY,
    checksum,
)
from polynn.io.shuffle_state import generator as shuffle_generator

__all__ = [
    "CHECKSUM_KEY",
    "CLASSES_KEY",
    "CONFIG_KEY",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "MAX_JSON_CONTAINERS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "TRAINING_KEY",
    "ModelFileError",
    "ModelRecord",
    "TrainingRecord",
    "checksum",
    "read",
    "shuffle_generator",
    "write",
]

