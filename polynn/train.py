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
import mmap
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from polynn.backend import Backend
from polynn.nn import namespace
from polynn.nn.layout import state_to_columns, state_to_rows
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
# Streaming (``fit(stream=True)`` on JAX): one transfer chunk holds the rows of whole batches,
# about this share of the data, at most this many bytes, so that the few chunks in flight (the
# one training, the next one prefetched) stay a small fraction of the data at any size.
STREAM_CHUNK_SHARE = 1 / 256
STREAM_CHUNK_BYTES = 32 << 20
# Evaluation (validation, predict): rows per chunk such that one chunk's activations (every
# layer's width, once) take about this many bytes.
EVAL_CHUNK_BYTES = 8 << 20


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
    """``evaluate(params_t, Xa, T) -> (loss, correct)``: the mean data loss (without the
    penalty, which does not depend on the rows: see :func:`evaluate_rows`) and the number of
    correctly classified examples, in columns."""
    pair = get_output(output)

    def evaluate(params, Xa, T):
        Z, _ = forward_columns(params, Xa, activation)
        value, _, correct = pair.terms(Z, T)
        return value, correct

    return evaluate


def eval_chunk_rows(widths, itemsize: int, budget: int | None = None) -> int:
    """Rows per evaluation chunk for a network of layer ``widths`` ``[n_0, ..., n_L]`` in a
    dtype of ``itemsize`` bytes: one chunk's input and activations take about ``budget``
    (default ``EVAL_CHUNK_BYTES``)."""
    budget = EVAL_CHUNK_BYTES if budget is None else budget
    return max(1, budget // (sum(int(w) + 1 for w in widths) * itemsize))


def take_rows(backend: Backend, X, rows, dtype_name, dtype):
    """Rows ``rows`` (host ints, or a slice) of ``X`` ``(m, n)`` as a backend array in the
    model's dtype: gathered on the host and moved (host data: NumPy, a memmap), or gathered
    on the device (data already there). Only the rows taken are copied or cast."""
    if isinstance(X, np.ndarray):
        part = X[rows] if isinstance(rows, slice) else np.take(X, rows, axis=0)
        return backend.asarray(part, dtype_name, copy=False)
    xp = backend.xp
    part = X[rows, ...] if isinstance(rows, slice) else xp.take(X, backend.asarray(rows), axis=0)
    return part if part.dtype == dtype else xp.astype(part, dtype)


def evaluate_rows(spec, evaluate, params_t, decay, X, T, rows=None, chunk_rows=None):
    """The regularised loss and correct count of ``params_t`` on rows ``rows`` (host ints;
    None: all) of row-layout ``X`` with columns ``T`` ``(k, m)``, in chunks of ``chunk_rows``
    rows so that activations never exist for all rows at once. Returns ``(loss, correct)`` as
    Python numbers; the loss is the mean over the rows plus the L2 penalty."""
    backend = spec.backend
    m = X.shape[0] if rows is None else len(rows)
    if chunk_rows is None:
        widths = [params_t[0].shape[1] - 1] + [Wb.shape[0] for Wb in params_t]
        chunk_rows = eval_chunk_rows(widths, np.dtype(_itemsize_name(spec.dtype_name)).itemsize)
    total, correct = 0.0, 0
    for start in range(0, m, chunk_rows):
        stop = min(m, start + chunk_rows)
        part = slice(start, stop) if rows is None else rows[start:stop]
        Xa = backend.call(augment, take_rows(backend, X, part, spec.dtype_name, spec.dtype))
        Tb = _take_columns(backend, T, part)
        value, hits = evaluate(params_t, Xa, Tb)
        total += float(backend.to_host(value)) * (stop - start)
        correct += int(backend.to_host(hits))
    penalty = float(backend.to_host(l2_penalty_columns(params_t, decay)))
    return total / m + penalty, correct


def _take_columns(backend, T, part):
    """Columns ``part`` (slice or host ints) of the targets ``T`` ``(k, m)`` on the backend."""
    if isinstance(T, np.ndarray) and backend.name != "numpy":
        T = T[:, part] if isinstance(part, slice) else np.take(T, part, axis=1)
        return backend.asarray(T, copy=False)
    if isinstance(part, slice):
        return T[:, part]
    return backend.xp.take(T, backend.asarray(part), axis=1)


def _itemsize_name(dtype_name):
    return "float32" if dtype_name in (None, "bfloat16") else dtype_name


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
def _runners(backend: Backend, activation, output, optimizer, dtype, l2_per_weight=False,
             host_dtype=None):
    """``(full, batches, evaluate)`` for one configuration, cached so that a second ``fit`` (or
    a benchmark's timed run after its warm-up) reuses JAX's compiled code.

    ``full(carry, start, n, Xa, T, decay, w)`` runs n full-batch steps (``w``: None or the
    normalised ``(1, m)`` weights); ``batches(carry, start, n, X, T, order, decay, weights)``
    runs mini-batches ``start .. start + n - 1`` of an epoch whose batch rows are the rows of
    ``order`` ``(n_batches, b)`` (``weights``: None or every example's ``(m,)`` weight). Both
    return ``(carry, (losses, correct), n_done)`` (see ``Backend.repeat``). With ``host_dtype``
    (a dtype name; eager backends only), ``X``, ``T``, ``order`` and ``weights`` of ``batches``
    are host NumPy arrays: each batch is gathered on the host and moved to the backend, cast to
    ``host_dtype``, when used."""
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

    if host_dtype is None:
        def take(A, rows, axis):  # data on the backend (inside the compiled step on JAX)
            return namespace(A).take(A, rows, axis=axis)
    else:
        def take(A, rows, axis):  # host data: gather on the host, then move and cast
            return backend.asarray(np.take(A, rows, axis=axis), host_dtype, copy=False)

    def batch_body(carry, index, X, T, order, decay, weights):
        # The only copy of the data an epoch makes is this batch-sized one.
        rows = order[index, ...]
        Xb = take(X, rows, 0)
        if Xb.dtype != dtype:
            Xb = namespace(Xb).astype(Xb, dtype)
        w = None
        if weights is not None:
            w, decay = normalized_weights(take(weights, rows, 0), decay, l2_per_weight)
            w = split(w, 1)
        return step(carry, split(augment(Xb), 1), split(take(T, rows, 1), 1), decay, w)

    evaluate = make_evaluate(activation, output)
    full = backend.repeat(full_body, MAX_CHUNK_STEPS)
    batches = backend.repeat(batch_body, MAX_CHUNK_STEPS)
    return full, batches, backend.compile(
        lambda params, Xa, T: evaluate(params, split(Xa, 1), split(T, 1)))


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
    ``normalized_weights``. ``stream`` (JAX) keeps host data on the host and moves each chunk of
    batches to the device when its turn comes, the next chunk transferred while the current one
    trains."""

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
    dtype_name: str | None = None  # the model's dtype by name (for casting on the host)
    stream: bool = False  # JAX: X stays on the host; batches travel in prefetched chunks
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


_state_to_columns = state_to_columns  # (callers move to polynn.nn.layout)
_state_to_rows = state_to_rows


def run(spec: TrainSpec, params, opt_state, X, T, validation=None, history=None, weights=None,
        rows=None):
    """Train from row-layout ``(params, opt_state)`` on ``X`` ``(m, n_0)`` (rows, any real
    dtype: batches are cast to ``spec.dtype`` when used) and ``T`` ``(n_L, m)`` (the targets as
    columns, in ``spec.dtype``). ``X``, ``T`` and ``weights`` are backend arrays, or host NumPy
    arrays (a memmap included) on eager backends and with ``spec.stream``: batches are then
    gathered on the host and moved when used. ``rows`` (host ints) trains on those rows only
    (None: all); ``T`` and ``weights`` still cover every row of ``X``. ``validation`` is
    ``(X_val, T_val)`` or ``(X_val, T_val, rows_val)`` in the same layouts, or None; it is
    evaluated in chunks of rows. ``weights``: None or the examples' non-negative weights
    ``(m,)`` in ``spec.dtype``; each batch's loss is then its weighted mean (Σ wᵢ lᵢ / Σ wᵢ).

    Returns ``(params, opt_state, history)`` in the row layout. Raises :class:`DivergenceError`
    (carrying the last finite ``params`` and ``opt_state``) when the loss stops being finite."""
    history = history or History()
    backend = spec.backend
    dtype = spec.dtype if spec.dtype is not None else X.dtype
    m = X.shape[0] if rows is None else len(rows)
    full_batch = spec.batch_size is None or spec.batch_size >= m
    host = isinstance(X, np.ndarray) and (spec.stream or not backend.jit)
    if host and backend.name != "numpy":
        T = backend.to_host(T)
        weights = None if weights is None else backend.to_host(weights)
    if spec.stream and full_batch:
        raise ValueError("stream=True streams mini-batches, but this fit is full batch "
                         f"(batch_size={spec.batch_size}, {m} rows): a full-batch step needs "
                         "all rows on the device at once")
    host_dtype = _dtype_name(spec, dtype) if host and not backend.jit else None
    full, batches, evaluate = _runners(backend, spec.activation, spec.output, spec.optimizer,
                                       dtype, spec.l2_per_weight and weights is not None,
                                       host_dtype)
    classify = spec.output in CLASSIFIERS
    to_host = backend.to_host
    owned = _owned(backend)
    # With a mesh: parameters replicated, or hidden layers split over a "model" axis.
    carry = backend.place_training((to_columns(params), _state_to_columns(opt_state)))
    decay = backend.call(weight_decay, carry[0], static=dict(l2=spec.l2))

    if full_batch:
        # A full-batch step uses every row: this is the one case that holds X in columns.
        everything = slice(None) if rows is None else rows
        name = _dtype_name(spec, dtype)
        Xa = backend.call(augment, take_rows(backend, X, everything, name, dtype))
        T = _take_columns(backend, T, everything)
        w_full, decay_full = None, decay
        if weights is not None:
            w_all = take_rows(backend, weights, everything, name, dtype)
            w_full, decay_full = normalized_weights(w_all, decay, spec.l2_per_weight)
        rows = None
    if validation is not None and len(validation) == 2:
        validation = (*validation, None)
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
                    spec, batches, carry, X, T, rows, decay, weights, chunker, interrupted, host)
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
                # The loss first: update() draws the bar, with the postfix set before it.
                if history.loss:
                    bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
                bar.update(done)
            if not done:
                continue
            if validation is not None:
                val_loss, val_correct = evaluate_rows(spec, evaluate, carry[0], decay,
                                                      *validation)
                history.val_loss.append(val_loss)
                if classify:
                    history.val_accuracy.append(val_correct / _rows_of(validation))
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


def _rows_of(data) -> int:
    """The number of examples of an ``(X, T, rows)`` triple."""
    return data[0].shape[0] if data[2] is None else len(data[2])


def _dtype_name(spec, dtype) -> str | None:
    """The model's dtype by name, for casting host data (None: keep the data's dtype)."""
    if spec.dtype_name is not None:
        return spec.dtype_name
    if spec.dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:  # torch.float32, array_api_strict.float32, ...
        return str(dtype).rpartition(".")[2]


def _epoch(spec, batches, carry, X, T, rows, decay, weights, chunker, interrupted, host):
    """One pass over the rows of ``X`` (those of ``rows`` if given) in mini-batches of
    ``spec.batch_size`` (shuffled by the host generator when ``spec.shuffle``), run in chunks of
    batches; stops early on Ctrl-C or at the first non-finite loss. ``host``: X, T and weights
    are host arrays (batches gathered on the host; with ``spec.stream``, moved to the device in
    prefetched chunks).

    Returns ``(carry, losses, correct, sizes)``: host arrays of the per-batch losses (float64)
    and correct counts of the batches run, and their sizes."""
    backend = spec.backend
    m = X.shape[0] if rows is None else len(rows)
    b = int(spec.batch_size)
    order = spec.rng.permutation(m) if spec.shuffle else np.arange(m)
    if rows is not None:
        order = np.asarray(rows)[order]
    n_full = m // b
    cut = n_full * b
    plan = [(order[:cut].reshape(n_full, b), n_full)] if n_full else []
    if cut < m:
        plan.append((order[cut:].reshape(1, m - cut), 1))
    if spec.stream:
        carry, losses, correct, sizes = _streamed_batches(
            spec, batches, carry, X, T, plan, decay, weights, interrupted)
    else:
        if not host:
            # The batch rows travel to the device once per epoch (m integers); the batches
            # themselves are gathered from X when used.
            plan = [(backend.asarray(rows_, copy=False), n) for rows_, n in plan]
        carry, losses, correct, sizes = _batches(
            spec, batches, carry, X, T, plan, decay, weights, chunker, interrupted)
    if not losses:
        return carry, np.zeros(0), np.zeros(0), []
    return carry, np.concatenate(losses), np.concatenate(correct), sizes


def _batches(spec, batches, carry, X, T, plan, decay, weights, chunker, interrupted):
    """Run the batches of ``plan`` (``(batch rows (n, b), n)`` pairs) in chunks sized by
    ``chunker``; returns ``(carry, losses, correct, sizes)`` (lists per chunk, per batch)."""
    backend = spec.backend
    losses, correct, sizes = [], [], []
    for rows_, n_batches in plan:
        position = 0
        while position < n_batches and not interrupted():
            n = chunker.take(n_batches - position)
            tic = time.perf_counter()
            carry, (chunk_losses, chunk_correct), done = batches(
                carry, position, n, X, T, rows_, decay, weights, stop=interrupted)
            chunk_losses = backend.to_host(chunk_losses)[:done].astype(np.float64)
            chunker.measured(done, time.perf_counter() - tic)
            losses.append(chunk_losses)
            correct.append(backend.to_host(chunk_correct)[:done])
            sizes.extend([rows_.shape[1]] * done)
            position += done
            if _finite_prefix(chunk_losses) < done:
                break
        if interrupted() or (losses and _finite_prefix(losses[-1]) < len(losses[-1])):
            break
    return carry, losses, correct, sizes


def stream_chunk_batches(m: int, n_features: int, batch_size: int, itemsize: int) -> int:
    """Batches per transfer chunk when streaming ``m`` rows of ``n_features``: about
    ``STREAM_CHUNK_SHARE`` of the data, at most ``STREAM_CHUNK_BYTES``, at least one batch."""
    batch_bytes = batch_size * n_features * itemsize
    budget = min(STREAM_CHUNK_BYTES, m * n_features * itemsize * STREAM_CHUNK_SHARE)
    return int(max(1, min(MAX_CHUNK_STEPS, budget // batch_bytes)))


def _streamed_batches(spec, batches, carry, X, T, plan, decay, weights, interrupted):
    """``_batches`` for host data on a compiled backend: the batches of each transfer chunk are
    gathered on the host (rows in epoch order, cast to the model's dtype), moved to the device,
    and trained by one compiled loop, which gathers each batch from the chunk exactly as the
    resident path gathers it from the whole data, hence the same parameters. The next chunk is
    gathered and transferred while the device runs the current one (dispatch is asynchronous).
    Every chunk is padded to the same number of rows, so the loop compiles once per shape."""
    backend = spec.backend
    b = int(spec.batch_size)
    dtype_name = spec.dtype_name or str(X.dtype)
    itemsize = np.dtype(_itemsize_name(dtype_name)).itemsize
    per_chunk = stream_chunk_batches(X.shape[0], X.shape[1], b, itemsize)
    chunk_rows = per_chunk * b
    pieces = []  # the batch rows (n, size) of each chunk, in epoch order
    for rows_, n_batches in plan:
        for start in range(0, n_batches, per_chunk):
            pieces.append(rows_[start : start + per_chunk])
    local = {}  # batch-row layout inside a chunk, per (n batches, batch size), on the device

    host_dtype = np.dtype("float32" if dtype_name == "bfloat16" else dtype_name)

    def gather(A, flat, axis):
        """Columns or rows ``flat`` of host ``A`` in the model's dtype, in a zero-padded buffer
        of chunk_rows, moved to the device."""
        shape = list(A.shape)
        shape[axis] = chunk_rows
        used = (slice(None),) * axis + (slice(0, flat.size),)
        out = _page_array(shape, A.dtype)
        np.take(A, flat, axis=axis, out=out[used], mode="clip")
        if out.dtype != host_dtype:
            cast, out = out, _page_array(shape, host_dtype)
            out[used] = cast[used]
            del cast
        return backend.asarray(out, dtype_name, copy=False)

    def transfer(piece):
        n, size = piece.shape
        flat = piece.reshape(-1)
        key = (n, size)
        if key not in local:
            local[key] = backend.asarray(np.arange(n * size).reshape(n, size))
        w = None if weights is None else gather(weights, flat, 0)
        return gather(X, flat, 0), gather(T, flat, 1), w, local[key], n, size

    losses, correct, sizes = [], [], []

    def collect(outs, done, size) -> bool:
        """Read a chunk's losses back (waits for it); False once a loss is not finite."""
        chunk_losses = backend.to_host(outs[0])[:done].astype(np.float64)
        losses.append(chunk_losses)
        correct.append(backend.to_host(outs[1])[:done])
        sizes.extend([size] * done)
        return _finite_prefix(chunk_losses) == done

    upcoming = transfer(pieces[0]) if pieces else None
    pending = None  # the previous chunk's (outs, done, size), read back one chunk late
    for index in range(len(pieces)):
        if interrupted():
            break
        Xc, Tc, wc, order, n, size = upcoming
        carry, outs, done = batches(carry, 0, n, Xc, Tc, order, decay, wc)
        # Dispatch returned at once: prepare the next chunk while this one trains, and only
        # then wait for the previous chunk's losses, so the device always has work queued.
        upcoming = transfer(pieces[index + 1]) if index + 1 < len(pieces) else None
        del Xc, Tc, wc
        if pending is not None and not collect(*pending):
            pending = None
            break  # diverged: the epoch is abandoned (its starting state is restored)
        pending = (outs, done, size)
    if pending is not None:
        collect(*pending)
    return carry, losses, correct, sizes


def _page_array(shape, dtype) -> np.ndarray:
    """A zeroed array in its own anonymous memory mapping, handed back to the kernel as soon as
    its last reference goes. Chunk-sized heap arrays allocated and freed in turn made glibc keep
    30-40 MiB over an epoch of 0.6 GiB (its mmap threshold rises to the size freed), several
    chunks' worth; JAX on the CPU may keep using a host array it was given (zero-copy), so the
    buffers cannot simply be reused instead."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    return np.frombuffer(mmap.mmap(-1, max(1, count * dtype.itemsize)), dtype=dtype,
                         count=count).reshape(shape)


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
