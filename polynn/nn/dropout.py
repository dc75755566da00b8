"""Dropout masks from a counter-based generator, written once against the array API.

A mask element is a pure function of ``(key, step, layer, example, unit)``: a 32-bit hash built
from MurmurHash3's finaliser (``fmix32``: xor-shifts and multiplications that wrap modulo
2**32), absorbing one word at a time, ``h <- fmix32(h ^ word)``. Each absorption is a bijection
of ``h``, so two examples (or two units of one example) never share a hash by construction.
There is no generator state to carry, split or keep in step between backends: NumPy, JAX
(inside the compiled loop, where ``step`` is a traced count), PyTorch, array-api-strict and
CuPy compute the same bits, so one seed gives the same masks, bit for bit, everywhere.

``example`` is the example's row in the data set the model is fitted on (not its position in
the batch), so a shuffled mini-batch epoch drops the same units of an example as any other
batch order would at the same step.

The words are computed in ``uint32`` where the namespace has the standard's uint32 arithmetic;
PyTorch's ``uint32`` lacks shifts and comparisons, so there (found by a probe, memoised per
namespace) they are ``int64`` holding values below 2**32: every product is reduced with
``& 0xFFFFFFFF``, whose low 32 bits are the same as uint32's wrapped product (int64 products
wrap modulo 2**64), and shifts of non-negative values agree. The same code runs either way.

Inverted dropout: a unit is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, so
the expected activation is unchanged and nothing is rescaled at inference, which never drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from array_api_compat import device as device_of

from polynn.nn.namespace import Array, Namespace, namespace

_MASK32 = 0xFFFFFFFF
_WORDS: dict[int, Any] = {}  # id(namespace) -> the integer dtype the hash computes in


def fmix32(h: Array) -> Array:
    """MurmurHash3's 32-bit finaliser of integer words ``h`` (uint32, or int64 holding values
    below 2**32); same shape and dtype. A bijection of [0, 2**32)."""
    c1, c2, low = (constant(h, value) for value in (0x85EBCA6B, 0xC2B2AE35, _MASK32))
    h = h ^ (h >> 16)
    h = (h * c1) & low
    h = h ^ (h >> 13)
    h = (h * c2) & low
    return h ^ (h >> 16)


def constant(h: Array, value: int) -> Array:
    """``value`` as a 0-d array of ``h``'s dtype and device: JAX parses a bare Python int
    above 2**31 as int32 and overflows."""
    return namespace(h).asarray(value, dtype=h.dtype, device=device_of(h))


def word_dtype(xp: Namespace) -> Any:
    """The integer dtype the hash computes in on namespace ``xp``: uint32 when its shifts and
    comparisons work, else int64 (PyTorch). Probed once per namespace."""
    key = id(xp)
    if key not in _WORDS:
        try:
            probe = xp.asarray([3], dtype=xp.uint32)  # on the default device
            # Raises at once where an operation is missing; never read back (under jax.jit
            # the probe is traced).
            _ = fmix32(probe) >= constant(probe, 1)
            _WORDS[key] = xp.uint32
        except (NotImplementedError, RuntimeError, TypeError):
            _WORDS[key] = xp.int64
    return _WORDS[key]


def threshold(rate: float) -> int:
    """The 32-bit threshold below which a hash drops its unit: ``round(rate * 2**32)``, so that
    a unit is dropped with probability ``rate`` (to 2**-32)."""
    return min(int(round(float(rate) * 2.0**32)), _MASK32)


def layer_mask(key: int, step: int | Array, layer: int, examples: Array, units: int, rate: float,
               dtype: Any) -> Array:
    """The inverted-dropout mask of one hidden layer, in columns: ``(units, m)`` of ``dtype``
    holding 0 (dropped) or ``1 / (1 - rate)`` (kept).

    Parameters
    ----------
    key : int
        The 32-bit dropout key (derived from the model's seed on the host).
    step : int or 0-d integer array
        The optimizer's step count (a traced value inside a compiled loop).
    layer : int
        The hidden layer's index, 0 for the first.
    examples : integer array ``(m,)``
        Each column's example index in the data set; its namespace and device are the masks'.
    units : int
        The layer's width.
    rate : float
        The probability of dropping a unit, in [0, 1).
    dtype : the namespace's floating dtype
        The mask's dtype (the compute dtype).
    """
    xp = namespace(examples)
    word = word_dtype(xp)
    device = device_of(examples)
    # Shape (1,), not 0-d: NumPy turns 0-d results into scalars, which warn when they wrap.
    h = fmix32(xp.asarray([key & _MASK32], dtype=word, device=device))
    low = constant(h, _MASK32)
    h = fmix32(h ^ (xp.astype(xp.reshape(xp.asarray(step, device=device), (1,)), word) & low))
    h = fmix32(h ^ constant(h, layer))
    per_example = fmix32(h ^ (xp.astype(examples, word) & low))              # (m,)
    unit = xp.arange(units, dtype=word, device=device)
    bits = fmix32(per_example[None, :] ^ unit[:, None])                      # (units, m)
    keep = bits >= constant(bits, threshold(rate))
    return xp.astype(keep, dtype) * (1.0 / (1.0 - rate))


def dropout_masks(key: int, step: int | Array, examples: Array, sizes: Sequence[int],
                  rates: Sequence[float], dtype: Any) -> tuple[Array | None, ...]:
    """One mask per hidden layer (see :func:`layer_mask`), or None for a layer of rate 0.

    ``sizes`` are the hidden layers' widths and ``rates`` their dropout rates (equal lengths);
    returns a tuple of ``(n_l, m)`` masks (or None) in ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from polynn.nn.dropout import dropout_masks
    >>> first, second = dropout_masks(7, 0, np.arange(6), (4, 3), (0.5, 0.0), np.float32)
    >>> first.shape, sorted(set(first.ravel().tolist())), second
    ((4, 6), [0.0, 2.0], None)
    """
    return tuple(None if rate == 0 else layer_mask(key, step, layer, examples, n, rate, dtype)
                 for layer, (n, rate) in enumerate(zip(sizes, rates)))



class Dropout(NamedTuple):
    """A model's dropout during training: the 32-bit ``key`` (from its seed), the hidden layers'
    widths ``sizes`` and their rates ``rates`` (tuples of equal length). Hashable, so a compiled
    step can be cached per configuration."""

    key: int
    sizes: tuple[int, ...]
    rates: tuple[float, ...]

    def masks(self, step: int | Array, examples: Array, like: Array
              ) -> tuple[Array | None, ...]:
        """The masks of one step (see :func:`dropout_masks`) in the dtype, namespace and device
        of the batch ``like`` (``(n_0 + 1, m)``): ``examples`` ``(m,)`` are the batch's example
        indices in the data set, any integer array (host NumPy ones are moved)."""
        xp = namespace(like)
        if namespace(examples) is not xp:
            examples = xp.asarray(examples, device=device_of(like))
        return dropout_masks(self.key, step, examples, self.sizes, self.rates, like.dtype)
