"""The training loop: batches, epochs, shuffling, history, progress, early stopping.

The per-step math is one pure function (``make_step``) built from ``polynn.nn``, in the training
("columns") layout: ``run`` converts the row-layout parameters and optimizer state once on entry
and back on exit, so nothing outside this module sees that layout. The backend decides how steps
are repeated: one compiled ``lax.fori_loop`` per chunk on JAX, a Python loop elsewhere.

The loop runs in *chunks*: an adaptive number of steps (full-batch steps, or mini-batches of the
current epoch) sized to take about ``CHUNK_SECONDS``, so that on every backend progress,
divergence checks, Ctrl-C and callbacks are served between chunks, within a fraction of a
second, while dispatch overhead stays negligible. Mini-batches are gathered from the caller's
row-layout ``X`` when they are used (and cast to the model's dtype then), so an epoch makes no
permuted or cast copy of the data.
"""

from __future__ import annotations

import functools
import math
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from polynn.backend import Backend
from polynn.nn._namespace import namespace
from polynn.nn.losses import CLASSIFIERS, get_output
from polynn.nn.mlp import (
    augment,
    example_weights,
    forward_columns,
    l2_penalty_columns,
    to_columns,
    to_rows,
    value_and_grad_columns,
    weight_decay,
)

# At most this many steps per compiled dispatch, aiming at this much time per chunk.
MAX_CHUNK_STEPS = 4096
CHUNK_SECONDS = 0.2


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite. ``history`` holds what was recorded before."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """What ``fit`` recorded. Full batch: one entry per step (each step is an epoch) holding the
    loss computed in that step's forward pass, before its update. Mini-batches: one entry per
    epoch, the mean over its batches weighted by batch size. Accuracy lists stay empty for
    regression; validation lists stay empty without validation data. ``stopped`` is None (ran
    all epochs), "early_stopping", "interrupted" (Ctrl-C) or "callback"."""

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    best_epoch: int | None = None
    stopped: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# --- the step ------------------------------------------------------------------------------------
def make_step(activation, output: str, optimizer, inplace: bool = False):
    """One training step in columns: ``step((params_t, opt_state), Xa (n_0 + 1, m), T (k, m),
    decay, w=None) -> ((params_t, opt_state), (loss, correct))``; ``w`` is None or the batch's
    ``(1, m)`` example weights, summing to 1.

    Pure unless ``inplace``: then the optimizer overwrites the parameters it is given (for a
    caller that owns them, on backends with mutable arrays; JAX arrays are never mutated)."""
    pair = get_output(output)

    def step(carry, Xa, T, decay, w=None):
        params, opt_state = carry
        loss, grads, correct = value_and_grad_columns(params, Xa, T, activation, pair, decay, w)
        params, opt_state = optimizer.update(grads, opt_state, params, inplace=inplace)
        return (params, opt_state), (loss, correct)

    return step


def make_evaluate(activation, output: str):
    """``evaluate(params_t, Xa, T, decay) -> (loss, correct)``: the regularised loss and the
    number of correctly classified examples, in columns."""
    pair = get_output(output)

    def evaluate(params, Xa, T, decay):
        Z, _ = forward_columns(params, Xa, activation)
        value, _, correct = pair.terms(Z, T)
        return value + l2_penalty_columns(params, decay), correct

    return evaluate


def gather_batch(X, T, rows, dtype):
    """The batch of ``rows`` (int array ``(b,)``) from row-layout ``X`` ``(m, n)`` and columns
    ``T`` ``(k, m)``, as ``(Xa (n + 1, b), T (k, b))`` in ``dtype``: the only copy of the data an
    epoch makes is this batch-sized one."""
    xp = namespace(X)
    Xb = xp.take(X, rows, axis=0)
    if Xb.dtype != dtype:
        Xb = xp.astype(Xb, dtype)
    return augment(Xb), xp.take(T, rows, axis=1)


def normalized_weights(weights, decay, l2_per_weight: bool):
    """A batch's example weights ``(b,)`` as the ``(1, b)`` row summing to 1 that the loss pairs
    take, and the weight decay for that batch: with ``l2_per_weight`` the L2 term is divided by
    the batch's mean weight (scikit-learn's convention: its penalty is normalised by the batch's
    sum of weights, like its data term)."""
    if l2_per_weight and decay is not None:
        mean_weight = namespace(weights).sum(weights) / weights.shape[0]
        decay = tuple(d / mean_weight for d in decay)
    return example_weights(weights), decay


@functools.lru_cache(maxsize=64)
def _runners(backend: Backend, activation, output, optimizer, dtype, l2_per_weight=False):
    """``(full, batches, evaluate)`` for one configuration, cached so that a second ``fit`` (or
    a benchmark's timed run after its warm-up) reuses JAX's compiled code.

    ``full(carry, start, n, Xa, T, decay, w)`` runs n full-batch steps (``w``: None or the
    normalised ``(1, m)`` weights); ``batches(carry, start, n, X, T, order, decay, weights)``
    runs mini-batches ``start .. start + n - 1`` of an epoch whose batch rows are the rows of
    ``order`` ``(n_batches, b)`` (``weights``: None or every example's ``(m,)`` weight). Both
    return ``(carry, (losses, correct), n_done)`` (see ``Backend.repeat``)."""
    # Eager backends update in place (the loop owns its arrays: see ``_owned``); allocating new
    # weights every step cost ~12 % per step on an MNIST-sized NumPy network.
    step = make_step(activation, output, optimizer, inplace=not backend.jit)

    # With a mesh, every batch's example axis (axis 1 in columns) is split over the "data"
    # devices inside the step; without the constraint a gathered batch makes XLA replicate the
    # whole step. Identity without a mesh.
    split = backend.constrain_batch

    def full_body(carry, index, Xa, T, decay, w):
        w = None if w is None else split(w, 1)
        return step(carry, split(Xa, 1), split(T, 1), decay, w)

    def batch_body(carry, index, X, T, order, decay, weights):
        rows = order[index, ...]
        Xa, Tb = gather_batch(X, T, rows, dtype)
        w = None
        if weights is not None:
            w, decay = normalized_weights(namespace(X).take(weights, rows), decay, l2_per_weight)
            w = split(w, 1)
        return step(carry, split(Xa, 1), split(Tb, 1), decay, w)

    evaluate = make_evaluate(activation, output)
    full = backend.repeat(full_body, MAX_CHUNK_STEPS)
    batches = backend.repeat(batch_body, MAX_CHUNK_STEPS)
    return full, batches, backend.compile(
        lambda params, Xa, T, decay: evaluate(params, split(Xa, 1), split(T, 1), decay))


# --- Ctrl-C --------------------------------------------------------------------------------------
class _InterruptFlag:
    """While active, the first Ctrl-C sets a flag (the loop stops after the current step);
    a second one interrupts at once as usual. Only the main thread can install it."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def __call__(self) -> bool:
        return self.raised


# --- the loop ------------------------------------------------------------------------------------
@dataclass
class TrainSpec:
    """Everything ``run`` needs besides data and parameters. ``dtype`` is the backend's dtype
    object that batches are cast to (None: X's own); ``callback(EpochInfo) -> bool | None`` runs
    after every epoch and stops training when it returns True; ``l2_per_weight``: see
    ``normalized_weights``."""

    backend: Backend
    activation: object
    output: str
    l2: float
    optimizer: object
    epochs: int
    batch_size: int | None
    shuffle: bool
    rng: np.random.Generator
    dtype: object = None
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    progress: bool = False
    callback: object = None
    l2_per_weight: bool = False


@dataclass
class EpochInfo:
    """What a ``fit(callback=...)`` receives after each epoch: ``epoch`` (the number of epochs
    completed, counting earlier fits), the running ``history``, and ``params``: the current
    parameters in the public row layout. They are views into the arrays being trained on eager
    backends: copy them to keep them past the callback."""

    epoch: int
    history: History
    _params_t: tuple

    @property
    def params(self):
        return to_rows(self._params_t)


class _Chunker:
    """Steps per chunk: 1 first (it pays for compilation), 16 next, then sized by the measured
    time per step to take about CHUNK_SECONDS."""

    def __init__(self):
        self.size, self.runs = 1, 0

    def take(self, remaining: int) -> int:
        return max(1, min(self.size, remaining))

    def measured(self, steps: int, seconds: float) -> None:
        self.runs += 1
        per_step = seconds / max(steps, 1)
        self.size = 16 if self.runs == 1 else max(
            1, min(MAX_CHUNK_STEPS, int(CHUNK_SECONDS / max(per_step, 1e-9))))


def _finite_prefix(values: np.ndarray) -> int:
    """Index of the first non-finite value, or len(values)."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


def _state_to_columns(state):
    """An optimizer state ``(t, *trees)`` with row-layout trees -> columns (see nn.optim)."""
    return (state[0],) + tuple(to_columns(tree) for tree in state[1:])


def _state_to_rows(state):
    return (state[0],) + tuple(to_rows(tree) for tree in state[1:])


def run(spec: TrainSpec, params, opt_state, X, T, validation=None, history=None, weights=None):
    """Train from row-layout ``(params, opt_state)`` on backend arrays ``X`` ``(m, n_0)`` (rows,
    any real dtype: batches are cast to ``spec.dtype`` when used) and ``T`` ``(n_L, m)`` (the
    targets as columns, in ``spec.dtype``). ``validation`` is ``(X_val, T_val)`` in the same
    layouts, or None. ``weights``: None or the examples' non-negative weights ``(m,)`` in
    ``spec.dtype``; each batch's loss is then its weighted mean (Σ wᵢ lᵢ / Σ wᵢ).

    Returns ``(params, opt_state, history)`` in the row layout. Raises :class:`DivergenceError`
    (carrying the last finite ``params`` and ``opt_state``) when the loss stops being finite."""
    history = history or History()
    backend, xp = spec.backend, spec.backend.xp
    dtype = spec.dtype if spec.dtype is not None else X.dtype
    m = X.shape[0]
    full_batch = spec.batch_size is None or spec.batch_size >= m
    full, batches, evaluate = _runners(backend, spec.activation, spec.output, spec.optimizer,
                                       dtype, spec.l2_per_weight and weights is not None)
    classify = spec.output in CLASSIFIERS
    to_host = backend.to_host
    owned = _owned(backend)
    # With a mesh: parameters replicated, or hidden layers split over a "model" axis.
    carry = backend.place_training((to_columns(params), _state_to_columns(opt_state)))
    decay = backend.call(weight_decay, carry[0], static=dict(l2=spec.l2))

    def cast(A):
        return A if A.dtype == dtype else xp.astype(A, dtype)

    if full_batch:
        Xa = backend.call(augment, cast(X))
        w_full, decay_full = (None, decay) if weights is None else normalized_weights(
            weights, decay, spec.l2_per_weight)
    if validation is not None:
        validation = (backend.call(augment, cast(validation[0])), validation[1])
    per_epoch_work = validation is not None or spec.callback is not None
    best = (math.inf, None, None)  # (val loss, epoch, carry)
    bar = _progress_bar(spec.progress, spec.epochs)
    chunker = _Chunker()
    n_done = 0
    previous = None  # (carry, steps) of the full-batch chunk before this one, for a replay
    # Overflow on the way to a divergence is reported by the loop itself (DivergenceError).
    with _InterruptFlag() as interrupted, np.errstate(over="ignore", invalid="ignore"):
        while n_done < spec.epochs and not interrupted():
            # Steps may overwrite their arrays (eager backends): train on a copy and keep the
            # chunk's (or epoch's) starting state for a divergence rollback.
            start, carry = carry, owned(carry)
            if full_batch:
                # With per-epoch work (validation, callback) every step is an epoch.
                n = 1 if per_epoch_work else chunker.take(spec.epochs - n_done)
                tic = time.perf_counter()
                carry, (losses, correct), done = full(carry, 0, n, Xa, T, decay_full, w_full,
                                                      stop=interrupted)
                losses = to_host(losses)[:done].astype(np.float64)
                correct = to_host(correct)[:done]
                chunker.measured(done, time.perf_counter() - tic)
                good = _finite_prefix(losses)
                if good < done:
                    kept = _last_finite(full, start, previous, (Xa, T, decay_full, w_full), good)
                    history.loss.extend(losses[:good].tolist())
                    history.steps += good
                    raise _diverged(spec, kept, history, history.steps, losses[good])
                previous = (start, done)
                epoch_loss, epoch_correct = losses, correct / m
            else:
                carry, losses, correct, sizes = _epoch(
                    spec, batches, carry, X, T, decay, weights, chunker, interrupted)
                good = _finite_prefix(losses)
                if good < len(losses):
                    history.steps += good
                    raise _diverged(spec, start, history, history.steps, losses[good])
                done = 1 if sum(sizes) == m else 0  # an interrupted epoch is not recorded
                epoch_loss = np.array([np.dot(losses, sizes) / m])[:done]
                epoch_correct = np.array([correct.sum() / m])[:done]
            history.loss.extend(epoch_loss.tolist())
            if classify:
                history.accuracy.extend(epoch_correct.tolist())
            history.steps += len(losses)
            history.epochs += done
            n_done += done
            if bar is not None:
                bar.update(done)
                if history.loss:
                    bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
            if not done:
                continue
            if validation is not None:
                val_loss, val_correct = evaluate(carry[0], *validation, decay)
                val_loss = float(to_host(val_loss))
                history.val_loss.append(val_loss)
                if classify:
                    history.val_accuracy.append(float(to_host(val_correct)) / m_of(validation))
                if val_loss < best[0] - spec.min_delta:
                    best = (val_loss, history.epochs - 1, owned(carry))
                elif spec.patience is not None and history.epochs - 1 - best[1] >= spec.patience:
                    history.stopped = "early_stopping"
                    break
            if spec.callback is not None and spec.callback(
                    EpochInfo(history.epochs, history, carry[0])):
                history.stopped = "callback"
                break
        if interrupted():
            history.stopped = "interrupted"
    if bar is not None:
        bar.close()
    if best[2] is not None:
        history.best_epoch = best[1]
        if spec.restore_best and history.stopped == "early_stopping":
            carry = best[2]
    return to_rows(carry[0]), _state_to_rows(carry[1]), history


def m_of(data) -> int:
    """The number of examples of a columns-layout ``(Xa, T)`` pair."""
    return data[1].shape[1]


def _epoch(spec, batches, carry, X, T, decay, weights, chunker, interrupted):
    """One pass over the rows of ``X`` in mini-batches of ``spec.batch_size`` (shuffled by the
    host generator when ``spec.shuffle``), run in chunks of batches; stops early on Ctrl-C or at
    the first non-finite loss.

    Returns ``(carry, losses, correct, sizes)``: host arrays of the per-batch losses (float64)
    and correct counts of the batches run, and their sizes."""
    backend = spec.backend
    m, b = X.shape[0], int(spec.batch_size)
    order = spec.rng.permutation(m) if spec.shuffle else np.arange(m)
    n_full = m // b
    cut = n_full * b
    # The batch rows travel to the device once per epoch (m integers); the batches themselves
    # are gathered from X when used.
    plan = [(backend.asarray(order[:cut].reshape(n_full, b)), n_full)] if n_full else []
    if cut < m:
        plan.append((backend.asarray(order[cut:].reshape(1, m - cut)), 1))
    losses, correct, sizes = [], [], []
    for rows, n_batches in plan:
        position = 0
        while position < n_batches and not interrupted():
            n = chunker.take(n_batches - position)
            tic = time.perf_counter()
            carry, (chunk_losses, chunk_correct), done = batches(
                carry, position, n, X, T, rows, decay, weights, stop=interrupted)
            chunk_losses = backend.to_host(chunk_losses)[:done].astype(np.float64)
            chunker.measured(done, time.perf_counter() - tic)
            losses.append(chunk_losses)
            correct.append(backend.to_host(chunk_correct)[:done])
            sizes.extend([rows.shape[1]] * done)
            position += done
            if _finite_prefix(chunk_losses) < done:
                break
        if interrupted() or (losses and _finite_prefix(losses[-1]) < len(losses[-1])):
            break
    if not losses:
        return carry, np.zeros(0), np.zeros(0), []
    return carry, np.concatenate(losses), np.concatenate(correct), sizes


def _owned(backend: Backend):
    """A function that copies a (params, opt_state) tree where steps update in place (eager
    backends), so that a state kept for later is not overwritten; identity on JAX."""
    if backend.jit:
        return lambda tree: tree
    xp = backend.xp

    def copy(tree):
        if isinstance(tree, tuple):
            return tuple(copy(leaf) for leaf in tree)
        return tree if isinstance(tree, (int, float)) else xp.asarray(tree, copy=True)

    return copy


def _last_finite(full, start, previous, data, good):
    """The full-batch (params, opt_state) whose loss was the last finite one, replayed from the
    chunk's start (full batch is deterministic); ``data`` is ``full``'s arguments after n."""
    if good == 0:  # the previous chunk's last update diverged: replay that chunk but one step
        if previous is None:
            return start
        start, good = previous
    if good <= 1:
        return start
    carry, _, _ = full(start, 0, good - 1, *data)
    return carry


def _diverged(spec, carry, history, step_no, value):
    lr = getattr(spec.optimizer.learning_rate, "lr", spec.optimizer.learning_rate)
    if step_no == 0:  # before any update: no learning rate is to blame
        message = (f"training diverged at step 0, before any update: the loss of the initial "
                   f"parameters is {value}, so the data or targets are out of range for the "
                   "model's dtype (rescale X and, for regression, y, e.g. with "
                   "polynn.datasets.standardize; or use dtype='float64'). The parameters are "
                   "unchanged.")
    else:
        message = (f"training diverged at step {step_no}: the loss is {value}. The model keeps "
                   f"the parameters from before that step; try a lower learning rate (it was "
                   f"{lr}).")
    err = DivergenceError(message, history)
    params_t, state_t = carry
    err.params, err.opt_state = to_rows(params_t), _state_to_rows(state_t)
    return err


def _progress_bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="epoch", dynamic_ncols=True, leave=True)
