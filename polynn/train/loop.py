"""The training loop: a loop over named pieces.

``run`` converts the row-layout parameters and optimizer state to the training ("columns")
layout once on entry and back on exit (:mod:`polynn.nn.layout`), so nothing outside this package
sees that layout. Each turn of the loop runs one chunk (:mod:`polynn.train.chunks`): full-batch
steps (:class:`FullBatch`) or one epoch of mini-batches (:class:`MiniBatches`,
:mod:`polynn.train.epochs`); then, per epoch, validation and early stopping
(:mod:`polynn.train.validation`) and the callback, which sees the current state on the model
(``TrainSpec.publish``). A non-finite loss raises :class:`DivergenceError` with the last finite
state (:mod:`polynn.train.divergence`); Ctrl-C stops after the current step
(:mod:`polynn.train.interrupt`). Where the data lives was decided before, by
:func:`polynn.placement.place`: the loop reads its :class:`~polynn.placement.Placement`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.backend import Backend
from polynn.nn.layout import params_to_columns, params_to_rows, state_to_columns, state_to_rows
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.mlp import augment, weight_decay
from polynn.placement import bucketed, take_columns, take_rows
from polynn.train.chunks import Chunker
from polynn.train.divergence import diverged, finite_prefix, last_finite
from polynn.train.epochs import run_epoch
from polynn.train.history import EpochInfo, History
from polynn.train.interrupt import InterruptFlag
from polynn.train.progress import as_progress
from polynn.train.steps import normalized_weights, owned, runners
from polynn.train.validation import Validation
from polynn.train.weights import weighted_rows


@dataclass
class TrainSpec:
    """Everything ``run`` needs besides data and parameters.

    Attributes
    ----------
    backend : Backend
        Where training runs.
    activation : Activation or tuple of them
        The hidden layers' activation(s).
    output : str
        The output/loss pair.
    l2 : float
        L2 penalty.
    optimizer : optimizer object
        Of :mod:`polynn.nn.optim`.
    epochs : int
        Epochs to run.
    batch_size : int or None
        None: full batch.
    shuffle : bool
        Reshuffle every epoch.
    rng : numpy.random.Generator
        The shuffling stream.
    dtype : DType
        The backend's dtype record that batches are cast to.
    patience, min_delta, restore_best
        Early stopping, as ``MLP.fit`` takes them.
    progress : bool or polynn.train.progress.Progress
        A bool (a tqdm bar) or a progress object.
    callback : callable or None
        ``callback(EpochInfo) -> bool | None`` after every epoch; True stops training.
    l2_per_weight : bool
        See :func:`polynn.train.steps.normalized_weights`.
    publish : callable or None
        ``publish(params, opt_state)`` (row layout) just before the callback, so that the
        model holds the current state during it.
    dropout : polynn.nn.dropout.Dropout or None
        See :func:`polynn.train.steps.make_step`.
    """

    backend: Backend
    activation: object
    output: str
    l2: float
    optimizer: object
    epochs: int
    batch_size: int | None
    shuffle: bool
    rng: np.random.Generator
    dtype: object
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    progress: object = False
    callback: object = None
    l2_per_weight: bool = False
    publish: object = None
    dropout: object = None  # None or a polynn.nn.dropout.Dropout (training steps only)


def _record(history, losses, correct, steps: int, epochs: int, classify: bool) -> None:
    history.loss.extend(losses.tolist())
    if classify:
        history.accuracy.extend(correct.tolist())
    history.steps += steps
    history.epochs += epochs


class FullBatch:
    """Chunks of full-batch steps: every row, held once in columns (``Xa`` ``(n_0 + 1, m)``,
    ``T`` ``(k, m)``); a divergence is replayed to the last finite step."""

    def __init__(self, spec, full, data, decay, keep, tick):
        backend, dtype = spec.backend, spec.dtype
        everything = slice(None) if data.rows is None else data.rows
        Xa = backend.call(augment, take_rows(backend, data.X, everything, dtype))
        T = take_columns(backend, data.T, everything, dtype)
        w = None
        if data.weights is not None:
            weighted_rows(data)  # (refuses rows trained on whose weights sum to zero)
            w, decay = normalized_weights(take_rows(backend, data.weights, everything, dtype),
                                          decay, spec.l2_per_weight)
        self.args = (Xa, T, decay, w)
        if spec.dropout is not None:  # each column's row in the data set, for the masks
            ids = np.arange(data.m) if data.rows is None else np.asarray(data.rows)
            self.args += (backend.asarray(ids),)
        self.spec, self.full, self.keep, self.m, self.tick = spec, full, keep, data.m, tick
        self.previous = None  # (carry, steps) of the chunk before this one, for a replay

    def __call__(self, carry, start, n, history, chunker, interrupted, classify):
        to_host = self.spec.backend.to_host
        chunker.start()
        carry, (losses, correct), done = self.full(carry, 0, n, *self.args, stop=interrupted)
        losses = to_host(losses)[:done].astype(np.float64)
        correct = to_host(correct)[:done]
        chunker.measured(done)
        good = finite_prefix(losses)
        if good < done:
            kept = last_finite(self.full, self.keep, start, self.previous, self.args, good)
            history.loss.extend(losses[:good].tolist())
            history.steps += good
            raise diverged(self.spec.optimizer, kept, history, history.steps, losses[good])
        self.previous = (start, done)
        _record(history, losses, correct / self.m, done, done, classify)
        self.tick(done)
        return carry, done


class MiniBatches:
    """One epoch of mini-batches per chunk; a divergence keeps the epoch's starting state. An
    epoch cut short by Ctrl-C is recorded as a partial entry (its batches changed the
    weights): the mean loss of its batches, ``history.partial_steps`` of them."""

    def __init__(self, spec, batches, data, decay, tick):
        self.spec, self.batches, self.data, self.decay = spec, batches, data, decay
        self.positive = weighted_rows(data)  # batches of weight zero are skipped
        self.tick = tick

    def __call__(self, carry, start, n, history, chunker, interrupted, classify):
        carry, losses, correct, sizes, counted = run_epoch(
            self.spec, self.batches, carry, self.data, self.decay, chunker, interrupted,
            self.positive, self.tick)
        good = finite_prefix(losses)
        if good < len(losses):
            history.steps += good
            raise diverged(self.spec.optimizer, start, history, history.steps, losses[good])
        seen = sum(sizes)
        done = 1 if seen == self.data.m else 0  # else interrupted: a partial entry
        if seen:
            counted = max(counted, 1)  # (a skipped batch adds 0 to both sums)
            _record(history, np.array([np.dot(losses, sizes) / counted]),
                    np.array([correct.sum() / counted]), len(losses), done, classify)
            history.partial_steps = 0 if done else len(losses)
        return carry, done


def _after_epoch(spec, history, carry, validation, classify) -> bool:
    """Validation (and early stopping), then the callback; True stops training."""
    if validation is not None and validation.after_epoch(history, carry, classify):
        return True
    if spec.callback is None:
        return False
    if spec.publish is not None:
        # The model is the truth during fit: the callback may predict, score or save with it.
        # One compiled call on JAX: eager slicing cost 0.3 s of a 5-fold cross-validation.
        spec.publish(*spec.backend.call(_state_to_rows, carry))
    if _callback_says_stop(spec.callback, spec.callback(EpochInfo(history.epochs, history,
                                                                  carry[0]))):
        history.stopped = "callback"
        return True
    return False


def _state_to_rows(carry):
    """``(params, opt_state)`` in columns -> both in rows."""
    return params_to_rows(carry[0]), state_to_rows(carry[1])


def _callback_says_stop(callback, answer) -> bool:
    """The callback rule: ``None`` or ``False`` continues, ``True`` stops; anything else (a
    string such as "no", an array, 1) is a TypeError naming the callback, not a guess."""
    if answer is None or answer is False:
        return False
    if answer is True:
        return True
    name = getattr(callback, "__qualname__", None) or repr(callback)
    raise TypeError(f"callback {name[:80]} returned {answer!r:.60} ({type(answer).__name__}); "
                    "a callback returns None or False to continue training, True to stop")


def run(spec: TrainSpec, params: Any, opt_state: Any, data: Any, validation: Any = None,
        history: History | None = None) -> tuple[Any, Any, History]:
    """Train from row-layout ``(params, opt_state)`` on ``data``.

    Parameters
    ----------
    spec : TrainSpec
        Everything but data and parameters.
    params : tuple of (W, b)
        Row-layout backend arrays.
    opt_state : optimizer state or None
        Row layout (None: the optimizer's initial state).
    data : polynn.placement.Placement
        With targets: ``X`` ``(m, n_0)`` in any real dtype (batches are cast to
        ``spec.dtype`` when used); ``T`` ``(n_L, m)``; optional ``weights`` ``(m,)`` (each
        batch's loss is then its weighted mean Σ wᵢ lᵢ / Σ wᵢ); ``rows``: the rows trained
        on.
    validation : polynn.placement.Placement, optional
        With targets, evaluated after every epoch in chunks of rows.
    history : History, optional
        The record to continue (default: a new one).

    Returns
    -------
    params, opt_state : row layout
    history : History

    Raises
    ------
    DivergenceError
        Carrying the last finite ``params`` and ``opt_state``, when the loss stops being
        finite.
    """
    history = history or History()
    backend = spec.backend
    full, batches, evaluate = runners(backend, spec.activation, spec.output, spec.optimizer,
                                      spec.dtype, spec.l2_per_weight and data.weights is not None,
                                      data.host and not backend.jit, spec.dropout)
    keep = owned(backend)
    # With a mesh: parameters replicated, or hidden layers split over a "model" axis.
    state_t = state_to_columns(opt_state)
    # The parameters' conversion as one compiled call on JAX (not one per eager operation).
    carry = backend.place_training((backend.call(params_to_columns, params), state_t))
    decay = backend.call(weight_decay, carry[0], static=dict(l2=spec.l2))
    train_decay = decay
    if spec.l2_per_weight and data.weights is not None and data.weight_exponent:
        # The penalty over the batch's mean weight as given: the placed weights were divided
        # by 2**weight_exponent (normalised in float64), so the L2 term is too.
        train_decay = backend.call(weight_decay, carry[0], static=dict(
            l2=math.ldexp(spec.l2, -data.weight_exponent)))
    full_batch = spec.batch_size is None or spec.batch_size >= data.m
    progress = as_progress(spec.progress)
    progress.start(spec.epochs, 1 if full_batch else -(-data.m // spec.batch_size))
    chunk = FullBatch(spec, full, data, train_decay, keep, progress.steps) if full_batch else (
        MiniBatches(spec, batches, bucketed(data), train_decay,  # one compiled epoch for nearby
                    progress.steps))                                # row counts
    checks = None if validation is None else Validation(evaluate, validation, decay,
                                                        spec.patience, spec.min_delta, keep)
    per_epoch_work = validation is not None or spec.callback is not None
    classify = spec.output in CLASSIFIERS
    chunker, n_done = Chunker(), 0
    # Overflow on the way to a divergence is reported by the loop itself (DivergenceError).
    try:
        with InterruptFlag() as interrupted, np.errstate(over="ignore", invalid="ignore"):
            while n_done < spec.epochs and not interrupted():
                # Steps may overwrite their arrays (eager backends): train on a copy and keep
                # the chunk's (or epoch's) starting state for a divergence rollback. What a
                # callback saw on the model is such a starting state: the next steps leave it
                # intact. With per-epoch work (validation, callback) every full-batch step is
                # an epoch.
                start, carry = carry, keep(carry)
                n = 1 if per_epoch_work or not full_batch else chunker.take(spec.epochs - n_done)
                carry, done = chunk(carry, start, n, history, chunker, interrupted, classify)
                n_done += done
                stop = bool(done) and _after_epoch(spec, history, carry, checks, classify)
                progress.epochs(history)
                if stop:
                    break
            if interrupted():
                history.stopped = "interrupted"
    finally:
        progress.close()  # once, whatever ends the run (a divergence, a second Ctrl-C)
    if checks is not None:
        carry = checks.finish(history, carry, spec.restore_best)
    return backend.call(params_to_rows, carry[0]), state_to_rows(carry[1]), history
