"""What ``fit`` records and reports: :class:`History`, :class:`EpochInfo` (a callback's view of
an epoch) and :class:`DivergenceError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polynn.nn.layout import params_to_rows


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite; the model keeps the last finite state.

    Parameters
    ----------
    message : str
        What diverged, and when.
    history : History
        What was recorded before the divergence (also ``self.history``).
    params : tuple of (W, b), optional
        The last finite parameters, row layout (also ``self.params``).
    opt_state : optional
        The optimizer's state that goes with them (also ``self.opt_state``).
    """

    def __init__(self, message: str, history: History, params: Any = None,
                 opt_state: Any = None) -> None:
        super().__init__(message)
        self.history = history
        self.params, self.opt_state = params, opt_state


@dataclass(repr=False)
class History:
    """What ``fit`` recorded. Full batch: one entry per step (each step is an epoch) holding the
    loss computed in that step's forward pass, before its update. Mini-batches: one entry per
    epoch, the mean over its batches weighted by batch size. Accuracy lists stay empty for
    regression; validation lists stay empty without validation data. ``stopped`` is None (ran
    all epochs), "early_stopping", "interrupted" (Ctrl-C) or "callback".

    ``steps`` counts every update made. An epoch of mini-batches interrupted by Ctrl-C still
    changed the weights: its batches' mean loss (and accuracy) is the last entry, not counted
    in ``epochs``, and ``partial_steps`` is the number of its steps (0 otherwise).

    ``repr`` is a short summary (a few lines, however long the run); the lists are the data.

    Attributes
    ----------
    loss : list of float
        The training loss per epoch (full batch: per step, before its update).
    accuracy : list of float
        The training accuracy per epoch (classifiers only).
    val_loss, val_accuracy : list of float
        The validation loss and accuracy after each epoch (with validation data only).
    steps : int
        Every update made.
    epochs : int
        Epochs completed.
    best_epoch : int or None
        The epoch of the best validation loss (with validation data).
    stopped : {None, "early_stopping", "interrupted", "callback"}
        Why training stopped before ``epochs`` (None: it ran them all).
    partial_steps : int
        Steps of an epoch interrupted by Ctrl-C (0 otherwise).

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(30, 3, seed=0)
    >>> history = pn.MLP([2, 16, 3], seed=0).fit(X, y, epochs=4, batch_size=30)
    >>> history.epochs, history.steps, len(history.loss), len(history.accuracy)
    (4, 12, 4, 4)
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    best_epoch: int | None = None
    stopped: str | None = None
    partial_steps: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain ``dict`` of its attributes (for JSON, pandas, ...).

        Returns
        -------
        dict
            ``{"loss": [...], "accuracy": [...], ..., "partial_steps": int}``.
        """
        return dict(self.__dict__)

    def __repr__(self) -> str:
        """``History(12 epochs, 480 steps, stopped='interrupted')`` and, indented, the last
        loss (and accuracy) and the best validation loss with its epoch."""
        head = f"History({self.epochs} epoch{'' if self.epochs == 1 else 's'}, {self.steps} "
        head += f"step{'' if self.steps == 1 else 's'}"
        if self.partial_steps:
            head += f" ({self.partial_steps} in an unfinished epoch)"
        head += ")" if self.stopped is None else f", stopped={self.stopped!r})"
        lines = [head]
        if self.loss:
            line = f"  last loss {self.loss[-1]:.6g}"
            if self.accuracy:
                line += f", accuracy {self.accuracy[-1]:.4g}"
            lines.append(line)
        if self.val_loss:
            best = min(range(len(self.val_loss)), key=self.val_loss.__getitem__)
            line = f"  best val_loss {self.val_loss[best]:.6g} at epoch {best}"
            if len(self.val_accuracy) > best:
                line += f", val_accuracy {self.val_accuracy[best]:.4g}"
            lines.append(line)
        return "\n".join(lines)


@dataclass
class EpochInfo:
    """What a ``fit(callback=...)`` receives after each epoch: ``epoch`` (the number of epochs
    completed, counting earlier fits), the running ``history``, and ``params``: the current
    parameters in the public row layout (the model holds the same ones during the callback).
    They are views into the arrays being trained on eager backends: copy them to keep them past
    the callback.

    Attributes
    ----------
    epoch : int
        The number of epochs completed, counting earlier fits.
    history : History
        The running record.
    """

    epoch: int
    history: History
    _params_t: tuple

    @property
    def params(self) -> Any:
        """The current parameters, row layout: a tuple of ``(W, b)`` backend arrays."""
        return params_to_rows(self._params_t)
