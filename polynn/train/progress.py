"""What ``fit`` shows while it trains: a tqdm bar that moves during an epoch, and (for the
command line) a line every N epochs, printed as soon as the epoch is done.

``fit(progress=True)`` draws the bar (tqdm.auto: a widget in notebooks); ``fit(progress=...)``
also takes a :class:`Progress`, which is how ``polynn train`` asks for a bar only where
someone watches it (``bar="auto"``: stderr is a terminal) and for its loss lines."""

from __future__ import annotations

import sys


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, captured
    streams and closed ones)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """How training reports while it runs.

    Parameters
    ----------
    bar : True (draw a tqdm bar on ``stream``), False (none) or "auto" (only when ``stream``
        is a terminal: a bar written into a log file or a pipe is noise).
    every : int or None; print a line every ``every`` epochs (epoch 0, every, 2 * every, ...)
        to ``out``: the epoch's loss, and its validation loss and accuracy when there is
        validation. None: no lines.
    out : text stream of the lines (default ``sys.stdout``).
    stream : text stream of the bar (default ``sys.stderr``).

    The loop calls :meth:`start` once, :meth:`steps` after every chunk of steps (within an
    epoch too), :meth:`epochs` after the epochs of a chunk are recorded (and validated), and
    :meth:`close` at the end.
    """

    def __init__(self, bar=True, *, every=None, out=None, stream=None):
        if bar not in (True, False, "auto"):
            raise ValueError(f"bar must be True, False or 'auto', got {bar!r}")
        self.stream = sys.stderr if stream is None else stream
        self.out = out
        self.every = every
        self.want_bar = is_terminal(self.stream) if bar == "auto" else bar
        self.bar = None
        self.printed = 0  # history entries already considered for a line

    def start(self, epochs: int, steps_per_epoch: int) -> None:
        """A run of ``epochs`` epochs of ``steps_per_epoch`` steps begins."""
        self.printed, self.per_epoch = 0, max(1, steps_per_epoch)
        self.close()
        if self.want_bar:
            from tqdm.auto import tqdm

            unit = "epoch" if self.per_epoch == 1 else "step"
            self.bar = tqdm(total=epochs * self.per_epoch, unit=unit, dynamic_ncols=True,
                            leave=True, file=self.stream)

    def steps(self, n: int) -> None:
        """``n`` more steps done: the bar moves (also in the middle of an epoch)."""
        if self.bar is not None and n:
            self.bar.update(n)

    def epochs(self, history) -> None:
        """After new epochs are recorded in ``history``: the bar shows the latest loss, and the
        lines that are due are printed."""
        if not history.loss:
            return
        if self.bar is not None:
            shown = {"loss": f"{history.loss[-1]:.4g}"}
            if history.val_loss:
                shown["val_loss"] = f"{history.val_loss[-1]:.4g}"
            if self.per_epoch > 1:
                shown = {"epoch": history.epochs, **shown}
            self.bar.set_postfix(shown, refresh=True)
        if self.every is None:
            return
        done = history.epochs  # an unfinished (interrupted) epoch gets no line
        for epoch in range(self.printed, done):
            if epoch % self.every == 0:
                self.write(line(history, epoch))
        self.printed = max(self.printed, done)

    def write(self, text: str) -> None:
        """One line to ``out``, clearing the bar around it (so that neither breaks the other),
        flushed at once: a log shows it when it happens, not at the end."""
        out = sys.stdout if self.out is None else self.out
        if self.bar is not None:
            self.bar.write(text, file=out)
        else:
            print(text, file=out)
        out.flush()

    def close(self) -> None:
        """Draw the bar's final state once and let go of it (calling it again does nothing)."""
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()


def line(history, epoch: int) -> str:
    """``epoch   2500  loss 0.251234`` for entry ``epoch`` of ``history``, with
    ``val_loss``/``val_accuracy`` when that epoch was validated."""
    text = f"epoch {epoch:>6}  loss {history.loss[epoch]:.6f}"
    if epoch < len(history.val_loss):
        text += f"  val_loss {history.val_loss[epoch]:.6f}"
        if epoch < len(history.val_accuracy):
            text += f"  val_accuracy {100 * history.val_accuracy[epoch]:.2f}%"
    return text


def as_progress(progress):
    """``fit``'s ``progress`` option as a :class:`Progress`: True/False as a bar or none; a
    Progress (or an object with its four methods) as it is."""
    return Progress(progress) if isinstance(progress, bool) else progress
