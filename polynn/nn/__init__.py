"""The network math, written once against the Python array API standard.

Nothing here imports a backend library, keeps state, or prints: every function gets its
namespace from its arguments (``array_api_compat.array_namespace``, memoised by array type in
``polynn.nn._namespace``) and returns new arrays.
The math runs in the training ("columns") layout (see ``polynn.nn.mlp``); ``forward``,
``value_and_grad``, ``loss`` and ``predict_output`` take the public row layout.
"""

from polynn.nn.activations import ACTIVATIONS, Activation, get_activation
from polynn.nn.losses import OUTPUTS, OutputLoss
from polynn.nn.mlp import (
    augment,
    backward_columns,
    forward,
    forward_columns,
    loss,
    predict_output,
    to_columns,
    to_rows,
    value_and_grad,
    value_and_grad_columns,
)

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
    "predict_output",
    "to_columns",
    "to_rows",
    "value_and_grad",
    "value_and_grad_columns",
]
