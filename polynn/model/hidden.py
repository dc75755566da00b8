"""``MLP.hidden``: a hidden layer's activations as features, computed in chunks like
``predict``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from polynn.model import inference
from polynn.nn import mlp as nn_mlp
from polynn.nn.layout import params_to_columns
from polynn.placement import row_chunks, take_rows
from polynn.validate import check_int

if TYPE_CHECKING:
    from polynn.model.mlp import MLP


@functools.lru_cache(maxsize=64)
def _activations(backend, activation, layer):
    """``f(params_t, X (rows, n_0)) -> (rows, n_{layer+1})``: hidden layer ``layer``'s
    activations (0-based among the hidden layers), compiled on JAX. It runs the network's own
    forward pass over the layers up to the next one and reads the cached input of that layer,
    so the activation applied is exactly the one training uses."""

    def activations(params_t, X):
        _, cache = nn_mlp.forward_columns(params_t[: layer + 2], nn_mlp.augment(X), activation)
        return cache[layer + 1][:-1, ...].T  # drop the ones row; back to rows

    return backend.compile(activations)


def hidden_layer_index(n_hidden: int, layer) -> int:
    """``layer`` (negative counts from the last hidden layer) as an index in
    ``0..n_hidden - 1``.

    Raises
    ------
    ValueError
        When the network has no hidden layer or ``layer`` is out of range (``ParameterError``
        for a non-integer)."""
    if n_hidden == 0:
        raise ValueError("this network has no hidden layer (layer_sizes has only the input "
                         "and the output): there are no hidden features to return")
    layer = check_int("layer", layer, -n_hidden, n_hidden - 1)
    return layer % n_hidden


def hidden(self: MLP, X: Any, layer: int = -1, *, batch_size: int | None = None) -> np.ndarray:
    """The activations of one hidden layer, for using a trained network as a feature extractor.

    Parameters
    ----------
    X : array-like, shape (m, n_features)
        Host data (a ``numpy.memmap`` included) or an array of the model's backend.
    layer : int, default -1
        Which hidden layer, 0-based among the hidden layers (``layer_sizes[layer + 1]`` units):
        -1 is the last hidden layer, -2 the one before, ...
    batch_size : int or None
        Rows per chunk (None: as :meth:`predict`, about 8 MiB of activations per chunk), so no
        copy of ``X`` and no activations of every row exist on the device at once.

    Returns
    -------
    numpy.ndarray, shape (m, layer_sizes[layer + 1])
        Host activations in the model's host dtype (float32 for bfloat16), rows layout.

    Raises
    ------
    ValueError
        When the network has no hidden layer, or ``layer`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import polynn as pn
    >>> model = pn.MLP([4, 16, 8, 3], seed=0)
    >>> X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    >>> model.hidden(X).shape, model.hidden(X, layer=0).shape
    ((10, 8), (10, 16))
    """
    n_hidden = len(self.layer_sizes) - 2
    index = hidden_layer_index(n_hidden, layer)
    data = self._placed(X, purpose="infer")
    width = self.layer_sizes[index + 1]
    out = np.empty((data.m, width), self._dtype.host)
    activations = _activations(self.backend, self.activation_fn, index)
    params_t = self.backend.call(params_to_columns, self.params)
    for start, stop in row_chunks(data.m, batch_size, self.layer_sizes, self._dtype):
        part = take_rows(self.backend, data.X, slice(start, stop), self._dtype)
        out[start:stop] = inference.host_output(activations(params_t, part), self._dtype)
    return out
