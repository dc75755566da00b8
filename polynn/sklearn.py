"""scikit-learn estimators backed by polynn: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the same
parameters with the same meaning (checked by running scikit-learn's own ``test_mlp.py`` against
them, see ``tests/sklearn_conformance/run.py``), the same fitted attributes, the same initial
weights from the same ``random_state``, plus ``backend``, ``device`` and ``dtype`` to train on
any polynn backend. How scikit-learn's definitions map onto polynn's math (scikit-learn 1.9's
``neural_network/_multilayer_perceptron.py``, ``_base.py`` and ``_stochastic_optimizers.py``):

- **Objective.** scikit-learn's batch gradient is ``(A.T @ delta + alpha * W) / n_batch`` with
  ``delta = output - target``: the gradient of its loss (mean over rows, *summed* over output
  units) plus ``0.5 * alpha / n_batch * sum ||W||^2``. polynn's losses are means over all
  ``m * k`` elements (softmax cross-entropy: over rows) plus ``0.5 * l2 * sum ||W||^2``, so
  polynn's objective is ``s`` times scikit-learn's, with ``s = 1`` (softmax), ``1 / k``
  (logistic units, binary and multilabel), ``2 / k`` (squared error: polynn's MSE has no 0.5)
  and ``1 / k`` (Poisson). The estimator trains polynn's objective with ``l2 = s * alpha /
  batch_size`` and a learning rate ``learning_rate_init / s`` for "sgd" (Adam gets
  ``learning_rate_init`` and ``epsilon * s``): every update equals scikit-learn's. The loss
  reported (``loss_``, ``loss_curve_``) is polynn's divided by ``s``: scikit-learn's value
  (for squared error with k > 1 outputs scikit-learn reports the *mean* over outputs while its
  gradient is that of the sum; polynn reports the value whose gradient it follows, k/1 times
  larger). ``sample_weight`` makes each batch's data loss ``Σ wᵢ lᵢ / Σ wᵢ`` and divides the
  penalty by the batch's mean weight (``MLP.fit(l2_per_weight=True)``), so alpha is divided by
  the batch's sum of weights, as in scikit-learn. Differences that stay: scikit-learn divides
  alpha by the size of each batch, polynn by ``batch_size`` for every batch, so the last,
  shorter batch of an epoch is regularised a little less here; with weights and mini-batches
  ``loss_curve_`` averages the batches by their weight sums (scikit-learn: by their sizes).
- **solver.** "sgd" is scikit-learn's momentum SGD, ``v <- momentum * v - lr * grad`` then
  ``W <- W + v`` (Nesterov: ``W <- W + momentum * v - lr * grad``), as
  :class:`polynn.nn.optim.VelocityMomentum`; "adam" is polynn's Adam with ``beta_1``,
  ``beta_2``, ``epsilon``; "lbfgs" runs ``scipy.optimize.minimize(method="L-BFGS-B")`` on the
  host (``max_iter``, ``max_fun``, ``gtol=tol``), each evaluation moving one flat parameter
  vector to the backend and the flat gradient back (polynn's row-layout ``value_and_grad``,
  compiled on JAX).
- **learning_rate** (sgd only, as in scikit-learn): "invscaling" is ``learning_rate_init /
  (t_ + 1) ** power_t`` with ``t_`` the samples seen at the end of the previous epoch (the first
  epoch of every ``fit`` uses ``learning_rate_init``); "adaptive" divides the rate by 5 each time
  ``n_iter_no_change`` epochs fail to improve by ``tol`` and stops once it is <= 1e-6.
- **Stopping** as scikit-learn: an epoch whose training loss is not below ``best_loss_ - tol``
  (or, with ``early_stopping``, whose validation score is not above ``best_validation_score_ +
  tol``) counts as no improvement; more than ``n_iter_no_change`` in a row stop training
  (``np.inf`` never stops). ``early_stopping`` holds out ``validation_fraction`` with
  ``random_state`` (stratified for single-output classifiers) and restores the best weights.
  ``partial_fit`` always runs one epoch (``n_iter_`` is 1 after it, ``t_`` and ``loss_curve_``
  accumulate) and refuses ``early_stopping=True``. One ``fit`` is one ``MLP.fit`` call whose
  per-epoch ``callback`` applies these rules (restarted, optimizer state kept, only when the
  "adaptive" rate changes).
  A loss that becomes NaN or infinite ends training: without early stopping it raises
  scikit-learn's ValueError ("Solver produced non-finite parameter weights...") and keeps the
  last finite weights; with early stopping the epoch scores NaN and the best weights are
  restored. Ctrl-C stops training after the current step with consistent weights and warns
  "Training interrupted by user." (the interrupted epoch is not counted; L-BFGS keeps the best
  parameters it evaluated).
- **Initialisation** exactly as scikit-learn: ``check_random_state(random_state)`` draws, per
  layer, the weights and then the biases from ``U(-a, a)``, ``a = sqrt(f / (fan_in +
  fan_out))`` with ``f = 2`` for "logistic" and 6 otherwise, in float64, cast to the weights'
  dtype. The same generator then draws the early-stopping split, and a seed for polynn's
  shuffling (scikit-learn shuffles with the generator itself, so mini-batch orders differ).
- **Weights** ``coefs_`` / ``intercepts_`` are lists of host NumPy arrays and are the model's
  truth: assign them or edit them in place, and the next ``predict`` / ``fit`` uses the new
  values (the estimator compares them with what the backend holds before each use). They are
  float32 for float32 input and float64 otherwise (``dtype=`` overrides; float64 on JAX turns on
  x64 mode), and predictions come in that dtype, as in scikit-learn.
- **Targets.** Labels go through scikit-learn's ``LabelBinarizer``: two classes train one
  logistic unit, more a softmax layer, a 2-D 0/1 indicator (multilabel) one logistic unit per
  label with binary cross-entropy. The regressor's ``loss="poisson"`` uses polynn's Poisson pair
  (exponential output, half Poisson deviance).
- **Inputs.** Sparse ``X`` is densified for training (refused above ``MAX_DENSE_ELEMENTS``, with
  a message) and in row blocks for prediction. With ``sklearn.set_config(array_api_dispatch=
  True)``, PyTorch / JAX / CuPy / array-api-strict arrays train on their own backend and device
  (validated on a host copy) and predictions come back in the input's namespace and device
  (non-numeric labels stay NumPy); without dispatch every output is NumPy.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.special
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from polynn.backend import BACKENDS, _device_spec, get_backend, to_host
from polynn.model import MLP
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import get_activation
from polynn.nn.optim import Adam, Constant, VelocityMomentum

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> polynn's ("leaky_relu" is polynn-only).
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "leaky_relu": "leaky_relu"}
STOCHASTIC_SOLVERS = ("sgd", "adam")
# Sparse X is densified for training; above this many elements it is refused (2 GiB of float64).
MAX_DENSE_ELEMENTS = 2**28
PREDICT_CHUNK_ROWS = 4096  # sparse X is densified this many rows at a time for predict

_EXTRA_CONSTRAINTS = {
    "activation": [StrOptions(set(ACTIVATIONS))],
    "backend": [None, StrOptions(set(BACKENDS))],
    "device": "no_validation",
    "dtype": [None, StrOptions({"float32", "float64", "bfloat16"})],
    "stream": ["boolean"],
}


@dataclass(frozen=True)
class SklearnInvScaling:
    """scikit-learn's "invscaling" rate as a polynn schedule of the step count ``t`` within one
    ``fit``: ``lr`` during the first epoch, then ``lr / (t0 + epoch * n_samples + 1) ** power``
    (``t0``: samples seen before this fit). Frozen (hashable) so JAX reuses the compiled loop;
    written with integer operators that accept a traced ``t``."""

    lr: float
    power: float
    n_samples: int
    steps_per_epoch: int
    t0: int = 0

    def __call__(self, t):
        epoch = t // self.steps_per_epoch
        after_first = 1 - 1 // (epoch + 1)  # 0 in the first epoch, 1 afterwards
        seen = after_first * (self.t0 + epoch * self.n_samples)
        return self.lr / (seen + 1.0) ** self.power


class _Solver:
    """The learning-rate bookkeeping of scikit-learn's stochastic optimizers, kept as
    ``estimator._optimizer`` (``learning_rate`` is the current rate, as in scikit-learn). The
    optimizer state itself (velocities, moments) lives in the polynn model."""

    def __init__(self, solver, learning_rate_init, lr_schedule, power_t):
        self.solver = solver
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule if solver == "sgd" else "constant"
        self.power_t = power_t

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False


def _pack(coefs, intercepts):
    """scikit-learn's flat parameter vector: every W raveled, then every b."""
    return np.hstack([a.ravel() for a in list(coefs) + list(intercepts)])


class _BaseMLP(BaseEstimator):
    """Parameters, training and prediction shared by the classifier and the regressor."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, device=None, dtype=None, stream=False):
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

    # -- subclass hooks -----------------------------------------------------------------------
    # _validate_input(X, y, incremental, reset) -> (X, Y (m, k)); _output() -> polynn output
    # name; _model_targets(Y) -> y for polynn's MLP.fit; _score(X, y, sample_weight) -> float.

    def _loss_scale(self):
        """polynn's objective divided by scikit-learn's (module docstring)."""
        output, k = self._output(), self.n_outputs_
        return {"softmax": 1.0, "sigmoid": 1.0 / k, "identity": 2.0 / k,
                "poisson": 1.0 / k}[output]

    # -- parameters ---------------------------------------------------------------------------
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
                          "to be clipped", stacklevel=4)
        return int(np.clip(self.batch_size, 1, n))

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # -- the weights: host lists are the truth, the polynn model follows them ----------------
    def _weights_dtype(self, X_dtype=None):
        """The dtype name of the weights: ``dtype`` if given, else float32 for float32 input
        and float64 otherwise (scikit-learn); after the first fit, the weights' own dtype."""
        if X_dtype is None and self.__dict__.get("_dtype_name"):
            return self._dtype_name
        if self.dtype is not None:
            return self.dtype
        if X_dtype is None:
            X_dtype = np.asarray(self.coefs_[0]).dtype
        return "float32" if X_dtype == np.float32 else "float64"

    def _host_params(self):
        """``coefs_`` / ``intercepts_`` as a tuple of host ``(W, b)``, checked to chain."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if len(coefs) != len(intercepts) or not coefs:
            raise ValueError(f"coefs_ has {len(coefs)} and intercepts_ {len(intercepts)} "
                             "layers: they must be equal and at least 1")
        params = []
        for layer, (W, b) in enumerate(zip(coefs, intercepts)):
            W, b = np.asarray(W), np.asarray(b)
            if W.ndim != 2 or b.shape != (W.shape[1],) or (
                    params and W.shape[0] != params[-1][0].shape[1]):
                raise ValueError(f"layer {layer}: coefs_ {W.shape} and intercepts_ {b.shape} do "
                                 "not chain: expected W (n_in, n_out) and b (n_out,)")
            params.append((W, b))
        return tuple(params)

    def _model_for_weights(self):
        """The polynn model holding exactly ``coefs_`` / ``intercepts_``: the cached one when
        the host arrays still equal the snapshot taken when it was filled, else refilled (its
        optimizer state is kept, as scikit-learn keeps its velocities)."""
        host = self._host_params()
        model = self.__dict__.get("_model")
        snapshot = self.__dict__.get("_snapshot")
        if model is not None and snapshot is not None and len(snapshot) == len(host) and all(
                W.shape == sW.shape and b.shape == sb.shape and np.array_equal(W, sW)
                and np.array_equal(b, sb) for (W, b), (sW, sb) in zip(host, snapshot)):
            return model
        sizes = [host[0][0].shape[0]] + [W.shape[1] for W, _ in host]
        dtype = self._weights_dtype()
        backend, device = self.__dict__.get("_train_on") or (self.backend, self.device)
        if (model is None or model.layer_sizes != sizes or model.output != self._output()
                or model.dtype != dtype or self.__dict__.get("_model_on") != (backend, device)):
            model = MLP.from_params(host, activation=ACTIVATIONS[self.activation],
                                    output=self._output(), backend=backend, device=device,
                                    dtype=dtype)
            self._model_on = (backend, device)
        else:
            model.params = tuple((model.backend.asarray(W, dtype), model.backend.asarray(b, dtype))
                                 for W, b in host)
        self._model = model
        self._snapshot = tuple((W.copy(), b.copy()) for W, b in host)
        return model

    def _store_weights(self, params):
        """Backend parameters -> ``coefs_`` / ``intercepts_`` (host copies) and the model."""
        host = [(_host_array(W), _host_array(b)) for W, b in params]
        self.coefs_ = [W for W, _ in host]
        self.intercepts_ = [b for _, b in host]
        self._model.params = params
        self._snapshot = tuple((W.copy(), b.copy()) for W, b in host)

    @property
    def model_(self):
        """The fitted :class:`polynn.MLP` holding ``coefs_`` / ``intercepts_``."""
        check_is_fitted(self, "coefs_")
        return self._model_for_weights()

    # -- training -----------------------------------------------------------------------------
    def _initialize(self, Y, layer_units, dtype, rs):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = {"softmax": "softmax", "sigmoid": "logistic",
                                "identity": "identity", "poisson": "exp"}[self._output()]
        self._dtype_name = dtype
        host_dtype = np.float32 if dtype == "bfloat16" else dtype
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out))
            b = rs.uniform(-bound, bound, fan_out)
            self.coefs_.append(W.astype(host_dtype, copy=False))
            self.intercepts_.append(b.astype(host_dtype, copy=False))
        self._model = None
        self._best_coefs = [W.copy() for W in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        # With scikit-learn's array_api_dispatch, arrays of another namespace train on their
        # own backend and device (validated on a host copy).
        target = _dispatched_input(X)
        if target is not None:
            if self.backend is not None and self.backend != target[0]:
                raise ValueError(f"X is a {target[0]} array but backend={self.backend!r}: "
                                 "leave backend=None to train on the input's backend")
            X, y = to_host(X), to_host(y)
            sample_weight = None if sample_weight is None else to_host(sample_weight)
        self._train_on = target or (self.backend, self.device)
        hidden = self._hidden_sizes()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        X = _dense(X, "X")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("Sample weights must contain at least one non-zero number "
                                 "(their sum must be positive).")
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1], *hidden, self.n_outputs_]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, self._weights_dtype(X.dtype), rs)
        elif [W.shape for W in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"the network of coefs_ ({[W.shape for W in self.coefs_]}) does "
                             f"not match hidden_layer_sizes={self.hidden_layer_sizes} for "
                             f"{X.shape[1]} features and {self.n_outputs_} outputs")
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, sample_weight, incremental, rs)
        return self

    def _fit_stochastic(self, X, Y, sample_weight, incremental, rs):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Solver(self.solver, self.learning_rate_init, self.learning_rate,
                                      self.power_t)
            self._model = None  # a fresh polynn model: fresh optimizer state, as scikit-learn
        if not hasattr(self, "loss_curve_"):  # e.g. after lbfgs with warm_start
            self.loss_curve_, self._no_improvement_count = [], 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        early_stopping = self.early_stopping
        X_val = y_val = sw_val = None
        if early_stopping:
            # As scikit-learn: stratified only for single-output classifiers.
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            split = train_test_split(*arrays, random_state=rs,
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, Y, Y_val = split[:4]
            if sample_weight is not None:
                sample_weight, sw_val = split[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._decode(Y_val)
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        scale = self._loss_scale()
        # scikit-learn divides alpha by each batch's weight sum: l2 per unit weight, divided by
        # the batch's mean weight (l2_per_weight) when there are weights.
        l2 = float(self.alpha) * scale / batch_size
        model = self._model_for_weights()
        # stream=True keeps X on the host (a memmap stays mapped) and MLP.fit moves each chunk
        # of mini-batches to the device as it trains; it needs mini-batches to stream.
        stream = bool(self.stream) and batch_size < n_samples
        Xd = X if stream else _on_backend(model, X)
        Xd_val = None if X_val is None else _on_backend(model, X_val, cast=True)
        targets = self._model_targets(Y)
        seed = int(rs.randint(np.iinfo(np.int32).max))
        steps_per_epoch = -(-n_samples // batch_size)
        self.n_iter_ = 0
        t_start = self.t_
        state = {"best": None, "stop": False, "max_iter": False}

        def end_of_epoch(info):
            """scikit-learn's bookkeeping after each epoch; True stops MLP.fit (to stop, or to
            continue with a new learning rate)."""
            self.n_iter_ += 1
            self.loss_ = float(info.history.loss[-1]) / scale
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if early_stopping:
                score = self._score_params(info.params, model, Xd_val, y_val, sw_val)
                if self._update_validation(score):
                    state["best"] = _copy_params(model, info.params)
            else:
                self._update_training_loss()
            rate = self._optimizer.learning_rate
            self._optimizer.iteration_ends(self.t_)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._optimizer.trigger_stopping(msg, self.verbose):
                    state["stop"] = True
                    return True
                self._no_improvement_count = 0
            if incremental:
                return True
            if self.n_iter_ == self.max_iter:
                state["max_iter"] = True  # warned once MLP.fit has returned
                return True
            # A new constant rate ("adaptive") needs a new optimizer object: restart MLP.fit
            # (the optimizer state carries over, as scikit-learn's velocities do).
            return self._optimizer.lr_schedule == "adaptive" and rate != \
                self._optimizer.learning_rate

        first_call = True
        while not state["stop"] and self.n_iter_ < (1 if incremental else self.max_iter):
            optimizer = self._polynn_optimizer(scale, n_samples, steps_per_epoch, incremental,
                                               t_start)
            try:
                history = model.fit(Xd, targets, l2=l2, epochs=self.max_iter - self.n_iter_,
                                    batch_size=batch_size, shuffle=bool(self.shuffle),
                                    optimizer=optimizer, seed=seed if first_call else None,
                                    sample_weight=sample_weight,
                                    l2_per_weight=sample_weight is not None,
                                    callback=end_of_epoch, stream=stream)
            except FloatingPointError as err:  # polynn's DivergenceError: weights kept finite
                if not early_stopping:
                    self._store_weights(model.params)
                    raise ValueError("Solver produced non-finite parameter weights. The input "
                                     "data may contain large values and need to be "
                                     "preprocessed.") from err
                self.loss_curve_.append(float("nan"))
                self.validation_scores_.append(float("nan"))
                self.n_iter_ += 1
                self.t_ += n_samples
                break
            first_call = False
            if history.stopped == "interrupted":
                warnings.warn("Training interrupted by user.", stacklevel=3)
                break
            if history.stopped is None:  # ran the epochs asked for without a stop
                break
        if state["max_iter"]:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=4)
        self._store_weights(model.params)
        if early_stopping:
            best = state["best"]
            if best is not None:
                self._best_coefs = [_host_array(W) for W, _ in best]
                self._best_intercepts = [_host_array(b) for _, b in best]
            self.coefs_ = [W.copy() for W in self._best_coefs]
            self.intercepts_ = [b.copy() for b in self._best_intercepts]

    def _polynn_optimizer(self, scale, n_samples, steps_per_epoch, incremental, t_start):
        """polynn's optimizer for the next epoch, on polynn's objective (``scale`` times
        scikit-learn's): the same updates as scikit-learn's optimizer."""
        if self.solver == "adam":
            return Adam(Constant(float(self.learning_rate_init)), float(self.beta_1),
                        float(self.beta_2), float(self.epsilon) * scale)
        solver = self._optimizer
        if solver.lr_schedule == "invscaling" and not incremental:
            # One schedule for the whole fit (one compiled loop on JAX), equal to scikit-learn's
            # per-epoch rate; t0 = samples seen before this fit.
            rate = SklearnInvScaling(solver.learning_rate_init / scale, float(self.power_t),
                                     n_samples, steps_per_epoch, t_start)
        else:
            rate = Constant(solver.learning_rate / scale)
        return VelocityMomentum(rate, float(self.momentum), bool(self.nesterovs_momentum))

    def _update_validation(self, score):
        """scikit-learn's rule with early stopping; True when ``score`` is a new best."""
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _update_training_loss(self):
        """scikit-learn's rule without early stopping."""
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]

    def _score_params(self, params, model, Xd, y, sample_weight):
        """The validation score (accuracy / R²) of row-layout backend ``params`` on backend
        ``Xd``; NaN when the outputs are not finite (as scikit-learn)."""
        Z = _host_array(nn_mlp.forward(params, Xd, model._act))
        if not np.isfinite(Z).all():
            return float("nan")
        return self._score_outputs(Z, y, sample_weight)

    # -- L-BFGS -------------------------------------------------------------------------------
    def _lbfgs_objective(self, X, Y, sample_weight):
        """``f(theta) -> (loss, grad)`` on scikit-learn's scale for a flat float64 parameter
        vector (scikit-learn's packing): one host -> backend copy of the parameters and one
        backend -> host copy of the gradient per evaluation."""
        model = self._model_for_weights()
        backend, dtype = model.backend, model.dtype
        shapes = tuple((W.shape, b.shape) for W, b in self._host_params())
        Xd = backend.asarray(X, dtype)
        Td = backend.asarray(self._target_matrix(Y), dtype)
        swd = None if sample_weight is None else backend.asarray(sample_weight, dtype)
        scale = self._loss_scale()
        n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        l2 = float(self.alpha) * scale / n
        flat_value_and_grad = _flat_value_and_grad(backend, ACTIVATIONS[self.activation],
                                                   model.output, l2, shapes)

        def objective(theta):
            loss, grad = flat_value_and_grad(backend.asarray(theta, dtype), Xd, Td, swd)
            return float(to_host(loss)) / scale, to_host(grad).astype(np.float64) / scale

        return objective

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *unused_buffers):
        """scikit-learn's private L-BFGS objective, same signature: the loss and its flat
        gradient at ``packed_coef_inter`` for targets ``y`` already binarized ``(m, k)``."""
        Y = np.asarray(y, dtype=np.float64)
        Y = Y.reshape(Y.shape[0], -1)
        return self._lbfgs_objective(_dense(X, "X"), Y, sample_weight)(packed_coef_inter)

    def _fit_lbfgs(self, X, Y, sample_weight):
        host = self._host_params()
        objective = self._lbfgs_objective(X, Y, sample_weight)
        best = [math.inf, None, 0, 0]  # lowest loss seen, its parameters, evaluations, iterations

        def tracked(theta):
            loss, grad = objective(theta)
            best[2] += 1
            if loss < best[0]:
                best[:2] = loss, np.array(theta)
            return loss, grad

        theta0 = _pack([W for W, _ in host], [b for _, b in host]).astype(np.float64)
        try:
            result = scipy.optimize.minimize(
                tracked, theta0, method="L-BFGS-B", jac=True,
                callback=lambda *_: best.__setitem__(3, best[3] + 1),
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        except KeyboardInterrupt:
            # Ctrl-C: keep the best parameters evaluated so far (a consistent model).
            warnings.warn("Training interrupted by user.", stacklevel=3)
            result = scipy.optimize.OptimizeResult(
                x=theta0 if best[1] is None else best[1], fun=best[0], nit=best[3],
                nfev=best[2], status=0)
            if best[1] is None:
                result.fun = objective(theta0)[0]
        if result.status != 0:
            message = result.message
            message = message.decode("latin1") if isinstance(message, bytes) else message
            warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status="
                          f"{result.status}):\n{message}.\n\nIncrease the number of iterations "
                          f"to improve the convergence (max_iter={self.max_iter}).\nYou might "
                          "also want to scale the data.", ConvergenceWarning, stacklevel=3)
        self.n_iter_ = min(int(result.nit), int(self.max_iter))
        self.loss_ = float(result.fun)
        if self.verbose:
            print(f"L-BFGS-B: {result.nit} iterations, {result.nfev} evaluations, loss = "
                  f"{self.loss_:.8f}")
        theta = np.asarray(result.x)
        if not np.isfinite(theta).all() or not math.isfinite(self.loss_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        pieces = np.split(theta, np.cumsum([W.size for W, _ in host]
                                           + [b.size for _, b in host])[:-1])
        L = len(host)
        dtype = host[0][0].dtype
        model = self._model_for_weights()
        params = tuple((model.backend.asarray(pieces[i].reshape(host[i][0].shape).astype(dtype),
                                              model.dtype),
                        model.backend.asarray(pieces[L + i].astype(dtype), model.dtype))
                       for i in range(L))
        self._store_weights(params)

    # -- prediction ---------------------------------------------------------------------------
    def _forward(self, X):
        """The output layer's pre-activation ``(m, k)`` as a host array of the weights' dtype
        (float32 for bfloat16 weights)."""
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32))
        model = self._model_for_weights()
        if scipy.sparse.issparse(X):
            X = X.tocsr()
            chunks = [_host_array(model.forward(X[i:i + PREDICT_CHUNK_ROWS].toarray()))
                      for i in range(0, X.shape[0], PREDICT_CHUNK_ROWS)]
            return np.concatenate(chunks, axis=0)
        return _host_array(model.forward(X))

    def _score_on_host(self, mixin_score, X, y, sample_weight):
        """scikit-learn's score (accuracy / R²) as a float; arrays of another namespace
        (``array_api_dispatch``) are scored on host copies, since some of scikit-learn's metrics
        write into their inputs, which JAX arrays refuse."""
        if _dispatched_input(X) is not None or _dispatched_input(y) is not None:
            X, y = to_host(X), to_host(y)
            sample_weight = None if sample_weight is None else to_host(sample_weight)
        return mixin_score(self, X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _dispatched_input(X):
    """``(backend name, device)`` of ``X`` when scikit-learn's ``array_api_dispatch`` is on and
    ``X`` is an array of a polynn backend other than NumPy (torch, jax, cupy,
    array_api_strict); None otherwise (then every output is NumPy)."""
    if (X is None or isinstance(X, np.ndarray) or scipy.sparse.issparse(X)
            or not get_config().get("array_api_dispatch", False)):
        return None
    try:
        xp = array_namespace(X)
    except TypeError:
        return None
    parts = xp.__name__.split(".")
    name = parts[1] if parts[0] == "array_api_compat" and len(parts) > 1 else parts[0]
    if name not in BACKENDS or name == "numpy":
        return None
    return name, _device_spec(name, array_device(X))


def _host_input(X):
    """(dispatch target or None, X as host data)."""
    target = _dispatched_input(X)
    return target, (to_host(X) if target is not None else X)


def _to_namespace(result, target):
    """A host result as an array of the input's namespace and device (dispatch), else as is.
    Labels that are not numbers (e.g. strings) stay NumPy: no array API namespace holds them."""
    if target is None or not (np.issubdtype(result.dtype, np.number)
                              or result.dtype == bool):
        return result
    return get_backend(*target).asarray(result)


def _host_array(x):
    """A host NumPy copy of a backend array; bfloat16 widened to float32."""
    host = np.array(to_host(x))
    if host.dtype.kind == "V" or str(host.dtype) == "bfloat16":
        host = host.astype(np.float32)
    return host


def _dense(X, name):
    """Dense ``X``: a sparse matrix is densified (refused above MAX_DENSE_ELEMENTS)."""
    if not scipy.sparse.issparse(X):
        return X
    if X.shape[0] * X.shape[1] > MAX_DENSE_ELEMENTS:
        raise ValueError(f"{name} is a sparse matrix of shape {X.shape}: polynn trains on dense "
                         f"arrays and densifying it needs {X.shape[0] * X.shape[1]} elements "
                         f"(more than {MAX_DENSE_ELEMENTS}); train with partial_fit on blocks "
                         "of rows instead")
    return X.toarray()


def _on_backend(model, X, cast=False):
    """``X`` as an array of the model's backend and dtype: moved once per fit. On NumPy the
    host array itself unless ``cast`` (MLP.fit casts each batch when it is used)."""
    if model.backend.name == "numpy" and not cast:
        return X
    return model.backend.asarray(X, model.dtype)


def _copy_params(model, params):
    """A copy of row-layout backend parameters that later training steps cannot overwrite."""
    xp = model.backend.xp
    return tuple((xp.asarray(W, copy=True), xp.asarray(b, copy=True)) for W, b in params)


@functools.lru_cache(maxsize=32)
def _flat_value_and_grad(backend, activation, output, l2, shapes):
    """``f(theta, X, T, sample_weight) -> (loss, grad)`` on flat vectors in scikit-learn's
    packing, around polynn's row-layout ``value_and_grad``: the vector is cut into ``(W, b)`` of
    ``shapes`` and
    the gradient packed back on the backend (compiled on JAX), so one evaluation moves one
    vector to the backend and one back."""
    act = get_activation(activation)
    sizes = [math.prod(sW) for sW, _ in shapes] + [sb[0] for _, sb in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    L = len(shapes)

    def flat_value_and_grad(theta, X, T, sample_weight):
        xp = array_namespace(theta)
        pieces = [theta[starts[i]:starts[i + 1]] for i in range(2 * L)]
        params = tuple((xp.reshape(pieces[i], shapes[i][0]), pieces[L + i]) for i in range(L))
        loss, grads = nn_mlp.value_and_grad(params, X, T, act, output, l2, sample_weight)
        flat = [xp.reshape(dW, (-1,)) for dW, _ in grads] + [db for _, db in grads]
        return loss, xp.concat(flat)

    return backend.compile(flat_value_and_grad)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by polynn on any array API backend.

    Parameters and attributes are scikit-learn's ``MLPClassifier``'s, with the same meaning
    (module docstring), plus ``backend`` ("numpy", "jax", "torch", "cupy",
    "array_api_strict"; default ``$POLYNN_BACKEND`` or "numpy"), ``device`` and ``dtype``
    (None: float32 for float32 input, float64 otherwise; or "float32", "float64", "bfloat16"),
    passed to :class:`polynn.MLP`, and ``stream`` (True: sgd/adam mini-batches move from host
    memory, a ``numpy.memmap`` included, to the device as they train; ``MLP.fit(stream=True)``);
    ``activation`` also takes "leaky_relu".

    Attributes: ``classes_``, ``coefs_`` / ``intercepts_`` (host arrays, assignable),
    ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``t_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``,
    ``out_activation_``, ``n_features_in_``, ``feature_names_in_`` as scikit-learn; ``model_``
    the :class:`polynn.MLP` holding the weights.
    """

    _parameter_constraints = {**_SkMLPClassifier._parameter_constraints, **_EXTRA_CONSTRAINTS}

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

    def _predict_raw(self, X):
        return self._labels(self._forward(X))

    def _probabilities(self, Z):
        """Output units' probabilities ``(m, n_outputs_)`` from host ``Z``, in Z's dtype."""
        if self._output() == "softmax":
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            return E / E.sum(axis=1, keepdims=True)
        return scipy.special.expit(Z)  # exact tails: log(predict_proba) stays finite longer

    def _proba(self, X):
        return self._probabilities(self._forward(X))

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` ``(n_samples, n_features)`` and labels ``y``; returns self.
        ``sample_weight`` ``(n_samples,)`` weights each sample's loss."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (every label that will ever occur) is required
        on the first call."""
        if _dispatched_input(y) is not None:
            y = to_host(y)
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
        target, X = _host_input(X)
        return _to_namespace(self._predict_raw(X), target)

    def _host_proba(self, X):
        proba = self._proba(X)
        if self.n_outputs_ == 1:
            proba = proba.ravel()
            return np.vstack([1 - proba, proba]).T
        return proba

    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)`` in ``classes_`` order, in the
        weights' dtype; binary: columns [P(classes_[0]), P(classes_[1])]."""
        check_is_fitted(self)
        target, X = _host_input(X)
        return _to_namespace(self._host_proba(X), target)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (multilabel: subset accuracy) on ``(X, y)``."""
        return self._score_on_host(ClassifierMixin.score, X, y, sample_weight)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        check_is_fitted(self)
        target, X = _host_input(X)
        proba = self._host_proba(X)
        with np.errstate(divide="ignore"):
            return _to_namespace(np.log(proba, out=proba), target)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by polynn on any array API backend.

    Parameters and attributes as scikit-learn's ``MLPRegressor`` (``loss``: "squared_error" or
    "poisson"), plus ``backend``, ``device`` and ``dtype`` as :class:`MLPClassifier`.
    """

    _parameter_constraints = {**_SkMLPRegressor._parameter_constraints, **_EXTRA_CONSTRAINTS}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, device=None, dtype=None, stream=False):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, device=device, dtype=dtype, stream=stream)
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

    def _predict_raw(self, X):
        return self._values(self._forward(X))

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` ``(n_samples, n_features)`` and targets ``y`` ``(n_samples,)``
        or ``(n_samples, n_outputs)``; returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing the current model."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R² on ``(X, y)``."""
        return self._score_on_host(RegressorMixin.score, X, y, sample_weight)

    def predict(self, X):
        """Predictions ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``, in the
        weights' dtype."""
        check_is_fitted(self)
        target, X = _host_input(X)
        return _to_namespace(self._predict_raw(X), target)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
