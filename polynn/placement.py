"""Where data lives, decided once: host or device, resident or streamed, split over a mesh or
replicated; and how rows (batches, chunks) are taken from it.

:func:`place` is the one rule. ``fit``, inference (``predict``, ``forward``, ``loss``),
validation, streaming and the scikit-learn wrapper (through the model's public methods) all ask
it, and the training loop reads its answer (a :class:`Placement`) instead of deciding again.

The rule, by the backend's capabilities (never its name):

- data the backend already owns (``Backend.owns``: e.g. a JAX array on a JAX model) is
  *resident*: checked on its device, never copied; batches and chunks are cast when used;
- host data on a backend that computes in host memory (``Backend.host_memory``), data read in
  chunks (inference, evaluation), and ``stream=True`` stay on the host: each batch or chunk is
  gathered there and moved when used (on compiled backends, streamed in prefetched chunks);
- otherwise the data gets one device copy in the model's dtype; on a mesh, the example axis is
  split over the "data" devices for full-batch training and replicated for mini-batches (a
  batch gathered from replicated rows needs no communication).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import to_device

from polynn.backend import Backend
from polynn.nn.namespace import namespace
from polynn.validate import (
    check_int,
    check_resident_X,
    check_validation_split,
    check_X,
    normalize_sample_weight,
)

# Evaluation (validation, predict): rows per chunk such that one chunk's activations (every
# layer's width, once) take about this many bytes.
EVAL_CHUNK_BYTES = 8 << 20
# Compiled backends compile once per shape: their data of at most this many bytes is padded to
# a bucketed row count (:func:`bucket`) for mini-batch training, so that cross-validation folds
# and other nearby row counts reuse one compiled epoch. Larger data is trained on as it is: the
# padded copy is made at every fit, and at 47 MB (15,000 MNIST-shaped rows) it cost 0.15 s per
# one-epoch fit, more than a compilation saves there.
BUCKET_BYTES = 4 << 20


@dataclass(frozen=True)
class Placement:
    """Where one data set lives, as :func:`place` decided.

    ``X`` ``(m, n)``: the examples as they are read: a backend array (resident, a device copy,
    or on a mesh) or host NumPy data (a memmap included). ``T`` ``(k, m)``: the targets as
    columns, placed like ``X`` (None before :meth:`with_targets`); ``weights`` ``(m,)`` or None.
    ``rows``: host ints of the rows used (None: all; ``valid``: the first ``valid`` rows, the
    rest being padding, see :func:`bucketed`). ``host``: X, T and weights are host
    arrays and each batch is gathered on the host and moved when used; ``stream``: moved in
    prefetched chunks of batches (compiled backends); ``split``: on a mesh, the example axis is
    split over "data" (full batch); ``resident``: X was given as an array of this backend.

    Attributes
    ----------
    backend : Backend
        Where the data is used.
    dtype : DType
        The model's dtype record.
    X, host, stream, split, resident, T, weights, rows
        As above.
    weight_exponent : int
        The weights as given are ``weights * 2**weight_exponent``.
    valid : int or None
        X's first rows that are data, the rest padding (see :func:`bucketed`).
    """

    backend: Backend
    dtype: Any  # the backend's DType record
    X: Any
    host: bool
    stream: bool = False
    split: bool = False
    resident: bool = False
    T: Any = None
    weights: Any = None
    rows: Any = None
    weight_exponent: int = 0  # the weights as given are ``weights * 2**weight_exponent``
    valid: int | None = None  # X's first rows that are data, the rest padding (see bucketed)

    @property
    def m(self) -> int:
        """The number of examples used."""
        if self.rows is not None:
            return len(self.rows)
        return self.X.shape[0] if self.valid is None else self.valid

    def with_targets(self, T: np.ndarray, weights: np.ndarray | None = None,
                     rows: Any = None) -> Placement:
        """This placement with targets, weights and the rows used, placed like X.

        Parameters
        ----------
        T : numpy.ndarray, shape (k, m)
            Host targets, in :func:`target_dtype`.
        weights : numpy.ndarray of float64, shape (m,), optional
            Checked host example weights; normalised in float64 before they are cast
            (:func:`polynn.validate.normalize_sample_weight`).
        rows : numpy.ndarray of int, optional
            The rows used (None: all).

        Returns
        -------
        Placement
        """
        backend, name = self.backend, self.dtype.name
        exponent = 0
        if weights is not None:
            weights, exponent = normalize_sample_weight(weights)
        if self.host:
            weights = None if weights is None else weights.astype(T.dtype)
        elif self.split:
            T = backend.place_rows(T, name, axis=1)
            weights = None if weights is None else backend.place_rows(weights, name)
        else:
            T = backend.asarray(T, name, copy=False)
            weights = None if weights is None else backend.asarray(weights, name)
        return replace(self, T=T, weights=weights, rows=rows, weight_exponent=exponent)


def target_dtype(dtype: Any) -> np.dtype:
    """The host dtype targets are encoded in.

    Parameters
    ----------
    dtype : DType
        The model's dtype record.

    Returns
    -------
    numpy.dtype
        The model's host dtype where it is the compute dtype itself, else float64 (cast on
        the device when used: rounded once).
    """
    return dtype.host if dtype.host.itemsize == dtype.itemsize else np.dtype(np.float64)


def resident(backend: Backend, dtype: Any, X: Any, n_features: int, name: str = "X") -> Any:
    """``X`` checked on its device if it is an array this backend owns (no round trip through
    the host, no copy: rows are cast to the model's dtype when used).

    Parameters
    ----------
    backend : Backend
        The model's backend.
    dtype : DType
        The model's dtype record.
    X : object
        The data as given.
    n_features : int
        The width required.
    name : str, default "X"
        The argument's name, for messages.

    Returns
    -------
    array or None
        ``X`` on the backend's device or mesh; None for anything else (host data).
    """
    if not backend.owns(X):
        return None
    X = check_resident_X(X, backend.xp, dtype, n_features, name, cast=False)
    if backend.mesh is not None:
        # A global array already on this mesh keeps its placement (e.g. rows that each
        # process contributed, polynn.distributed.global_rows); others are split over it.
        if getattr(getattr(X, "sharding", None), "mesh", None) != backend.mesh:
            X = backend.place_rows(X)
    elif backend.device is not None:
        X = to_device(X, backend.device)
    return X


def place(backend: Backend, dtype: Any, X: Any, *, n_features: int, name: str = "X",
          purpose: str = "train", batch_size: int | None = None,
          validation_split: float | None = None, stream: bool = False) -> Placement:
    """Check ``X`` ``(m, n_features)`` (finite in ``dtype``, a ``DType`` record) and decide
    where it lives (see the module's rule), for one ``purpose``:

    - "train": trained on in batches of ``batch_size`` (None: full batch) over the rows that
      ``validation_split`` (a fraction, checked here) leaves, streamed from the host when
      ``stream``;
    - "evaluate": read in chunks after every epoch (validation data): placed as mini-batch
      training data is, never split over a mesh;
    - "infer": read once in chunks (predict, loss): host data stays on the host.

    The rows used and the targets are added by :meth:`Placement.with_targets`.

    Parameters
    ----------
    backend : Backend
        The model's backend.
    dtype : DType
        The model's dtype record.
    X : array-like, shape (m, n_features)
        Host data (a memmap included) or the backend's array.
    n_features : int
        The width required.
    name : str, default "X"
        The argument's name, for messages.
    purpose : {"train", "evaluate", "infer"}, default "train"
        As above.
    batch_size : int, optional
        Training batch size (None: full batch).
    validation_split : float, optional
        The fraction ``fit`` holds out (checked here).
    stream : bool, default False
        Stream host data to the device.

    Returns
    -------
    Placement

    Raises
    ------
    ValueError
        ``X`` refused by its checks, or ``stream`` where it cannot apply.
    """
    on_device = resident(backend, dtype, X, n_features, name)
    if on_device is None:
        X = check_X(X, n_features, name, dtype)
    m = int(X.shape[0] if on_device is None else on_device.shape[0])
    if validation_split is not None:
        m -= math.ceil(check_validation_split(validation_split, m) * m)
    full_batch = purpose == "train" and (batch_size is None or batch_size >= m)
    if on_device is not None:
        if stream:
            raise ValueError(f"stream=True streams host data (a NumPy array or memmap), but "
                             f"{name} is already a {backend.name} array on the device")
        return Placement(backend, dtype, on_device, host=False, resident=True,
                         split=backend.mesh is not None and full_batch)
    if purpose == "infer":
        return Placement(backend, dtype, X, host=True)
    if stream and full_batch:
        raise ValueError("stream=True streams mini-batches: give a batch_size smaller than "
                         "the number of training rows (a full-batch step needs every row "
                         "on the device at once)")
    if backend.mesh is not None:
        if stream:
            raise ValueError("stream=True moves batches to one device; with mesh= the data is "
                             "placed on the mesh instead (leave stream=False)")
        if full_batch:  # rows split over the "data" devices
            return Placement(backend, dtype, backend.place_rows(X, dtype.name), host=False,
                             split=True)
        # Mini-batches: every device holds all rows (replicated), so gathering a batch needs
        # no communication and a step's only collective is the gradient all-reduce.
        return Placement(backend, dtype, backend.asarray(X, dtype.name, copy=False), host=False)
    if stream or backend.host_memory:
        return Placement(backend, dtype, X, host=True,
                         stream=stream and backend.jit and purpose == "train")
    return Placement(backend, dtype, backend.asarray(X, dtype.name, copy=False), host=False)


# --- taking rows ---------------------------------------------------------------------------------
def take_rows(backend: Backend, X: Any, rows: Any, dtype: Any, pad_to: int | None = None) -> Any:
    """Rows of ``X`` as a backend array: gathered on the host and moved (host data: NumPy, a
    memmap), or gathered on the device (data already there). Only the rows taken are copied or
    cast.

    Parameters
    ----------
    backend : Backend
        Where the rows go.
    X : array, shape (m, n)
        Host or device data.
    rows : array of int or slice
        Host row numbers.
    dtype : DType
        The dtype record to cast to.
    pad_to : int, optional
        That many rows, the ones after the taken rows being zeros (host data) or repeats of
        the last row taken (device data), so that a compiled function sees one shape.

    Returns
    -------
    array, shape (len(rows) or pad_to, n)
    """
    if isinstance(X, np.ndarray):
        part = X[rows] if isinstance(rows, slice) else np.take(X, rows, axis=0)
        if pad_to is not None and pad_to > part.shape[0]:
            part = np.concatenate([part, np.zeros((pad_to - part.shape[0], *part.shape[1:]),
                                                  dtype=part.dtype)])  # fmt: skip
        return backend.asarray(part, dtype.name, copy=False)
    xp = backend.xp
    if pad_to is not None:
        index = np.arange(X.shape[0])[rows] if isinstance(rows, slice) else np.asarray(rows)
        rows = np.concatenate([index, np.full(max(pad_to - len(index), 0), index[-1])])
    part = X[rows, ...] if isinstance(rows, slice) else xp.take(X, backend.asarray(rows), axis=0)
    return part if part.dtype == dtype.native else xp.astype(part, dtype.native)


def take_columns(backend: Backend, T: Any, columns: Any, dtype: Any) -> Any:
    """Columns of the targets as a backend array: gathered on the host and moved, or on the
    device.

    Parameters
    ----------
    backend : Backend
        Where the columns go.
    T : array, shape (k, m)
        Host or device targets.
    columns : array of int or slice
        Host column numbers.
    dtype : DType
        The dtype record to cast to.

    Returns
    -------
    array, shape (k, len(columns))
    """
    if isinstance(T, np.ndarray):
        part = T[:, columns] if isinstance(columns, slice) else np.take(T, columns, axis=1)
        return backend.asarray(part, dtype.name, copy=False)
    xp = backend.xp
    if isinstance(columns, slice):
        part = T[:, columns]
    else:
        part = xp.take(T, backend.asarray(columns), axis=1)
    return part if part.dtype == dtype.native else xp.astype(part, dtype.native)


def chunk_rows(widths: Any, itemsize: int, budget: int | None = None) -> int:
    """Rows per evaluation chunk: one chunk's input and activations take about ``budget``.

    Parameters
    ----------
    widths : sequence of int
        The layer widths ``[n_0, ..., n_L]``.
    itemsize : int
        Bytes per element.
    budget : int, optional
        Bytes (default ``EVAL_CHUNK_BYTES``).

    Returns
    -------
    int
        At least 1.
    """
    budget = EVAL_CHUNK_BYTES if budget is None else budget
    return max(1, budget // (sum(int(w) + 1 for w in widths) * itemsize))


def row_chunks(m: int, batch_size: int | None, widths: Any, dtype: Any
               ) -> list[tuple[int, int]]:
    """Consecutive chunks of rows.

    Parameters
    ----------
    m : int
        Rows in all.
    batch_size : int, optional
        Rows per chunk (None: about ``EVAL_CHUNK_BYTES`` of activations per chunk).
    widths : sequence of int
        The network's layer widths.
    dtype : DType
        The model's dtype record.

    Returns
    -------
    list of (start, stop)
    """
    if batch_size is None:
        batch_size = chunk_rows(widths, dtype.host.itemsize)
    else:
        batch_size = check_int("batch_size", batch_size, 1)
    return [(start, min(m, start + batch_size)) for start in range(0, m, batch_size)]


# --- bucketed row counts (compiled backends) -----------------------------------------------------
def bucket(n: int) -> int:
    """``n`` rounded up to the next bucket: 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (a power of two or
    1.5 times one), so at most a third of a bucket's rows are padding and a compiled function
    sees few distinct row counts.

    Parameters
    ----------
    n : int >= 1
        A row count.

    Returns
    -------
    int
    """
    power = 1 << (n - 1).bit_length()  # the smallest power of two >= n
    return 3 * power // 4 if 3 * power // 4 >= n else power


def _pad_axis(A, size: int, axis: int):
    """``A`` with zeros appended along ``axis`` up to ``size`` entries (compiled on JAX)."""
    xp = namespace(A)
    shape = list(A.shape)
    shape[axis] = size - A.shape[axis]
    return xp.concat([A, xp.zeros(tuple(shape), dtype=A.dtype, device=device_of(A))], axis=axis)


def bucketing(data: Placement) -> bool:
    """Whether mini-batch training on ``data`` pads to buckets: on a compiled backend, for data
    of at most ``BUCKET_BYTES`` (the same rule for resident and streamed data, which therefore
    train the same model).

    Parameters
    ----------
    data : Placement
        Mini-batch training data.

    Returns
    -------
    bool
    """
    X = data.X
    return data.backend.jit and X.shape[0] * X.shape[1] * data.dtype.itemsize <= BUCKET_BYTES


def bucketed(data: Placement) -> Placement:
    """``data`` (mini-batch training data) with ``X`` ``(m, n)``, ``T`` ``(k, m)`` and the
    weights padded with zero rows up to ``bucket(m)`` examples, on a compiled backend when the
    data lives there (not on the host, not streamed) and takes at most ``BUCKET_BYTES``; else
    ``data`` itself. Batches only ever gather the rows of ``data.rows`` (or the first ``m``),
    so the padding is never trained on; ``m`` is unchanged (``Placement.valid``).

    Parameters
    ----------
    data : Placement
        Mini-batch training data.

    Returns
    -------
    Placement
    """
    backend, m = data.backend, data.X.shape[0]
    size = bucket(m)
    if data.host or data.stream or data.split or not bucketing(data):
        return data
    if size == m:
        return replace(data, valid=m)
    pad = lambda A, axis: None if A is None else backend.call(  # noqa: E731
        _pad_axis, A, static=dict(size=size, axis=axis))
    return replace(data, X=pad(data.X, 0), T=pad(data.T, 1), weights=pad(data.weights, 0),
                   valid=m)
