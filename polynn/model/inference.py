"""Inference helpers of :class:`polynn.model.MLP`: the compiled chunk function, the L2 penalty,
and host outputs (labels, values, probabilities) in one dtype on every backend."""

from __future__ import annotations

import functools

import numpy as np

from polynn.backend import to_host
from polynn.nn import mlp as nn_mlp
from polynn.nn.layout import params_to_columns
from polynn.nn.losses import get_output
from polynn.placement import bucket, take_rows


@functools.lru_cache(maxsize=64)
def inference(backend, activation, output, what):
    """``infer(params_t, X (rows, n_0)) -> (rows, n_L)``: the output pre-activations
    (``what="forward"``) or outputs (``"output"``) of one chunk, compiled on JAX; ``params_t``
    in columns (:func:`polynn.nn.layout.params_to_columns`, converted once per call)."""
    pair = get_output(output)

    def infer(params_t, X):
        Z, _ = nn_mlp.forward_columns(params_t, nn_mlp.augment(X), activation)
        return (pair.output(Z) if what == "output" else Z).T

    return backend.compile(infer)


def run_chunk(backend, infer, params_t, X, start: int, stop: int, dtype):
    """``infer(params_t, rows start:stop of X)``, ``(stop - start, n_L)``. On a compiled
    backend the rows are padded to :func:`polynn.placement.bucket` rows and the padding's
    outputs dropped: a new row count reuses the code compiled for its bucket."""
    rows = slice(start, stop)
    if not backend.jit:
        return infer(params_t, take_rows(backend, X, rows, dtype))
    out = infer(params_t, take_rows(backend, X, rows, dtype, pad_to=bucket(stop - start)))
    return out if out.shape[0] == stop - start else out[: stop - start, ...]


def penalty(params, l2):
    """``0.5 * l2 * Σ‖W‖²`` of row-layout ``params`` (0-d array, or 0.0)."""
    params_t = params_to_columns(params)
    return nn_mlp.l2_penalty_columns(params_t, nn_mlp.weight_decay(params_t, l2))


def host_output(x, dtype) -> np.ndarray:
    """A backend array as host data in the model's host dtype (``dtype.host``), the same on
    every backend whatever dtype the library hands back."""
    return np.asarray(to_host(x)).astype(dtype.host, copy=False)


def labels_or_values(Z, output: str) -> np.ndarray:
    """Host predictions from host pre-activations ``Z`` ``(rows, k)``: values (identity), means
    e^z (poisson), 0/1 (sigmoid, int64) or class labels (softmax, int64)."""
    if output in ("identity", "poisson"):
        return np.exp(Z) if output == "poisson" else Z
    if output == "sigmoid":
        return (Z > 0).astype(np.int64)
    return np.argmax(Z, axis=1).astype(np.int64)


def rows_of(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)
