"""Every contestant by name: the peers, each written as its own users write it, and polynn on
each backend (public API only)."""

from __future__ import annotations

from .jax_native import JaxJit, JaxScan
from .numpy_hand import NumpyHand
from .polynn_mlp import Polynn
from .sklearn_mlp import SklearnMLP
from .torch_native import TorchSGD

PEERS = {
    "numpy-hand": NumpyHand,
    "jax-jit": JaxJit,
    "jax-scan": JaxScan,
    "torch": TorchSGD,
    "sklearn": SklearnMLP,
}
POLYNN = ("polynn-numpy", "polynn-jax", "polynn-torch")
CPU_CONTESTANTS = (*PEERS, *POLYNN)


def make(name: str, sizes, dtype: str, *, lr: float, l2: float, device: str = "cpu"):
    """Build a contestant; raises ``helpers.Unavailable`` (or any error) when it cannot run here."""
    if name in PEERS:
        return PEERS[name](sizes, dtype, lr=lr, l2=l2, device=device)
    if name.startswith("polynn-"):
        backend = name.removeprefix("polynn-")
        return Polynn(sizes, dtype, lr=lr, l2=l2, device=device, backend=backend)
    raise KeyError(f"unknown contestant {name!r}; known: {', '.join(CPU_CONTESTANTS)}")
