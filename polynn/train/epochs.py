"""One epoch of mini-batches: the batch order (shuffled by the host generator), then chunks of
batches run on the data where it lives (resident, gathered on the host, or streamed)."""

from __future__ import annotations

import numpy as np

from polynn.placement import bucket, bucketing
from polynn.train.divergence import finite_prefix
from polynn.train.streaming import streamed_batches
from polynn.train.weights import counted_rows


def batch_plan(m, batch_size, rng, shuffle, rows=None):
    """The epoch's batches as ``(batch rows (n, b), n)`` pairs: the full batches, then the
    remainder as one shorter batch. ``rows`` (host ints) are the rows trained on (None: all)."""
    order = rng.permutation(m) if shuffle else np.arange(m)
    if rows is not None:
        order = np.asarray(rows)[order]
    n_full = m // batch_size
    cut = n_full * batch_size
    plan = [(order[:cut].reshape(n_full, batch_size), n_full)] if n_full else []
    if cut < m:
        plan.append((order[cut:].reshape(1, m - cut), 1))
    return plan


class InOrder:
    """The rows of ``n`` consecutive batches of ``b`` rows from row ``first`` on, as slices:
    ``InOrder(...)[i, ...]`` is batch i's ``slice``, so that an eager backend takes a view of
    the data instead of gathering a copy (the in-order epochs of ``shuffle=False``, as a NumPy
    user slices them). Shaped like the ``(n, b)`` row indices it stands for."""

    def __init__(self, first: int, n: int, b: int):
        self.first, self.shape = first, (n, b)

    def __getitem__(self, key) -> slice:
        start = self.first + int(key[0]) * self.shape[1]
        return slice(start, start + self.shape[1])


def in_order(plan):
    """``plan`` (from :func:`batch_plan`, rows in order) with each entry's rows as
    :class:`InOrder` slices."""
    return [(InOrder(int(rows[0, 0]), n, rows.shape[1]), n) for rows, n in plan]


def padded_plan(plan, batch_size: int):
    """``plan`` (from :func:`batch_plan`) as one ``(order, n, mask)`` entry for a compiled
    backend: every batch of ``batch_size`` rows, the remainder padded with the epoch's first row
    (``mask`` 0 there, 1 elsewhere, so the padding weighs nothing), and the number of batches
    rounded up to :func:`polynn.placement.bucket` with unused rows: one shape, hence one
    compiled epoch, for every nearby row count (cross-validation folds, a new data set)."""
    n = sum(count for _, count in plan)
    order = np.zeros((bucket(n), batch_size), dtype=plan[0][0].dtype)
    mask = np.zeros(order.shape)
    row = 0
    for rows, count in plan:
        order[row : row + count, : rows.shape[1]] = rows
        order[row : row + count, rows.shape[1] :] = plan[0][0][0, 0]
        mask[row : row + count, : rows.shape[1]] = 1
        row += count
    return [(order, n, mask)]


def run_epoch(spec, batches, carry, data, decay, chunker, interrupted, positive=None,
              tick=None):
    """One pass over the rows of ``data`` (a :class:`polynn.placement.Placement`) in
    mini-batches of ``spec.batch_size``, run in chunks of batches; stops early on Ctrl-C or at
    the first non-finite loss. ``positive``: the host mask of rows of positive weight (None
    without weights): a batch with none is skipped (:mod:`polynn.train.weights`). ``tick(n)``
    (optional) is told of every chunk's ``n`` steps as it completes, so that progress moves
    during the epoch.

    Returns ``(carry, losses, correct, sizes, counted)``: host arrays of the per-batch losses
    (float64) and correct counts of the batches run, their sizes, and the number of rows of
    those batches that count in the epoch's means (all, but skipped batches')."""
    b = int(spec.batch_size)
    plan = batch_plan(data.m, b, spec.rng, spec.shuffle, data.rows)
    host_plan = plan
    if data.stream:
        if bucketing(data):  # as the resident data would be (the same model either way)
            plan = padded_plan(plan, b)
        carry, losses, correct, sizes = streamed_batches(batches, carry, data, plan, decay, b,
                                                         interrupted,
                                                         ids=spec.dropout is not None,
                                                         tick=tick)
    else:
        backend = data.backend
        if not (backend.jit or spec.shuffle or data.rows is not None
                or spec.dropout is not None):
            # In order on an eager backend: slices (views) instead of gathered copies. (Compiled
            # steps take batches from one array of row indices; dropout reads the indices.)
            plan = in_order(plan)
        plan = [(rows, n, None) for rows, n in plan]
        if backend.jit and not data.host and data.valid is not None:  # bucketed data
            plan = padded_plan([(rows, n) for rows, n, _ in plan], b)
        if not data.host:
            # The batch rows travel to the device once per epoch (m integers); the batches
            # themselves are gathered from X when used.
            plan = [(rows if isinstance(rows, InOrder) else backend.asarray(rows, copy=False), n,
                     None if mask is None else
                     (backend.asarray(mask, data.dtype.name), mask.sum(axis=1)))
                    for rows, n, mask in plan]  # fmt: skip
        carry, losses, correct, sizes = _chunks_of_batches(data, batches, carry, plan, decay,
                                                           chunker, interrupted, tick)
    if not losses:
        return carry, np.zeros(0), np.zeros(0), [], 0
    counted = counted_rows(host_plan, positive, sizes)
    return carry, np.concatenate(losses), np.concatenate(correct), sizes, counted


def _chunks_of_batches(data, batches, carry, plan, decay, chunker, interrupted, tick=None):
    """Run the batches of ``plan`` (``(rows, n, None or (mask, sizes))`` entries) in chunks
    sized by ``chunker``; returns ``(carry, losses,
    correct, sizes)`` (lists per chunk, per batch)."""
    to_host = data.backend.to_host
    losses, correct, sizes = [], [], []
    for rows, n_batches, masked in plan:
        position = 0
        mask = () if masked is None else (masked[0],)
        while position < n_batches and not interrupted():
            n = chunker.take(n_batches - position)
            chunker.start()
            carry, (chunk_losses, chunk_correct), done = batches(
                carry, position, n, data.X, data.T, rows, decay, data.weights, *mask,
                stop=interrupted)
            chunk_losses = to_host(chunk_losses)[:done].astype(np.float64)
            chunker.measured(done)
            losses.append(chunk_losses)
            correct.append(to_host(chunk_correct)[:done])
            sizes.extend([rows.shape[1]] * done if masked is None else
                         masked[1][position : position + done].astype(int).tolist())
            position += done
            if tick is not None:
                tick(done)
            if finite_prefix(chunk_losses) < done:
                break
        if interrupted() or (losses and finite_prefix(losses[-1]) < len(losses[-1])):
            break
    return carry, losses, correct, sizes
