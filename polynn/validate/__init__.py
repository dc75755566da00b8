"""Checks at polynn's boundary: every argument a user passes is checked here, once, before it
reaches a backend, and refused with a message naming the parameter (or file) and the problem.

- :mod:`~polynn.validate.values`: scalars (:func:`check_int`, :func:`check_real`,
  :func:`check_bool`, :func:`check_choice`, :func:`check_seed`; ``bool`` is never a number here,
  strings are never parsed, NaN is never a value) and layer sizes.
- :mod:`~polynn.validate.options`: ``MLP.fit``'s options as one table (:data:`FIT_OPTIONS`).
- :mod:`~polynn.validate.arrays`: :func:`host_array` (pandas and other ``to_numpy`` objects,
  backend arrays; scipy sparse and complex are refused), :func:`check_X` /
  :func:`check_resident_X` (features, checked finite *after* the cast to the model's dtype),
  rows, sample weights, the validation split.
- :mod:`~polynn.validate.targets`: :func:`regression_targets` (class labels are
  :mod:`polynn.datasets.labels`' rules: ``encode_targets`` is there).
- :mod:`~polynn.validate.config`: a model's configuration (:func:`check_model_config`).

Nothing here imports a backend library.
"""

from polynn.validate.arrays import (
                                    check_finite,
                                    check_resident_X,
                                    check_rows,
                                    check_sample_weight,
                                    check_validation_split,
                                    check_X,
                                    host_array,
                                    normalize_sample_weight,
)
from polynn.validate.config import (
                                    MODEL_CONFIG_KEYS,
                                    OPTIONAL_CONFIG,
                                    check_activations,
                                    check_dropout,
                                    check_model_config,
                                    dropout_value,
)
from polynn.validate.options import FIT_OPTIONS, check_fit_options
from polynn.validate.targets import regression_targets
from polynn.validate.values import (
                                    ParameterError,
                                    check_bool,
                                    check_choice,
                                    check_int,
                                    check_l2,
                                    check_layer_sizes,
                                    check_layers,
                                    check_real,
                                    check_seed,
)

__all__ = [
    "FIT_OPTIONS", "MODEL_CONFIG_KEYS", "OPTIONAL_CONFIG", "ParameterError",
    "check_activations", "check_dropout", "dropout_value", "check_X", "check_bool", "check_choice",
    "check_finite", "check_fit_options", "check_int", "check_l2", "check_layer_sizes",
    "check_layers", "check_model_config", "check_real", "check_resident_X", "check_rows",
    "check_sample_weight", "check_seed", "check_validation_split", "host_array",
    "normalize_sample_weight", "regression_targets",
]
