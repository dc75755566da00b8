"""polynn: multilayer perceptrons from scratch, written once against the Python array API
standard and run on NumPy, JAX, CuPy, PyTorch or array-api-strict."""

from polynn import backend as backends
from polynn import datasets, distributed
from polynn.backend import BackendUnavailableError, available_backends, get_backend
from polynn.model import MLP, load, load_checkpoint
from polynn.train import DivergenceError, History
from polynn.version import __version__


def __getattr__(name):
    # gradcheck pulls in its module (and JAX) only when used.
    if name == "gradcheck":
        from polynn.gradient_check import gradcheck

        return gradcheck
    raise AttributeError(f"module 'polynn' has no attribute {name!r}")

__all__ = [
    "MLP",
    "__version__",
    "BackendUnavailableError",
    "DivergenceError",
    "History",
    "available_backends",
    "backends",
    "datasets",
    "distributed",
    "get_backend",
    "gradcheck",
    "load",
    "load_checkpoint",
]
