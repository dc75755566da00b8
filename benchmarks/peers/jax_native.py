"""Peer: native JAX, written the way a JAX user who wants speed would write it.

The loss is written in jax.numpy (log-sum-exp cross-entropy + 0.5*l2*sum W^2); gradients come from
``jax.value_and_grad``; params are a pytree (a tuple of (W, b) tuples). Two variants:

* ``jax-jit``:  one ``jax.jit``-compiled SGD step (params donated), called from a Python loop;
* ``jax-scan``: N steps inside one compiled ``lax.scan`` (per-step losses are its output), and an
  epoch as one compiled scan over the full batches plus one step on the remainder batch.

Arrays are committed to the contestant's device (CPU for workloads 1-3, even on a GPU machine).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..common import Contestant, Params, Unavailable, batch_slices, host_dtype


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"jax: {type(e).__name__}: {e}") from e
    return jax, jnp


def jax_device(kind: str):
    jax, _ = _jax()
    try:
        return jax.devices(kind)[0]
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"jax has no {kind} device: {type(e).__name__}: {e}") from e


def make_loss(jnp, jax, l2: float):
    def loss_fn(params, X, y):
        A = X
        for W, b in params[:-1]:
            A = jnp.maximum(A @ W + b, 0)
        W, b = params[-1]
        Z = A @ W + b
        lse = jax.nn.logsumexp(Z, axis=1)
        correct = jnp.take_along_axis(Z, y[:, None], axis=1)[:, 0]
        data = jnp.mean(lse - correct)
        reg = sum(jnp.sum(W * W) for W, _ in params)
        return data + 0.5 * l2 * reg

    return loss_fn


class JaxJit(Contestant):
    name = "jax-jit"
    jit = True

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        jax, jnp = _jax()
        if dtype == "float64" and not jax.config.jax_enable_x64:
            raise Unavailable("float64 on JAX needs jax_enable_x64 (the runner turns it on)")
        self.jax, self.jnp = jax, jnp
        self.dev = jax_device(device)
        self.loss_fn = make_loss(jnp, jax, l2)
        lr_ = lr

        def step(params, X, y):
            loss, grads = jax.value_and_grad(self.loss_fn)(params, X, y)
            new = jax.tree_util.tree_map(lambda p, g: p - lr_ * g, params, grads)
            return new, loss

        self._step = jax.jit(step, donate_argnums=0)
        self.last_loss = None

    def _put(self, a):
        return self.jax.device_put(a, self.dev)

    def load(self, params: Params) -> None:
        dt = host_dtype(self.dtype)
        self.params = tuple(
            (self._put(np.asarray(W, dtype=dt)), self._put(np.asarray(b, dtype=dt)))
            for W, b in params
        )
        self.jax.block_until_ready(self.params)

    def set_data(self, X, y) -> None:
        self.X = self._put(np.asarray(X, dtype=host_dtype(self.dtype)))
        self.y = self._put(np.asarray(y, dtype=np.int32))
        self._batched = {}
        self.jax.block_until_ready((self.X, self.y))

    def get_params(self) -> Params:
        return [
            (np.asarray(W).astype(np.float64), np.asarray(b).astype(np.float64))
            for W, b in self.params
        ]

    def steps(self, n: int) -> None:
        p, X, y = self.params, self.X, self.y
        loss = None
        for _ in range(n):
            p, loss = self._step(p, X, y)
        self.params, self.last_loss = p, loss
        self.jax.block_until_ready(p)

    def epoch(self, batch_size: int) -> None:
        p = self.params
        loss = None
        for s in batch_slices(self.X.shape[0], batch_size):
            p, loss = self._step(p, self.X[s], self.y[s])
        self.params, self.last_loss = p, loss
        self.jax.block_until_ready(p)


class JaxScan(JaxJit):
    name = "jax-scan"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        jax = self.jax
        lax = jax.lax
        loss_fn = self.loss_fn
        lr_ = lr

        def one(params, X, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
            return jax.tree_util.tree_map(lambda p, g: p - lr_ * g, params, grads), loss

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

        self._run_steps = run_steps
        self._run_epoch = run_epoch
        self.losses = None

    def steps(self, n: int) -> None:
        self.params, self.losses = self._run_steps(self.params, self.X, self.y, n)
        self.jax.block_until_ready(self.params)

    def _batches(self, batch_size: int):
        """The data laid out as (n_full, batch, ...) plus the remainder: device arrays, untimed."""
        if batch_size not in self._batched:
            n = self.X.shape[0]
            nb = n // batch_size
            Xb = self.X[: nb * batch_size].reshape(nb, batch_size, *self.X.shape[1:])
            yb = self.y[: nb * batch_size].reshape(nb, batch_size)
            if nb * batch_size < n:
                Xr, yr = self.X[nb * batch_size :], self.y[nb * batch_size :]
            else:
                Xr = yr = None
            self.jax.block_until_ready((Xb, yb))
            self._batched = {batch_size: (Xb, yb, Xr, yr)}
        return self._batched[batch_size]

    def prepare_epoch(self, batch_size: int) -> None:
        self._batches(batch_size)

    def epoch(self, batch_size: int) -> None:
        Xb, yb, Xr, yr = self._batches(batch_size)
        self.params, self.losses = self._run_epoch(self.params, Xb, yb, Xr, yr)
        self.jax.block_until_ready(self.params)

    def notes(self) -> str:
        return "epoch: data pre-laid out as (n_batches, batch, features) on the device, untimed"
