"""How many steps one dispatch runs: the loop's *chunks*.

An adaptive number of steps (full-batch steps, or mini-batches of the current epoch) sized to
take about ``CHUNK_SECONDS``, so that on every backend progress, divergence checks, Ctrl-C and
callbacks are served between chunks, within a fraction of a second, while dispatch overhead
stays negligible."""

from __future__ import annotations

# At most this many steps per compiled dispatch, aiming at this much time per chunk.
MAX_CHUNK_STEPS = 4096
CHUNK_SECONDS = 0.2


class Chunker:
    """Steps per chunk: 1 first (it pays for compilation), 16 next, then sized by the measured
    time per step to take about CHUNK_SECONDS."""

    def __init__(self):
        self.size, self.runs = 1, 0

    def take(self, remaining: int) -> int:
        return max(1, min(self.size, remaining))

    def measured(self, steps: int, seconds: float) -> None:
        self.runs += 1
        per_step = seconds / max(steps, 1)
        self.size = 16 if self.runs == 1 else max(
            1, min(MAX_CHUNK_STEPS, int(CHUNK_SECONDS / max(per_step, 1e-9))))
