"""Datasets by name, for the command line: ``spiral``, ..., ``csv:PATH``, ``idx:DIR``."""

from __future__ import annotations

import os

from polynn.datasets.csvfile import load_csv
from polynn.datasets.idx import load_mnist
from polynn.datasets.synthetic import circles, digits, moons, spiral

DATASETS = {"spiral": spiral, "moons": moons, "circles": circles, "digits": digits}
_PREFIXED = {
    "csv:": lambda path, **kw: load_csv(path, **kw)[:2],
    "idx:": load_mnist,
}


#: The prefixes of dataset names that carry a path (``csv:PATH``, ``idx:DIR``).
PREFIXES = tuple(_PREFIXED)


def get(name, **kw):
    """Dataset by name for the CLI: returns ``(X, y)`` (float64 ``(m, n)``, int64 ``(m,)``).

    Names: ``spiral``, ``moons``, ``circles``, ``digits``, ``csv:PATH`` (:func:`load_csv`, the
    classes mapping dropped), ``idx:DIR`` (:func:`load_mnist`). Keyword arguments go to the loader.
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
