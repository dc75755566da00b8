"""Peer: hand-written NumPy in the reference program's style (and the same code on CuPy).

Explicit forward pass with a cache, the loss computed every iteration (as the reference prints it),
an explicit backward pass (dZ_L = softmax - onehot, divided by m; dW = A_prev^T dZ + l2 W;
db = sum dZ; dA = dZ W^T; dZ = dA * (A > 0)), then in-place updates ``W -= lr * dW``.
Any depth. The only departure from the reference: the scores are shifted by their row max
before ``exp`` (the reference exponentiates raw scores), which costs one subtraction.
"""

from __future__ import annotations

import numpy as np

from ..helpers import cast_params, host_dtype, to_host
from . import Contestant, Unavailable, need


class NumpyHand(Contestant):
    name = "numpy-hand"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        if dtype == "bfloat16":
            raise Unavailable("NumPy/CuPy have no native bfloat16 arithmetic")
        self.xp = np
        if device != "cpu":  # the GPU workload: the same program on CuPy
            self.name, self.xp = "cupy-hand", need("cupy")
        self.losses = []

    def load(self, params) -> None:
        self.params = {}
        for i, (W, b) in enumerate(cast_params(params, self.dtype), start=1):
            self.params[f"W{i}"], self.params[f"b{i}"] = self.xp.asarray(W), self.xp.asarray(b)
        self.L = len(params)
        self.losses = []

    def set_data(self, X, y) -> None:
        self.X = self.xp.asarray(np.asarray(X, dtype=host_dtype(self.dtype)))
        self.y = self.xp.asarray(np.asarray(y, dtype=np.int64))

    def get_params(self):
        p = self.params
        return [(to_host(p[f"W{i}"]), to_host(p[f"b{i}"])) for i in range(1, self.L + 1)]

    # -- the reference program, generalised to L layers ----------------------------------------
    def forward_prop(self, X, parameters):
        xp = self.xp
        cache = {"a0": X}
        a = X
        for i in range(1, self.L):
            z = xp.dot(a, parameters[f"W{i}"]) + parameters[f"b{i}"]
            a = xp.maximum(0, z)
            cache[f"a{i}"] = a
        scores = xp.dot(a, parameters[f"W{self.L}"]) + parameters[f"b{self.L}"]
        exp_scores = xp.exp(scores - xp.max(scores, axis=1, keepdims=True))
        probs = exp_scores / xp.sum(exp_scores, axis=1, keepdims=True)
        cache["probs"] = probs
        return cache, probs

    def compute_cost(self, y, probs, parameters):
        xp = self.xp
        m = y.shape[0]
        data_loss = xp.sum(-xp.log(probs[xp.arange(m), y])) / m
        reg_loss = 0.0
        for i in range(1, self.L + 1):
            W = parameters[f"W{i}"]
            reg_loss += 0.5 * self.l2 * xp.sum(W * W)
        return data_loss + reg_loss

    def back_prop(self, cache, parameters, y):
        xp = self.xp
        grads = {}
        m = y.shape[0]
        dz = cache["probs"].copy()
        dz[xp.arange(m), y] -= 1
        dz /= m
        for i in range(self.L, 0, -1):
            a_prev = cache[f"a{i - 1}"]
            W = parameters[f"W{i}"]
            grads[f"dW{i}"] = xp.dot(a_prev.T, dz) + self.l2 * W
            grads[f"db{i}"] = xp.sum(dz, axis=0)
            if i > 1:
                da = xp.dot(dz, W.T)
                dz = da * (a_prev > 0)
        return grads

    def update_parameters(self, parameters, grads):
        for i in range(1, self.L + 1):
            parameters[f"W{i}"] -= self.lr * grads[f"dW{i}"]
            parameters[f"b{i}"] -= self.lr * grads[f"db{i}"]
        return parameters

    def _step(self, X, y) -> None:
        cache, probs = self.forward_prop(X, self.params)
        cost = self.compute_cost(y, probs, self.params)
        self.losses.append(cost)  # a NumPy scalar (a device scalar on CuPy: no sync per step)
        grads = self.back_prop(cache, self.params, y)
        self.update_parameters(self.params, grads)

    def _sync(self) -> None:
        if self.xp is not np:
            self.xp.cuda.Device().synchronize()
