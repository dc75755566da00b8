"""The training state of a checkpoint as JSON: the optimizer (one of polynn's frozen dataclasses,
its learning-rate schedule nested the same way), its step count, and the shuffling stream.

``polynn.training`` is ``{"optimizer", "step", "shuffle_rng"}``: ``optimizer`` is
``{"class": "Adam", "fields": {...}}`` or null before the first ``fit``; ``step`` is the state's
count (null with no optimizer); ``shuffle_rng`` is NumPy's ``bit_generator.state``, checked
field by field by :func:`polynn.io.shuffle_state.check_shuffle`. Only the classes of
:data:`polynn.nn.optim.OPTIMIZER_CLASSES` and :data:`~polynn.nn.optim.SCHEDULE_CLASSES` are
named or constructed: a file carries no Python objects.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any

import numpy as np

from polynn.io.errors import Refused, differences
from polynn.io.shuffle_state import check_shuffle
from polynn.nn import optim

TRAINING_KEYS = frozenset({"optimizer", "step", "shuffle_rng"})
#: The largest step count a checkpoint holds: JAX keeps the count in an int32 inside its
#: compiled loop, and a file must load on every backend.
MAX_STEP = 2**31 - 1
_KINDS: dict[str, dict[str, Any]] = {"optimizer": optim.OPTIMIZER_CLASSES,
                                     "learning-rate schedule": optim.SCHEDULE_CLASSES}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- writing ----------------------------------------------------------------------------------
def encode_dataclass(obj, what: str) -> dict:
    """``{"class": name, "fields": {...}}`` for one of polynn's optimizers (``what`` is
    "optimizer") or learning-rate schedules ("learning-rate schedule")."""
    classes = _KINDS[what]
    if classes.get(type(obj).__name__) is not type(obj):
        raise Refused(f"the {what} {obj!r} cannot be saved in a checkpoint: only polynn's own "
                      f"({', '.join(sorted(classes))}) can (polynn files carry no Python "
                      "objects); save() still saves the weights", unsaveable=True)
    fields = {}
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]  # checked just above
        value = getattr(obj, field.name)
        if field.name == "learning_rate" and what == "optimizer":
            value = encode_dataclass(value, "learning-rate schedule")
        elif isinstance(value, np.generic):
            value = value.item()
        fields[field.name] = value
    return {"class": type(obj).__name__, "fields": fields}


def step_count(count) -> int:
    """The state's count as a Python int (an int, a NumPy integer or a 0-d integer array)."""
    try:
        return operator.index(count)
    except TypeError:
        raise Refused(f"the optimizer's step count is {count!r}, not an integer",
                      unsaveable=True) from None


def state_trees(optimizer, state) -> dict:
    """``{field: tree}`` of an optimizer state (the optimizer's ``State`` NamedTuple: count,
    then trees shaped like the parameters), named by its fields."""
    fields = optim.state_fields(optimizer)
    if not (isinstance(state, tuple) and len(state) == 1 + len(fields)):
        raise Refused(f"the optimizer state is not ({', '.join(('count',) + fields)})",
                      unsaveable=True)
    if hasattr(state, "_fields") and optim.state_fields(state) != fields:
        raise Refused(f"the optimizer state {type(state).__name__} has fields "
                      f"{optim.state_fields(state)}; {type(optimizer).__name__} keeps {fields}",
                      unsaveable=True)
    return dict(zip(fields, state[1:]))


def encode_training(optimizer, state, shuffle):
    """``(the polynn.training object, {field: tree})`` of a checkpoint: the state's trees are
    written as tensors by the caller."""
    shuffle = check_shuffle(shuffle)
    if optimizer is None:
        if state is not None:
            raise Refused("the training state has an optimizer state but no optimizer",
                          unsaveable=True)
        return {"optimizer": None, "step": None, "shuffle_rng": shuffle}, {}
    if state is None:
        raise Refused("the training state has an optimizer but no optimizer state",
                      unsaveable=True)
    trees = state_trees(optimizer, state)
    training = {"optimizer": encode_dataclass(optimizer, "optimizer"),
                "step": step_count(state[0]), "shuffle_rng": shuffle}
    return training, trees


# --- reading ----------------------------------------------------------------------------------
def decode_dataclass(spec, what: str):
    """The optimizer or schedule ``{"class", "fields"}`` describes, each field checked."""
    classes = _KINDS[what]
    if not (isinstance(spec, dict) and spec.keys() == {"class", "fields"}
            and isinstance(spec["fields"], dict)):
        raise Refused(f"the saved {what} is not {{'class', 'fields'}}")
    cls = classes.get(spec["class"]) if isinstance(spec["class"], str) else None
    if cls is None:
        raise Refused(f"unknown {what} {spec['class']!r}; polynn knows {sorted(classes)}")
    names = {field.name for field in dataclasses.fields(cls)}
    if spec["fields"].keys() != names:
        raise Refused(f"the saved {what} {spec['class']} has fields "
                      f"{sorted(spec['fields'])}; expected {sorted(names)}")
    fields = {}
    for key, value in spec["fields"].items():
        if isinstance(value, dict) and what == "optimizer":
            value = decode_dataclass(value, "learning-rate schedule")
        elif not (isinstance(value, bool) or (_is_number(value) and math.isfinite(value))):
            raise Refused(f"the saved {what} {spec['class']} has {key}={value!r}, not a "
                          "finite number")
        fields[key] = value
    try:
        return cls(**fields)
    except (TypeError, ValueError) as err:
        raise Refused(f"the saved {what} {spec['class']} is invalid ({err})") from err


def check_training(training):
    """``(optimizer or None, step or None, shuffle state)`` from the training JSON."""
    if not isinstance(training, dict):
        raise Refused("the training state is not a JSON object")
    if training.keys() != TRAINING_KEYS:
        raise Refused(f"training state {differences(training.keys(), TRAINING_KEYS)}")
    optimizer, step = training["optimizer"], training["step"]
    if optimizer is not None:
        optimizer = decode_dataclass(optimizer, "optimizer")
    if (optimizer is None) != (step is None):
        raise Refused("training state has an optimizer without its step count or a step "
                      "count without its optimizer")
    if step is not None and not (isinstance(step, int) and not isinstance(step, bool)
                                 and 0 <= step <= MAX_STEP):
        raise Refused(f"the optimizer's step count is {step!r:.60} (field 'step'); expected "
                      f"an integer in [0, {MAX_STEP}] (JAX counts steps in int32)")
    return optimizer, step, check_shuffle(training["shuffle_rng"])
