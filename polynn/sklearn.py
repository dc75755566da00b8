"""scikit-learn estimators backed by polynn: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow scikit-learn's estimator conventions (``__init__`` only stores its arguments; what is
learned ends in ``_``) and its ``neural_network.MLPClassifier`` / ``MLPRegressor`` parameters,
so they drop into ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. Training runs on any
polynn backend (``backend="jax"``, ``"torch"``, ...); inputs and outputs are host NumPy arrays.

How scikit-learn's conventions map onto polynn (checked against scikit-learn 1.9's
``neural_network/_multilayer_perceptron.py``):

- **alpha.** scikit-learn adds ``alpha * W`` to the *summed* gradient of a batch and divides the
  total by the batch's size (``_compute_loss_grad``: ``(A.T @ delta + alpha * W) / n``, where
  ``n`` is the number of rows of the mini-batch, not of the data set), so the penalty per step is
  ``0.5 * (alpha / batch_size) * sum ||W||^2`` on a mean data loss. polynn's loss is the batch mean
  plus ``0.5 * l2 * sum ||W||^2``, hence ``l2 = alpha / batch_size`` for classification (the
  last, shorter batch of an epoch uses the same ``l2``; scikit-learn uses its own size there).
  ``alpha == l2 * n_samples`` (as DESIGN.md puts it) only holds for full-batch training.
- **Squared error.** scikit-learn's regression gradient is that of ``0.5 * sum over outputs of
  the mean over rows of (y_hat - y)^2``; polynn's MSE is the mean over all ``m * k`` elements
  (no 0.5), i.e. ``2 / k`` times that. The regressor therefore uses ``l2 = 2 * alpha /
  (k * batch_size)`` and, for the non-adaptive-scale solvers (sgd, momentum, nesterov),
  ``lr = learning_rate_init * k / 2``, so each update equals scikit-learn's; ``loss_curve_`` is
  reported as half the MSE (scikit-learn's scale; exactly its value for one output), so ``tol``
  means the same thing. Adam is invariant to the constant factor and gets ``learning_rate_init``.
- **solver** takes polynn's optimizer names: "sgd" (plain), "momentum", "nesterov", "adam".
  scikit-learn's ``solver="sgd"`` (Nesterov momentum 0.9 by default) is ``solver="nesterov"``
  here; "lbfgs" is not offered.
- **learning_rate** ("constant", "invscaling", "adaptive") applies to the non-adam solvers only,
  as in scikit-learn. "invscaling" is scikit-learn's ``learning_rate_init / (t + 1) ** power_t``
  with ``t`` the number of samples seen at the end of the previous epoch (exact for ``fit`` and
  for ``partial_fit`` calls of equal size). "adaptive" divides the rate by 5 when the loss (or
  validation score) stalls and stops below 1e-6; polynn's ``MLP.fit`` starts a fresh optimizer
  state (momentum buffers) when the rate changes, scikit-learn keeps it.
- **Stopping.** The estimator calls ``MLP.fit`` one epoch at a time (weights, optimizer state and
  shuffling stream carry over) and applies scikit-learn's rule after each: with
  ``early_stopping=False``, an epoch whose training loss is not below ``best_loss_ - tol`` counts
  as no improvement; ``early_stopping=True`` holds out ``validation_fraction`` of the data
  (stratified for classifiers, with ``random_state``), scores it (accuracy / R²) each epoch,
  counts epochs whose score is not above ``best_validation_score_ + tol`` and restores the best
  weights at the end. Training stops once the count exceeds ``n_iter_no_change``; reaching
  ``max_iter`` first raises a ``ConvergenceWarning``.
- **Initialisation.** polynn's Glorot uniform init, ``U(-a, a)`` with ``a = sqrt(6 / (fan_in +
  fan_out))``: scikit-learn's distribution for every activation but "logistic" (where it uses
  2 instead of 6); biases start at zero (scikit-learn draws them from the same uniform). On the
  digits benchmark He init did slightly worse than scikit-learn over seeds, Glorot matches it.
  ``random_state`` as an int is used as polynn's ``seed`` itself, so
  ``MLPClassifier(random_state=s).model_`` starts from ``polynn.MLP(..., init="glorot",
  seed=s)``'s weights.
- **Classes.** Labels of any type are mapped to 0..k-1 in sorted order (``classes_``); two
  classes train one sigmoid unit with binary cross-entropy (as scikit-learn does), three or more a
  softmax layer, one class a single softmax unit (always predicts it). Multilabel targets are not
  supported. ``predict_proba`` is float64 and its rows sum to 1 to float64 precision (renormalised
  on the host after the backend's float32 softmax).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

from polynn.model import MLP

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, /, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


__all__ = ["MLPClassifier", "MLPRegressor"]

SOLVERS = ("sgd", "momentum", "nesterov", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
# scikit-learn's activation names (and polynn's) -> polynn's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid",
               "tanh": "tanh", "relu": "relu", "leaky_relu": "leaky_relu"}


@dataclass(frozen=True)
class EpochInverseScaling:
    """scikit-learn's "invscaling" as a polynn schedule of the step count ``t``:
    ``lr / (samples_seen + 1) ** power`` where ``samples_seen = (t // steps_per_epoch) *
    n_samples`` is the number of samples seen before the current epoch. Frozen (hashable) so
    JAX reuses the compiled epoch; written with operators that accept a traced ``t``."""

    lr: float
    power: float
    n_samples: int
    steps_per_epoch: int

    def __call__(self, t):
        return self.lr / ((t // self.steps_per_epoch) * float(self.n_samples) + 1.0) ** self.power


def _check_number(name, value, low, high=math.inf, *, integer=False, low_open=False,
                  high_open=False):
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        what = "an integer" if integer else "a number"
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name} must be {what} in {lo}{low}, {high}{hi}, got {value!r}")


class _BaseMLP(BaseEstimator):
    """Parameters and training loop shared by the classifier and the regressor."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, momentum=0.9,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 backend=None, device=None, dtype="float32"):
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
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # -- subclass hooks ---------------------------------------------------------------------
    # _targets(y, first, classes) -> (T, n_outputs, output); _val_score(X, T) -> float;
    # _loss_scale: factor from polynn's loss to scikit-learn's.
    _loss_scale = 1.0

    def _grad_scale(self):
        """polynn's objective divided by scikit-learn's (see the module docstring)."""
        return 1.0

    # -- parameters -------------------------------------------------------------------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                    and s > 0 for s in sizes):
            raise ValueError("hidden_layer_sizes must be a positive integer or a sequence of "
                             f"positive integers, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _check_params(self):
        self._hidden_sizes()
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {list(SOLVERS)} (polynn's optimizers; "
                             f"scikit-learn's 'sgd' is 'nesterov' here), got {self.solver!r}")
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {list(LEARNING_RATES)}, got "
                             f"{self.learning_rate!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_number("batch_size", self.batch_size, 1, integer=True)
        _check_number("alpha", self.alpha, 0)
        _check_number("learning_rate_init", self.learning_rate_init, 0, low_open=True)
        _check_number("power_t", self.power_t, 0)
        _check_number("max_iter", self.max_iter, 1, integer=True)
        _check_number("tol", self.tol, 0)
        _check_number("momentum", self.momentum, 0, 1)
        _check_number("n_iter_no_change", self.n_iter_no_change, 1, integer=True)
        if self.early_stopping:
            _check_number("validation_fraction", self.validation_fraction, 0, 1,
                          low_open=True, high_open=True)

    def _batch_size(self, n):
        if isinstance(self.batch_size, str):
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", stacklevel=3)
        return int(min(self.batch_size, n))

    # -- training ---------------------------------------------------------------------------
    def _draw_seed(self):
        """An int ``random_state`` is polynn's seed itself; otherwise one draw from it."""
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0:
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _initialize(self, n_features, n_outputs, output, n_samples, batch_size, seed,
                    early_stopping):
        self.model_ = MLP([n_features, *self._hidden_sizes(), n_outputs],
                          activation=ACTIVATIONS[self.activation], output=output,
                          backend=self.backend, device=self.device, dtype=self.dtype,
                          init="glorot", seed=seed)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self.model_.layer_sizes)
        self.out_activation_ = {"softmax": "softmax", "sigmoid": "logistic"}.get(output,
                                                                                  "identity")
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._lr = float(self.learning_rate_init)
        self._schedule = None
        if self.solver != "adam" and self.learning_rate == "invscaling":
            self._schedule = EpochInverseScaling(
                self._lr / self._grad_scale(), float(self.power_t), int(n_samples),
                -(-n_samples // batch_size))
        if early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _fit(self, X, y, *, incremental, first, classes=None):
        """Validated ``X`` (float64) and ``y``; ``first`` builds a new model."""
        T, n_outputs, output = self._targets(y, first, classes)
        seed = self._draw_seed() if first else None
        early_stopping = self.early_stopping and not incremental  # partial_fit: training loss
        X_val = T_val = None
        if early_stopping:  # as scikit-learn: stratified for classifiers, from random_state
            stratify = T if output != "identity" else None
            X, X_val, T, T_val = train_test_split(
                X, T, test_size=self.validation_fraction, stratify=stratify, random_state=seed)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        n = X.shape[0]
        batch_size = self._batch_size(n)
        if first:
            self._initialize(X.shape[1], n_outputs, output, n, batch_size, seed,
                             early_stopping)
        # scikit-learn's alpha / batch_size, rescaled like the data loss (module docstring).
        l2 = float(self.alpha) / batch_size * self._grad_scale()
        best_params = self.model_.params
        stopped = False
        for _ in range(1 if incremental else int(self.max_iter)):
            if self.solver == "adam":
                lr = self._lr
            else:
                lr = self._lr / self._grad_scale()  # equal steps on a scaled loss
            history = self.model_.fit(
                X, T, lr=lr, l2=l2, epochs=1, batch_size=batch_size, shuffle=bool(self.shuffle),
                optimizer=self.solver, momentum=float(self.momentum), schedule=self._schedule)
            self.loss_ = float(history.loss[-1]) * self._loss_scale
            self.loss_curve_.append(self.loss_)
            self.n_iter_ += 1
            self.t_ += n
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if early_stopping:
                score = self._val_score(X_val, T_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                improved = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    # polynn's optimizers never mutate parameters, so a reference is a snapshot.
                    best_params = self.model_.params
                what = "Validation score did not improve"
            else:
                improved = self.loss_ <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, self.loss_)
                what = "Training loss did not improve"
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            if self._no_improvement_count > self.n_iter_no_change:
                msg = (f"{what} more than tol={self.tol:f} for {self.n_iter_no_change} "
                       "consecutive epochs.")
                if self.solver == "adam" or self.learning_rate != "adaptive" or self._lr <= 1e-6:
                    if self.verbose:
                        print(msg + " Stopping.")
                    stopped = True
                    break
                self._lr /= 5.0
                self._no_improvement_count = 0
                if self.verbose:
                    print(msg + f" Setting learning rate to {self._lr:f}")
        if not incremental and not stopped:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=3)
        if early_stopping:
            self.model_.params = best_params
        return self

    def _validate_for_fit(self, X, y, *, reset, numeric):
        self._check_params()
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=numeric,
                             multi_output=numeric)
        return X, y

    def _fit_full(self, X, y, numeric):
        X, y = self._validate_for_fit(X, y, reset=True, numeric=numeric)
        return self._fit(X, y, incremental=False, first=True)

    def _partial_fit(self, X, y, numeric, first, classes=None):
        X, y = self._validate_for_fit(X, y, reset=first, numeric=numeric)
        return self._fit(X, y, incremental=True, first=first, classes=classes)

    def _inputs(self, X):
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=np.float64)

    # -- sklearn-style views of the weights -------------------------------------------------
    @property
    def coefs_(self):
        """Weight matrices ``(n_in, n_out)`` per layer, as host NumPy arrays."""
        check_is_fitted(self, "model_")
        return [np.array(W) for W, _ in self.model_.host_params()]

    @property
    def intercepts_(self):
        """Bias vectors ``(n_out,)`` per layer, as host NumPy arrays."""
        check_is_fitted(self, "model_")
        return [np.array(b) for _, b in self.model_.host_params()]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by polynn on any array API backend.

    Parameters follow ``sklearn.neural_network.MLPClassifier`` (see the module docstring for how
    each maps onto polynn), plus ``backend`` ("numpy", "jax", "torch", "cupy",
    "array_api_strict"; default ``$POLYNN_BACKEND`` or "numpy"), ``device`` and ``dtype``
    ("float32", "float64", "bfloat16"), all passed to :class:`polynn.MLP`.

    Attributes
    ----------
    classes_ : ndarray (n_classes,) — the labels, sorted.
    model_ : polynn.MLP — the fitted network (labels 0..k-1 index ``classes_``).
    n_features_in_, feature_names_in_ (when fit on a DataFrame with string column names),
    loss_ (last epoch's loss), loss_curve_ (one loss per epoch), n_iter_ (epochs run), t_
    (samples seen), best_loss_, validation_scores_, best_validation_score_, n_outputs_,
    n_layers_, out_activation_, coefs_ and intercepts_ (host copies of the weights).
    """

    def fit(self, X, y):
        """Train from scratch for up to ``max_iter`` epochs; returns self."""
        return self._fit_full(X, y, numeric=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)`` continuing the current model; ``classes`` (all labels that
        will ever occur) is required on the first call."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if not first and classes is not None and not np.array_equal(unique_labels(classes),
                                                                     self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._partial_fit(X, y, numeric=False, first=first, classes=classes)

    def _targets(self, y, first, classes):
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"MLPClassifier supports binary and multiclass targets, got {kind}")
        if first:  # fit(): the labels in y; first partial_fit: the classes given
            self.classes_ = unique_labels(y if classes is None else classes)
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if unseen.size:
            raise ValueError(f"`y` has classes not in `self.classes_`: {unseen!r}")
        codes = np.searchsorted(self.classes_, y)
        k = len(self.classes_)
        if k == 2:
            return codes.astype(np.int64), 1, "sigmoid"
        return codes.astype(np.int64), k, "softmax"

    def _val_score(self, X, T):
        return float(np.mean(self.model_.predict(X) == T))

    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)``, float64, columns in ``classes_``
        order."""
        X = self._inputs(X)
        P = np.asarray(self.model_.predict_proba(X), dtype=np.float64)
        return P / P.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted labels ``(n_samples,)`` taken from ``classes_``."""
        X = self._inputs(X)
        return self.classes_[self.model_.predict(X)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor (squared error) trained by polynn on any array API
    backend. Parameters as :class:`MLPClassifier`; ``y`` may be 1-D or 2-D (several outputs).

    Attributes as :class:`MLPClassifier` without ``classes_``; ``loss_curve_`` holds half the
    mean squared error plus the penalty (scikit-learn's scale).
    """

    _loss_scale = 0.5

    def _grad_scale(self):
        return 2.0 / self.n_outputs_

    def fit(self, X, y):
        """Train from scratch for up to ``max_iter`` epochs; returns self."""
        return self._fit_full(X, y, numeric=True)

    def partial_fit(self, X, y):
        """One epoch over ``(X, y)`` continuing the current model."""
        first = not hasattr(self, "model_")
        return self._partial_fit(X, y, numeric=True, first=first)

    def _targets(self, y, first, classes=None):
        T = np.asarray(y, dtype=np.float64)
        if T.ndim == 1:
            T = T.reshape(-1, 1)
        if first:
            self.n_outputs_ = T.shape[1]
        elif T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} output(s) but the model was fit with "
                             f"{self.n_outputs_}")
        return T, T.shape[1], "identity"

    def _val_score(self, X, T):
        return float(r2_score(T, self.model_.predict(X).reshape(T.shape)))

    def predict(self, X):
        """Predictions: ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``."""
        X = self._inputs(X)
        pred = np.asarray(self.model_.predict(X), dtype=np.float64)
        return pred.reshape(-1) if self.n_outputs_ == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
