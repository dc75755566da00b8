"""``MLP.summary()``: the model as a table, as Keras's ``Model.summary()`` prints it."""

from __future__ import annotations

import math


class Summary(str):
    """The summary's text (a ``str``: print it), with its numbers as attributes.

    Attributes
    ----------
    rows : list of dict
        One per layer: ``name``, ``shape`` (``(n_in, n_out)``), ``activation``, ``dropout``
        (the rate applied to the layer's activations while training; 0.0 for the output),
        ``params`` (``n_in * n_out + n_out``).
    total_params : int
        The parameters of every layer.
    param_bytes : int
        The parameters' memory on the device (elements x the dtype's bytes when stored).
    state_bytes : int
        The optimizer state's memory (0 before the first ``fit``).
    """

    rows: list
    total_params: int
    param_bytes: int
    state_bytes: int


def _bytes(n: int) -> str:
    """``n`` bytes in words: "812 B", "9.3 KiB", "1.50 MiB"."""
    if n < 1024:
        return f"{n} B"
    power = min(int(math.log(n, 1024)), 3)
    return f"{n / 1024**power:.{3 - len(str(int(n / 1024**power)))}f} {'BKMG'[power]}iB"


def _state_elements(state) -> int:
    """The elements of an optimizer state's trees (the step count excluded)."""
    if state is None:
        return 0
    total = 0
    for tree in tuple(state)[1:]:
        for W, b in tree:
            total += math.prod(W.shape) + math.prod(b.shape)
    return total


def summary(self) -> Summary:
    """The model as a table: one row per layer (shape, activation, dropout, parameters), the
    total, the dtype, the backend and its device or mesh, and the memory of the parameters and
    of the optimizer's state.

    Returns
    -------
    Summary
        A ``str`` (print it) with the numbers as attributes (``total_params``, ...).

    Examples
    --------
    >>> import polynn as pn
    >>> model = pn.MLP([2, 64, 32, 3], activation=["relu", "tanh"], dropout=0.1,
    ...                backend="numpy")
    >>> print(model.summary())
    MLP: 3 layers, output softmax
    layer       shape       activation   dropout     params
    dense_1     (2, 64)     relu         0.1            192
    dense_2     (64, 32)    tanh         0.1          2,080
    output      (32, 3)     softmax      -               99
    Total params: 2,371
    dtype: float32 | backend: numpy | device: default
    Parameters: 9.26 KiB | optimizer state: none (not fitted)
    >>> model.summary().total_params
    2371
    """
    sizes, n_hidden = self.layer_sizes, len(self.layer_sizes) - 2
    activations = ((self.activation,) * n_hidden if isinstance(self.activation, str)
                   else tuple(self.activation))
    rows = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = layer < n_hidden
        rows.append({"name": f"dense_{layer + 1}" if hidden else "output",
                     "shape": (n_in, n_out),
                     "activation": activations[layer] if hidden else self.output,
                     "dropout": float(self.dropout[layer]) if hidden else 0.0,
                     "params": n_in * n_out + n_out})
    total = sum(row["params"] for row in rows)
    itemsize = self.dtype_record.itemsize
    param_bytes = total * itemsize
    state_bytes = _state_elements(self.opt_state) * itemsize
    lines = [f"MLP: {len(rows)} layers, output {self.output}",
             f"{'layer':<12}{'shape':<12}{'activation':<13}{'dropout':<9}{'params':>9}"]
    for row in rows:
        dropout = f"{row['dropout']:g}" if row["name"] != "output" else "-"
        lines.append(f"{row['name']:<12}{str(row['shape']):<12}{row['activation']:<13}"
                     f"{dropout:<9}{row['params']:>9,}")
    where = "device: " + self.backend.device_name  # "mesh(data=4)" on a mesh
    dtype = self.dtype if not self.dtype_record.mixed else (
        f"{self.dtype} (parameters and optimizer state float32, steps compute in bfloat16)")
    state = ("none (not fitted)" if self.opt_state is None else
             f"{type(self.optimizer).__name__}, {_bytes(state_bytes)}")
    lines += [f"Total params: {total:,}",
              f"dtype: {dtype} | backend: {self.backend.name} | {where}",
              f"Parameters: {_bytes(param_bytes)} | optimizer state: {state}"]
    out = Summary("\n".join(lines))
    out.rows, out.total_params = rows, total
    out.param_bytes, out.state_bytes = param_bytes, state_bytes
    return out
