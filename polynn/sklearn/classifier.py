"""scikit-learn's ``MLPClassifier`` trained by polynn."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from . import inputs
from ._base import EXTRA_CONSTRAINTS, BaseMLP
from .class_weight import PARTIAL_FIT_BALANCED, class_sample_weight


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multilayer perceptron classifier trained by polynn on any array API backend.

    Parameters and attributes are scikit-learn's ``MLPClassifier``'s, with the same meaning
    (package docstring), plus the ones below.

    Parameters
    ----------
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu"} or list of them
        As scikit-learn's (plus "leaky_relu"), or one name per hidden layer (passed to
        :class:`polynn.MLP`'s per-layer activations). The initial weights of a layer use the
        factor of the activation it feeds (the output layer: the last hidden one's).
    class_weight : None, "balanced", dict {label: weight} or list of dicts, default None
        scikit-learn's class weights (``sklearn.utils.class_weight.compute_class_weight``),
        multiplied with ``sample_weight``: a dict weighs each sample of a label (labels as in
        ``classes_``; those not named weigh 1); "balanced" weighs class c by ``n_samples /
        (n_classes * n_c)`` with sample-weighted counts. Multilabel ``y`` takes "balanced" or
        one dict ``{0: w0, 1: w1}`` per label. ``partial_fit`` is not available with
        "balanced". Training equals training with the equivalent ``sample_weight``; early
        stopping's validation score is weighted alike.
    backend : {"numpy", "jax", "torch", "cupy", "array_api_strict"} or None, default None
        The backend of :class:`polynn.MLP` (None: ``$POLYNN_BACKEND`` or "numpy"; JAX with
        ``mesh``; with ``array_api_dispatch``, the input's).
    device : str or None, default None
        The backend's device ("cpu", "gpu:0", "cuda:1", ...).
    dtype : {"float32", "float64", "bfloat16"} or None, default None
        The weights' dtype (None: float32 for float32 input, float64 otherwise).
    stream : bool, default False
        sgd/adam mini-batches move from host memory (a ``numpy.memmap`` included) to the device
        as they train (``MLP.fit(stream=True)``).
    transform_layer : int, default -1
        The hidden layer that :meth:`transform` returns, 0-based among the hidden layers,
        negative from the last: -1 is the last hidden layer (the features the output layer
        reads).
    mesh : None, int, "all", (data, model) pair, dict or jax.sharding.Mesh, default None
        JAX only: train and predict on many devices, as ``polynn.MLP(mesh=...)``: data-parallel
        over the "data" devices (see :func:`polynn.backend.resolve_mesh`); the results equal
        one device's up to rounding. The estimator pickles and clones with it (a ``Mesh``
        pickles as its axis sizes).
    dropout : float in [0, 1) or list of floats, default 0.0
        Inverted dropout on the hidden activations while training with "sgd" or "adam" (one
        rate, or one per hidden layer), passed to ``polynn.MLP(dropout=...)``; predictions,
        scores and ``transform`` never drop. "lbfgs" refuses a non-zero rate.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_, \
best_validation_score_, t_, n_iter_, n_layers_, n_outputs_, out_activation_, n_features_in_, \
feature_names_in_
        As scikit-learn's; ``coefs_`` / ``intercepts_`` are host arrays, assignable.
    model_ : polynn.MLP
        A new model holding the weights, built from the current parameters.

    Examples
    --------
    Class weights for imbalanced labels, and the last hidden layer as features:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from polynn.sklearn import MLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = (X[:, 0] + X[:, 1] ** 2 > 2).astype(int)  # about one sample in six is 1
    >>> clf = MLPClassifier((16, 8), class_weight="balanced", max_iter=400,
    ...                     random_state=0).fit(X, y)
    >>> clf.transform(X).shape  # the activations of the last hidden layer
    (300, 8)
    >>> clf.get_feature_names_out()[:3]
    array(['mlpclassifier0', 'mlpclassifier1', 'mlpclassifier2'], dtype=object)
    >>> pipe = make_pipeline(MLPClassifier((16,), max_iter=400, random_state=0),
    ...                      LogisticRegression()).fit(X, y)  # the MLP as a feature extractor
    >>> pipe.predict(X[:3]).shape
    (3,)

    On four devices with JAX (e.g. ``JAX_NUM_CPU_DEVICES=4`` before JAX starts):

    >>> MLPClassifier((64,), mesh=4).fit(X, y)  # doctest: +SKIP
    """

    _parameter_constraints = {**_SkMLPClassifier._parameter_constraints, **EXTRA_CONSTRAINTS,
                              "class_weight": [None, dict, list, StrOptions({"balanced"})]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, backend=None, device=None, dtype=None, stream=False,
                 transform_layer=-1, mesh=None, dropout=0.0):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, device=device, dtype=dtype, stream=stream,
            transform_layer=transform_layer, mesh=mesh, dropout=dropout)
        self.class_weight = class_weight

    def _class_weighted(self, Y, sample_weight, incremental):
        """``sample_weight`` times the class weights of each sample's label (see
        :mod:`polynn.sklearn.class_weight`)."""
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        return class_sample_weight(self.class_weight, self.classes_, Y, multilabel,
                                   sample_weight)

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

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Fit the model to ``X`` and labels ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels of any type (``classes_`` are their sorted values), or a multilabel 0/1
            indicator.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.

        Returns
        -------
        MLPClassifier
            self, fitted.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        # "balanced" needs the data's class frequencies, which one batch does not have: no
        # partial_fit then (as SGDClassifier refuses it), so tools that probe for it skip it.
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise AttributeError(PARTIAL_FIT_BALANCED)
        return super()._check_solver()

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing the current model (solver "sgd" or "adam";
        not with ``class_weight="balanced"``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or a multilabel 0/1 indicator.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.
        classes : array-like of shape (n_classes,), optional
            Every label that will ever occur; required on the first call.

        Returns
        -------
        MLPClassifier
            self.
        """
        (y,) = inputs.host_data(y)
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predicted labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_`` (multilabel: a 0/1 indicator); with
            ``array_api_dispatch``, in the input's namespace and device.
        """
        check_is_fitted(self)
        target, X = inputs.host_input(X)
        return inputs.to_namespace(self._labels(self._forward(X)), target)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            In ``classes_`` order and the weights' dtype; binary: columns
            [P(classes_[0]), P(classes_[1])].
        """
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

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy (multilabel: subset accuracy) on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            True labels.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples.

        Returns
        -------
        float
        """
        return self._score_on_host(ClassifierMixin.score, X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
