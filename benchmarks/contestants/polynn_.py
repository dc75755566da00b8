"""The polynn contestant, written against polynn's public API only:

    model = pn.MLP.from_params(params, activation="relu", output="softmax", backend=..., dtype=...)
    history = model.fit(X, y, lr=..., l2=..., epochs=N, batch_size=None, shuffle=False,
                        progress=False)
    model.params  # tuple of (W, b) backend arrays

* ms/step: ``fit(X_batch, y_batch, epochs=N, batch_size=None, shuffle=False)`` on one fixed batch
  (N full-batch steps), timed and divided by N;
* an epoch: ``fit(X, y, epochs=1, batch_size=256, shuffle=False)``.

X is placed on the backend before timing (as the native JAX and PyTorch peers get theirs), and
``fit`` uses it where it is; labels go as host NumPy arrays. The initial weights come from the
shared host init through ``MLP.from_params`` (falling back to ``MLP(sizes, seed=seed)``, polynn's
own seed convention, if ``from_params`` is missing); whether they equal the peers' bit for bit is
checked and reported (``init_match``).

Until ``import polynn`` gives an ``MLP``, the constructor raises ``Unavailable`` with the error, and
the runner shows the polynn rows as "unavailable: <error>".
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..common import Contestant, Params, Unavailable, block, cast_params, host_dtype, params_to_host


def import_polynn():
    try:
        import polynn as pn
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"import polynn failed: {type(e).__name__}: {e}") from e
    if not hasattr(pn, "MLP"):
        where = getattr(pn, "__file__", None) or list(getattr(pn, "__path__", []))
        raise Unavailable(f"polynn ({where}) has no MLP yet: the core has not landed")
    return pn


class Polynn(Contestant):
    family = "polynn"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu", backend="numpy", seed=0):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        self.backend = backend
        self.name = f"polynn-{backend}"
        self.jit = backend == "jax"
        self.seed = seed
        self.init_match = None
        self.history = None
        if backend == "cupy" and device == "cpu":
            raise Unavailable("the cupy backend needs a GPU")
        if backend in ("numpy", "cupy") and dtype == "bfloat16":
            raise Unavailable(f"{backend} has no bfloat16")
        self.pn = import_polynn()
        self._jax_device = None
        if backend == "jax":
            # polynn chooses its own device; pin JAX's default so that CPU workloads stay on the CPU
            # (and the GPU workload on the GPU) even on a machine that has both.
            import jax

            try:
                self._jax_device = jax.devices("gpu" if device != "cpu" else "cpu")[0]
            except Exception as e:  # noqa: BLE001
                raise Unavailable(f"jax has no {device} device: {e}") from e
        self._host_dtype = "float32" if dtype == "bfloat16" else dtype

    def _ctx(self):
        if self._jax_device is not None:
            import jax

            return jax.default_device(self._jax_device)
        return contextlib.nullcontext()

    def load(self, params: Params) -> None:
        pn = self.pn
        host = cast_params(params, self._host_dtype)
        kw = dict(activation="relu", output="softmax", backend=self.backend, dtype=self.dtype)
        with self._ctx():
            if hasattr(pn.MLP, "from_params"):
                self.model = pn.MLP.from_params(tuple((W, b) for W, b in host), **kw)
            else:
                self.model = pn.MLP(self.sizes, seed=self.seed, **kw)
            block(self.model.params)
        got = params_to_host(self.model.params)
        want = cast_params(params, self.dtype)
        self.init_match = len(got) == len(want) and all(
            np.array_equal(g, np.asarray(w, np.float64))
            for gw, ww in zip(got, want)
            for g, w in zip(gw, ww)
        )

    def set_data(self, X, y) -> None:
        # Like the native JAX/PyTorch peers, the data is placed on the backend before timing;
        # polynn trains on arrays already resident there without copying them back and forth.
        self.X = np.ascontiguousarray(X, dtype=host_dtype(self._host_dtype))
        self.y = np.asarray(y, dtype=np.int64)
        if self.backend != "numpy":
            with self._ctx():
                backend = self.pn.get_backend(self.backend)
                self.X = backend.asarray(self.X, self.dtype)
                block(self.X)

    def _fit(self, **kw) -> None:
        with self._ctx():
            self.history = self.model.fit(
                self.X, self.y, lr=self.lr, l2=self.l2, shuffle=False, progress=False, **kw
            )
            block(self.model.params)

    def steps(self, n: int) -> None:
        self._fit(epochs=n, batch_size=None)

    def epoch(self, batch_size: int) -> None:
        self._fit(epochs=1, batch_size=batch_size)

    def get_params(self) -> Params:
        return params_to_host(self.model.params)

    def notes(self) -> str:
        bits = ["X placed on the backend before timing, as for the native peers"
                if self.backend != "numpy" else "X, y passed as host NumPy arrays"]
        if self.init_match is not None:
            bits.append(f"init_match={self.init_match}")
        return "; ".join(bits)
