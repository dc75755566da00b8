"""One epoch of mini-batches: the batch order (shuffled by the host generator), then chunks of
batches run on the data where it lives (resident, gathered on the host, or streamed)."""

from __future__ import annotations

import time

import numpy as np

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
        carry, losses, correct, sizes = streamed_batches(batches, carry, data, plan, decay, b,
                                                         interrupted,
                                                         ids=spec.dropout is not None,
                                                         tick=tick)
    else:
        if not data.host:
            # The batch rows travel to the device once per epoch (m integers); the batches
            # themselves are gathered from X when used.
            plan = [(data.backend.asarray(rows, copy=False), n) for rows, n in plan]
        carry, losses, correct, sizes = _chunks_of_batches(data, batches, carry, plan, decay,
                                                           chunker, interrupted, tick)
    if not losses:
        return carry, np.zeros(0), np.zeros(0), [], 0
    counted = counted_rows(host_plan, positive, sizes)
    return carry, np.concatenate(losses), np.concatenate(correct), sizes, counted


def _chunks_of_batches(data, batches, carry, plan, decay, chunker, interrupted, tick=None):
    """Run the batches of ``plan`` in chunks sized by ``chunker``; returns ``(carry, losses,
    correct, sizes)`` (lists per chunk, per batch)."""
    to_host = data.backend.to_host
    losses, correct, sizes = [], [], []
    for rows, n_batches in plan:
        position = 0
        while position < n_batches and not interrupted():
            n = chunker.take(n_batches - position)
            tic = time.perf_counter()
            carry, (chunk_losses, chunk_correct), done = batches(
                carry, position, n, data.X, data.T, rows, decay, data.weights, stop=interrupted)
            chunk_losses = to_host(chunk_losses)[:done].astype(np.float64)
            chunker.measured(done, time.perf_counter() - tic)
            losses.append(chunk_losses)
            correct.append(to_host(chunk_correct)[:done])
            sizes.extend([rows.shape[1]] * done)
            position += done
            if tick is not None:
                tick(done)
            if finite_prefix(chunk_losses) < done:
                break
        if interrupted() or (losses and finite_prefix(losses[-1]) < len(losses[-1])):
            break
    return carry, losses, correct, sizes
