"""TODO(house): remove when model uses io.write/io.read (MLP.to_record / MLP.from_record in
polynn.model; the lead deletes this module at integration).

Until then, ``save``, ``load``, ``save_checkpoint`` and ``load_checkpoint`` keep working for
their callers (``MLP.save``, ``polynn.load``, the CLI) by converting between an MLP and a
:class:`~polynn.io.ModelRecord`. Everything above polynn.io is imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from polynn.io.files import read, write
from polynn.io.record import ModelRecord, TrainingRecord
from polynn.io.schema import host_dtype


def _host(x, model) -> np.ndarray:
    """A host copy of backend array ``x`` in the storage dtype of the model's dtype (cast on
    the device first: NumPy has no bfloat16, and torch's ``.numpy()`` refuses it)."""
    from polynn.backend import to_host

    storage = host_dtype(model.dtype)
    x = model.backend.xp.astype(x, model.backend.dtype(storage.name))
    return np.ascontiguousarray(np.asarray(to_host(x)))


def _host_tree(tree, model):
    return tuple((_host(W, model), _host(b, model)) for W, b in tree)


def to_record(model, *, checkpoint: bool) -> ModelRecord:
    """``model`` as plain data (what ``MLP.to_record`` will return)."""
    config = {"layer_sizes": model.layer_sizes, "activation": model.activation,
              "output": model.output, "negative_slope": model.negative_slope,
              "init": model.init, "dtype": model.dtype, "seed": model.seed}
    training = None
    if checkpoint:
        from polynn.backend import to_host

        state = model._opt_state
        if state is not None and isinstance(state, tuple) and state:
            count = state[0]
            count = count if isinstance(count, int) else to_host(count)[()]
            trees = [_host_tree(tree, model) if isinstance(tree, tuple) else tree
                     for tree in state[1:]]
            state = (type(state) if hasattr(state, "_fields") else
                     getattr(model._optimizer, "State", tuple))(count, *trees)
        training = TrainingRecord(model._optimizer, state,
                                  model._shuffle_rng.bit_generator.state)
    return ModelRecord(config, _host_tree(model.params, model), training)


def from_record(record: ModelRecord, name: str, backend, device, dtype, mesh):
    """The MLP of ``record`` (what ``MLP.from_record`` will do)."""
    from polynn.backend import get_backend
    from polynn.model import MLP

    config = record.config
    target = get_backend(backend, device, mesh)
    if dtype is None:
        dtype = config["dtype"]
        try:
            target.dtype(dtype)
        except ValueError as err:
            raise ValueError(f"{err}; {name!r} holds a {dtype} model: load it in another "
                             "dtype with dtype='float32'") from err
    model = MLP(backend=target, **{**config, "dtype": dtype})
    model.params = model._to_backend(record.params)
    if record.training is not None:
        optimizer, state, shuffle = (record.training.optimizer, record.training.state,
                                     record.training.shuffle)
        if state is not None:
            state = type(state)(state[0], *(model._to_backend(tree) for tree in state[1:]))
        bit_generator = getattr(np.random, shuffle["bit_generator"])()
        bit_generator.state = shuffle
        model._optimizer, model._opt_state = optimizer, state
        model._shuffle_rng = np.random.Generator(bit_generator)
    return model


def _gathered_elsewhere(model) -> bool:
    """On a process other than 0: take part in gathering the model's arrays (a collective when
    they are split over processes) and return True, so that only process 0 writes."""
    from polynn.distributed import is_main_process

    if is_main_process():
        return False
    to_record(model, checkpoint=True)
    return True


def save(model, path) -> None:
    """Write ``model``'s weights and configuration to the safetensors file ``path``, atomically
    (see :func:`polynn.io.write`). With several processes every process calls it and only
    process 0 writes."""
    if not _gathered_elsewhere(model):
        write(path, to_record(model, checkpoint=False))


def save_checkpoint(model, path) -> None:
    """Like :func:`save`, plus the training state: the optimizer, its state and the shuffling
    stream, so that :func:`load_checkpoint` followed by ``fit`` continues exactly."""
    if not _gathered_elsewhere(model):
        write(path, to_record(model, checkpoint=True))


def load(path, backend=None, device=None, dtype=None, mesh=None):
    """The :class:`~polynn.MLP` saved at ``path`` on ``backend``/``device`` in ``dtype``
    (default: the saved dtype), with a fresh training state. Raises
    :class:`~polynn.io.ModelFileError` naming the file when it cannot be read."""
    import os

    return from_record(read(path), os.fspath(path), backend, device, dtype, mesh)


def load_checkpoint(path, backend=None, device=None, dtype=None, mesh=None):
    """The model saved by :func:`save_checkpoint` with its training state restored."""
    import os

    return from_record(read(path, checkpoint=True), os.fspath(path), backend, device, dtype,
                       mesh)
