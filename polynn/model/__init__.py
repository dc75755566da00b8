"""The model: :class:`MLP` (configuration + parameters + backend; ``fit`` = check -> place ->
train) and :func:`load` / :func:`load_checkpoint` (a model from a file's record)."""

from polynn.model.mlp import MLP
from polynn.model.record import load, load_checkpoint

__all__ = ["MLP", "load", "load_checkpoint"]
