"""The estimators' inputs and outputs: scikit-learn's ``array_api_dispatch`` (arrays of another
library train on their own backend and come back in their namespace), dense or sparse ``X``,
and host copies of backend arrays."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn import get_config

from polynn.backend import backend_of, dtype_info, get_backend, to_host

# Sparse X is densified for training; above this many elements it is refused (2 GiB of float64).
MAX_DENSE_ELEMENTS = 2**28
#: Sparse X is densified for predict in blocks of rows of at most this many bytes (and at most
#: PREDICT_CHUNK_ROWS rows), whatever its width: 4096 rows of 2**20 features would be 32 GiB.
DENSE_BLOCK_BYTES = 32 << 20
PREDICT_CHUNK_ROWS = 4096


def foreign(x) -> bool:
    """True for an array of a polynn backend's library that is not host NumPy data."""
    return not isinstance(x, np.ndarray) and backend_of(x) is not None


def dispatched_input(X):
    """The backend ``(name, device spec)`` that ``X`` trains and predicts on: with
    scikit-learn's ``array_api_dispatch`` on, an array of another library than NumPy (torch,
    jax, cupy, array_api_strict) keeps its own; None otherwise (then every output is NumPy)."""
    if not get_config().get("array_api_dispatch", False) or not foreign(X):
        return None
    return backend_of(X)


def host_data(*arrays):
    """The arrays as host data: arrays of another library copied to NumPy, anything else (lists,
    sparse matrices, None, NumPy arrays) as it is."""
    return tuple(to_host(a) if foreign(a) else a for a in arrays)


def host_input(X):
    """(dispatch target or None, X as host data)."""
    return dispatched_input(X), host_data(X)[0]


def to_namespace(result, target):
    """A host result as an array of the input's namespace and device (dispatch), else as is.
    Labels that are not numbers (e.g. strings) stay NumPy: no array API namespace holds them."""
    if target is None or not (np.issubdtype(result.dtype, np.number) or result.dtype == bool):
        return result
    return get_backend(*target).asarray(result)


def host_array(x, dtype_name: str) -> np.ndarray:
    """A host NumPy copy of a backend array, in the host dtype of ``dtype_name``."""
    return np.array(to_host(x)).astype(dtype_info(dtype_name).host, copy=False)


def dense(X, name):
    """Dense ``X``: a sparse matrix is densified (refused above MAX_DENSE_ELEMENTS)."""
    if not scipy.sparse.issparse(X):
        return X
    if X.shape[0] * X.shape[1] > MAX_DENSE_ELEMENTS:
        raise ValueError(f"{name} is a sparse matrix of shape {X.shape}: polynn trains on dense "
                         f"arrays and densifying it needs {X.shape[0] * X.shape[1]} elements "
                         f"(more than {MAX_DENSE_ELEMENTS}); train with partial_fit on blocks "
                         "of rows instead")
    return X.toarray()


def block_rows(n_features: int, itemsize: int) -> int:
    """Rows per dense block of a sparse matrix ``n_features`` wide with ``itemsize``-byte
    values: at most :data:`DENSE_BLOCK_BYTES` (one row at least) and PREDICT_CHUNK_ROWS."""
    return max(1, min(PREDICT_CHUNK_ROWS, DENSE_BLOCK_BYTES // max(1, n_features * itemsize)))


def dense_blocks(X):
    """``X`` as dense row blocks: itself when dense; when sparse, blocks of
    :func:`block_rows` rows, each at most DENSE_BLOCK_BYTES (never the whole matrix densified
    at once, whatever its width)."""
    if not scipy.sparse.issparse(X):
        yield X
        return
    X = X.tocsr()
    rows = block_rows(X.shape[1], X.dtype.itemsize)
    for i in range(0, X.shape[0], rows):
        yield X[i:i + rows].toarray()
