"""Forward pass, hand-derived backward pass, and the regularised loss of an MLP.

Shapes (examples are rows): ``X`` is ``(m, n_0)``; layer l has ``W`` ``(n_{l-1}, n_l)`` and
``b`` ``(n_l,)``; ``Z_l = A_{l-1} @ W_l + b_l`` and ``A_l = g(Z_l)`` for hidden layers.
``params`` is
a tuple of ``(W, b)`` pairs, one per layer, all in one floating dtype on one device.

Loss = mean data loss + ``0.5 * l2 * Σ‖W‖²`` (weights only), so ``dW = A_prevᵀ · dZ + l2 · W``
with ``dZ`` already divided by the batch size.
"""

from __future__ import annotations

from array_api_compat import array_namespace

from polynn.nn.activations import Activation, get_activation
from polynn.nn.losses import OutputLoss, get_output


def _as_activation(activation) -> Activation:
    return activation if isinstance(activation, Activation) else get_activation(activation)


def _as_output(output) -> OutputLoss:
    return output if isinstance(output, OutputLoss) else get_output(output)


def forward(params, X, activation="relu"):
    """Run the network on ``X`` ``(m, n_0)``.

    Returns ``(Z_out, cache)``: the output layer's pre-activation ``(m, n_L)`` and the tuple of
    layer inputs ``(A_0 = X, A_1, ..., A_{L-1})`` that ``backward`` needs. Same dtype as ``X``.
    """
    g = _as_activation(activation).forward
    A = X
    cache = [X]
    for W, b in params[:-1]:
        A = g(A @ W + b)
        cache.append(A)
    W, b = params[-1]
    return A @ W + b, tuple(cache)


def backward(params, cache, delta, activation="relu", l2=0.0):
    """Hand-derived backpropagation.

    ``delta`` is dLoss/dZ_out ``(m, n_L)`` (from an output/loss pair, already divided by m);
    ``cache`` comes from ``forward``. Returns a tuple of ``(dW, db)`` with the shapes and dtype of
    ``params``. ``dA_0`` (the gradient w.r.t. the input) is never formed: nothing needs it.
    """
    g_backward = _as_activation(activation).backward
    skip_l2 = isinstance(l2, (int, float)) and l2 == 0
    xp = array_namespace(delta)
    grads = []
    dZ = delta
    for layer in range(len(params) - 1, -1, -1):
        W, _ = params[layer]
        A_prev = cache[layer]
        dW = A_prev.T @ dZ
        if not skip_l2:
            dW = dW + l2 * W
        grads.append((dW, xp.sum(dZ, axis=0)))
        if layer > 0:
            dZ = g_backward(A_prev, dZ @ W.T)
    return tuple(reversed(grads))


def l2_penalty(params, l2):
    """``0.5 * l2 * Σ‖W‖²`` over the weights (biases are not regularised); a 0-d array or 0.0."""
    if isinstance(l2, (int, float)) and l2 == 0:
        return 0.0
    xp = array_namespace(params[0][0])
    return 0.5 * l2 * sum(xp.sum(W * W) for W, _ in params)


def loss(params, X, T, activation="relu", output="softmax", l2=0.0):
    """Regularised loss (0-d array) of ``params`` on inputs ``X`` ``(m, n_0)`` and targets ``T``
    ``(m, n_L)``."""
    Z, _ = forward(params, X, activation)
    return _as_output(output).value(Z, T) + l2_penalty(params, l2)


def value_and_grad(params, X, T, activation="relu", output="softmax", l2=0.0):
    """The regularised loss (0-d array) and its gradient: a tuple of ``(dW, db)`` per layer."""
    Z, cache = forward(params, X, activation)
    data_loss, delta = _as_output(output).value_and_delta(Z, T)
    grads = backward(params, cache, delta, activation, l2)
    return data_loss + l2_penalty(params, l2), grads


def predict_output(params, X, activation="relu", output="softmax"):
    """Probabilities (softmax/sigmoid) or predictions (identity), ``(m, n_L)``."""
    Z, _ = forward(params, X, activation)
    return _as_output(output).output(Z)
