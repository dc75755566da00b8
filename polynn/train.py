"""The training loop: batches, epochs, shuffling, history, progress, early stopping.

The per-step math is one pure function (``make_step``) built from ``polynn.nn``; the backend
decides how it is repeated: a compiled ``lax.fori_loop`` / ``lax.scan`` on JAX (many steps per
dispatch), a Python loop elsewhere. The loop runs in *chunks* (one epoch for mini-batches, an
adaptive number of full-batch steps otherwise); between chunks it reads the losses back, updates
progress, checks for divergence, validation and Ctrl-C.
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
from polynn.nn.losses import get_output
from polynn.nn.mlp import backward, forward, l2_penalty

# Full-batch chunks: at most this many steps per compiled dispatch, aiming at this much time, so
# progress, Ctrl-C and divergence checks stay responsive while dispatch overhead stays negligible.
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
    regression; validation lists stay empty without validation data."""

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    best_epoch: int | None = None
    stopped: str | None = None  # None (ran all epochs), "early_stopping" or "interrupted"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# --- the step ------------------------------------------------------------------------------------
def _correct_counter(output):
    """Number of correctly classified rows in a batch (0-d int array); None for regression."""

    def softmax_correct(Z, T, xp):
        # The target's score is the row maximum: reuses the max of the softmax shift, where
        # argmax(Z) == argmax(T) would add two reductions (kernels) to every compiled step.
        hit = T * xp.astype(Z == xp.max(Z, axis=1, keepdims=True), T.dtype)
        return xp.astype(xp.sum(hit), xp.int32)

    def sigmoid_correct(Z, T, xp):
        return xp.sum(xp.astype((Z > 0) == (T > 0.5), xp.int32))

    return {"softmax": softmax_correct, "sigmoid": sigmoid_correct}.get(output)


def make_step(xp, activation, output: str, l2: float, optimizer, inplace: bool = False):
    """One training step as a function of arrays:
    ``step((params, opt_state), X (m, n_0), T (m, n_L)) -> ((params, opt_state), (loss, correct))``.

    Pure unless ``inplace``: then the optimizer overwrites the parameters it is given (for a
    caller that owns them, on backends with mutable arrays; JAX arrays are never mutated)."""
    pair = get_output(output)
    count = _correct_counter(output)

    def step(carry, X, T):
        params, opt_state = carry
        Z, cache = forward(params, X, activation)
        data_loss, delta = pair.value_and_delta(Z, T)
        grads = backward(params, cache, delta, activation, l2)
        loss = data_loss + l2_penalty(params, l2)
        params, opt_state = optimizer.update(grads, opt_state, params, inplace=inplace)
        correct = count(Z, T, xp) if count else xp.zeros((), dtype=xp.int32)
        return (params, opt_state), (loss, correct)

    return step


def make_evaluate(xp, activation, output: str, l2: float):
    """``evaluate(params, X, T) -> (loss, correct)``: the regularised loss and correct count."""
    pair = get_output(output)
    count = _correct_counter(output)

    def evaluate(params, X, T):
        Z, _ = forward(params, X, activation)
        correct = count(Z, T, xp) if count else xp.zeros((), dtype=xp.int32)
        return pair.value(Z, T) + l2_penalty(params, l2), correct

    return evaluate


@functools.lru_cache(maxsize=64)
def _runners(backend: Backend, activation, output, l2, optimizer, batch_size):
    """The compiled pieces for one configuration, cached so a second ``fit`` (or a benchmark's
    timed run after its warm-up) reuses JAX's compiled code instead of tracing again."""
    xp = backend.xp
    # Eager backends update in place (the loop owns its arrays: see ``_owned``); allocating new
    # weights every step cost ~12 % per step on an MNIST-sized NumPy network.
    step = make_step(xp, activation, output, l2, optimizer, inplace=not backend.jit)
    repeat = backend.repeat(step, MAX_CHUNK_STEPS)
    evaluate = backend.compile(make_evaluate(xp, activation, output, l2))
    if batch_size is None:
        return repeat, None, evaluate

    def epoch(carry, X, T, order, stop=None):
        """One pass over (X, T) in batches of ``batch_size`` rows, in ``order`` (None: as is)."""
        m = X.shape[0]
        n_full = m // batch_size
        cut = n_full * batch_size
        if backend.jit:
            # Gather each batch inside the compiled scan: no reshaped or permuted copy of X.
            rows = order if order is not None else xp.arange(m)
            batches = xp.reshape(rows[:cut], (n_full, batch_size))

            def body(carry, index):
                return step(carry, xp.take(X, index, axis=0), xp.take(T, index, axis=0))

            carry, (losses, correct), done = backend.scan(body, carry, (batches,))
            X_rest, T_rest = xp.take(X, rows[cut:], axis=0), xp.take(T, rows[cut:], axis=0)
        else:
            # Eager: one permuted copy per epoch, then batches are views.
            if order is not None:
                X, T = xp.take(X, order, axis=0), xp.take(T, order, axis=0)
            Xb = xp.reshape(X[:cut, ...], (n_full, batch_size, X.shape[1]))
            Tb = xp.reshape(T[:cut, ...], (n_full, batch_size, T.shape[1]))
            carry, (losses, correct), done = backend.scan(step, carry, (Xb, Tb), stop)
            X_rest, T_rest = X[cut:, ...], T[cut:, ...]
        sizes = [batch_size] * done
        if cut < m and done == n_full and not (stop is not None and stop()):
            carry, (loss_r, correct_r) = step(carry, X_rest, T_rest)
            losses = xp.concat([losses, xp.reshape(loss_r, (1,))]) if done else loss_r
            correct = xp.concat([correct, xp.reshape(correct_r, (1,))]) if done else correct_r
            sizes.append(m - cut)
        return carry, (losses, correct), sizes

    if backend.jit:
        compiled = backend.compile(lambda carry, X, T, order: epoch(carry, X, T, order))
        return repeat, lambda carry, X, T, order, stop=None: compiled(carry, X, T, order), evaluate
    return repeat, epoch, evaluate


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
    """Everything ``run`` needs besides data and parameters."""

    backend: Backend
    activation: object
    output: str
    l2: float
    optimizer: object
    epochs: int
    batch_size: int | None
    shuffle: bool
    rng: np.random.Generator
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    progress: bool = False


def _finite_prefix(values: np.ndarray) -> int:
    """Index of the first non-finite value, or len(values)."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


def run(spec: TrainSpec, params, opt_state, X, T, validation=None, history=None):
    """Train from ``(params, opt_state)`` on device arrays ``X`` ``(m, n_0)`` and ``T``
    ``(m, n_L)``; ``validation`` is ``(X_val, T_val)`` device arrays or None.

    Returns ``(params, opt_state, history)``. Raises :class:`DivergenceError` (after storing the
    last finite parameters in the error's ``params``) when the loss stops being finite."""
    history = history or History()
    m = X.shape[0]
    full_batch = spec.batch_size is None or spec.batch_size >= m
    batch_size = None if full_batch else int(spec.batch_size)
    repeat, epoch_fn, evaluate = _runners(
        spec.backend, spec.activation, spec.output, spec.l2, spec.optimizer, batch_size
    )
    classify = _correct_counter(spec.output) is not None
    to_host = spec.backend.to_host
    owned = _owned(spec.backend)
    carry = (params, opt_state)
    best = (math.inf, None, None)  # (val loss, epoch, carry)
    bar = _progress_bar(spec.progress, spec.epochs)
    n_done, chunk, chunks_run = 0, 1, 0
    previous = None  # (carry, steps) of the chunk before this one, for divergence replay
    # Overflow on the way to a divergence is reported by the loop itself (DivergenceError).
    with _InterruptFlag() as interrupted, np.errstate(over="ignore", invalid="ignore"):
        while n_done < spec.epochs and not interrupted():
            # Steps may overwrite their arrays (eager backends): train on a copy and keep the
            # chunk's starting state (at first, the caller's arrays) for a divergence rollback.
            start, carry = carry, owned(carry)
            tic = time.perf_counter()
            if full_batch:
                # With validation or early stopping, every step is an epoch to evaluate.
                n = 1 if validation is not None else min(chunk, spec.epochs - n_done)
                carry, (losses, correct), done = repeat(carry, n, X, T, stop=interrupted)
                losses, correct = to_host(losses)[:done], to_host(correct)[:done]
                epoch_loss, epoch_correct = losses.astype(np.float64), correct / m
            else:
                order = None
                if spec.shuffle:
                    order = spec.backend.asarray(spec.rng.permutation(m), copy=False)
                carry, (losses, correct), sizes = epoch_fn(carry, X, T, order, stop=interrupted)
                losses = to_host(losses).astype(np.float64)[: len(sizes)]
                correct = to_host(correct)[: len(sizes)]
                done = 1 if sum(sizes) == m else 0  # an interrupted epoch is not recorded
                epoch_loss = np.array([np.dot(np.atleast_1d(losses), sizes) / m])[:done]
                epoch_correct = np.array([correct.sum() / m])[:done]
            losses = np.atleast_1d(losses)
            good = _finite_prefix(losses)
            if good < len(losses):
                kept = _last_finite(repeat, start, previous, X, T, good, full_batch)
                history.loss.extend(epoch_loss[:good].tolist() if full_batch else [])
                step_no = history.steps + good
                history.steps = step_no
                raise _diverged(spec, kept, history, step_no, losses[good])
            history.loss.extend(epoch_loss.tolist())
            if classify:
                history.accuracy.extend(epoch_correct.tolist())
            history.steps += len(losses)
            history.epochs += done
            n_done += done
            if validation is not None and done:
                val_loss, val_correct = evaluate(carry[0], *validation)
                val_loss = float(to_host(val_loss))
                history.val_loss.append(val_loss)
                if classify:
                    n_val = validation[0].shape[0]
                    history.val_accuracy.append(float(to_host(val_correct)) / n_val)
                if val_loss < best[0] - spec.min_delta:
                    best = (val_loss, history.epochs - 1, owned(carry))
                elif spec.patience is not None and history.epochs - 1 - best[1] >= spec.patience:
                    history.stopped = "early_stopping"
                    break
            if full_batch and done:
                previous = (start, done)
                chunks_run += 1
                per_step = (time.perf_counter() - tic) / done
                # The first chunk pays for compilation; size the later ones by measured speed.
                chunk = 16 if chunks_run == 1 else max(
                    1, min(MAX_CHUNK_STEPS, int(CHUNK_SECONDS / max(per_step, 1e-9)))
                )
            if bar is not None:
                bar.update(done)
                if history.loss:
                    bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
        if interrupted():
            history.stopped = "interrupted"
    if bar is not None:
        bar.close()
    if best[2] is not None:
        history.best_epoch = best[1]
        if spec.restore_best and history.stopped == "early_stopping":
            carry = best[2]
    return carry[0], carry[1], history


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


def _last_finite(repeat, start, previous, X, T, good, full_batch):
    """The (params, opt_state) whose loss was the last finite one: replayed from the chunk's
    start (full batch is deterministic), or the state before the diverging epoch (mini-batches).
    """
    if not full_batch:
        return start
    if good == 0:  # the previous chunk's last update diverged: replay that chunk but one step
        if previous is None:
            return start
        start, good = previous
    if good <= 1:
        return start
    carry, _, _ = repeat(start, good - 1, X, T)
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
    err.params, err.opt_state = carry
    return err


def _progress_bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="epoch", dynamic_ncols=True, leave=True)
