"""Output/loss pairs: the output layer's activation fused with its loss.

Every pair works in the training ("columns") layout: the output layer's pre-activation ``Z`` has
shape ``(k, m)`` (one column per example, the class/output axis first) and the target matrix
``T`` has the same shape and floating dtype (one-hot columns for softmax, 0/1 for sigmoid, real
values for identity; the model builds T from user labels on the host). Reductions over the
classes run along axis 0, which NumPy does as k-1 elementwise passes over rows of length m:
far faster than reducing the short last axis of an ``(m, k)`` array (measured 1.3–2.6 µs against
5.7–11.6 µs for a (300, 3) batch).

Pairs: ``softmax`` + cross-entropy (one-hot targets), ``sigmoid`` + binary cross-entropy (k ≥ 1
independent 0/1 targets: k = 1 is binary classification, k > 1 multilabel), ``identity`` + mean
squared error, ``poisson``: exp output + half Poisson deviance (non-negative targets; the
canonical log link, so its delta is exp(Z) − y). Losses with k outputs average over all k·m
elements, as PyTorch's ``BCEWithLogitsLoss`` and ``MSELoss`` do (scikit-learn sums over outputs).

- ``output(Z) -> (k, m)``: probabilities (softmax, sigmoid), predictions (identity) or means
  (poisson).
- ``terms(Z, T, w=None, counted=None) -> (value (), delta (k, m), correct ())``: the mean data
  loss over the batch (no L2 term), dLoss/dZ computed directly and stably (softmax − onehot,
  sigmoid − y, 2(ŷ − y)/k, each divided by m), and the number of correctly classified examples
  (a 0-d int32 array; always 0 for regression). ``w`` is None (every example weighs 1/m) or a
  ``(1, m)`` row of non-negative example weights that sum to 1 over the batch; it replaces the
  division by m in the value and the delta. ``counted`` is None (every example counts) or a
  ``(1, m)`` row of 1 for the examples the correct count is over and 0 for the rest (the padding
  of a padded batch, which would otherwise be counted as often as it is repeated).
  Exponentials are always of shifted or non-positive arguments, and the BCE value comes from
  the logits (softplus form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from array_api_compat import device as device_of

from polynn.nn.activations import sigmoid
from polynn.nn.namespace import Array, Namespace, namespace


class OutputLoss(NamedTuple):
    """An output layer's activation fused with its loss, in the columns layout (see the
    module's docstring).

    Attributes
    ----------
    output : callable
        ``output(Z) -> (k, m)``: probabilities, predictions or means.
    terms : callable
        ``terms(Z, T, w=None, counted=None) -> (value (), delta (k, m), correct ())``.
    """

    output: Callable[[Array], Array]
    terms: Callable[..., tuple[Array, Array, Array]]

    def value(self, Z: Array, T: Array, w: Array | None = None) -> Array:
        """The mean data loss alone; for evaluation and autodiff.

        Parameters
        ----------
        Z : array, shape (k, m)
            The output layer's pre-activation.
        T : array, shape (k, m)
            Targets.
        w : array, shape (1, m), optional
            Example weights summing to 1 (None: 1/m each).

        Returns
        -------
        array, shape ()
        """
        return self.terms(Z, T, w)[0]

    def value_and_delta(self, Z: Array, T: Array, w: Array | None = None
                        ) -> tuple[Array, Array]:
        """The mean data loss and dLoss/dZ.

        Parameters
        ----------
        Z, T, w
            As :meth:`value` takes them.

        Returns
        -------
        value : array, shape ()
        delta : array, shape (k, m)
            Computed directly and stably, already divided by m (or weighted by ``w``).
        """
        value, delta, _ = self.terms(Z, T, w)
        return value, delta


def _mean(xp: Namespace, per_example: Array, w: Array | None) -> Array:
    """Σ_i w_i · per_example_i, with w_i = 1/m when ``w`` is None; ``per_example`` is (1, m) or
    (k, m) (then summed over k as well)."""
    if w is None:
        return xp.sum(per_example) / per_example.shape[1]
    return xp.sum(per_example * w)


def _scale(delta: Array, w: Array | None) -> Array:
    return delta / delta.shape[1] if w is None else delta * w


def _softmax_parts(Z: Array) -> tuple[Array, Array, Array]:
    """Shifted scores S = Z − max over classes (exactly 0 at each column's maximum), E = exp(S)
    and Σ_k E, shape (1, m): no overflow possible."""
    xp = namespace(Z)
    S = Z - xp.max(Z, axis=0, keepdims=True)
    E = xp.exp(S)
    return S, E, xp.sum(E, axis=0, keepdims=True)


def softmax(Z: Array) -> Array:
    _, E, sum_E = _softmax_parts(Z)
    return E / sum_E


def _counted(xp: Namespace, hits: Array, counted: Array | None) -> Array:
    """The number of hits ``(1, m)`` or ``(k, m)`` (0/1 in a floating dtype) over the counted
    examples, as a 0-d int32 array."""
    if counted is not None:
        hits = hits * counted
    return xp.astype(xp.sum(hits), xp.int32)


def _softmax_ce(Z: Array, T: Array, w: Array | None = None,
                counted: Array | None = None) -> tuple[Array, Array, Array]:
    xp = namespace(Z)
    S, E, sum_E = _softmax_parts(Z)
    # -log p_y = log Σ exp(S) − S_y, picked out by the one-hot columns of T.
    value = _mean(xp, T * (xp.log(sum_E) - S), w)
    # The target's score is the column maximum exactly when its shifted score is 0: reuses the
    # shift instead of two argmax reductions.
    correct = _counted(xp, T * xp.astype(S == 0, T.dtype), counted)
    return value, _scale(E / sum_E - T, w), correct


def _softplus(Z: Array) -> Array:
    """log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)."""
    xp = namespace(Z)
    return xp.maximum(Z, 0.0) + xp.log1p(xp.exp(-xp.abs(Z)))


def _sigmoid_bce(Z: Array, T: Array, w: Array | None = None,
                 counted: Array | None = None) -> tuple[Array, Array, Array]:
    # -[t log σ(z) + (1-t) log(1-σ(z))] = softplus(z) − t·z, averaged over all k·m elements.
    xp = namespace(Z)
    k = Z.shape[0]
    value = _mean(xp, _softplus(Z) - T * Z, w) / k
    # An example counts as correct when every one of its k labels is (subset accuracy, as
    # scikit-learn's accuracy_score for multilabel targets); for k = 1 plain accuracy.
    hits = xp.all((Z > 0) == (T > 0.5), axis=0, keepdims=True)
    return value, _scale(sigmoid(Z) - T, w) / k, _counted(xp, xp.astype(hits, Z.dtype), counted)


def _identity(Z: Array) -> Array:
    return Z


def _mse(Z: Array, T: Array, w: Array | None = None,
         counted: Array | None = None) -> tuple[Array, Array, Array]:
    xp = namespace(Z)
    k = Z.shape[0]
    R = Z - T
    none = xp.zeros((), dtype=xp.int32, device=device_of(Z))
    return _mean(xp, R * R, w) / k, _scale((2.0 / k) * R, w), none


def _exp(Z: Array) -> Array:
    return namespace(Z).exp(Z)


def _poisson(Z: Array, T: Array, w: Array | None = None,
             counted: Array | None = None) -> tuple[Array, Array, Array]:
    # Half Poisson deviance with a log link, ŷ = e^z:
    # y·log(y/ŷ) − y + ŷ = (y·log y − y) − y·z + e^z, with 0·log 0 = 0; zero at a perfect fit,
    # as scikit-learn's poisson_loss. e^z overflows only where the model has already diverged
    # (the loop reports that).
    xp = namespace(Z)
    k = Z.shape[0]
    Y_hat = xp.exp(Z)
    y_log_y = xp.where(T > 0, T * xp.log(xp.where(T > 0, T, 1.0)), 0.0)
    value = _mean(xp, y_log_y - T - T * Z + Y_hat, w) / k
    none = xp.zeros((), dtype=xp.int32, device=device_of(Z))
    return value, _scale(Y_hat - T, w) / k, none


OUTPUTS: dict[str, OutputLoss] = {
    "softmax": OutputLoss(softmax, _softmax_ce),
    "sigmoid": OutputLoss(sigmoid, _sigmoid_bce),
    "identity": OutputLoss(_identity, _mse),
    "poisson": OutputLoss(_exp, _poisson),
}

# Pairs whose ``correct`` count means something (the loop records accuracy for these).
CLASSIFIERS = frozenset({"softmax", "sigmoid"})


def get_output(name: str) -> OutputLoss:
    if name not in OUTPUTS:
        raise ValueError(f"unknown output {name!r}; choose one of {sorted(OUTPUTS)}")
    return OUTPUTS[name]
