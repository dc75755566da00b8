"""Rows <-> columns: the one module that converts between the public and the training layout.

The public layout is rows: ``params`` is a tuple of ``(W (n_in, n_out), b (n_out,))`` pairs and a
batch ``X`` is ``(m, n_in)``. Training runs in columns (see :mod:`polynn.nn.mlp`): one array
``Wb = [Wᵀ | b]`` of shape ``(n_out, n_in + 1)`` per layer and a batch ``Xa = [Xᵀ; 1]``. An
optimizer state (a NamedTuple of :mod:`polynn.nn.optim`) holds its step count and trees shaped
like the parameters; it is converted field by field, keeping its type and its count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polynn.nn.namespace import Array, namespace

# The row layout's ``((W, b), ...)`` and the training layout's ``(Wb, ...)``.
RowParams = tuple[tuple[Array, Array], ...]
ColumnParams = tuple[Array, ...]


def params_to_columns(params: RowParams) -> ColumnParams:
    """Row layout -> column layout (also ``polynn.nn.to_columns``).

    Parameters
    ----------
    params : tuple of (W, b)
        ``W`` ``(n_in, n_out)``, ``b`` ``(n_out,)`` per layer.

    Returns
    -------
    tuple of array
        ``Wb`` ``(n_out, n_in + 1)`` per layer, each a new array in C (row-major) order, in
        the dtype of ``W``.
    """
    xp = namespace(params[0][0])

    def row_major(A: Array) -> Array:
        # NumPy's concat keeps the column-major order of W.T; reshaping through 1-D copies in
        # row-major order (a no-op under XLA). Mixed-order updates ``Wb -= η·dWb`` (dWb comes
        # out of a matmul in row-major order) measured 5x slower: 257 against 50 µs.
        return xp.reshape(xp.reshape(A, (-1,)), A.shape)

    return tuple(row_major(xp.concat([W.T, xp.reshape(b, (-1, 1))], axis=1)) for W, b in params)


def params_to_rows(params_t: ColumnParams) -> RowParams:
    """The inverse of :func:`params_to_columns` (also ``polynn.nn.to_rows``).

    Parameters
    ----------
    params_t : tuple of array
        ``Wb`` ``(n_out, n_in + 1)`` per layer.

    Returns
    -------
    tuple of (W, b)
        ``W`` ``(n_in, n_out)``, ``b`` ``(n_out,)`` per layer (views of ``Wb`` where the
        backend has views).
    """
    return tuple((Wb[:, :-1].T, Wb[:, -1]) for Wb in params_t)


def _convert_state(state: tuple[Any, ...], convert: Callable[[Any], Any]) -> tuple[Any, ...]:
    count, *trees = state
    converted = [convert(tree) for tree in trees]
    if hasattr(state, "_fields"):  # a NamedTuple state: keep its type and field names
        return type(state)(count, *converted)
    return (count, *converted)


def state_to_columns(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """An optimizer state with every tree in columns.

    Parameters
    ----------
    state : tuple
        ``(count, *trees)`` with row-layout trees (a NamedTuple keeps its type).

    Returns
    -------
    tuple
        The same state type, every tree through :func:`params_to_columns`; the count kept.
    """
    return _convert_state(state, params_to_columns)


def state_to_rows(state_t: tuple[Any, ...]) -> tuple[Any, ...]:
    """The inverse of :func:`state_to_columns`.

    Parameters
    ----------
    state_t : tuple
        ``(count, *trees)`` with column-layout trees.

    Returns
    -------
    tuple
        The same state type with row-layout trees.
    """
    return _convert_state(state_t, params_to_rows)
