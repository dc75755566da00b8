"""The faster primitives each library has, registered with :mod:`polynn.nn.kernels` when polynn
loads the library (:func:`polynn.backend.namespaces.load_namespace`)."""

from __future__ import annotations

from polynn.nn import kernels


def register_faster_kernels(name: str, xp) -> None:
    """Register backend ``name``'s faster forms for its namespace ``xp`` (idempotent).

    Parameters
    ----------
    name : str
        The backend name.
    xp : module
        Its array API namespace.
    """
    if name == "numpy":
        import numpy as np

        # A BLAS dot per row, no temporary (see polynn.nn.kernels); NumPy's own calls, which
        # skip the array API wrappers' ~1 µs per call (a few percent of a small network's step).
        kernels.register(xp, sum_of_squares=lambda A: np.add.reduce(np.vecdot(A, A)),
                         plus_product=_add_into, relu_backward=_numpy_relu_backward)
    elif name == "jax":  # the backward products XLA runs faster (see polynn.nn.kernels)
        kernels.register(xp, weight_gradient=_split_weight_gradient,
                         input_gradient=_sliced_input_gradient)
    elif name == "torch":
        import torch

        kernels.register(xp, plus_product=lambda G, D, W: G.addcmul_(D, W),
                         descend=_torch_descend,
                         relu_backward=lambda A, dA: torch.ops.aten.threshold_backward(dA, A, 0))


# Below this many inputs a layer keeps the folded products: on the reference network (2-25-3)
# the extra reduction and join cost 12 % of a 13 µs step, at 784 inputs (MNIST-shaped) 2 %;
# at 1024-2048 inputs they gain 3-6 %.
WIDE_INPUTS = 1024


def _split_weight_gradient(dZ, A_aug):
    import jax.numpy as jnp

    if A_aug.shape[0] - 1 < WIDE_INPUTS:
        return dZ @ A_aug.T
    return jnp.concat([dZ @ A_aug[:-1, ...].T, jnp.sum(dZ, axis=1, keepdims=True)], axis=1)


def _sliced_input_gradient(Wb, dZ):
    if Wb.shape[1] - 1 < WIDE_INPUTS:
        return Wb[:, :-1].T @ dZ
    return (Wb.T @ dZ)[:-1, ...]


def _numpy_relu_backward(A, dA):
    return dA * (A > 0)  # NumPy multiplies by the boolean mask as by 0/1: no cast


def _add_into(G, D, W):
    G += D * W
    return G


def _torch_descend(p, g, eta):
    if isinstance(eta, (int, float)):
        return p.sub_(g, alpha=eta)  # one fused operation, no temporary η·g
    p -= eta * g  # an array step size (a schedule of an array count)
    return p
