"""What an exported graph computes, read once from a :class:`polynn.MLP` or an estimator.

A :class:`Network` is plain host data: the parameters, one hidden activation per hidden layer
(a list even when the model has one activation for all: per-layer activations need no other
change), the output/loss pair and, for an estimator's classifier, the labels it predicts.
Dropout, where a model has it, is absent here: inference never drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from polynn.backend import dtype_info
from polynn.model import MLP

# The output pairs whose graph has ``label`` and ``probabilities`` outputs (the others have
# ``variable``).
CLASSIFIER_OUTPUTS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class HiddenActivation:
    """One hidden layer's activation: polynn's name and leaky_relu's ``negative_slope``."""

    name: str
    negative_slope: float = 0.01


@dataclass(frozen=True)
class Network:
    """The inference of a trained network as host data.

    Attributes
    ----------
    params : tuple of (W, b)
        Host NumPy arrays, ``W`` ``(n_in, n_out)`` and ``b`` ``(n_out,)``, in ``dtype``.
    activations : tuple of HiddenActivation
        One per hidden layer (``len(params) - 1``).
    output : str
        polynn's output/loss pair: "softmax", "sigmoid", "identity" or "poisson".
    classes : numpy.ndarray or None
        The labels a classifier predicts, ``(n_classes,)``: an estimator's ``classes_``, or a
        ``pn.MLP``'s ``classes`` when set; None: labels are the class indices
        (``pn.MLP.predict``).
    dtype : numpy.dtype
        float32 or float64: the graph's input and output dtype.
    """

    params: tuple
    activations: tuple
    output: str
    classes: np.ndarray | None
    dtype: np.dtype

    @property
    def n_features(self) -> int:
        """The input width: ``W`` of the first layer has ``n_features`` rows."""
        return int(self.params[0][0].shape[0])

    @property
    def n_outputs(self) -> int:
        """The output units: ``W`` of the last layer has ``n_outputs`` columns."""
        return int(self.params[-1][0].shape[1])

    @property
    def multilabel(self) -> bool:
        """One sigmoid unit per label (k > 1): labels are a 0/1 indicator ``(m, k)``."""
        return self.output == "sigmoid" and self.n_outputs > 1

    @property
    def classifier(self) -> bool:
        """Whether the output is a classifier's (softmax or sigmoid)."""
        return self.output in CLASSIFIER_OUTPUTS


def _per_layer(value, n_hidden: int, what: str) -> list:
    """``value`` for each of ``n_hidden`` layers: a single value repeated, or a sequence of
    exactly ``n_hidden`` values."""
    if isinstance(value, (str, int, float)) or value is None:
        return [value] * n_hidden
    values = list(value)
    if len(values) != n_hidden:
        raise ValueError(f"the model has {n_hidden} hidden layer(s) but {len(values)} "
                         f"{what} values: {values!r}")
    return values


def hidden_activations(activation, negative_slope, n_hidden: int) -> tuple:
    """The hidden activations of a model, one :class:`HiddenActivation` per hidden layer, from
    its ``activation`` (a name, or one name per hidden layer) and ``negative_slope`` (a float,
    or one per hidden layer)."""
    names = _per_layer(activation, n_hidden, "activation")
    slopes = _per_layer(negative_slope, n_hidden, "negative_slope")
    return tuple(HiddenActivation(str(n), float(0.01 if s is None else s))
                 for n, s in zip(names, slopes))


def _float_dtype(dtype) -> np.dtype:
    """The host dtype of a dtype name or NumPy dtype: float32 or float64 (bfloat16 is exported
    as float32, its host storage dtype)."""
    name = dtype if isinstance(dtype, str) else str(np.dtype(dtype))
    try:
        return np.dtype(dtype_info(name).host)
    except ValueError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None


def _from_model(model: MLP, classes, dtype) -> Network:
    host = model.host_params()
    dtype = _float_dtype(model.dtype if dtype is None else dtype)
    params = tuple((np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype))
                   for W, b in host)
    activations = hidden_activations(model.activation, model.negative_slope, len(params) - 1)
    if classes is not None:
        classes = np.asarray(classes)
    return Network(params, activations, model.output, classes, dtype)


def network_of(model: Any, *, dtype: str | np.dtype[Any] | None = None) -> Network:
    """The :class:`Network` of a :class:`polynn.MLP` or a fitted ``polynn.sklearn`` estimator.

    Parameters
    ----------
    model : polynn.MLP or polynn.sklearn.MLPClassifier or polynn.sklearn.MLPRegressor
        An estimator must be fitted; its network is its ``model_`` (``coefs_`` /
        ``intercepts_`` with its activation and output), its labels its ``classes_``; a
        ``pn.MLP``'s labels are its ``classes`` when set, else the class indices.
    dtype : "float32", "float64", their NumPy dtype, or None
        The graph's float dtype; None: the model's own (float32 for bfloat16).

    Returns
    -------
    Network

    Raises
    ------
    TypeError
        ``model`` is neither.
    sklearn.exceptions.NotFittedError
        An estimator that is not fitted.
    """
    if isinstance(model, MLP):
        return _from_model(model, model.classes, dtype)  # None unless the model has classes
    if isinstance(getattr(type(model), "model_", None), property) and hasattr(model,
                                                                               "get_params"):
        # A polynn.sklearn estimator (duck-typed: exporting a pn.MLP needs no scikit-learn).
        mlp = model.model_  # raises NotFittedError when not fitted
        if not isinstance(mlp, MLP):
            raise TypeError(f"model_ of {type(model).__name__} is not a polynn.MLP")
        classes = getattr(model, "classes_", None) if mlp.output in CLASSIFIER_OUTPUTS else None
        return _from_model(mlp, classes, dtype)
    raise TypeError("model must be a polynn.MLP or a fitted polynn.sklearn estimator, got "
                    f"{type(model).__name__}")
