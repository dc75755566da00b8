"""The zero-sum batch rule: a mini-batch whose sample weights sum to zero is skipped.

Weights of zero are legitimate (scikit-learn accepts them: a row of weight 0 does not count),
and a shuffled epoch can put only such rows in one mini-batch (always with ``batch_size=1``).
Its weighted mean loss Σ wᵢ lᵢ / Σ wᵢ is then 0/0: the batch carries no information, so polynn
skips it: no update of the parameters or of the optimizer state (its step count included), and
the epoch's mean loss and accuracy are taken over the other batches' rows. scikit-learn 1.9.1
raises ``ZeroDivisionError: Weights sum to zero`` there instead; polynn never blames the data
with a divergence. Only the weights of the rows trained on (after ``validation_split``) summing
to zero is refused, before training.
"""

from __future__ import annotations

import numpy as np

from polynn.nn import namespace


def skip_if_weightless(step, carry, raw, args, compiled: bool):
    """``step(carry, *args)`` unless the batch's raw weights ``raw`` ``(b,)`` sum to zero; then
    ``carry`` unchanged and a loss and correct count of 0. Eager backends decide in Python
    (nothing is computed, and an in-place step is never started); a compiled step computes
    both and selects, element by element."""
    xp = namespace(raw)
    total = xp.sum(raw)
    zero_loss = xp.zeros_like(total)
    if not compiled:
        if bool(total > 0):
            return step(carry, *args)
        return carry, (zero_loss, xp.astype(zero_loss, xp.int32))
    new, (loss, correct) = step(carry, *args)
    ok = total > 0
    return _select(xp, ok, new, carry), (xp.where(ok, loss, zero_loss),
                                          xp.where(ok, correct, xp.zeros_like(correct)))


def _select(xp, ok, new, old):
    """``new`` where ``ok`` else ``old``, leaf by leaf over nested (named) tuples."""
    if isinstance(new, tuple):
        leaves = (_select(xp, ok, a, b) for a, b in zip(new, old))
        return type(new)(*leaves) if hasattr(new, "_fields") else tuple(leaves)
    return xp.where(ok, new, old)


def weighted_rows(data) -> np.ndarray | None:
    """The host mask ``(m,)`` of the rows of ``data`` (a placement with targets) whose weight
    is positive, or None without weights. Raises ValueError when no row trained on has one."""
    if data.weights is None:
        return None
    positive = np.asarray(data.backend.to_host(data.weights)) > 0
    trained = positive if data.rows is None else positive[np.asarray(data.rows)]
    if not trained.any():
        raise ValueError("sample_weight: the weights of the rows trained on sum to zero "
                         "(validation_split took every row of positive weight)")
    return positive


def counted_rows(plan, positive, sizes) -> int:
    """The rows of the batches run (``sizes``, in the order of ``plan``'s batches) that count
    in the epoch's means: those of batches holding a row of positive weight."""
    if positive is None:
        return int(sum(sizes))
    counts = [size for rows, _ in plan for size in
              np.where(positive[np.asarray(rows)].any(axis=1), rows.shape[1], 0)]
    return int(sum(counts[:len(sizes)]))
