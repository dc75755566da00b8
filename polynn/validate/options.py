"""``MLP.fit``'s options as one declarative table, one rule per name."""

from __future__ import annotations

import math

from polynn.nn.optim import OPTIMIZERS
from polynn.validate.values import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_seed,
    type_name,
)


# --- fit's options: one rule per name, as scikit-learn's ``_parameter_constraints`` ------------
def _real(low=-math.inf, high=math.inf, *, low_open=False, high_open=False, none=False):
    return lambda name, value: check_real(name, value, low, high, low_open=low_open,
                                          high_open=high_open, allow_none=none)


def _int(low, *, none=False):
    return lambda name, value: check_int(name, value, low, allow_none=none)


def _optimizer(name, value):
    """A name of ``polynn.nn.optim.OPTIMIZERS`` or an optimizer object (``init``, ``update``)."""
    if isinstance(value, str) or not (hasattr(value, "init") and hasattr(value, "update")):
        check_choice(name, value, OPTIMIZERS)
    return value


def _callable_or_none(what):
    def check(name, value):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be None or {what}, got {value!r}")
        return value

    return check


def _is_progress(value) -> bool:
    """A :class:`polynn.train.progress.Progress` (duck-typed: validate imports no train)."""
    return all(callable(getattr(value, method, None)) for method in ("start", "steps", "epochs",
                                                                      "close"))


def _pair_or_none(name, value):
    if value is not None and not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise TypeError(f"{name} must be a pair (X_val, y_val), got {type_name(value)}")
    return value


def _class_weight(name, value):
    """None, "balanced", or a dict ``{class index (int >= 0): weight (finite, >= 0)}``; the
    indices are checked against the model's classes where the weights are applied
    (:mod:`polynn.model.class_weight`)."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be None, 'balanced' or a dict {{class index: weight}}, "
                        f"got {value!r} ({type_name(value)})")
    return {check_int(f"{name} key", index, 0): check_real(f"{name}[{index!r}]", weight, 0)
            for index, weight in value.items()}


#: ``MLP.fit``'s options: name -> rule ``(name, value) -> checked value`` (raises on a bad one).
FIT_OPTIONS = {
    "lr": _real(0, low_open=True, none=True),
    "l2": _real(0),
    "epochs": _int(0),
    "batch_size": _int(1, none=True),
    "shuffle": check_bool,
    "seed": lambda name, value: check_seed(value, name),
    "optimizer": _optimizer,
    "momentum": _real(0, 1),
    "schedule": _callable_or_none("a schedule from polynn.nn.optim (a callable of the step "
                                  "count)"),
    "validation_split": _real(0, 1, low_open=True, high_open=True, none=True),
    "validation_data": _pair_or_none,
    "patience": _int(0, none=True),
    "min_delta": _real(0),
    "restore_best_weights": check_bool,
    "progress": lambda name, value: value if _is_progress(value) else check_bool(name, value),
    "callback": _callable_or_none("a callable"),
    "l2_per_weight": check_bool,
    "stream": check_bool,
    "class_weight": _class_weight,
}


def check_fit_options(options: dict) -> dict:
    """``fit``'s options, each checked by its rule in :data:`FIT_OPTIONS`, in the table's
    order, before any data is touched.

    Parameters
    ----------
    options : dict
        Option name to value, as ``MLP.fit`` takes them.

    Returns
    -------
    dict
        The checked values (Python numbers).

    Raises
    ------
    ParameterError, ValueError
        Naming the option.
    TypeError
        An unknown option.
    """
    unknown = set(options) - set(FIT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown fit option(s) {sorted(unknown)}; choose from "
                        f"{list(FIT_OPTIONS)}")
    return {name: rule(name, options[name]) for name, rule in FIT_OPTIONS.items()
            if name in options}
