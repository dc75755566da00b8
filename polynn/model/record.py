"""A model's state as plain data (:class:`polynn.io.ModelRecord`): what files hold and what
pickling stores, so that a model loads anywhere (another process, another backend, without the
library it was trained with) with its dtype intact. ``polynn.io`` reads and writes records and
knows no MLP; :func:`load` and :func:`load_checkpoint` build the model from them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from polynn import io
from polynn.backend import get_backend, to_host
from polynn.datasets.labels import check_model_classes
from polynn.io import ModelRecord, TrainingRecord
from polynn.model.inference import host_output

if TYPE_CHECKING:
    from polynn.backend import Backend
    from polynn.model.mlp import MLP


def _host_tree(tree, dtype):
    return tuple((host_output(W, dtype), host_output(b, dtype)) for W, b in tree)


def to_record(self: MLP, *, checkpoint: bool = False) -> ModelRecord:
    """The model as plain data: what :meth:`save` writes and pickling stores.

    With several processes every process must call it: gathering split arrays is collective.

    Parameters
    ----------
    checkpoint : bool, default False
        Include a :class:`polynn.io.TrainingRecord`: the optimizer, its state (an int count
        and host trees) and the shuffling stream's ``bit_generator.state``.

    Returns
    -------
    polynn.io.ModelRecord
        The configuration and the host parameters (row layout, in the model's host dtype).
    """
    dtype = self.dtype_record
    seed = self.seed
    config = {"layer_sizes": list(self.layer_sizes), "activation": self.activation,
              "output": self.output, "negative_slope": float(self.negative_slope),
              "init": self.init, "dtype": dtype.name,
              "seed": list(seed) if isinstance(seed, (list, tuple)) else seed,
              "dropout": tuple(self.dropout)}
    training = None
    if checkpoint:
        state = self.opt_state
        if state is not None:
            count, *trees = state
            state = _same_kind(state, int(np.asarray(to_host(count))),
                               [_host_tree(tree, dtype) for tree in trees])
        training = TrainingRecord(self.optimizer, state, self._shuffle_rng.bit_generator.state)
    return ModelRecord(config, _host_tree(self.params, dtype), training, self.classes)


def from_record(cls: type[MLP], record: ModelRecord, *, backend: str | Backend | None = None,
                device: Any = None, dtype: str | None = None, mesh: Any = None) -> MLP:
    """The model a :class:`polynn.io.ModelRecord` describes, with its training state when the
    record has one.

    Parameters
    ----------
    record : polynn.io.ModelRecord
        What :meth:`to_record` or :func:`polynn.io.read` returned.
    backend, device, mesh
        Where the model lives, as :class:`MLP` takes them (default: ``$POLYNN_BACKEND`` or
        "numpy"; JAX with a mesh).
    dtype : str, optional
        Default: the record's dtype.

    Returns
    -------
    MLP

    Raises
    ------
    ValueError
        The backend does not support the record's dtype (give ``dtype``).
    """
    config = record.config
    target = get_backend(backend, device, mesh)
    if dtype is None:
        dtype = config["dtype"]
        if not target.supports(dtype):
            raise ValueError(f"dtype {dtype!r} is not supported by backend {target.name!r}; "
                             f"this is a {dtype} model: load it in another dtype with "
                             "dtype='float32'")
    model = cls(config["layer_sizes"], activation=config["activation"], output=config["output"],
                backend=target, dtype=dtype, init=config["init"], seed=config["seed"],
                negative_slope=config["negative_slope"],
                dropout=config.get("dropout", 0.0))
    model.params = model._to_backend(record.params)
    model.classes = record.classes
    training = record.training
    if training is not None:
        state = training.state
        if training.optimizer is not None and state is not None:
            count, *trees = state
            state = _same_kind(state, count, [model._to_backend(tree) for tree in trees])
        shuffle = io.shuffle_generator(training.shuffle)
        model._set_training_state(training.optimizer, state, shuffle)
    return model


def _get_classes(self: MLP) -> np.ndarray | None:
    return getattr(self, "_classes", None)


def _set_classes(self, classes: Any) -> None:
    self._classes = check_model_classes(classes, self.output, self.n_outputs)


classes = property(_get_classes, _set_classes, doc="""The class values the model was trained
on, as scikit-learn's ``classes_``: a 1-D NumPy array (int64, float64 or str), ``classes[i]``
the class of output index i (2 values for one sigmoid unit); None (the default) when unknown,
the classes then being the indices 0..k-1. ``predict`` returns indices: ``classes[predict(X)]``
are the values. Saved in the model file; ``polynn train`` sets it, ``polynn predict`` maps
labels through it. Checked when set (:func:`polynn.datasets.labels.check_model_classes`).""")


def _same_kind(state, count, trees):
    """``(count, *trees)`` as the type of ``state`` (an optimizer's NamedTuple, or a tuple)."""
    return type(state)(count, *trees) if hasattr(state, "_fields") else (count, *trees)


# --- pickling: the record and the backend's spec, never a module or a Backend ----------------
def getstate(self) -> dict:
    return {"record": self.to_record(checkpoint=True), "backend": self.backend.spec}


def setstate(self, state: dict) -> None:
    model = type(self).from_record(state["record"], backend=get_backend(*state["backend"]))
    self.__dict__.update(model.__dict__)


# --- files: polynn.io reads and writes records ------------------------------------------------
def load(path: str | os.PathLike[str], backend: str | Backend | None = None,
         device: Any = None, dtype: str | None = None, mesh: Any = None) -> MLP:
    """The :class:`~polynn.MLP` saved at ``path`` by ``save`` or ``save_checkpoint``.

    The model starts with a fresh training state, as a new one would (see
    :func:`load_checkpoint` to resume training).

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file written by polynn.
    backend : str or Backend, optional
        Default: ``$POLYNN_BACKEND`` or "numpy" (JAX with ``mesh``).
    device : optional
        A backend-specific device ("cpu", "gpu:0", ...), default the backend's.
    dtype : str, optional
        Default: the saved dtype.
    mesh : optional
        JAX only, as :class:`~polynn.MLP` takes it.

    Returns
    -------
    MLP

    Raises
    ------
    polynn.io.ModelFileError
        A ``ValueError`` naming the file: not a polynn model file, truncated or corrupted,
        or not matching itself.
    ValueError
        The backend does not support the saved dtype (give ``dtype``).

    Examples
    --------
    >>> import polynn as pn
    >>> pn.MLP([4, 8, 2], output="sigmoid", seed=0).save("m.safetensors")
    >>> model = pn.load("m.safetensors", dtype="float64")
    >>> model.layer_sizes, model.output, model.dtype
    ([4, 8, 2], 'sigmoid', 'float64')
    """
    return _load(path, backend, device, dtype, mesh, checkpoint=False)


def load_checkpoint(path: str | os.PathLike[str], backend: str | Backend | None = None,
                    device: Any = None, dtype: str | None = None, mesh: Any = None) -> MLP:
    """The model saved by ``save_checkpoint`` with its training state restored: the next
    ``fit`` with the same optimizer options continues the optimizer state and the shuffling
    stream.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`~polynn.MLP.save_checkpoint`.
    backend, device, dtype, mesh
        As in :func:`load`.

    Returns
    -------
    MLP

    Raises
    ------
    polynn.io.ModelFileError
        As :func:`load`; also when the file holds no training state (written by ``save``).
    """
    return _load(path, backend, device, dtype, mesh, checkpoint=True)


def _load(path, backend, device, dtype, mesh, *, checkpoint: bool):
    from polynn.model.mlp import MLP

    model_record = io.read(path, checkpoint=checkpoint)
    try:
        return MLP.from_record(model_record, backend=backend, device=device, dtype=dtype,
                               mesh=mesh)
    except ValueError as err:
        raise ValueError(f"{os.fspath(path)!r}: {err}") from err
