"""Streaming (``fit(stream=True)`` on compiled backends): host data stays on the host and each
chunk of batches is gathered there and moved to the device when its turn comes, the next chunk
transferred while the current one trains."""

from __future__ import annotations

import math
import mmap

import numpy as np

from polynn.train.chunks import MAX_CHUNK_STEPS
from polynn.train.divergence import finite_prefix

# One transfer chunk holds the rows of whole batches, about this share of the data, at most
# this many bytes, so that the few chunks in flight (the one training, the next one prefetched)
# stay a small fraction of the data at any size.
STREAM_CHUNK_SHARE = 1 / 256
STREAM_CHUNK_BYTES = 32 << 20


def stream_chunk_batches(m: int, n_features: int, batch_size: int, itemsize: int) -> int:
    """Batches per transfer chunk when streaming: about ``STREAM_CHUNK_SHARE`` of the data, at
    most ``STREAM_CHUNK_BYTES``, at least one batch.

    Parameters
    ----------
    m : int
        Rows streamed.
    n_features : int
        Their width.
    batch_size : int
        Rows per batch.
    itemsize : int
        Bytes per element.

    Returns
    -------
    int
    """
    batch_bytes = batch_size * n_features * itemsize
    budget = min(STREAM_CHUNK_BYTES, m * n_features * itemsize * STREAM_CHUNK_SHARE)
    return int(max(1, min(MAX_CHUNK_STEPS, budget // batch_bytes)))


def page_array(shape, dtype) -> np.ndarray:
    """A zeroed array in its own anonymous memory mapping, handed back to the kernel as soon as
    its last reference goes. Chunk-sized heap arrays allocated and freed in turn made glibc keep
    30-40 MiB over an epoch of 0.6 GiB (its mmap threshold rises to the size freed), several
    chunks' worth; JAX on the CPU may keep using a host array it was given (zero-copy), so the
    buffers cannot simply be reused instead."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    return np.frombuffer(mmap.mmap(-1, max(1, count * dtype.itemsize)), dtype=dtype,
                         count=count).reshape(shape)


class _Transfers:
    """Gathers the rows of one chunk of batches from host data (in epoch order, cast to the
    model's host dtype, zero-padded to ``chunk_rows``) and moves them to the device."""

    def __init__(self, data, chunk_rows: int):
        self.data, self.chunk_rows = data, chunk_rows
        # The batch-row layout inside a chunk, per (n batches, size), on the device.
        self.local: dict[tuple[int, int], object] = {}

    def gather(self, A, flat, axis):
        data = self.data
        shape = list(A.shape)
        shape[axis] = self.chunk_rows
        used = (slice(None),) * axis + (slice(0, flat.size),)
        out = page_array(shape, A.dtype)
        np.take(A, flat, axis=axis, out=out[used], mode="clip")
        if out.dtype != data.dtype.host:
            cast, out = out, page_array(shape, data.dtype.host)
            out[used] = cast[used]
            del cast
        return data.backend.asarray(out, data.dtype.name, copy=False)

    def __call__(self, piece):
        """``(X, T, weights, order, n, size)`` of the chunk whose batch rows are ``piece``."""
        data = self.data
        n, size = piece.shape
        flat = piece.reshape(-1)
        if (n, size) not in self.local:
            self.local[(n, size)] = data.backend.asarray(np.arange(n * size).reshape(n, size))
        w = None if data.weights is None else self.gather(data.weights, flat, 0)
        return (self.gather(data.X, flat, 0), self.gather(data.T, flat, 1), w,
                self.local[(n, size)], n, size)


def streamed_batches(batches, carry, data, plan, decay, batch_size, interrupted, ids=False,
                     tick=None):
    """Run the batches of ``plan`` (``(batch rows (n, b), n)`` pairs, or ``(rows, n, mask)``
    from :func:`polynn.train.epochs.padded_plan`) of host ``data`` (a
    streaming :class:`polynn.placement.Placement`): each transfer chunk is trained by one
    compiled loop, which gathers each batch from the chunk exactly as the resident path gathers
    it from the whole data, hence the same parameters. The next chunk is gathered and moved
    while the device runs the current one (dispatch is asynchronous). Every chunk is padded to
    the same number of rows, so the loop compiles once per shape. ``tick(n)`` (optional) is
    told of each chunk's ``n`` steps once they are read back.

    With ``ids`` (dropout), each chunk's batch rows in the data set travel too, for the masks.

    Returns ``(carry, losses, correct, sizes)`` (lists per chunk, per batch)."""
    backend = data.backend
    per_chunk = stream_chunk_batches(data.X.shape[0], data.X.shape[1], batch_size,
                                     data.dtype.host.itemsize)
    transfer = _Transfers(data, per_chunk * batch_size)
    # A padded plan (epochs.padded_plan) brings each batch's mask: its rows' sizes, and the
    # padding weighs nothing, as in the resident run.
    pieces = [(rows[start : min(start + per_chunk, n_batches)], None if not more else
               more[0][start : min(start + per_chunk, n_batches)])
              for rows, n_batches, *more in plan for start in range(0, n_batches, per_chunk)]
    losses, correct, sizes = [], [], []

    def collect(outs, done, size) -> bool:
        """Read a chunk's losses back (waits for it); False once a loss is not finite."""
        chunk_losses = backend.to_host(outs[0])[:done].astype(np.float64)
        losses.append(chunk_losses)
        correct.append(backend.to_host(outs[1])[:done])
        sizes.extend([size] * done if np.isscalar(size) else size[:done].astype(int).tolist())
        if tick is not None:
            tick(done)
        return finite_prefix(chunk_losses) == done

    upcoming = transfer(pieces[0][0]) if pieces else None
    pending = None  # the previous chunk's (outs, done, size), read back one chunk late
    for index in range(len(pieces)):
        if interrupted():
            break
        Xc, Tc, wc, order, n, size = upcoming
        mask = pieces[index][1]
        size = size if mask is None else mask.sum(axis=1)
        extra = ()
        if mask is not None or ids:
            extra = (None if mask is None else backend.asarray(mask, data.dtype.name),
                     backend.asarray(pieces[index][0]) if ids else None)
        carry, outs, done = batches(carry, 0, n, Xc, Tc, order, decay, wc, *extra)
        # Dispatch returned at once: prepare the next chunk while this one trains, and only
        # then wait for the previous chunk's losses, so the device always has work queued.
        upcoming = transfer(pieces[index + 1][0]) if index + 1 < len(pieces) else None
        del Xc, Tc, wc
        if pending is not None and not collect(*pending):
            pending = None
            break  # diverged: the epoch is abandoned (its starting state is restored)
        pending = (outs, done, size)
    if pending is not None:
        collect(*pending)
    return carry, losses, correct, sizes
