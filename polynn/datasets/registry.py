"""Datasets by name, for the command line: ``spiral``, ..., ``csv:PATH``, ``idx:DIR``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from polynn.datasets.csvfile import load_csv
from polynn.datasets.idx import load_mnist
from polynn.datasets.synthetic import circles, digits, moons, spiral

DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "spiral": spiral, "moons": moons, "circles": circles, "digits": digits}
_PREFIXED: dict[str, Callable[..., Any]] = {
    "csv:": lambda path, **kw: load_csv(path, **kw)[:2],
    "idx:": load_mnist,
}


#: The prefixes of dataset names that carry a path (``csv:PATH``, ``idx:DIR``).
PREFIXES = tuple(_PREFIXED)


def get(name: str, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Dataset by name, as the command line names them.

    Parameters
    ----------
    name : str
        ``spiral``, ``moons``, ``circles``, ``digits``, ``csv:PATH`` (:func:`load_csv`, the
        classes mapping dropped) or ``idx:DIR`` (:func:`load_mnist`); ``~`` is expanded.
    **kw
        Keyword arguments for the loader.

    Returns
    -------
    X : numpy.ndarray, shape (m, n_features)
        float64 (a loader's own dtype for ``csv:`` and ``idx:``).
    y : numpy.ndarray of int64, shape (m,)

    Raises
    ------
    ValueError
        An unknown name, or a prefix without a path.
    TypeError
        ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {name!r}")
    if name in DATASETS:
        return DATASETS[name](**kw)
    for prefix, loader in _PREFIXED.items():
        if name.startswith(prefix):
            target = name[len(prefix) :]
            if not target:
                raise ValueError(f"dataset {name!r} needs a path after {prefix!r}")
            return loader(os.path.expanduser(target), **kw)
    known = ", ".join([*DATASETS, "csv:PATH", "idx:DIR"])
    raise ValueError(f"unknown dataset {name!r}; known: {known}")
