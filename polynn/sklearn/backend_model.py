"""The backend model of an estimator, derived from its parameters and coefficients.

The estimator's state is host data and configuration only (``coefs_`` / ``intercepts_``, the
optimizer's state as host arrays, scikit-learn's bookkeeping). The :class:`polynn.MLP` that
computes with it is derived from that state whenever it is needed: :class:`ModelCache` keeps the
last one built together with everything it was built from (:class:`ModelKey` and a copy of the
weights) and rebuilds it when any of them changed, so it is never stale and never pickled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.backend import default_backend_name, to_host
from polynn.io import TrainingRecord
from polynn.model import MLP

from .inputs import host_array


@dataclass(frozen=True)
class ModelKey:
    """Everything a backend model depends on besides the weights' values."""

    backend: str | None  # None only with a mesh: get_backend chooses (JAX)
    device: Any  # as the user gave it, or a device spec of a dispatched input
    mesh: Any  # as the user gave it (a count, "all", a pair, a dict, a jax Mesh) or None
    dtype: str  # "float32" | "float64" | "bfloat16"
    activation: str | tuple  # polynn's name, or one per hidden layer
    dropout: float | tuple  # one rate for every hidden layer, or one per hidden layer
    output: str  # polynn's output/loss pair
    shapes: tuple  # ((W.shape, b.shape), ...) per layer


def host_params(coefs, intercepts):
    """``coefs_`` / ``intercepts_`` as a tuple of host ``(W, b)`` pairs. Whether the layers
    chain is checked by :meth:`polynn.MLP.from_params` when the model is built."""
    coefs, intercepts = list(coefs), list(intercepts)
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(f"coefs_ has {len(coefs)} and intercepts_ {len(intercepts)} layers: "
                         "they must be equal and at least 1")
    return tuple((np.asarray(W), np.asarray(b)) for W, b in zip(coefs, intercepts))


def model_key(backend, device, mesh, dtype, activation, dropout, output, params) -> ModelKey:
    """The key of the model for host ``params`` (``backend`` None: the default backend, or
    the one a mesh needs)."""
    if backend is None and mesh is None:
        backend = default_backend_name()
    return ModelKey(backend, device, mesh, dtype, activation, dropout, output,
                    tuple((W.shape, b.shape) for W, b in params))


def uses_dropout(dropout) -> bool:
    """True when a rate (one, or one per hidden layer) is not 0."""
    if isinstance(dropout, (list, tuple)):
        return any(rate != 0 for rate in dropout)
    return dropout != 0


def build_model(key: ModelKey, params) -> MLP:
    """A new :class:`polynn.MLP` holding host ``params`` (checked to chain there).

    ``dropout`` and per-layer activations are passed to :class:`polynn.MLP` (dropout only when
    a rate is not 0); a polynn whose MLP lacks them refuses with a message naming the
    parameter."""
    options: dict[str, Any] = {"dropout": key.dropout} if uses_dropout(key.dropout) else {}
    try:
        return MLP.from_params(params, activation=key.activation, output=key.output,
                               backend=key.backend, device=key.device, dtype=key.dtype,
                               mesh=key.mesh, **options)
    except (TypeError, ValueError) as err:
        if options and "dropout" in str(err) and "unexpected keyword" in str(err):
            raise ValueError(f"dropout={key.dropout!r} needs polynn.MLP(dropout=...), which "
                             f"this version of polynn does not have ({err})") from err
        if isinstance(key.activation, tuple) and "activation" in str(err):
            raise ValueError(f"activation={list(key.activation)!r} (one per hidden layer) was "
                             f"refused by polynn.MLP: {err}") from err
        raise


def _same_weights(a, b) -> bool:
    return b is not None and len(a) == len(b) and all(
        W.shape == sW.shape and b_.shape == sb.shape and np.array_equal(W, sW)
        and np.array_equal(b_, sb) for (W, b_), (sW, sb) in zip(a, b))


class ModelCache:
    """The last backend model built for an estimator, with what it was built from.

    An estimator holds one in ``__dict__`` (created by ``fit`` and on unpickling, never pickled);
    ``predict`` may refill it but never rebinds an attribute of the estimator."""

    def __init__(self):
        self._key = self._model = self._weights = None

    def get(self, key: ModelKey, params) -> MLP:
        """The model for ``key`` holding exactly host ``params``: the cached one when nothing
        changed since it was built or trained, else a new one."""
        if self._model is None or key != self._key or not _same_weights(params, self._weights):
            self.remember(key, build_model(key, params), params)
        return self._model

    def remember(self, key: ModelKey, model: MLP, params) -> None:
        """Record that ``model`` (built for ``key``) holds host ``params`` (copied here, so
        later in-place edits of ``coefs_`` are seen)."""
        self._key, self._model = key, model
        self._weights = tuple((W.copy(), b.copy()) for W, b in params)


# -- the optimizer's state as host data ------------------------------------------------------
@dataclass(frozen=True)
class TrainingState:
    """The optimizer of the last stochastic fit and its state, as host data: ``count`` (steps
    taken) and ``trees`` (its parameter-shaped buffers: tuples of host ``(W, b)``, row layout,
    in the weights' host dtype, in the order of the optimizer's ``State`` fields: the velocity
    for sgd, the first and second moments for adam)."""

    optimizer: Any  # a frozen optimizer object of polynn.nn.optim
    count: int
    trees: tuple


def training_state(model: MLP) -> TrainingState | None:
    """``model``'s optimizer and state copied to the host (None before any training)."""
    optimizer, state = model.optimizer, model.opt_state
    if optimizer is None or state is None:
        return None
    count, *trees = state
    trees = tuple(tuple((host_array(W, model.dtype), host_array(b, model.dtype)) for W, b in tree)
                  for tree in trees)
    return TrainingState(optimizer, int(to_host(count)), trees)


def with_training_state(model: MLP, state: TrainingState | None) -> MLP:
    """A model with ``model``'s configuration, backend and weights whose optimizer state is
    ``state`` (None: a fresh one at the next fit). ``MLP.fit`` continues it when its optimizer
    differs from ``state.optimizer`` in the learning rate only, as scikit-learn keeps its
    velocities; otherwise it starts afresh."""
    # fit seeds the shuffling itself: this stream is never drawn from.
    shuffle = dict(np.random.default_rng(0).bit_generator.state)
    if state is None:
        training = TrainingRecord(None, None, shuffle)
    else:
        training = TrainingRecord(state.optimizer,
                                  state.optimizer.State(state.count, *state.trees), shuffle)
    record = dataclasses.replace(model.to_record(), training=training)
    return MLP.from_record(record, backend=model.backend)
