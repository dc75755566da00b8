"""Peer: PyTorch autograd with ``torch.optim.SGD``, written as a PyTorch user would.

``nn.Sequential`` of ``nn.Linear`` + ``nn.ReLU`` (nn.Linear stores W^T, shape (n_out, n_in); it is
loaded with our W transposed, so the function computed is identical), ``F.cross_entropy``, and the
L2 term applied by SGD's ``weight_decay=l2`` on the weights only (biases in a group with 0): the
gradient and the update are exactly those of ``0.5*l2*sum W^2`` in the loss, without paying for
the extra forward/backward of the penalty. ``torch.set_num_threads`` is left at its default.
"""

from __future__ import annotations

import numpy as np

from ..helpers import to_host
from . import Contestant, Unavailable, need


class TorchSGD(Contestant):
    name = "torch"

    def __init__(self, sizes, dtype, *, lr, l2, device="cpu"):
        super().__init__(sizes, dtype, lr=lr, l2=l2, device=device)
        self.torch = torch = need("torch")
        if device != "cpu" and not torch.cuda.is_available():
            raise Unavailable("torch: CUDA not available")
        self.tdev = torch.device("cuda" if device != "cpu" else "cpu")
        self.tdtype = getattr(torch, dtype)
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(device=self.tdev, dtype=self.tdtype)
        self.linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]

    def _sync(self) -> None:
        if self.tdev.type == "cuda":
            self.torch.cuda.synchronize()

    def load(self, params) -> None:
        torch = self.torch
        with torch.no_grad():
            for lin, (W, b) in zip(self.linears, params):
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(W).T)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b)))
        self.opt = torch.optim.SGD([
            {"params": [m.weight for m in self.linears], "weight_decay": self.l2},
            {"params": [m.bias for m in self.linears], "weight_decay": 0.0},
        ], lr=self.lr, momentum=0.0)  # fmt: skip
        self._sync()

    def set_data(self, X, y) -> None:
        torch = self.torch
        self.X = torch.from_numpy(np.asarray(X)).to(device=self.tdev, dtype=self.tdtype)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(self.tdev)
        self._sync()

    def get_params(self):
        return [(to_host(lin.weight).T, to_host(lin.bias)) for lin in self.linears]

    def _step(self, X, y) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.torch.nn.functional.cross_entropy(self.model(X), y).backward()
        self.opt.step()

    def notes(self) -> str:
        return f"torch threads={self.torch.get_num_threads()} (default)"
