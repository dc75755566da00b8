"""The estimator shared by :class:`MLPClassifier` and :class:`MLPRegressor`: parameters, the
weights and the backend model derived from them, ``fit``'s checks, prediction, pickling."""

from __future__ import annotations

import numbers
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from polynn.backend import BACKENDS, DTYPES, dtype_info, mesh_spec

from . import backend_model, inputs
from .backend_model import ModelCache
from .features import HiddenFeatures
from .lbfgs import fit_lbfgs, objective
from .stochastic import STOCHASTIC_SOLVERS, fit_stochastic

# scikit-learn's activation names -> polynn's ("leaky_relu" is polynn-only).
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "leaky_relu": "leaky_relu"}

# The parameters polynn adds to scikit-learn's ``_parameter_constraints`` (the one table the
# estimators validate their parameters with, at fit).
EXTRA_CONSTRAINTS = {
    # One name, or one per hidden layer (polynn.MLP's per-layer activations).
    "activation": [StrOptions(set(ACTIVATIONS)), list, tuple],
    "backend": [None, StrOptions(set(BACKENDS))],
    "device": "no_validation",
    "dtype": [None, StrOptions(set(DTYPES))],
    "stream": ["boolean"],
    "transform_layer": [Interval(Integral, None, None, closed="neither")],
    "mesh": "no_validation",  # polynn.backend.resolve_mesh checks it when the model is built
    # A rate in [0, 1) for every hidden layer, or one per hidden layer (polynn.MLP checks it).
    "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
}

# polynn's output/loss pair -> scikit-learn's ``out_activation_``.
OUT_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity",
                   "poisson": "exp"}
# polynn's objective divided by scikit-learn's, per output pair, for k outputs (the package
# docstring explains each).
LOSS_SCALES = {"softmax": lambda k: 1.0, "sigmoid": lambda k: 1.0 / k,
               "identity": lambda k: 2.0 / k, "poisson": lambda k: 1.0 / k}


class BaseMLP(HiddenFeatures, BaseEstimator):
    """Parameters, training and prediction shared by the classifier and the regressor.

    Subclass hooks: ``_validate_input(X, y, incremental, reset) -> (X, Y (m, k))``;
    ``_output()`` -> polynn's output name; ``_model_targets(Y)`` -> y for ``MLP.fit``;
    ``_target_matrix(Y)`` -> float64 ``(m, k)`` for L-BFGS; ``_decode(Y)`` -> labels or targets;
    ``_score_outputs(Z, y, sample_weight)`` -> float."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, device=None, dtype=None, stream=False, transform_layer=-1,
                 mesh=None, dropout=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.stream = stream
        self.transform_layer = transform_layer
        self.mesh = mesh
        self.dropout = dropout

    # -- parameters ---------------------------------------------------------------------------
    def _loss_scale(self):
        """polynn's objective divided by scikit-learn's (package docstring)."""
        return LOSS_SCALES[self._output()](self.n_outputs_)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold integers, got {sizes}.")
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", stacklevel=5)
        return int(np.clip(self.batch_size, 1, n))

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # -- the weights: host lists are the truth, the backend model is derived -----------------
    def _weights_dtype(self, X_dtype=None):
        """The dtype name of the weights: after the first fit, the weights' own; else ``dtype``
        if given, float32 for float32 input and float64 otherwise (scikit-learn)."""
        if X_dtype is None and self.__dict__.get("_dtype_name"):
            return self._dtype_name
        if self.dtype is not None:
            return self.dtype
        if X_dtype is None:
            X_dtype = np.asarray(self.coefs_[0]).dtype
        return "float32" if X_dtype == np.float32 else "float64"

    def _host_params(self):
        """``coefs_`` / ``intercepts_`` as a tuple of host ``(W, b)``."""
        return backend_model.host_params(self.coefs_, self.intercepts_)

    def _placement(self):
        """``(backend, device, mesh)`` the model computes on: the parameters when ``backend``
        or ``mesh`` is given, else the input's of the last fit with ``array_api_dispatch`` (or
        the default)."""
        if (self.backend is None and self.mesh is None
                and self.__dict__.get("_dispatched_on") is not None):
            return (*self._dispatched_on, None)
        return self.backend, self.device, self.mesh

    def _activations(self):
        """polynn's activation: one name, or a tuple of names (one per hidden layer)."""
        names = self.activation
        if isinstance(names, str):
            return ACTIVATIONS[names]
        unknown = [a for a in names if not isinstance(a, str) or a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"activation={list(names)!r}: each entry must be one of "
                             f"{sorted(ACTIVATIONS)}; got {unknown!r}")
        return tuple(ACTIVATIONS[a] for a in names)

    def _layer_activation(self, layer):
        """scikit-learn's activation name that layer ``layer`` (0-based over all layers) feeds:
        hidden layer ``layer``'s; the output layer takes the last hidden layer's (as
        scikit-learn's one activation is used for every layer's initial weights)."""
        if isinstance(self.activation, str):
            return self.activation
        return self.activation[min(layer, len(self.activation) - 1)] if self.activation else ""

    def _model_key(self, params):
        backend, device, mesh = self._placement()
        dropout = self.dropout if isinstance(self.dropout, numbers.Real) else tuple(self.dropout)
        return backend_model.model_key(backend, device, mesh, self._weights_dtype(),
                                       self._activations(), dropout, self._output(), params)

    def _model_for_weights(self):
        """The backend model derived from the current parameters and ``coefs_`` /
        ``intercepts_`` (the cached one when none of them changed)."""
        params = self._host_params()
        cache = self.__dict__.get("_backend_models") or ModelCache()
        return cache.get(self._model_key(params), params)

    def _store_weights(self, model):
        """The trained ``model``'s parameters -> ``coefs_`` / ``intercepts_`` (host copies);
        the cache learns that ``model`` holds them."""
        dtype = self._weights_dtype()
        params = tuple((inputs.host_array(W, dtype), inputs.host_array(b, dtype))
                       for W, b in model.params)
        self.coefs_ = [W for W, _ in params]
        self.intercepts_ = [b for _, b in params]
        self._backend_models.remember(self._model_key(params), model, params)

    @property
    def model_(self):
        """A new :class:`polynn.MLP` holding ``coefs_`` / ``intercepts_``, built from the
        current parameters (changing it does not change the estimator)."""
        check_is_fitted(self, "coefs_")
        params = self._host_params()
        return backend_model.build_model(self._model_key(params), params)

    # -- pickling: host data and configuration only ------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_backend_models", None)  # derived, and holds backend objects
        if not isinstance(self.mesh, (type(None), numbers.Integral, str, tuple, list, dict)):
            # A jax.sharding.Mesh holds devices, which do not pickle: its axis sizes do, and
            # rebuild an equal mesh on the devices of the process that unpickles it.
            state["mesh"] = mesh_spec(self.mesh)
        return state

    def __setstate__(self, state):
        # Pickles of polynn <= 0.x held the backend model itself: it is derived now.
        for legacy in ("_model", "_snapshot", "_model_on", "_train_on"):
            state.pop(legacy, None)
        super().__setstate__(state)
        if "coefs_" in state:
            self._backend_models = ModelCache()

    # -- training -----------------------------------------------------------------------------
    def _initialize(self, Y, layer_units, dtype, rs):
        """scikit-learn's fresh start: its attributes, and the initial weights drawn from
        ``rs`` per layer (weights then biases, ``U(-a, a)``) in float64, cast to ``dtype``."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = OUT_ACTIVATIONS[self._output()]
        self._dtype_name = dtype
        host_dtype = dtype_info(dtype).host
        self.coefs_, self.intercepts_ = [], []
        for layer, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            factor = 2.0 if self._layer_activation(layer) == "logistic" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out))
            b = rs.uniform(-bound, bound, fan_out)
            self.coefs_.append(W.astype(host_dtype, copy=False))
            self.intercepts_.append(b.astype(host_dtype, copy=False))
        self._training_state = None
        self._best_coefs = [W.copy() for W in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _host_inputs(self, X, y, sample_weight):
        """Host ``(X, y, sample_weight)``, and where ``X`` keeps training with scikit-learn's
        ``array_api_dispatch``: an array of another library trains on its own backend and
        device (validated on a host copy); ``y`` and the weights are always host data."""
        target = inputs.dispatched_input(X)
        if target is not None and self.backend is not None and self.backend != target[0]:
            raise ValueError(f"X is a {target[0]} array but backend={self.backend!r}: leave "
                             "backend=None to train on the input's backend")
        self._dispatched_on = target
        return inputs.host_data(X, y, sample_weight)

    def _checked_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        if not sample_weight.sum() > 0:
            raise ValueError("Sample weights must contain at least one non-zero number (their "
                             "sum must be positive).")
        return sample_weight

    def _class_weighted(self, Y, sample_weight, incremental):
        """``sample_weight`` times the classifier's class weights (the regressor has none)."""
        return sample_weight

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        X, y, sample_weight = self._host_inputs(X, y, sample_weight)
        hidden = self._hidden_sizes()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        X = inputs.dense(X, "X")
        sample_weight = self._checked_sample_weight(sample_weight, X)
        sample_weight = self._class_weighted(Y, sample_weight, incremental)
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1], *hidden, self.n_outputs_]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, self._weights_dtype(X.dtype), rs)
        elif [W.shape for W in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"the network of coefs_ ({[W.shape for W in self.coefs_]}) does "
                             f"not match hidden_layer_sizes={self.hidden_layer_sizes} for "
                             f"{X.shape[1]} features and {self.n_outputs_} outputs")
        if "_backend_models" not in self.__dict__:
            self._backend_models = ModelCache()
        if self.solver == "lbfgs":
            fit_lbfgs(self, X, Y, sample_weight)
        else:
            fit_stochastic(self, X, Y, sample_weight, incremental, rs)
        return self

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *unused_buffers):
        """scikit-learn's private L-BFGS objective, same signature: the loss and its flat
        gradient at ``packed_coef_inter`` for targets ``y`` already binarized ``(m, k)``."""
        Y = np.asarray(y, dtype=np.float64)
        Y = Y.reshape(Y.shape[0], -1)
        f = objective(self, self._model_for_weights(), inputs.dense(X, "X"), Y, sample_weight)
        return f(packed_coef_inter)

    # -- prediction ---------------------------------------------------------------------------
    def _forward(self, X):
        """The output layer's pre-activation ``(m, k)`` as a host array of the weights' host
        dtype; sparse ``X`` densified in blocks of rows."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32))
        model = self._model_for_weights()
        dtype = self._weights_dtype()
        return np.concatenate([inputs.host_array(model.forward(block), dtype)
                               for block in inputs.dense_blocks(X)], axis=0)

    def _score_on_host(self, mixin_score, X, y, sample_weight):
        """scikit-learn's score (accuracy / R²) as a float; arrays of another library are scored
        on host copies, since some of scikit-learn's metrics write into their inputs, which JAX
        arrays refuse."""
        X, y, sample_weight = inputs.host_data(X, y, sample_weight)
        return mixin_score(self, X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

