"""Export to ONNX: :func:`export` writes a :class:`polynn.MLP` or a fitted ``polynn.sklearn``
estimator as an ONNX model, and importing this package registers the estimators with skl2onnx
(``skl2onnx.to_onnx`` then converts them, inside a ``Pipeline`` too).

Needs the ``onnx`` extra: ``pip install "polynn[onnx]"`` (onnx, onnxruntime, skl2onnx). The
registration needs skl2onnx and scikit-learn; without them :func:`export` still works.

The graph (:mod:`polynn.onnx.graph`): input ``X`` ``(N, n_features)``, one ``Gemm`` per layer
and the hidden layers' activations, then the output pair's outputs, named as skl2onnx names
them: ``label`` and ``probabilities`` for softmax and sigmoid (binary or multilabel),
``variable`` for identity and poisson (``Exp``). Example::

    import numpy as np, onnxruntime as ort
    import polynn.onnx

    polynn.onnx.export(model, "model.onnx")
    session = ort.InferenceSession("model.onnx")
    label, proba = session.run(None, {"X": X.astype(np.float32)})

Modules: ``network`` (what the graph computes, read from a model or an estimator), ``graph``
(the nodes, and the standalone model), ``skl2onnx_converter`` (skl2onnx's shape calculator
and converter).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

try:
    import onnx  # noqa: F401  (only to name the extra when it is missing)
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('polynn.onnx needs the onnx package: pip install "polynn[onnx]"') from e

from polynn.io.safetensors_file import write_atomically
from polynn.onnx.graph import DEFAULT_OPSET, build_model
from polynn.onnx.network import Network, network_of

if TYPE_CHECKING:
    from polynn.model import MLP
    from polynn.sklearn import MLPClassifier, MLPRegressor


def export(model: MLP | MLPClassifier | MLPRegressor, path: str | os.PathLike[str] | None, *,
           dtype: str | None = None, opset: int = DEFAULT_OPSET,
           name: str = "polynn") -> onnx.ModelProto:
    """Write ``model`` as an ONNX model at ``path`` (atomically) and return it.

    Parameters
    ----------
    model : polynn.MLP, polynn.sklearn.MLPClassifier or polynn.sklearn.MLPRegressor
        The network to export (an estimator must be fitted). Inference only: dropout, if any,
        is left out.
    path : str or os.PathLike or None
        The ``.onnx`` file to write; None writes nothing.
    dtype : "float32", "float64" or None
        The graph's input, weight and output dtype; None: the model's. A bfloat16 model is
        exported as float32 (its weights exactly; the graph computes in float32, so its outputs
        differ from the model's bfloat16 computation by bfloat16's rounding, ~1e-3).
    opset : int, default 17
        The ONNX operator set (13 to the installed onnx's newest).
    name : str
        The graph's name.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` ``(N, n_features)``. Outputs: ``label`` and ``probabilities`` for a
        classifier: softmax: class indices (``pn.MLP``; its ``classes`` when set) or
        ``classes_`` (estimators) ``(N,)`` and ``(N, k)``; one sigmoid unit: labels ``(N,)``
        and ``(N, 2)``; multilabel: the int64 0/1 indicator ``(N, k)`` and ``(N, k)``.
        ``variable`` ``(N, k)`` for regression (poisson: the means ``exp(Z)``). They equal
        ``predict`` and ``predict_proba`` up to rounding (a regressor's ``predict`` is
        ``(N,)`` for one output).

    Raises
    ------
    TypeError
        ``model`` is not a polynn model or estimator.
    ValueError
        A ``dtype``, ``opset``, activation or output with no ONNX form here.
    sklearn.exceptions.NotFittedError
        An estimator that is not fitted.
    """
    proto = build_model(network_of(model, dtype=dtype), opset=opset, name=name)
    if path is not None:
        write_atomically(path, proto.SerializeToString())
    return proto


def _register_with_skl2onnx() -> bool:
    """Register the estimators' converter with skl2onnx; False when skl2onnx or
    scikit-learn is not installed (then only :func:`export` is available)."""
    if any(importlib.util.find_spec(name) is None for name in ("skl2onnx", "sklearn", "scipy")):
        return False
    from polynn.onnx.skl2onnx_converter import register

    register()
    return True


SKL2ONNX_REGISTERED = _register_with_skl2onnx()

__all__ = ["Network", "SKL2ONNX_REGISTERED", "export", "network_of"]
