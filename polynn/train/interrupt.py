"""Ctrl-C during training: the first one stops after the current step, a second one at once."""

from __future__ import annotations

import signal
import threading


class InterruptFlag:
    """While active, the first Ctrl-C sets a flag (the loop stops after the current step);
    a second one interrupts at once as usual. Only the main thread can install it. Calling the
    flag returns whether Ctrl-C was pressed."""

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
