"""The plain data a polynn file holds, and its conversion to and from a file's contents.

A record knows no model class (as Equinox's serialisation, files are trees): host NumPy
arrays in the rows layout, a configuration dict, and for checkpoints the optimizer object, its
NamedTuple state and the shuffling stream's state. :mod:`polynn.model` converts a model to a
record and back; :func:`polynn.io.write` and :func:`polynn.io.read` move records to and from
files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.io.bounded_json import dumps
from polynn.io.errors import Refused
from polynn.io.schema import (
    CLASSES_KEY,
    CONFIG_KEY,
    FILE_KEYS,
    FORMAT,
    FORMAT_VERSION,
    TRAINING_KEY,
    Plan,
    leaf_name,
    leaves,
    model_config,
    rebuild,
    recorded_config,
)
from polynn.io.training import encode_training
from polynn.nn.optim import state_fields
from polynn.version import __version__


@dataclass(frozen=True, eq=False)
class TrainingRecord:
    """The training state of a checkpoint.

    Attributes
    ----------
    optimizer : an optimizer object of :data:`polynn.nn.optim.OPTIMIZER_CLASSES`, or None
        (no ``fit`` yet). Its learning rate is a schedule of ``SCHEDULE_CLASSES``.
    state : the optimizer's ``State`` NamedTuple (``count``: a Python int; then one tree per
        field, each a tuple of ``(W (n_in, n_out), b (n_out,))`` host arrays shaped and typed
        like ``ModelRecord.params``), or None with no optimizer.
    shuffle : dict, NumPy's ``bit_generator.state`` of the shuffling stream.
    """

    optimizer: Any = None
    state: Any = None
    shuffle: dict | None = None


@dataclass(frozen=True, eq=False)
class ModelRecord:
    """A model as plain data.

    Attributes
    ----------
    config : dict with keys ``layer_sizes``, ``activation``, ``output``, ``negative_slope``,
        ``init``, ``dtype``, ``seed`` (the arguments of ``MLP(...)``).
    params : tuple of ``(W (n_in, n_out), b (n_out,))`` host NumPy arrays per layer, in the
        rows layout, of dtype ``polynn.backend.dtype_info(config["dtype"]).host`` (float32
        for a bfloat16 model: NumPy has no bfloat16).
    training : :class:`TrainingRecord` for a checkpoint, else None.
    classes : a classifier's class values (as scikit-learn's ``classes_``): a 1-D sequence of
        integers, real numbers or strings, one per class in the order of the output units (2
        for one sigmoid unit), checked by :func:`polynn.datasets.labels.check_model_classes`;
        None when unknown (files written before polynn stored them).
    """

    config: dict
    params: tuple
    training: TrainingRecord | None = None
    classes: Any = None


def _tree(tree, what: str) -> tuple:
    """``((W, b), ...)`` with every leaf a C-contiguous host NumPy array."""
    if not isinstance(tree, (tuple, list)):
        raise Refused(f"{what} is not a sequence of (W, b) pairs", unsaveable=True)
    try:
        return tuple((np.ascontiguousarray(W), np.ascontiguousarray(b)) for W, b in tree)
    except (TypeError, ValueError) as err:
        raise Refused(f"{what} is not a sequence of (W, b) host arrays ({err})",
                      unsaveable=True) from None


def to_contents(record: ModelRecord):
    """The file's tensors ``{name: host array}`` and metadata ``{key: JSON text}`` for
    ``record`` (checked by the caller against the same plan a reader uses)."""
    if not isinstance(record, ModelRecord):
        raise Refused(f"expected a polynn.io.ModelRecord, got {type(record).__name__}",
                      unsaveable=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "polynn_version": __version__, **recorded_config(model_config(record.config))}
    metadata = {CONFIG_KEY: dumps(config)}
    if record.classes is not None:
        try:
            metadata[CLASSES_KEY] = dumps(np.asarray(record.classes).tolist())
        except (TypeError, ValueError) as err:
            raise Refused(f"the classes cannot be written as JSON ({err})") from None
    tensors = {leaf_name("layers", path): x
               for path, x in leaves(_tree(record.params, "params"))}
    training = record.training
    if training is not None:
        encoded, trees = encode_training(training.optimizer, training.state, training.shuffle)
        for field, tree in trees.items():
            tensors.update((leaf_name(f"optimizer.{field}", path), x)
                           for path, x in leaves(_tree(tree, f"the optimizer's {field!r}")))
        try:
            metadata[TRAINING_KEY] = dumps(encoded)
        except ValueError as err:  # a NaN or infinite hyper-parameter
            raise Refused(f"the training state holds a value JSON cannot carry ({err})") \
                from err
    return tensors, metadata


def from_contents(plan: Plan, arrays: dict, *, checkpoint: bool) -> ModelRecord:
    """The record of a file read and checked (``plan``, ``{tensor: host array}``); the
    training state only with ``checkpoint``."""
    config = {key: value for key, value in plan.config.items() if key not in FILE_KEYS}
    template = plan.param_template

    def tree(prefix):
        return rebuild(template, {path: arrays[leaf_name(prefix, path)]
                                  for path, _ in leaves(template)})

    training = None
    if checkpoint:
        assert plan.training is not None  # a checkpoint's plan has its training state
        optimizer, step, shuffle = plan.training
        state = None
        if optimizer is not None:
            state = optimizer.State(step, *(tree(f"optimizer.{field}")
                                            for field in state_fields(optimizer)))
        training = TrainingRecord(optimizer, state, shuffle)
    return ModelRecord(config, tree("layers"), training, plan.classes)
