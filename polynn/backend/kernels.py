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
        # A BLAS dot per row: no temporary (see polynn.nn.kernels).
        kernels.register(xp, sum_of_squares=lambda A: xp.sum(xp.vecdot(A, A)),
                         plus_product=_add_into)
    elif name == "torch":
        import torch

        kernels.register(xp, plus_product=lambda G, D, W: G.addcmul_(D, W),
                         descend=_torch_descend,
                         relu_backward=lambda A, dA: torch.ops.aten.threshold_backward(dA, A, 0))


def _add_into(G, D, W):
    G += D * W
    return G


def _torch_descend(p, g, eta):
    if isinstance(eta, (int, float)):
        return p.sub_(g, alpha=eta)  # one fused operation, no temporary η·g
    p -= eta * g  # an array step size (a schedule of an array count)
    return p
