"""The network math, written once against the Python array API standard.

Nothing here imports a backend library, keeps state, or prints: every function gets its
namespace from its arguments with ``array_api_compat.array_namespace`` and returns new arrays.
"""

from polynn.nn.activations import ACTIVATIONS, Activation, get_activation
from polynn.nn.losses import OUTPUTS, OutputLoss
from polynn.nn.mlp import backward, forward, loss, predict_output, value_and_grad

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Activation",
    "OutputLoss",
    "backward",
    "forward",
    "get_activation",
    "loss",
    "predict_output",
    "value_and_grad",
]
