"""Mixed precision: the step's math in a low-precision compute dtype (bfloat16) around
float32 parameters, as Keras's ``mixed_bfloat16`` policy.

The parameters, the optimizer state, the weight decay and the data stay float32. One step casts
the parameters and the batch to the compute dtype, runs the same forward and hand-derived
backward (:mod:`polynn.nn.mlp`) there, and computes the loss and its delta from the output
pre-activation cast back to float32 (the loss pairs' exp/log-sum-exp keep float32 range and
precision); the gradients come back to float32 before the L2 term is added and the optimizer
updates the float32 parameters, so updates too small for bfloat16's 8-bit significand still
accumulate.

Examples
--------
>>> import polynn as pn
>>> X, y = pn.datasets.spiral(100, 3, seed=0)
>>> model = pn.MLP([2, 25, 3], backend="jax", dtype="mixed_bfloat16")  # doctest: +SKIP
>>> model.fit(X, y, lr=0.1, l2=1e-3, epochs=10_000)  # doctest: +SKIP
>>> model.score(X, y), model.params[0][0].dtype  # doctest: +SKIP
(0.99, dtype('float32'))
"""

from __future__ import annotations

from typing import Any

from polynn.nn.layout import ColumnParams
from polynn.nn.losses import OutputLoss, get_output
from polynn.nn.mlp import Activations, Masks, backward_columns, forward_columns, l2_penalty_columns
from polynn.nn.namespace import Array, namespace


def value_and_grad_mixed(params_t: ColumnParams, Xa: Array, T: Array,
                         activation: Activations = "relu",
                         output: str | OutputLoss = "softmax",
                         decay: tuple[Array, ...] | None = None, w: Array | None = None,
                         masks: Masks = None, counted: Array | None = None, *, compute: Any
                         ) -> tuple[Array, ColumnParams, Array]:
    """As :func:`polynn.nn.mlp.value_and_grad_columns` for float32 ``params_t`` and ``Xa``
    ``(n_0 + 1, m)``, with the matmuls and activations in dtype ``compute`` (the namespace's
    bfloat16). Returns the float32 loss (0-d), float32 gradients shaped like ``params_t`` and
    the correct count."""
    xp = namespace(Xa)
    full = Xa.dtype
    pair = output if isinstance(output, OutputLoss) else get_output(output)
    low = tuple(xp.astype(Wb, compute) for Wb in params_t)
    low_masks = None if masks is None else tuple(
        None if D is None else xp.astype(D, compute) for D in masks)
    Z, cache = forward_columns(low, xp.astype(Xa, compute), activation, low_masks)
    data_loss, delta, correct = pair.terms(xp.astype(Z, full), T, w, counted)
    grads = backward_columns(low, cache, xp.astype(delta, compute), activation, None, low_masks)
    grads = tuple(xp.astype(g, full) for g in grads)
    if decay is not None:
        grads = tuple(g + d * Wb for g, d, Wb in zip(grads, decay, params_t))
    return data_loss + l2_penalty_columns(params_t, decay), grads, correct
