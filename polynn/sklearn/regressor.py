"""scikit-learn's ``MLPRegressor`` trained by polynn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from . import inputs
from ._base import EXTRA_CONSTRAINTS, BaseMLP


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multilayer perceptron regressor trained by polynn on any array API backend.

    Parameters and attributes as scikit-learn's ``MLPRegressor`` (``loss``: "squared_error" or
    "poisson"), plus ``backend``, ``device``, ``dtype``, ``stream``, ``transform_layer``,
    ``mesh``, ``dropout`` and per-layer ``activation`` as :class:`MLPClassifier` (which
    documents them).

    Parameters
    ----------
    transform_layer : int, default -1
        The hidden layer :meth:`transform` returns (-1: the last).
    mesh : None, int, "all", (data, model) pair, dict or jax.sharding.Mesh, default None
        JAX only: many devices, as ``polynn.MLP(mesh=...)``.
    dropout : float in [0, 1) or list of floats, default 0.0
        Inverted dropout on the hidden activations while training ("sgd", "adam").

    Examples
    --------
    The last hidden layer's activations as features for another model:

    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import make_pipeline
    >>> from polynn.sklearn import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(200, 2))
    >>> y = np.sin(X[:, 0]) + X[:, 1] ** 2
    >>> reg = MLPRegressor(hidden_layer_sizes=(32, 8), max_iter=500, random_state=0).fit(X, y)
    >>> reg.transform(X).shape, reg.set_params(transform_layer=0).transform(X).shape
    ((200, 8), (200, 32))
    >>> mlp = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0)
    >>> pipe = make_pipeline(mlp, Ridge()).fit(X, y)
    >>> pipe.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {**_SkMLPRegressor._parameter_constraints, **EXTRA_CONSTRAINTS}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, device=None, dtype=None, stream=False, transform_layer=-1,
                 mesh=None, dropout=0.0):
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
        self.loss = loss

    def _output(self):
        return "poisson" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "loss='poisson'.")
        Y = y.reshape(y.shape[0], -1)
        if not reset and hasattr(self, "n_outputs_") and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output(s) but the model was fit with "
                             f"{self.n_outputs_}")
        return X, Y

    def _target_matrix(self, Y):
        return np.asarray(Y, dtype=np.float64)

    def _model_targets(self, Y):
        return np.asarray(Y, dtype=np.float64)

    def _decode(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def _score_outputs(self, Z, y, sample_weight):
        pred = self._values(Z)
        if not np.isfinite(pred).all():
            return float("nan")
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def _values(self, Z):
        if self._output() == "poisson":
            Z = np.exp(Z)
        return Z.ravel() if Z.shape[1] == 1 else Z

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Fit the model to ``X`` and targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Real targets (non-negative for ``loss="poisson"``).
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.

        Returns
        -------
        MLPRegressor
            self, fitted.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing the current model (solver "sgd" or "adam").

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.

        Returns
        -------
        MLPRegressor
            self.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            ``(n_samples,)`` for one output, in the weights' dtype; with
            ``array_api_dispatch``, in the input's namespace and device.
        """
        check_is_fitted(self)
        target, X = inputs.host_input(X)
        return inputs.to_namespace(self._values(self._forward(X)), target)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The coefficient of determination R² on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            NumPy, pandas, a scipy sparse matrix, or (with ``array_api_dispatch``) a torch/JAX
            array.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples.

        Returns
        -------
        float
        """
        return self._score_on_host(RegressorMixin.score, X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # Poisson targets are counts: negative ones are refused (scikit-learn 1.9.1 accepts
        # them and trains to NaN), so check_estimator must feed non-negative targets.
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags
