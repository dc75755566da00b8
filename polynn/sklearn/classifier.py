"""scikit-learn's ``MLPClassifier`` trained by polynn."""

from __future__ import annotations

import numpy as np
import scipy.special
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from . import inputs
from ._base import EXTRA_CONSTRAINTS, BaseMLP


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multilayer perceptron classifier trained by polynn on any array API backend.

    Parameters and attributes are scikit-learn's ``MLPClassifier``'s, with the same meaning
    (package docstring), plus ``backend`` ("numpy", "jax", "torch", "cupy",
    "array_api_strict"; default ``$POLYNN_BACKEND`` or "numpy"), ``device`` and ``dtype``
    (None: float32 for float32 input, float64 otherwise; or "float32", "float64", "bfloat16"),
    passed to :class:`polynn.MLP`, and ``stream`` (True: sgd/adam mini-batches move from host
    memory, a ``numpy.memmap`` included, to the device as they train; ``MLP.fit(stream=True)``);
    ``activation`` also takes "leaky_relu".

    Attributes: ``classes_``, ``coefs_`` / ``intercepts_`` (host arrays, assignable),
    ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``t_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_``, ``n_features_in_``, ``feature_names_in_`` as scikit-learn; ``model_``
    a :class:`polynn.MLP` holding the weights.
    """

    _parameter_constraints = {**_SkMLPClassifier._parameter_constraints, **EXTRA_CONSTRAINTS}

    def _output(self):
        binarizer = self.__dict__.get("_label_binarizer")
        if binarizer is not None and binarizer.y_type_ == "multiclass":
            return "softmax"
        if binarizer is None and getattr(self, "out_activation_", None) == "softmax":
            return "softmax"
        return "sigmoid"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's rules: (re)define classes_ on a fresh fit, check them otherwise.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _target_matrix(self, Y):
        return np.asarray(Y, dtype=np.float64)

    def _model_targets(self, Y):
        """y as polynn's MLP.fit takes it: class codes (softmax), 0/1 (one logistic unit), the
        0/1 indicator (multilabel)."""
        if self._output() == "softmax":
            return np.argmax(Y, axis=1)
        if Y.shape[1] > 1:
            return Y.astype(np.int64)
        return Y[:, 0].astype(np.int64)

    def _decode(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _score_outputs(self, Z, y, sample_weight):
        return float(accuracy_score(y, self._labels(Z), sample_weight=sample_weight))

    def _labels(self, Z):
        proba = self._probabilities(Z)
        if self.n_outputs_ == 1:
            proba = proba.ravel()
        return self._label_binarizer.inverse_transform(proba)

    def _probabilities(self, Z):
        """Output units' probabilities ``(m, n_outputs_)`` from host ``Z``, in Z's dtype."""
        if self._output() == "softmax":
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            return E / E.sum(axis=1, keepdims=True)
        return scipy.special.expit(Z)  # exact tails: log(predict_proba) stays finite longer

    def _host_proba(self, X):
        proba = self._probabilities(self._forward(X))
        if self.n_outputs_ == 1:
            proba = proba.ravel()
            return np.vstack([1 - proba, proba]).T
        return proba

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` ``(n_samples, n_features)`` and labels ``y``; returns self.
        ``sample_weight`` ``(n_samples,)`` weights each sample's loss."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (every label that will ever occur) is required
        on the first call."""
        (y,) = inputs.host_data(y)
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted labels ``(n_samples,)`` from ``classes_`` (multilabel: a 0/1 indicator
        ``(n_samples, n_classes)``)."""
        check_is_fitted(self)
        target, X = inputs.host_input(X)
        return inputs.to_namespace(self._labels(self._forward(X)), target)

    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)`` in ``classes_`` order, in the
        weights' dtype; binary: columns [P(classes_[0]), P(classes_[1])]."""
        check_is_fitted(self)
        target, X = inputs.host_input(X)
        return inputs.to_namespace(self._host_proba(X), target)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        check_is_fitted(self)
        target, X = inputs.host_input(X)
        proba = self._host_proba(X)
        with np.errstate(divide="ignore"):
            return inputs.to_namespace(np.log(proba, out=proba), target)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (multilabel: subset accuracy) on ``(X, y)``."""
        return self._score_on_host(ClassifierMixin.score, X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
