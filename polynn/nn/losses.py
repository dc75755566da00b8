"""Output/loss pairs: the output layer's activation fused with its loss.

Every pair works on the output layer's pre-activation ``Z`` of shape ``(m, k)`` and a target
matrix ``T`` of the same shape and floating dtype (one-hot rows for softmax, 0/1 in one column
for sigmoid, real values for identity; the model builds T from user labels on the host).

- ``output(Z) -> (m, k)``: probabilities (softmax, sigmoid) or predictions (identity).
- ``value(Z, T) -> ()``: mean data loss over the batch (no L2 term).
- ``value_and_delta(Z, T) -> ((), (m, k))``: the loss and dLoss/dZ, computed directly and stably:
  softmax - onehot, sigmoid - y, 2(yhat - y)/k, each divided by m. Exponentials are always of
  shifted or non-positive arguments, and the BCE value comes from the logits (softplus form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from array_api_compat import array_namespace

from polynn.nn.activations import sigmoid

Array = object


class OutputLoss(NamedTuple):
    output: Callable[[Array], Array]
    value: Callable[[Array, Array], Array]
    value_and_delta: Callable[[Array, Array], tuple[Array, Array]]


def _log_softmax_parts(Z):
    """Shifted scores S = Z - max(Z) and log Σ exp(S), shape (m, 1): no overflow possible."""
    xp = array_namespace(Z)
    S = Z - xp.max(Z, axis=1, keepdims=True)
    E = xp.exp(S)
    sum_E = xp.sum(E, axis=1, keepdims=True)
    return S, E, sum_E


def softmax(Z):
    _, E, sum_E = _log_softmax_parts(Z)
    return E / sum_E


def _softmax_ce(Z, T):
    xp = array_namespace(Z)
    S, _, sum_E = _log_softmax_parts(Z)
    # -log p_y = log Σ exp(S) - S_y, picked out by the one-hot rows of T.
    return xp.sum(T * (xp.log(sum_E) - S)) / Z.shape[0]


def _softmax_ce_and_delta(Z, T):
    xp = array_namespace(Z)
    m = Z.shape[0]
    S, E, sum_E = _log_softmax_parts(Z)
    value = xp.sum(T * (xp.log(sum_E) - S)) / m
    return value, (E / sum_E - T) / m


def _softplus(Z):
    """log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)."""
    xp = array_namespace(Z)
    return xp.maximum(Z, 0.0) + xp.log1p(xp.exp(-xp.abs(Z)))


def _sigmoid_bce(Z, T):
    # -[t log σ(z) + (1-t) log(1-σ(z))] = softplus(z) - t·z
    xp = array_namespace(Z)
    return xp.sum(_softplus(Z) - T * Z) / (Z.shape[0] * Z.shape[1])


def _sigmoid_bce_and_delta(Z, T):
    n = Z.shape[0] * Z.shape[1]
    return _sigmoid_bce(Z, T), (sigmoid(Z) - T) / n


def _identity(Z):
    return Z


def _mse(Z, T):
    xp = array_namespace(Z)
    R = Z - T
    return xp.sum(R * R) / (Z.shape[0] * Z.shape[1])


def _mse_and_delta(Z, T):
    xp = array_namespace(Z)
    n = Z.shape[0] * Z.shape[1]
    R = Z - T
    return xp.sum(R * R) / n, (2.0 / n) * R


OUTPUTS: dict[str, OutputLoss] = {
    "softmax": OutputLoss(softmax, _softmax_ce, _softmax_ce_and_delta),
    "sigmoid": OutputLoss(sigmoid, _sigmoid_bce, _sigmoid_bce_and_delta),
    "identity": OutputLoss(_identity, _mse, _mse_and_delta),
}


def get_output(name: str) -> OutputLoss:
    if name not in OUTPUTS:
        raise ValueError(f"unknown output {name!r}; choose one of {sorted(OUTPUTS)}")
    return OUTPUTS[name]
