"""The ONNX nodes of a :class:`~polynn.onnx.network.Network`, written once for two writers.

:func:`emit_scores` and :func:`emit_outputs` add the nodes to a :class:`Sink`:
:class:`GraphSink` collects them for a standalone model (:func:`build_model`, which
:func:`polynn.onnx.export` writes), and the skl2onnx converter adapts skl2onnx's scope and
container to the same two methods. Operators are from the default ONNX
domain only (opset >= 13), so any runtime runs them.

The graph, for ``X`` ``(N, n_features)`` in the network's dtype:

- each layer ``Z = Gemm(A, W, b)`` (``A @ W + b``), then the layer's hidden activation:
  ``Relu``, leaky_relu as polynn computes it (``Max(Z, s * Z)``, ``Min`` for a slope s > 1),
  ``Tanh``, ``Sigmoid``, or nothing (identity);
- outputs, named as skl2onnx names them:

  - softmax: ``label`` = ``ArgMax(Z)`` (int64 ``(N,)``; mapped through ``classes`` when the
    network has them) and ``probabilities`` = ``Softmax(Z)`` ``(N, k)``;
  - sigmoid, one unit: ``label`` from ``Z > 0`` (as ``pn.MLP.predict``) and ``probabilities``
    ``(N, 2)`` = ``[1 - p, p]``, ``p = Sigmoid(Z)``;
  - sigmoid, k > 1 units (multilabel): ``label`` the int64 0/1 indicator ``(N, k)`` from
    ``Z > 0`` and ``probabilities`` ``Sigmoid(Z)`` ``(N, k)``;
  - identity: ``variable`` = ``Z`` ``(N, k)``; poisson: ``variable`` = ``Exp(Z)`` ``(N, k)``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from polynn.onnx.network import HiddenActivation, Network

DEFAULT_OPSET = 17  # Softmax over one axis needs 13; 17 is read by every current runtime
ELEMENT_TYPES = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE}
# polynn's hidden activations without a parameter -> their ONNX operator (identity: none).
HIDDEN_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": None}


class Sink(Protocol):
    """Where nodes go: names are made unique by the sink."""

    def constant(self, hint: str, value: np.ndarray) -> str:
        """Add ``value`` as an initializer; its name."""

    def node(self, op: str, inputs: list, hint: str, output: str | None = None,
             **attrs) -> str:
        """Add a node of ``op`` on ``inputs`` with attributes ``attrs``; the name of its one
        output (``output`` when given, else a new name made from ``hint``)."""


def _activate(sink: Sink, A: str, activation: HiddenActivation, layer: int,
              dtype: np.dtype) -> str:
    if activation.name == "leaky_relu":
        # polynn's form, max(z, s·z) (min for s > 1), with s in the graph's dtype: LeakyRelu's
        # alpha attribute is a float32, which moves a float64 graph by ~1e-9.
        slope = activation.negative_slope
        scaled = sink.node("Mul", [A, sink.constant(f"slope_{layer}", np.asarray(slope, dtype))],
                           f"scaled_{layer}")
        return sink.node("Max" if slope <= 1 else "Min", [A, scaled], f"leaky_relu_{layer}")
    if activation.name not in HIDDEN_OPS:
        raise ValueError(f"activation {activation.name!r} of hidden layer {layer} has no ONNX "
                         f"form here; supported: {sorted([*HIDDEN_OPS, 'leaky_relu'])}")
    op = HIDDEN_OPS[activation.name]
    return A if op is None else sink.node(op, [A], f"{activation.name}_{layer}")


def emit_scores(sink: Sink, X: str, network: Network, dtype: np.dtype) -> str:
    """The output layer's pre-activation ``Z`` ``(N, k)`` of input ``X`` ``(N, n_features)``
    (weights cast to ``dtype``); returns its name."""
    A = X
    for layer, (W, b) in enumerate(network.params):
        W_name = sink.constant(f"W_{layer}", np.asarray(W, dtype))
        b_name = sink.constant(f"b_{layer}", np.asarray(b, dtype))
        A = sink.node("Gemm", [A, W_name, b_name], f"Z_{layer}")
        if layer < len(network.activations):
            A = _activate(sink, A, network.activations[layer], layer, dtype)
    return A


def _label(sink: Sink, index: str, network: Network, output: str) -> None:
    """``label`` from int64 class indices ``(N,)``: the indices themselves, or the classes."""
    if network.classes is None:
        sink.node("Identity", [index], "label", output=output)
        return
    classes = np.asarray(network.classes)
    if classes.dtype.kind in "OUS":
        classes = np.array([str(c) for c in classes], dtype=object)
    elif classes.dtype.kind in "iub":
        classes = classes.astype(np.int64)
    sink.node("Gather", [sink.constant("classes", classes), index], "label", output=output,
              axis=0)


def emit_outputs(sink: Sink, Z: str, network: Network, dtype: np.dtype, names: dict) -> None:
    """The outputs of the network's output pair from ``Z``, written to the names in ``names``
    (keys "label" and "probabilities" for classifiers, "variable" otherwise)."""
    if network.output == "identity":
        sink.node("Identity", [Z], "variable", output=names["variable"])
    elif network.output == "poisson":
        sink.node("Exp", [Z], "variable", output=names["variable"])
    elif network.output == "softmax":
        sink.node("Softmax", [Z], "probabilities", output=names["probabilities"], axis=1)
        index = sink.node("ArgMax", [Z], "index", axis=1, keepdims=0)
        _label(sink, index, network, names["label"])
    elif network.output == "sigmoid":
        positive = sink.node("Greater", [Z, sink.constant("zero", np.zeros((), dtype))],
                             "positive")
        indicator = sink.node("Cast", [positive], "indicator", to=TensorProto.INT64)
        if network.multilabel:
            sink.node("Sigmoid", [Z], "probabilities", output=names["probabilities"])
            sink.node("Identity", [indicator], "label", output=names["label"])
            return
        p = sink.node("Sigmoid", [Z], "p")
        q = sink.node("Sub", [sink.constant("one", np.ones((), dtype)), p], "q")
        sink.node("Concat", [q, p], "probabilities", output=names["probabilities"], axis=1)
        flat = sink.constant("flat", np.array([-1], np.int64))
        _label(sink, sink.node("Reshape", [indicator, flat], "index"), network, names["label"])
    else:
        raise ValueError(f"output {network.output!r} has no ONNX form here")


def output_names(network: Network) -> tuple:
    """The graph's outputs, in skl2onnx's order."""
    return ("label", "probabilities") if network.classifier else ("variable",)


class GraphSink:
    """A :class:`Sink` collecting nodes and initializers for ``onnx.helper.make_graph``."""

    def __init__(self, reserved=()):
        self.nodes, self.initializers = [], []
        self._used = set(reserved)

    def _unique(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._used:
            name, i = f"{hint}_{i}", i + 1
        self._used.add(name)
        return name

    def constant(self, hint: str, value: np.ndarray) -> str:
        name = self._unique(hint)
        if value.dtype == object:
            tensor = helper.make_tensor(name, TensorProto.STRING, value.shape,
                                        [s.encode("utf-8") for s in value.ravel()])
        else:
            tensor = numpy_helper.from_array(value, name)
        self.initializers.append(tensor)
        return name

    def node(self, op: str, inputs: list, hint: str, output: str | None = None,
             **attrs) -> str:
        out = output if output is not None else self._unique(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=self._unique(op),
                                           **attrs))
        return out


def _label_type(network: Network) -> int:
    if network.classes is None or network.multilabel:
        return TensorProto.INT64
    classes = np.asarray(network.classes)
    if classes.dtype.kind in "OUS":
        return TensorProto.STRING
    if classes.dtype.kind in "iub":
        return TensorProto.INT64
    return helper.np_dtype_to_tensor_dtype(classes.dtype)


def _output_infos(network: Network, element: int) -> list:
    """The graph's outputs with types and shapes (``N``: the rows)."""
    k = network.n_outputs
    if not network.classifier:
        return [helper.make_tensor_value_info("variable", element, ["N", k])]
    label_shape: list[str | int] = ["N", k] if network.multilabel else ["N"]
    n_proba = 2 if network.output == "sigmoid" and k == 1 else k
    return [helper.make_tensor_value_info("label", _label_type(network), label_shape),
            helper.make_tensor_value_info("probabilities", element, ["N", n_proba])]


def build_model(network: Network, *, opset: int = DEFAULT_OPSET,
                name: str = "polynn") -> onnx.ModelProto:
    """A checked ONNX model: input ``X`` ``(N, n_features)`` in the network's dtype, outputs
    as :func:`output_names` (shapes and types in the module docstring)."""
    if not 13 <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset must be between 13 and {onnx.defs.onnx_opset_version()}, "
                         f"got {opset!r}")
    dtype = network.dtype
    element = ELEMENT_TYPES[dtype]
    names = {n: n for n in output_names(network)}
    sink = GraphSink(reserved=("X", *names))
    Z = emit_scores(sink, "X", network, dtype)
    emit_outputs(sink, Z, network, dtype, names)
    inputs = [helper.make_tensor_value_info("X", element, ["N", network.n_features])]
    graph = helper.make_graph(sink.nodes, name, inputs, _output_infos(network, element),
                              sink.initializers)
    opsets = [helper.make_opsetid("", opset)]
    # The lowest IR version that defines the opset: the runtimes that read the opset read it.
    model = helper.make_model(graph, opset_imports=opsets, producer_name="polynn",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    return model
