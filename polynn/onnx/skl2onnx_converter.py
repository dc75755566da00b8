"""polynn's estimators for skl2onnx: a shape calculator and a converter, registered with
``skl2onnx.update_registered_converter`` (by :func:`register`, which ``import polynn.onnx``
calls), so that ``skl2onnx.to_onnx`` converts :class:`polynn.sklearn.MLPClassifier` and
:class:`polynn.sklearn.MLPRegressor` alone or inside a ``Pipeline``.

The nodes are those of :func:`polynn.onnx.export` (:mod:`polynn.onnx.graph`), emitted into
skl2onnx's container in the dtype of the estimator's input variable (double for a
``DoubleTensorType``, else float; integer inputs are cast). Outputs follow skl2onnx's
conventions: classifiers ``label`` (``classes_``: int64 for integer or boolean classes, string
for strings; the 0/1 indicator ``(N, k)`` for multilabel) and ``probabilities`` ``(N,
n_classes)``, which skl2onnx's classifier parser wraps in a ZipMap unless
``options={"zipmap": False}`` (options ``zipmap`` and ``nocl`` are registered); regressors
``variable`` ``(N, n_outputs)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
from skl2onnx.common.utils_classifier import get_label_classes

from polynn.onnx.graph import emit_outputs, emit_scores
from polynn.onnx.network import network_of
from polynn.sklearn import MLPClassifier, MLPRegressor

ALIASES: dict[type, str] = {MLPClassifier: "PolynnMLPClassifier",
                            MLPRegressor: "PolynnMLPRegressor"}
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False]}


class ContainerSink:
    """:class:`polynn.onnx.graph.Sink` over skl2onnx's scope (unique names) and container."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container

    def constant(self, hint: str, value: np.ndarray) -> str:
        name = self.scope.get_unique_variable_name(hint)
        if value.dtype == object:
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape),
                                           [str(s).encode("utf-8") for s in value.ravel()])
        else:
            self.container.add_initializer(name, None, None, numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list, hint: str, output: str | None = None,
             **attrs) -> str:
        out = output if output is not None else self.scope.get_unique_variable_name(hint)
        self.container.add_node(op, list(inputs), [out],
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return out


def _float_type(operator):
    """The float tensor type the estimator computes in: its input's when double, else float."""
    return DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) \
        else FloatTensorType


def _labels(scope, estimator) -> np.ndarray:
    """The labels as skl2onnx sees them (``nocl`` gives the indices), as int64 or strings.

    Raises
    ------
    ValueError
        Float classes that are not whole numbers (skl2onnx's labels are integers or strings).
    """
    classes = np.asarray(get_label_classes(scope, estimator))
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes) & (classes == np.round(classes))):
            raise ValueError(f"classes_ {classes!r}: skl2onnx needs integer or string class "
                             "labels")
        return classes.astype(np.int64)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    return np.array([str(c) for c in classes], dtype=object)


def _multilabel(estimator) -> bool:
    return estimator.out_activation_ == "logistic" and estimator.n_outputs_ > 1


def calculate_output_shapes(operator) -> None:
    """skl2onnx's shape calculator: one float or integer input ``(N, n_features)``; a
    classifier's ``label`` and ``probabilities``, or a regressor's ``variable``."""
    estimator = operator.raw_operator
    classifier = isinstance(estimator, MLPClassifier)
    check_input_and_output_numbers(operator, input_count_range=1,
                                   output_count_range=2 if classifier else 1)
    check_input_and_output_types(
        operator, good_input_types=[FloatTensorType, DoubleTensorType, Int64TensorType])
    N = operator.inputs[0].get_first_dimension()
    element = _float_type(operator)
    if not classifier:
        operator.outputs[0].type = element([N, estimator.n_outputs_])
        return
    if _multilabel(estimator):
        operator.outputs[0].type = Int64TensorType([N, estimator.n_outputs_])
    else:
        label = StringTensorType if _labels(operator.scope_inst, estimator).dtype == object \
            else Int64TensorType
        operator.outputs[0].type = label([N])
    operator.outputs[1].type = element([N, len(estimator.classes_)])


def convert(scope, operator, container) -> None:
    """skl2onnx's converter: the nodes of :mod:`polynn.onnx.graph` for the estimator."""
    estimator = operator.raw_operator
    element = _float_type(operator)
    dtype = np.dtype("float64" if element is DoubleTensorType else "float32")
    network = network_of(estimator, dtype=dtype)
    if network.classifier and not network.multilabel:
        network = dataclasses.replace(network, classes=_labels(scope, estimator))
    sink = ContainerSink(scope, container)
    X = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, element):
        proto = TensorProto.DOUBLE if element is DoubleTensorType else TensorProto.FLOAT
        X = sink.node("Cast", [X], "cast_input", to=proto)
    Z = emit_scores(sink, X, network, dtype)
    names = ({"label": operator.outputs[0].full_name,
              "probabilities": operator.outputs[1].full_name} if network.classifier
             else {"variable": operator.outputs[0].full_name})
    emit_outputs(sink, Z, network, dtype, names)


def register() -> None:
    """Register both estimators with skl2onnx (again is harmless: it overwrites)."""
    for estimator, alias in ALIASES.items():
        options = CLASSIFIER_OPTIONS if estimator is MLPClassifier else None
        update_registered_converter(estimator, alias, calculate_output_shapes, convert,
                                    options=options)
