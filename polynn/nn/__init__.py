"""The network math, written once against the Python array API standard.

Nothing here imports a backend library, keeps state, or prints: every function gets its
namespace from its arguments (``array_api_compat.array_namespace``, memoised by array type in
``polynn.nn.namespace``) and returns new arrays.
The math runs in the training ("columns") layout (see ``polynn.nn.mlp``); ``forward``,
``value_and_grad``, ``loss`` and ``predict_output`` take the public row layout.
"""

from polynn.nn.activations import ACTIVATIONS, Activation, get_activation
from polynn.nn.layout import params_to_columns, params_to_rows, state_to_columns, state_to_rows
from polynn.nn.layout import params_to_columns as to_columns
from polynn.nn.layout import params_to_rows as to_rows
from polynn.nn.losses import OUTPUTS, OutputLoss
from polynn.nn.mlp import (
    augment,
    backward_columns,
    forward,
    forward_columns,
    loss,
    predict_output,
    value_and_grad,
    value_and_grad_columns,
)
from polynn.nn.namespace import namespace

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Activation",
    "OutputLoss",
    "augment",
    "backward_columns",
    "forward",
    "forward_columns",
    "get_activation",
    "loss",
    "namespace",
    "params_to_columns",
    "params_to_rows",
    "predict_output",
    "state_to_columns",
    "state_to_rows",
    "to_columns",
    "to_rows",
    "value_and_grad",
    "value_and_grad_columns",
]
