"""The per-step math and its runners.

A step is one pure function (:func:`make_step`) built from ``polynn.nn``, in the training
("columns") layout. The backend decides how steps are repeated: one compiled ``lax.fori_loop``
per chunk on JAX, a Python loop elsewhere (:func:`runners`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from polynn.backend import Backend
from polynn.nn import namespace
from polynn.nn.losses import get_output
from polynn.nn.mixed import value_and_grad_mixed
from polynn.nn.mlp import augment, example_weights, forward_columns, value_and_grad_columns
from polynn.train.chunks import MAX_CHUNK_STEPS
from polynn.train.weights import skip_if_weightless


def make_step(activation: Any, output: str, optimizer: Any, inplace: bool = False,
              dropout: Any = None, compute: Any = None) -> Callable[..., Any]:
    """One training step in columns: ``step((params_t, opt_state), Xa (n_0 + 1, m), T (k, m),
    decay, w=None, examples=None, counted=None) -> ((params_t, opt_state), (loss, correct))``;
    ``w`` is None or the batch's ``(1, m)`` example weights, summing to 1; ``counted`` is None
    or the ``(1, m)`` row of 1s for the examples the correct count is over (a padded batch's
    real rows).

    ``dropout``: None or a :class:`polynn.nn.dropout.Dropout`; its masks are drawn for the
    optimizer's step count and ``examples`` ``(m,)``, the batch's rows in the data set.
    ``compute``: None, or the dtype object a mixed-precision step computes in
    (:mod:`polynn.nn.mixed`; parameters, state and data stay in their own dtype).

    Pure unless ``inplace``: then the optimizer overwrites the parameters it is given (for a
    caller that owns them, on backends with mutable arrays; JAX arrays are never mutated).

    Parameters
    ----------
    activation : Activation or tuple of them
        The hidden layers' activation(s).
    output : str
        The output/loss pair.
    optimizer : optimizer object
        Of :mod:`polynn.nn.optim`.
    inplace : bool, default False
        Let the optimizer overwrite the parameters.
    dropout : polynn.nn.dropout.Dropout, optional
        Its masks are drawn for the optimizer's step count and ``examples`` ``(m,)``, the
        batch's rows in the data set.
    compute : dtype object, optional
        The dtype a mixed-precision step computes in (:mod:`polynn.nn.mixed`; parameters,
        state and data stay in their own dtype).

    Returns
    -------
    callable
        The step.
    """
    pair = get_output(output)
    grad = value_and_grad_columns if compute is None else functools.partial(
        value_and_grad_mixed, compute=compute)

    def step(carry, Xa, T, decay, w=None, examples=None, counted=None):
        params, opt_state = carry
        masks = None if dropout is None else dropout.masks(opt_state[0], examples, Xa)
        loss, grads, correct = grad(params, Xa, T, activation, pair, decay, w, masks, counted)
        params, opt_state = optimizer.update(grads, opt_state, params, inplace=inplace)
        return (params, opt_state), (loss, correct)

    return step


def make_evaluate(activation: Any, output: str) -> Callable[..., Any]:
    """The evaluation of a batch in columns.

    Parameters
    ----------
    activation : Activation or tuple of them
        The hidden layers' activation(s).
    output : str
        The output/loss pair.

    Returns
    -------
    callable
        ``evaluate(params_t, Xa, T) -> (loss, correct)``: the mean data loss (without the
        penalty, which does not depend on the rows) and the number of correctly classified
        examples.
    """
    pair = get_output(output)

    def evaluate(params, Xa, T):
        Z, _ = forward_columns(params, Xa, activation)
        value, _, correct = pair.terms(Z, T)
        return value, correct

    return evaluate


def normalized_weights(weights: Any, decay: Any, l2_per_weight: bool,
                       count: Any = None) -> tuple[Any, Any]:
    """A batch's example weights as the loss pairs take them, and the batch's weight decay.

    Parameters
    ----------
    weights : array, shape (b,)
        The batch's example weights.
    decay : tuple of array
        The weight decay (:func:`polynn.nn.mlp.weight_decay`).
    l2_per_weight : bool
        Divide the L2 term by the batch's mean weight (scikit-learn's convention: its
        penalty is normalised by the batch's sum of weights, like its data term).
    count : int or 0-d array, optional
        The examples the mean weight is over (default ``b``; a padded batch counts its real
        rows only).

    Returns
    -------
    w : array, shape (1, b)
        Summing to 1.
    decay : tuple of array
    """
    if l2_per_weight and decay is not None:
        count = weights.shape[0] if count is None else count
        mean_weight = namespace(weights).sum(weights) / count
        decay = tuple(d / mean_weight for d in decay)
    return example_weights(weights), decay


@functools.lru_cache(maxsize=64)
def runners(backend: Backend, activation: Any, output: str, optimizer: Any, dtype: Any,
            l2_per_weight: bool = False, host: bool = False,
            dropout: Any = None) -> tuple[Any, Any, Any]:
    """``(full, batches, evaluate)`` for one configuration (``dtype``: the backend's ``DType``
    record), cached so that a second ``fit`` (or a benchmark's timed run after its warm-up)
    reuses JAX's compiled code.

    ``full(carry, start, n, Xa, T, decay, w)`` runs n full-batch steps (``w``: None or the
    normalised ``(1, m)`` weights); ``batches(carry, start, n, X, T, order, decay, weights)``
    runs mini-batches ``start .. start + n - 1`` of an epoch whose batch rows are the rows of
    ``order`` ``(n_batches, b)`` (``weights``: None or every example's ``(m,)`` weight; an
    optional ``mask`` ``(n_batches, b)``: 1 for a batch's rows, 0 for its padding, which then
    weighs nothing: see :func:`polynn.train.epochs.padded_plan`). With ``dropout`` (a
    :class:`polynn.nn.dropout.Dropout`), ``full`` takes the rows' example indices ``(m,)`` after
    ``w``, and ``batches`` may take ``ids`` ``(n_batches, b)`` after ``mask``: the data set's
    indices of ``order``'s rows when they differ (streamed chunks). Both return
    ``(carry, (losses, correct), n_done)`` (see ``Backend.repeat``). With ``host``
    (eager backends only), ``X``, ``T``, ``order`` and ``weights`` of ``batches`` are host
    NumPy arrays: each batch is gathered on the host and moved to the backend, cast to
    ``dtype``, when used.

    Parameters
    ----------
    backend : Backend
        Where the steps run.
    activation, output, optimizer, dropout
        As :func:`make_step` takes them.
    dtype : DType
        The backend's dtype record.
    l2_per_weight : bool, default False
        See :func:`normalized_weights`.
    host : bool, default False
        Gather batches on the host (eager backends only).

    Returns
    -------
    full, batches, evaluate : callable
    """
    # Eager backends update in place (the loop owns its arrays: see ``owned``); allocating new
    # weights every step cost ~12 % per step on an MNIST-sized NumPy network.
    step = make_step(activation, output, optimizer, inplace=not backend.jit, dropout=dropout,
                     compute=dtype.compute)
    native = dtype.native

    # With a mesh, every batch's example axis (axis 1 in columns) is split over the "data"
    # devices inside the step; without the constraint a gathered batch makes XLA replicate the
    # whole step. Identity without a mesh.
    split = backend.constrain_batch

    def full_body(carry, index, Xa, T, decay, w, examples=None):
        w = None if w is None else split(w, 1)
        return step(carry, split(Xa, 1), split(T, 1), decay, w, examples)

    take = _batch_taker(backend, dtype, host)

    def batch_body(carry, index, X, T, order, decay, weights, mask=None, ids=None):
        # The only copy of the data an epoch makes is this batch-sized one.
        rows = order[index, ...]
        examples = None if dropout is None else (rows if ids is None else ids[index, ...])
        Xb = take(X, rows, 0)
        if Xb.dtype != native:
            Xb = namespace(Xb).astype(Xb, native)
        xa, t = split(augment(Xb), 1), split(take(T, rows, 1), 1)
        if mask is None and weights is None:
            return step(carry, xa, t, decay, None, examples)
        if mask is None:
            raw = take(weights, rows, 0)
            w, decay = normalized_weights(raw, decay, l2_per_weight)
        else:  # a padded batch (see epochs.padded_plan): its padding weighs 0
            share = mask[index, ...]
            raw = share if weights is None else share * take(weights, rows, 0)
            w, decay = normalized_weights(raw, decay, l2_per_weight, namespace(share).sum(share))
        args = (xa, t, decay, split(w, 1), examples)
        if mask is not None:  # the padding's rows are not counted as correct either
            args += (split(namespace(share).reshape(share, (1, -1)), 1),)
        if weights is None:
            return step(carry, *args)
        # A batch whose weights sum to zero is skipped (polynn.train.weights).
        return skip_if_weightless(step, carry, raw, args, backend.jit)

    evaluate = make_evaluate(activation, output)
    full = backend.repeat(full_body, MAX_CHUNK_STEPS)
    batches = backend.repeat(batch_body, MAX_CHUNK_STEPS)
    return full, batches, backend.compile(
        lambda params, Xa, T: evaluate(params, split(Xa, 1), split(T, 1)))


def _batch_taker(backend: Backend, dtype: Any, host: bool) -> Callable[..., Any]:
    """``take(A, rows, axis)``: a batch's rows of ``A`` along ``axis`` as a backend array in
    ``dtype``'s namespace. ``rows`` is a slice (in-order batches on an eager backend: a view)
    or an index array (gathered: on the backend, inside the compiled step on JAX, or on the
    host and then moved and cast when ``host``)."""

    def view_or_gather(A, rows, axis, gather):
        if isinstance(rows, slice):
            return A[rows, ...] if axis == 0 else A[:, rows]
        return gather(A, rows, axis=axis)

    if not host:
        return lambda A, rows, axis: view_or_gather(A, rows, axis, namespace(A).take)
    return lambda A, rows, axis: backend.asarray(view_or_gather(A, rows, axis, np.take),
                                                 dtype.name, copy=False)


def owned(backend: Backend):
    """A function that copies a (params, opt_state) tree where steps update in place (eager
    backends), so that a state kept for later is not overwritten; identity on JAX."""
    if backend.jit:
        return lambda tree: tree
    xp = backend.xp

    def copy(tree):
        if isinstance(tree, tuple):
            return type(tree)(*(copy(leaf) for leaf in tree)) if hasattr(tree, "_fields") \
                else tuple(copy(leaf) for leaf in tree)
        return tree if isinstance(tree, (int, float)) else xp.asarray(tree, copy=True)

    return copy
