"""Evaluation on held-out rows after each epoch, and early stopping on it."""

from __future__ import annotations

import math

from polynn.nn.mlp import augment, l2_penalty_columns
from polynn.placement import chunk_rows, take_columns, take_rows


def evaluate_rows(evaluate, params_t, decay, data, rows_per_chunk=None):
    """The regularised loss and correct count of ``params_t`` on the rows of ``data`` (a
    :class:`polynn.placement.Placement` with targets), in chunks of ``rows_per_chunk`` rows so
    that activations never exist for all rows at once. Returns ``(loss, correct)`` as Python
    numbers; the loss is the mean over the rows plus the L2 penalty."""
    backend, dtype, rows, m = data.backend, data.dtype, data.rows, data.m
    if rows_per_chunk is None:
        widths = [params_t[0].shape[1] - 1] + [Wb.shape[0] for Wb in params_t]
        rows_per_chunk = chunk_rows(widths, dtype.host.itemsize)
    total, correct = 0.0, 0
    for start in range(0, m, rows_per_chunk):
        stop = min(m, start + rows_per_chunk)
        part = slice(start, stop) if rows is None else rows[start:stop]
        Xa = backend.call(augment, take_rows(backend, data.X, part, dtype))
        value, hits = evaluate(params_t, Xa, take_columns(backend, data.T, part, dtype))
        total += float(backend.to_host(value)) * (stop - start)
        correct += int(backend.to_host(hits))
    penalty = float(backend.to_host(l2_penalty_columns(params_t, decay)))
    return total / m + penalty, correct


class Validation:
    """Validation after each epoch and early stopping: the best validation loss so far (by more
    than ``min_delta``), its epoch and a copy of its carry; ``patience`` epochs without
    improvement stop training."""

    def __init__(self, evaluate, data, decay, patience, min_delta, owned):
        self.evaluate, self.data, self.decay = evaluate, data, decay
        self.patience, self.min_delta, self.owned = patience, min_delta, owned
        self.best = (math.inf, None, None)  # (val loss, epoch, carry)

    def after_epoch(self, history, carry, classify: bool) -> bool:
        """Record the validation loss (and accuracy) of ``carry``; True to stop early."""
        val_loss, val_correct = evaluate_rows(self.evaluate, carry[0], self.decay, self.data)
        history.val_loss.append(val_loss)
        if classify:
            history.val_accuracy.append(val_correct / self.data.m)
        epoch = history.epochs - 1
        if val_loss < self.best[0] - self.min_delta:
            self.best = (val_loss, epoch, self.owned(carry))
        elif self.patience is not None and epoch - self.best[1] >= self.patience:
            history.stopped = "early_stopping"
            return True
        return False

    def finish(self, history, carry, restore_best: bool):
        """The carry to keep: the best one after an early stop (``restore_best``)."""
        if self.best[2] is None:
            return carry
        history.best_epoch = self.best[1]
        if restore_best and history.stopped == "early_stopping":
            return self.best[2]
        return carry
