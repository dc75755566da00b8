"""Primitives whose fastest form differs between libraries: the one delegation place.

The math calls these instead of writing such an operation inline. Each has a default written in
the array API standard; a library with a faster form gets it registered for its namespace
(:func:`register`; :mod:`polynn.backend.kernels` does so when polynn loads the library), so the
math stays written once and names no library.

- :func:`sum_of_squares` (the L2 penalty, every step): ``sum(A * A)`` makes a temporary as
  large as the weights; NumPy's row-wise ``vecdot`` (a BLAS dot per row) makes none: 14 against
  70 µs on a 256×784 float32 weight, 0.26 against 2.1 ms on 2048×2048 (issue 18). PyTorch's
  ``vecdot`` is slower than its ``sum(A * A)`` (102 against 34 µs), and XLA fuses either.
- :func:`plus_product` (the L2 term of every gradient): PyTorch adds into the fresh gradient
  with one fused ``addcmul_`` instead of two operations and two new arrays; NumPy adds in place.
- :func:`descend` (the optimizer's ``p -= η·g``): PyTorch's fused ``sub_(g, alpha=η)`` makes no
  temporary ``η·g``.
- :func:`relu_backward` (``dA ⊙ [A > 0]``): PyTorch's ``threshold_backward``, the one operation
  its autograd uses, takes 7 against 33 µs (a comparison, a cast and a product) on 256×256.
- :func:`weight_gradient` and :func:`input_gradient` (the backward pass's products with the
  folded bias): XLA runs the product ``dZ · Âᵀ`` of odd width ``n_in + 1`` ~10 % slower than
  one of width ``n_in`` and copies a sliced ``Wb[:, :-1]`` before a product; on JAX, for layers
  of at least 1,024 inputs, the weight part and the bias column are computed apart and joined
  (the join fuses into the update), and ``dA`` is sliced from ``Wbᵀ · dZ`` (the slice fuses into
  the activation's gradient). The wide network (1024-2048-2048-10, batch 1024, float32): 86.8
  against 92.2 ms per step in one compiled loop, 2-3 % per ``fit`` against native JAX; on
  smaller layers the extra reduction costs more than it saves (the reference network: 12 %).
  NumPy and PyTorch read strided views directly, and a join would copy the gradient there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polynn.nn.namespace import Array, Namespace, namespace

_FASTER: dict[Any, dict[str, Callable[..., Any]]] = {}  # namespace -> name -> function
KERNELS = ("sum_of_squares", "plus_product", "descend", "relu_backward", "weight_gradient",
           "input_gradient")


def register(xp: Namespace, **kernels: Callable[..., Any]) -> None:
    """Use ``kernels`` (by name, from :data:`KERNELS`) for arrays of namespace ``xp``.

    Parameters
    ----------
    xp : module
        An array API namespace, as :func:`polynn.nn.namespace.namespace` returns it.
    **kernels : callable
        Each with the signature and result of the default of that name.
    """
    unknown = sorted(set(kernels) - set(KERNELS))
    if unknown:
        raise ValueError(f"unknown kernels {unknown}; the kernels are {list(KERNELS)}")
    _FASTER.setdefault(xp, {}).update(kernels)


def sum_of_squares(A: Array) -> Array:
    """Σ A², over every element.

    Parameters
    ----------
    A : array
        Any shape (a strided view, such as ``Wb[:, :-1]``, is fine), real dtype.

    Returns
    -------
    array, shape ()
        In the dtype of ``A``.
    """
    xp = namespace(A)
    faster = _FASTER.get(xp, {}).get("sum_of_squares")
    return xp.sum(A * A) if faster is None else faster(A)


def plus_product(G: Array, D: Array, W: Array) -> Array:
    """``G + D ⊙ W``, where ``G`` is a temporary the caller made and no longer needs: a library
    with mutable arrays may add into it.

    Parameters
    ----------
    G : array, shape (n, k)
        A fresh array (a matmul's result), overwritten where the library allows.
    D : array, shape (1, k) or (n, k)
        Broadcast over the rows of ``G``.
    W : array, shape (n, k)

    Returns
    -------
    array, shape (n, k)
        ``G`` itself or a new array.
    """
    faster = _FASTER.get(namespace(G), {}).get("plus_product")
    return G + D * W if faster is None else faster(G, D, W)


def descend(p: Array, g: Array, eta: Any, inplace: bool) -> Array:
    """``p − η·g``; with ``inplace`` it is ``p -= η·g``, which overwrites mutable arrays (NumPy,
    CuPy, PyTorch) and rebinds immutable ones (JAX), so the result is the same everywhere.

    Parameters
    ----------
    p, g : array
        A parameter and its step direction, of one shape and dtype.
    eta : float or array, shape ()
        The step size.
    inplace : bool
        Overwrite ``p`` where the library allows.

    Returns
    -------
    array
        The new parameter (``p`` itself when updated in place).
    """
    faster = _FASTER.get(namespace(p), {}).get("descend") if inplace else None
    return subtract(p, eta * g, inplace) if faster is None else faster(p, g, eta)


def subtract(p: Array, step: Array, inplace: bool) -> Array:
    """``p − step`` for a step already scaled (the optimizers' composite steps). With
    ``inplace`` it is ``p -= step``, the array API's in-place operator: it overwrites mutable
    arrays instead of allocating new ones and rebinds immutable ones (JAX).

    Parameters
    ----------
    p, step : array
        Of one shape and dtype.
    inplace : bool
        Overwrite ``p`` where the library allows.

    Returns
    -------
    array
        The new parameter (``p`` itself when updated in place).
    """
    if inplace:
        p -= step
        return p
    return p - step


def relu_backward(A: Array, dA: Array) -> Array:
    """The gradient through ReLU from its output: ``dA`` where ``A > 0``, else 0.

    Parameters
    ----------
    A : array
        The ReLU's output (``max(Z, 0)``).
    dA : array
        The gradient with respect to ``A``; same shape and dtype.

    Returns
    -------
    array
        A new array shaped like ``dA``.
    """
    xp = namespace(A)
    faster = _FASTER.get(xp, {}).get("relu_backward")
    if faster is not None:
        return faster(A, dA)
    # A 0/1 mask times dA, as the reference program writes it: on NumPy a multiply by the mask
    # is ~8x faster than ``where`` (measured on 256x256 float32).
    return dA * xp.astype(A > 0, dA.dtype)


def weight_gradient(dZ: Array, A_aug: Array) -> Array:
    """A layer's gradient with its bias column: ``dZ · Âᵀ``.

    Parameters
    ----------
    dZ : array, shape (n_out, m)
        The gradient with respect to the layer's output.
    A_aug : array, shape (n_in + 1, m)
        The layer's augmented input (ones in its last row).

    Returns
    -------
    array, shape (n_out, n_in + 1)
        ``[dZ · Aᵀ | Σ_columns dZ]``.
    """
    faster = _FASTER.get(namespace(dZ), {}).get("weight_gradient")
    return dZ @ A_aug.T if faster is None else faster(dZ, A_aug)


def input_gradient(Wb: Array, dZ: Array) -> Array:
    """The gradient with respect to a layer's input (not its ones row): ``Wᵀ · dZ``.

    Parameters
    ----------
    Wb : array, shape (n_out, n_in + 1)
        The layer's folded parameters.
    dZ : array, shape (n_out, m)
        The gradient with respect to the layer's output.

    Returns
    -------
    array, shape (n_in, m)
    """
    faster = _FASTER.get(namespace(dZ), {}).get("input_gradient")
    return Wb[:, :-1].T @ dZ if faster is None else faster(Wb, dZ)
