"""Datasets, returned as host NumPy arrays.

Every loader returns ``X`` as float64 of shape ``(m, n_features)`` (examples are rows) and, for
classification, ``y`` as int64 of shape ``(m,)`` holding labels ``0 .. k-1``. Random draws come
from ``numpy.random.default_rng(seed)``, never from NumPy's global state, so a seed fixes the data.
Nothing here touches the network.

Synthetic (``synthetic``): :func:`spiral`, :func:`moons`, :func:`circles`; bundled with
scikit-learn (optional extra): :func:`digits`.
Local files: :func:`load_idx` / :func:`load_mnist` (``idx``: MNIST IDX, plain or gzip),
:func:`load_csv` and :func:`load_csv_features` (``csvfile``: a classification table, prediction
data). Larger than memory: ``mmap_mode=`` in the IDX readers maps plain files; :func:`load_npy` /
:func:`write_npy` (``npy``) open and write ``.npy`` files memory-mapped.
Helpers: :func:`split_indices` / :func:`train_test_split` (``split``), :func:`standardize` /
:class:`Standardizer` (``scaling``), :func:`one_hot` (``labels``).
Registry for the CLI (``registry``): :func:`get`, :data:`DATASETS`, :data:`PREFIXES`.
"""

from polynn.datasets.csvfile import load_csv, load_csv_features
from polynn.datasets.idx import load_idx, load_mnist, read_idx
from polynn.datasets.labels import one_hot
from polynn.datasets.npy import load_npy, write_npy
from polynn.datasets.registry import DATASETS, PREFIXES, get
from polynn.datasets.scaling import Standardizer, standardize
from polynn.datasets.split import split_indices, train_test_split
from polynn.datasets.synthetic import circles, digits, moons, spiral

__all__ = [
    "DATASETS",
    "PREFIXES",
    "Standardizer",
    "circles",
    "digits",
    "get",
    "load_csv",
    "load_csv_features",
    "load_idx",
    "load_mnist",
    "load_npy",
    "moons",
    "one_hot",
    "read_idx",
    "spiral",
    "split_indices",
    "standardize",
    "train_test_split",
    "write_npy",
]
