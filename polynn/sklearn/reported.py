"""scikit-learn's value of the squared error with k > 1 outputs, which is not the objective its
gradient follows.

scikit-learn 1.9.1's ``squared_loss`` is ``0.5 * mean over rows and outputs of (y - p)**2``,
but its output delta is ``p - y``: the gradient of ``0.5 * mean over rows of the sum over
outputs``, k times as large in its data term. Its ``loss_``, ``loss_curve_``, the ``tol`` /
``n_iter_no_change`` stopping rule and the objective L-BFGS-B minimises (the value handed to
scipy next to that gradient) all use the mean. polynn's :class:`polynn.MLP` keeps one loss
whose value and gradient agree (mean squared error over all m·k elements, as PyTorch's
``MSELoss``: ``polynn.gradcheck`` checks every pair against JAX's autodiff); the estimator
trains on it with scikit-learn's gradient (``_base.LOSS_SCALES``), which gives ``G = k D / 2 +
P`` (D: polynn's data loss, P: scikit-learn's penalty ``0.5 * alpha * ||W||^2 / n``), and
reports scikit-learn's value ``D / 2 + P = (G + (k - 1) P) / k``. With one output nothing
changes.
"""

from __future__ import annotations

import numpy as np

from polynn.backend import to_host
from polynn.nn import namespace


def mean_over_outputs(est) -> bool:
    """Whether ``est`` reports the mean over its outputs (squared error, k > 1)."""
    return est._output() == "identity" and est.n_outputs_ > 1


def sklearn_value(value, penalty, k):
    """scikit-learn's reported value from ``value`` = ``G`` (the objective whose gradient it
    follows, on its scale) and its ``penalty`` P, for k outputs."""
    return (value + (k - 1) * penalty) / k


def squared_weights(params) -> float:
    """Σ ||W||² over the layers' weights (not the biases) of row-layout ``params``, a float."""
    total = 0.0
    for W, _ in params:
        total += float(np.asarray(to_host(namespace(W).sum(W * W)), dtype=np.float64))
    return total


class EpochValue:
    """The epoch losses of the stochastic solvers on scikit-learn's scale.

    ``MLP.fit`` reports per epoch the mean of its batches' ``G`` values (after division by the
    loss scale); each batch's penalty is that of the weights it started from. With one full
    batch per epoch that is the weights at the end of the previous epoch, known here exactly;
    with mini-batches the epoch's mean penalty is taken as the mean of its first and last
    weights' (the penalty changes little within an epoch; exact when ``alpha = 0``)."""

    def __init__(self, est, model, *, batch_size, n_samples, sample_weight):
        self.k = est.n_outputs_ if mean_over_outputs(est) else 1
        self.full = batch_size >= n_samples
        weight_sum = n_samples if sample_weight is None else float(np.sum(sample_weight))
        # polynn's penalty per batch: alpha / batch_size over the mean weight (l2_per_weight).
        self.factor = 0.5 * float(est.alpha) * n_samples / (batch_size * weight_sum)
        self.start = self._penalty(model.params)

    def _penalty(self, params) -> float:
        if self.k == 1 or self.factor == 0:
            return 0.0  # (nothing to correct, nothing to compute)
        return self.factor * squared_weights(params)

    def __call__(self, value, params) -> float:
        """scikit-learn's epoch loss from polynn's ``value`` (already divided by the loss
        scale) and the row-layout ``params`` at the end of the epoch."""
        if self.k == 1:
            return value
        end = self._penalty(params)
        penalty = self.start if self.full else 0.5 * (self.start + end)
        self.start = end
        return sklearn_value(value, penalty, self.k)
