"""Peer: native JAX as a JAX user who wants speed writes it: the loss in jax.numpy,
``jax.value_and_grad``, params a tuple of (W, b). ``jax-jit``: one jitted step (params donated) in
a Python loop; ``jax-scan``: N steps in one compiled ``lax.scan``, an epoch one scan over the full
batches plus the remainder. Arrays are committed to the contestant's device."""

from __future__ import annotations

from functools import partial

import numpy as np

from ..helpers import host_dtype, params_to_host
from . import Contestant, Unavailable, jax_device


def make_loss(jnp, jax, l2: float):
    """The regularised cross-entropy of params on (X, y), in jax.numpy."""

    def loss_fn(params, X, y):
        A = X
        for W, b in params[:-1]:
            A = jnp.maximum(A @ W + b, 0)
        W, b = params[-1]
        Z = A @ W + b
        lse = jax.nn.logsumexp(Z, axis=1)
        correct = jnp.take_along_axis(Z, y[:, None], axis=1)[:, 0]
        reg = sum(jnp.sum(W * W) for W, _ in params)
        return jnp.mean(lse - correct) + 0.5 * l2 * reg

    return loss_fn


class JaxJit(Contestant):
    name = "jax-jit"
    jit = True

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        jax, self.dev = jax_device(device)
        self.jax = jax
        if dtype == "float64" and not jax.config.jax_enable_x64:
            raise Unavailable("float64 on JAX needs jax_enable_x64 (the runner turns it on)")
        loss_fn = make_loss(jax.numpy, jax, l2)

        def one(params, X, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss

        self.one, self._jit_step = one, jax.jit(one, donate_argnums=0)

    def _put(self, a, dtype):
        return self.jax.device_put(np.asarray(a, dtype=dtype), self.dev)

    def load(self, params) -> None:
        dt = host_dtype(self.dtype)
        self.params = tuple((self._put(W, dt), self._put(b, dt)) for W, b in params)
        self._sync()

    def set_data(self, X, y) -> None:
        self.X, self.y = self._put(X, host_dtype(self.dtype)), self._put(y, np.int32)
        self._batched = {}
        self.jax.block_until_ready((self.X, self.y))

    def get_params(self):
        return params_to_host(self.params)

    def _step(self, X, y) -> None:
        self.params, self.loss = self._jit_step(self.params, X, y)

    def _sync(self) -> None:
        self.jax.block_until_ready(self.params)


class JaxScan(JaxJit):
    name = "jax-scan"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        jax, lax, one = self.jax, self.jax.lax, self.one

        @partial(jax.jit, static_argnums=3, donate_argnums=0)
        def run_steps(params, X, y, n):
            return lax.scan(lambda p, _: one(p, X, y), params, None, length=n)

        @partial(jax.jit, donate_argnums=0)
        def run_epoch(params, Xb, yb, Xr, yr):
            params, losses = lax.scan(lambda p, xy: one(p, *xy), params, (Xb, yb))
            if Xr is not None:
                params, last = one(params, Xr, yr)
                losses = losses.at[-1].set(last)  # keep one array; the last loss is the remainder's
            return params, losses

        self._run_steps, self._run_epoch = run_steps, run_epoch

    def steps(self, n: int) -> None:
        self.params, self.losses = self._run_steps(self.params, self.X, self.y, n)
        self._sync()

    def _batches(self, batch_size: int):
        """The data laid out as (n_full, batch, ...) plus the remainder, on the device; made in the
        warm-up epoch (this contestant compiles, so it always has one), hence untimed."""
        if batch_size not in self._batched:
            n, nb = self.X.shape[0], self.X.shape[0] // batch_size
            Xb = self.X[: nb * batch_size].reshape(nb, batch_size, *self.X.shape[1:])
            yb = self.y[: nb * batch_size].reshape(nb, batch_size)
            rest = (self.X[nb * batch_size :], self.y[nb * batch_size :])
            self._batched = {batch_size: (Xb, yb, *(rest if nb * batch_size < n else (None, None)))}
            self.jax.block_until_ready((Xb, yb))
        return self._batched[batch_size]

    def epoch(self, batch_size: int) -> None:
        self.params, self.losses = self._run_epoch(self.params, *self._batches(batch_size))
        self._sync()

    def notes(self) -> str:
        return "epoch: data pre-laid out as (n_batches, batch, features) on the device, untimed"
