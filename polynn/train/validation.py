"""Evaluation on held-out rows after each epoch, and early stopping on it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from polynn.nn.mlp import augment, l2_penalty_columns
from polynn.placement import chunk_rows, take_columns, take_rows


def evaluate_rows(evaluate: Callable[..., Any], params_t: tuple[Any, ...], decay: Any,
                  data: Any, rows_per_chunk: int | None = None) -> tuple[float, int]:
    """The regularised loss and correct count of ``params_t`` on the rows of ``data``, in
    chunks of rows so that activations never exist for all rows at once.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(params_t, Xa, T) -> (loss, correct)`` (:func:`make_evaluate`).
    params_t : tuple of array
        Column-layout parameters.
    decay : tuple of array or None
        The weight decay (:func:`polynn.nn.mlp.weight_decay`) for the L2 penalty.
    data : polynn.placement.Placement
        With targets.
    rows_per_chunk : int, optional
        Rows per chunk (default: from the layer widths, about 8 MiB of activations).

    Returns
    -------
    loss : float
        The mean over the rows plus the L2 penalty.
    correct : int
    """
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
