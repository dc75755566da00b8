"""A loss that stops being finite: where it happened, the last finite state, the message."""

from __future__ import annotations

import numpy as np

from polynn.nn.layout import params_to_rows, state_to_rows
from polynn.train.history import DivergenceError


def finite_prefix(values: np.ndarray) -> int:
    """Index of the first non-finite value, or len(values)."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


def last_finite(full, owned, start, previous, data, good):
    """The full-batch (params, opt_state) whose loss was the last finite one, replayed from the
    chunk's ``start`` (full batch is deterministic) on a copy (``owned``: steps may update in
    place, and ``start`` may be what the model holds); ``previous`` is the chunk before
    (``(start, steps)``) and ``data`` is ``full``'s arguments after n."""
    if good == 0:  # the previous chunk's last update diverged: replay that chunk but one step
        if previous is None:
            return start
        start, good = previous
    if good <= 1:
        return start
    carry, _, _ = full(owned(start), 0, good - 1, *data)
    return carry


def diverged(optimizer, carry, history, step_no, value) -> DivergenceError:
    """The error for a loss ``value`` that is not finite at step ``step_no``, carrying the
    columns-layout ``carry`` (params, opt_state) in rows."""
    lr = getattr(optimizer.learning_rate, "lr", optimizer.learning_rate)
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
    params_t, state_t = carry
    return DivergenceError(message, history, params_to_rows(params_t), state_to_rows(state_t))
