"""How many steps one dispatch runs: the loop's *chunks*.

A compiled chunk (JAX) cannot be stopped once dispatched, so Ctrl-C, progress, divergence checks
and callbacks are served between chunks. Each chunk is sized from the time per step measured as
training runs, to take about ``CHUNK_SECONDS``: short enough that a chunk still ends within half
a second when other processes make steps several times slower than measured, long enough that
dispatch overhead stays negligible. The estimate follows a slowdown at once and a speed-up
gradually, and a chunk grows at most ``GROWTH`` times over the previous one, so one misleading
measurement cannot make a long chunk.
"""

from __future__ import annotations

import time

# At most this many steps per compiled dispatch, aiming at this much time per chunk.
MAX_CHUNK_STEPS = 4096
CHUNK_SECONDS = 0.1
GROWTH = 4


class Chunker:
    """Steps per chunk: 1 first (on JAX it pays for compilation, so its time says nothing of
    the next steps) and 1 again, then sized from the measured time per step (``take``,
    ``start``, ``measured``).

    Parameters
    ----------
    seconds : float
        The time one chunk aims at.
    clock : callable
        Returns the time in seconds (``time.perf_counter``; tests give a fake clock).
    """

    def __init__(self, seconds: float = CHUNK_SECONDS, clock=time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.size, self.runs = 1, 0
        self.per_step: float | None = None  # the estimate of one step's time, in seconds
        self._tic = None

    def take(self, remaining: int) -> int:
        """The steps of the next chunk: the current size, at most ``remaining``, at least 1."""
        return max(1, min(self.size, remaining))

    def start(self) -> None:
        """Mark the start of a chunk (read by :meth:`measured`)."""
        self._tic = self.clock()

    def measured(self, steps: int, seconds: float | None = None) -> None:
        """Record that a chunk ran ``steps`` steps in ``seconds`` (default: since
        :meth:`start`) and size the next one: ``seconds / step_estimate`` steps, at most
        ``GROWTH`` times this chunk's and ``MAX_CHUNK_STEPS``, at least 1."""
        if seconds is None:
            seconds = self.clock() - self._tic
        self.runs += 1
        if steps <= 0:
            return
        if self.runs == 1:  # it compiled (JAX): a second one-step chunk measures the step
            return
        latest = max(seconds, 0.0) / steps
        if self.per_step is None or latest >= self.per_step:
            self.per_step = latest  # slower: believed at once
        else:
            self.per_step = 0.5 * (self.per_step + latest)  # faster: halfway each chunk
        fits = int(self.seconds / max(latest if self.per_step is None else self.per_step, 1e-9))
        self.size = max(1, min(MAX_CHUNK_STEPS, GROWTH * steps, fits))
