"""Every contestant by name: the peers (benchmarks/peers) and polynn on each backend."""

from __future__ import annotations

from ..peers.jax_native import JaxJit, JaxScan
from ..peers.numpy_hand import NumpyHand
from ..peers.sklearn_mlp import SklearnMLP
from ..peers.torch_native import TorchSGD
from .polynn_ import Polynn

PEERS = {
    "numpy-hand": NumpyHand,
    "jax-jit": JaxJit,
    "jax-scan": JaxScan,
    "torch": TorchSGD,
    "sklearn": SklearnMLP,
}
POLYNN = ("polynn-numpy", "polynn-jax", "polynn-torch")
CPU_CONTESTANTS = (*PEERS, *POLYNN)


def make(name: str, sizes, dtype: str, *, lr: float, l2: float, device: str = "cpu", seed: int = 0):
    """Build a contestant; raises ``common.Unavailable`` (or any error) when it cannot run here."""
    if name in PEERS:
        return PEERS[name](sizes, dtype, lr=lr, l2=l2, device=device)
    if name.startswith("polynn-"):
        return Polynn(
            sizes, dtype, lr=lr, l2=l2, device=device, backend=name[len("polynn-") :], seed=seed
        )
    raise KeyError(f"unknown contestant {name!r}; known: {', '.join(CPU_CONTESTANTS)}")
