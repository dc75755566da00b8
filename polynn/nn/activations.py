"""Hidden-layer activations, each a (forward, backward) pair in one registry.

``forward(Z) -> A`` applies g elementwise. ``backward(A, dA) -> dZ`` returns ``dA * g'(Z)``
written in terms of the layer's *output* ``A = g(Z)``, so the backward pass needs only the
cached activations (one array per layer) and relu can route gradients with a single ``where``
instead of building and multiplying by a 0/1 mask (the seeds' "ReLU as a gradient router").
All arrays keep the shape and floating dtype of their input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from polynn.nn.kernels import relu_backward
from polynn.nn.namespace import Array, namespace


class Activation(NamedTuple):
    """A hidden-layer activation and its derivative.

    Attributes
    ----------
    forward : callable
        ``forward(Z) -> A``, elementwise.
    backward : callable
        ``backward(A, dA) -> dZ``: the gradient through the activation, from its output ``A``.
    """

    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array], Array]


def _relu(Z: Array) -> Array:
    return namespace(Z).maximum(Z, 0.0)


def _relu_backward(A: Array, dA: Array) -> Array:
    return relu_backward(A, dA)  # a delegated kernel (polynn.nn.kernels)


def _tanh(Z: Array) -> Array:
    return namespace(Z).tanh(Z)


def _tanh_backward(A: Array, dA: Array) -> Array:
    return dA * (1.0 - A * A)


def sigmoid(Z: Array) -> Array:
    """Logistic function, overflow-free: 1/(1+e^-z) = (1 + tanh(z/2)) / 2."""
    xp = namespace(Z)
    return 0.5 * (1.0 + xp.tanh(0.5 * Z))


def _sigmoid_backward(A: Array, dA: Array) -> Array:
    return dA * A * (1.0 - A)


def _identity(Z: Array) -> Array:
    return Z


def _identity_backward(A: Array, dA: Array) -> Array:
    return dA


def leaky_relu(negative_slope: float = 0.01) -> Activation:
    """Leaky ReLU with the given slope for z < 0 (0.01, PyTorch's default). The slope must be
    positive so that ``A > 0`` exactly when ``Z > 0`` and the derivative can be read from A."""
    if not negative_slope > 0:
        raise ValueError(f"leaky_relu negative_slope must be > 0, got {negative_slope!r}")

    # max(z, s·z) is leaky ReLU for s <= 1 (min for s > 1), without a slow ``where``.
    pick = "maximum" if negative_slope <= 1 else "minimum"

    def forward(Z: Array) -> Array:
        return getattr(namespace(Z), pick)(Z, negative_slope * Z)

    def backward(A: Array, dA: Array) -> Array:
        xp = namespace(A)
        return dA * (negative_slope + (1.0 - negative_slope) * xp.astype(A > 0, dA.dtype))

    return Activation(forward, backward)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(_relu, _relu_backward),
    "leaky_relu": leaky_relu(0.01),
    "tanh": Activation(_tanh, _tanh_backward),
    "sigmoid": Activation(sigmoid, _sigmoid_backward),
    "identity": Activation(_identity, _identity_backward),
}


def get_activation(name: str, *, negative_slope: float = 0.01) -> Activation:
    """Look up an activation by name.

    Parameters
    ----------
    name : str
        A key of ``ACTIVATIONS``: "relu", "leaky_relu", "tanh", "sigmoid" or "identity".
    negative_slope : float, default 0.01
        leaky_relu's slope for negative inputs (leaky_relu only).

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        An unknown name.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    if name == "leaky_relu" and negative_slope != 0.01:
        return leaky_relu(negative_slope)
    return ACTIVATIONS[name]


def layer_activations(activation: str | Sequence[str], *, negative_slope: float = 0.01
                      ) -> Activation | tuple[Activation, ...]:
    """The hidden layers' activations as :mod:`polynn.nn.mlp` takes them: one
    :class:`Activation` for a name (every hidden layer), a tuple of them for a sequence of
    names (one per hidden layer, the first hidden layer's first)."""
    if isinstance(activation, str):
        return get_activation(activation, negative_slope=negative_slope)
    return tuple(get_activation(name, negative_slope=negative_slope) for name in activation)
