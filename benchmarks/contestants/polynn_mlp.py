"""polynn, public API only: ``pn.MLP.from_params(params, activation="relu", output="softmax",
backend=..., dtype=...)``, ``fit(X, y, lr, l2, epochs=N, batch_size=None, shuffle=False)``,
``model.params``. X is placed on the backend before timing (``pn.get_backend(name).asarray``, as
the native peers get theirs); labels go as host arrays. ``init_match``: the initial weights equal
the peers' bit for bit."""

from __future__ import annotations

import contextlib

import numpy as np

from ..helpers import block, cast_params, host_dtype, params_to_host
from . import Contestant, Unavailable, jax_device, need


class Polynn(Contestant):
    family = "polynn"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu", backend="numpy"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        self.backend, self.name, self.jit = backend, f"polynn-{backend}", backend == "jax"
        self.init_match = None
        if backend == "cupy" and device == "cpu":
            raise Unavailable("the cupy backend needs a GPU")
        if backend in ("numpy", "cupy") and dtype == "bfloat16":
            raise Unavailable(f"{backend} has no bfloat16")
        self.pn, self.ctx = need("polynn"), contextlib.nullcontext
        if backend == "jax":  # pin JAX's default device: CPU workloads stay on the CPU
            jax, dev = jax_device(device)
            self.ctx = lambda: jax.default_device(dev)
        self.host_dtype = "float32" if dtype == "bfloat16" else dtype

    def load(self, params) -> None:
        kw = dict(activation="relu", output="softmax", backend=self.backend, dtype=self.dtype)
        with self.ctx():
            self.model = self.pn.MLP.from_params(tuple(cast_params(params, self.host_dtype)), **kw)
            block(self.model.params)
        got, want = params_to_host(self.model.params), cast_params(params, self.dtype)
        self.init_match = all(np.array_equal(g, np.asarray(w, np.float64))
                              for gw, ww in zip(got, want) for g, w in zip(gw, ww))  # fmt: skip

    def set_data(self, X, y) -> None:
        self.X = np.ascontiguousarray(X, dtype=host_dtype(self.host_dtype))
        self.y = np.asarray(y, dtype=np.int64)
        if self.backend != "numpy":
            with self.ctx():
                self.X = self.pn.get_backend(self.backend).asarray(self.X, self.dtype)
                block(self.X)

    def _fit(self, **kw) -> None:
        with self.ctx():
            self.model.fit(self.X, self.y, lr=self.lr, l2=self.l2, shuffle=False, progress=False,
                           **kw)  # fmt: skip
            block(self.model.params)

    def steps(self, n: int) -> None:
        self._fit(epochs=n, batch_size=None)

    def epoch(self, batch_size: int) -> None:
        self._fit(epochs=1, batch_size=batch_size)

    def get_params(self):
        return params_to_host(self.model.params)

    def notes(self) -> str:
        where = ("X placed on the backend before timing, as for the native peers"
                 if self.backend != "numpy" else "X, y passed as host NumPy arrays")  # fmt: skip
        return f"{where}; init_match={self.init_match}"
