"""A model's configuration, checked by the rules ``MLP(...)`` applies to its arguments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polynn.validate.values import (
    ParameterError,
    check_choice,
    check_layer_sizes,
    check_real,
    check_seed,
    type_name,
)

# A model's configuration checked by the rules MLP(...) applies to its arguments, so that a file
# and a constructor call accept exactly the same models (one owner for the rules).
MODEL_CONFIG_KEYS = ("layer_sizes", "activation", "output", "negative_slope", "init", "dtype",
                     "seed")
# Keys added later, with the value a configuration without them means (files written before
# them still load). A file records them only when they differ from it.
OPTIONAL_CONFIG = {"dropout": 0.0}


def check_activations(value: Any, n_hidden: int) -> str | tuple[str, ...]:
    """The hidden layers' activation, checked.

    Parameters
    ----------
    value : str or list/tuple of str
        A name from ``ACTIVATIONS`` (every hidden layer), or exactly ``n_hidden`` names (one
        per hidden layer, the first hidden layer's first).
    n_hidden : int
        The number of hidden layers.

    Returns
    -------
    str or tuple of str
        The name as it is, or the names as a tuple.

    Raises
    ------
    ValueError, TypeError
        Naming ``activation``.
    """
    from polynn.nn.activations import ACTIVATIONS

    if isinstance(value, str):
        return check_choice("activation", value, ACTIVATIONS)
    if not isinstance(value, (list, tuple)):
        raise ParameterError("activation must be a name or a list of names (one per hidden "
                             f"layer), got {value!r} ({type_name(value)})")
    if len(value) != n_hidden:
        raise ValueError(f"activation has {len(value)} names for {n_hidden} hidden layers; "
                         "give one per hidden layer, or one name for all")
    return tuple(check_choice(f"activation[{i}]", name, ACTIVATIONS)
                 for i, name in enumerate(value))


def check_dropout(value: Any, n_hidden: int) -> tuple[float, ...]:
    """The hidden layers' dropout rates, checked.

    Parameters
    ----------
    value : float or list/tuple of float
        One rate in [0, 1) for every hidden layer, or exactly ``n_hidden`` rates.
    n_hidden : int
        The number of hidden layers.

    Returns
    -------
    tuple of float
        ``n_hidden`` Python floats.

    Raises
    ------
    ValueError, TypeError
        Naming ``dropout``.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != n_hidden:
            raise ValueError(f"dropout has {len(value)} rates for {n_hidden} hidden layers; "
                             "give one per hidden layer, or one rate for all")
        return tuple(check_real(f"dropout[{i}]", rate, 0, 1, high_open=True)
                     for i, rate in enumerate(value))
    return (check_real("dropout", value, 0, 1, high_open=True),) * n_hidden


def dropout_value(rates: Iterable[float]) -> float | list[float]:
    """Rates per hidden layer as a configuration records them.

    Parameters
    ----------
    rates : iterable of float
        One rate per hidden layer.

    Returns
    -------
    float or list of float
        One float when they are all equal (or there are none), else a list.
    """
    rates = list(rates)
    return rates[0] if rates and len(set(rates)) == 1 else (rates or 0.0)


def check_model_config(config: Any) -> dict[str, Any]:
    """A model's configuration checked field by field with the constructor's own checks,
    against the same registries (``ACTIVATIONS``, ``OUTPUTS``, ``INITIALIZERS``, ``DTYPES``).

    Parameters
    ----------
    config : dict
        Exactly the keys :data:`MODEL_CONFIG_KEYS`, and optionally those of
        :data:`OPTIONAL_CONFIG`, as ``MLP(...)`` takes them.

    Returns
    -------
    dict
        A new dict with the values normalised (``layer_sizes`` and a sequence ``seed`` as
        lists of Python ints, ``negative_slope`` a float, per-layer ``activation`` a tuple,
        ``dropout`` a tuple of rates per hidden layer; an optional key absent stays absent: it
        means its :data:`OPTIONAL_CONFIG` default).

    Raises
    ------
    ValueError, TypeError
        Naming the field.
    """
    from polynn.backend import DTYPES
    from polynn.init import INITIALIZERS
    from polynn.nn.losses import OUTPUTS

    if not isinstance(config, dict):
        raise TypeError(f"a model configuration must be a dict, got {type_name(config)}")
    keys = set(config) - set(OPTIONAL_CONFIG)
    if keys != set(MODEL_CONFIG_KEYS):
        missing = sorted(set(MODEL_CONFIG_KEYS) - keys)
        unknown = sorted(keys - set(MODEL_CONFIG_KEYS), key=str)
        raise ValueError("the model configuration " + "; ".join(
            [f"lacks {missing}"] * bool(missing) + [f"has unknown {unknown}"] * bool(unknown)))
    sizes = check_layer_sizes(config["layer_sizes"])
    optional = {}
    if "dropout" in config:
        optional["dropout"] = check_dropout(config["dropout"], len(sizes) - 2)
    return {
        "layer_sizes": sizes,
        "activation": check_activations(config["activation"], len(sizes) - 2),
        **optional,
        "output": check_choice("output", config["output"], OUTPUTS),
        # leaky_relu's slope for negative inputs (0 would be relu; NaN poisons every gradient).
        "negative_slope": check_real("negative_slope", config["negative_slope"], 0,
                                     low_open=True),
        "init": check_choice("init", config["init"], INITIALIZERS),
        "dtype": check_choice("dtype", config["dtype"], DTYPES),
        "seed": check_seed(config["seed"]),
    }
