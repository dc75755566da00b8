"""Weight initialisation, drawn on the host so that one seed gives the same bits everywhere.

Weights are drawn in float64 with ``numpy.random.default_rng(seed)``, layer by layer, cast to the
target dtype on the host, and only then moved to a backend. Biases start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _he(rng, n_in, n_out):
    """He/Kaiming normal: N(0, 2 / n_in) — the reference program's ``randn * sqrt(2 / n_in)``."""
    return rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)


def _glorot(rng, n_in, n_out):
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (n_in + n_out)) (Keras' default)."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


INITIALIZERS = {"he": _he, "glorot": _glorot}


def init_params(layer_sizes: Sequence[int], init: str = "he",
                seed: Any = 0) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Initial host parameters.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_features, hidden..., n_outputs]``.
    init : {"he", "glorot"}, default "he"
        He normal N(0, 2/n_in), or Glorot uniform U(-a, a) with a = sqrt(6 / (n_in + n_out)).
    seed : int, sequence of int or None, default 0
        Seeds ``numpy.random.default_rng``.

    Returns
    -------
    tuple of (W, b)
        float64 ``W`` ``(n_in, n_out)`` and zero ``b`` ``(n_out,)``, one pair per layer.

    Raises
    ------
    ValueError
        An unknown ``init``.
    """
    if init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; choose one of {sorted(INITIALIZERS)}")
    draw = INITIALIZERS[init]
    rng = np.random.default_rng(seed)
    return tuple(
        (draw(rng, n_in, n_out), np.zeros(n_out))
        for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])
    )


def dropout_key(seed: Any) -> int:
    """The 32-bit key of the dropout masks (:mod:`polynn.nn.dropout`), derived on the host
    with NumPy's ``SeedSequence`` so that nearby seeds give unrelated masks, the same on every
    backend.

    Parameters
    ----------
    seed : int or sequence of int
        As :func:`init_params` takes it.

    Returns
    -------
    int
        In ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])
