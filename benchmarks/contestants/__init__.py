"""Every contestant by name: the peers, each written as its own users write it, and polynn on
each backend (public API only); ``Contestant`` is what they share."""

from __future__ import annotations

import importlib

PEERS = {"numpy-hand": "numpy_hand:NumpyHand", "numpy-tight": "numpy_tight:NumpyTight",
         "jax-jit": "jax_native:JaxJit",
         "jax-scan": "jax_native:JaxScan", "torch": "torch_native:TorchSGD",
         "sklearn": "sklearn_mlp:SklearnMLP"}  # fmt: skip
POLYNN = ("polynn-numpy", "polynn-jax", "polynn-torch")
CPU_CONTESTANTS = (*PEERS, *POLYNN)
REFERENCE_ONLY = ("numpy-tight",)  # the reference program's second baseline, not run elsewhere


class Unavailable(RuntimeError):
    """A contestant that cannot run here (missing library, no GPU, ...): the reason is reported."""


def need(module: str):
    """``import module``, or Unavailable saying why not."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001  (ImportError, or a broken install)
        raise Unavailable(f"{module}: {type(e).__name__}: {e}") from e


def jax_device(device: str):
    """JAX and its first ``device`` ("cpu" or "gpu"), or Unavailable."""
    jax = need("jax")
    try:
        return jax, jax.devices(device)[0]
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"jax has no {device} device: {type(e).__name__}: {e}") from e


class Contestant:
    """One way of training the MLP; every method synchronises. ``load(params)`` (host float64
    ``Params``, cast to ``dtype``), ``set_data(X, y)`` (place the data, untimed), ``steps(n)`` (n
    full-batch SGD steps on it), ``epoch(bs)`` (one in-order pass in batches of ``bs`` rows, the
    smaller last one kept), ``get_params()``. The loops call ``_step(X, y)``, then ``_sync()``."""

    name = "?"
    family = "peer"  # or "polynn"
    jit = False  # True when the first call compiles (then it is always warmed up)

    def __init__(self, sizes, dtype: str, *, lr: float, l2: float, device: str = "cpu"):
        self.sizes, self.dtype, self.lr, self.l2, self.device = list(sizes), dtype, lr, l2, device

    def _sync(self) -> None:
        pass

    def steps(self, n: int) -> None:
        for _ in range(n):
            self._step(self.X, self.y)
        self._sync()

    def epoch(self, batch_size: int) -> None:
        for s in range(0, self.X.shape[0], batch_size):  # the last batch may be smaller
            self._step(self.X[s : s + batch_size], self.y[s : s + batch_size])
        self._sync()

    def notes(self) -> str:
        return ""


def make(name: str, sizes, dtype: str, *, lr: float, l2: float, device: str = "cpu"):
    """Build a contestant; raises ``Unavailable`` (or any error) when it cannot run here."""
    kw = dict(lr=lr, l2=l2, device=device)
    if name.startswith("polynn-"):
        spec, kw["backend"] = "polynn_mlp:Polynn", name.removeprefix("polynn-")
    elif name in PEERS:
        spec = PEERS[name]
    else:
        raise KeyError(f"unknown contestant {name!r}; known: {', '.join(CPU_CONTESTANTS)}")
    module, cls = spec.split(":")
    return getattr(importlib.import_module(f".{module}", __name__), cls)(sizes, dtype, **kw)
