"""A model's configuration, checked by the rules ``MLP(...)`` applies to its arguments."""

from __future__ import annotations

from polynn.validate.values import (
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


def check_model_config(config) -> dict:
    """``config`` (a dict with exactly the keys :data:`MODEL_CONFIG_KEYS`, as ``MLP(...)``
    takes them) checked field by field with the constructor's own checks, against the same
    registries (``ACTIVATIONS``, ``OUTPUTS``, ``INITIALIZERS``, ``DTYPES``). Returns a new dict
    with the values normalised (``layer_sizes`` and a sequence ``seed`` as lists of Python
    ints, ``negative_slope`` a float). Raises ValueError or TypeError naming the field."""
    from polynn.backend import DTYPES
    from polynn.init import INITIALIZERS
    from polynn.nn.activations import ACTIVATIONS
    from polynn.nn.losses import OUTPUTS

    if not isinstance(config, dict):
        raise TypeError(f"a model configuration must be a dict, got {type_name(config)}")
    if set(config) != set(MODEL_CONFIG_KEYS):
        missing = sorted(set(MODEL_CONFIG_KEYS) - set(config))
        unknown = sorted(set(config) - set(MODEL_CONFIG_KEYS), key=str)
        raise ValueError("the model configuration " + "; ".join(
            [f"lacks {missing}"] * bool(missing) + [f"has unknown {unknown}"] * bool(unknown)))
    return {
        "layer_sizes": check_layer_sizes(config["layer_sizes"]),
        "activation": check_choice("activation", config["activation"], ACTIVATIONS),
        "output": check_choice("output", config["output"], OUTPUTS),
        # leaky_relu's slope for negative inputs (0 would be relu; NaN poisons every gradient).
        "negative_slope": check_real("negative_slope", config["negative_slope"], 0,
                                     low_open=True),
        "init": check_choice("init", config["init"], INITIALIZERS),
        "dtype": check_choice("dtype", config["dtype"], DTYPES),
        "seed": check_seed(config["seed"]),
    }
