"""Peer: the reference program's loop written tight, by hand, in NumPy (the second baseline of
the reference program, issue 18).

The same math as ``numpy-hand`` (the seed program: forward, the loss every step, backward,
``W -= lr * dW``), with what a NumPy user who cares writes: weights in lists instead of
dictionaries, no cache dictionary, the bias added and ReLU, exp and the normalisation applied
in place on the freshly made products, ``arange(m)`` made once per row count, the penalty as
``vdot``. The arithmetic of every update is the same as ``numpy-hand``'s (the final loss agrees
to rounding).
"""

from __future__ import annotations

import numpy as np

from ..helpers import cast_params, host_dtype
from . import Contestant, Unavailable


class NumpyTight(Contestant):
    name = "numpy-tight"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        if device != "cpu" or dtype == "bfloat16":
            raise Unavailable("numpy-tight is the CPU reference loop (float32/float64)")
        self.rows, self.loss = {}, None

    def load(self, params) -> None:
        cast = cast_params(params, self.dtype)
        self.Ws, self.bs = [W for W, _ in cast], [b for _, b in cast]

    def set_data(self, X, y) -> None:
        self.X = np.ascontiguousarray(X, dtype=host_dtype(self.dtype))
        self.y = np.asarray(y, dtype=np.int64)

    def get_params(self):
        return [(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(self.Ws, self.bs)]

    def _step(self, X, y) -> None:
        Ws, bs, lr, l2, m = self.Ws, self.bs, self.lr, self.l2, X.shape[0]
        rows = self.rows.get(m)
        if rows is None:
            rows = self.rows[m] = np.arange(m)
        acts, a = [X], X
        for W, b in zip(Ws[:-1], bs[:-1]):
            a = a @ W
            a += b
            np.maximum(a, 0, out=a)
            acts.append(a)
        p = a @ Ws[-1]
        p += bs[-1]
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        self.loss = -np.log(p[rows, y]).sum() / m + 0.5 * l2 * sum(np.vdot(W, W) for W in Ws)
        p[rows, y] -= 1
        p /= m
        dz = p
        for i in range(len(Ws) - 1, -1, -1):
            a_prev, W = acts[i], Ws[i]
            dW = a_prev.T @ dz + l2 * W
            db = dz.sum(axis=0)
            if i:
                dz = dz @ W.T
                dz *= a_prev > 0
            W -= lr * dW
            bs[i] -= lr * db
