"""Training: the loop (:mod:`~polynn.train.loop`) and its named pieces.

``steps`` (the step and its runners), ``chunks`` (steps per dispatch), ``epochs`` (mini-batch
epochs), ``streaming`` (host data moved in prefetched chunks), ``validation`` (evaluation and
early stopping), ``divergence`` (finite prefix, replay, the message), ``interrupt`` (Ctrl-C),
``progress`` (the bar), ``history`` (:class:`History`, :class:`EpochInfo`,
:class:`DivergenceError`)."""

from polynn.train.chunks import CHUNK_SECONDS, MAX_CHUNK_STEPS
from polynn.train.history import DivergenceError, EpochInfo, History
from polynn.train.loop import TrainSpec, run
from polynn.train.steps import make_evaluate, make_step, normalized_weights, runners
from polynn.train.streaming import STREAM_CHUNK_BYTES, STREAM_CHUNK_SHARE, stream_chunk_batches
from polynn.train.validation import evaluate_rows

__all__ = [
    "CHUNK_SECONDS",
    "MAX_CHUNK_STEPS",
    "STREAM_CHUNK_BYTES",
    "STREAM_CHUNK_SHARE",
    "DivergenceError",
    "EpochInfo",
    "History",
    "TrainSpec",
    "evaluate_rows",
    "make_evaluate",
    "make_step",
    "normalized_weights",
    "run",
    "runners",
    "stream_chunk_batches",
]
