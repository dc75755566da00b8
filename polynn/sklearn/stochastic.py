"""The "sgd" and "adam" solvers: scikit-learn's learning-rate and stopping rules around one
``MLP.fit`` per ``fit`` (see the package docstring for the mapping of the objective)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from polynn.nn import mlp as nn_mlp
from polynn.nn.optim import Adam, Constant, EpochInverseScaling, VelocityMomentum

from .backend_model import training_state, with_training_state
from .inputs import host_array
from .reported import EpochValue, mean_over_outputs

STOCHASTIC_SOLVERS = ("sgd", "adam")


class _Solver:
    """The learning-rate bookkeeping of scikit-learn's stochastic optimizers, kept as
    ``estimator._optimizer`` (``learning_rate`` is the current rate, as in scikit-learn). The
    optimizer's state itself (velocities, moments) is ``estimator._training_state``."""

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


def polynn_optimizer(est, scale, n_samples, steps_per_epoch, incremental, t_start):
    """polynn's optimizer for the next epochs, on polynn's objective (``scale`` times
    scikit-learn's): the same updates as scikit-learn's optimizer."""
    if est.solver == "adam":
        return Adam(Constant(float(est.learning_rate_init)), float(est.beta_1),
                    float(est.beta_2), float(est.epsilon) * scale)
    solver = est._optimizer
    if solver.lr_schedule == "invscaling" and not incremental:
        # One schedule for the whole fit (one compiled loop on JAX), equal to scikit-learn's
        # per-epoch rate; t0 = samples seen before this fit.
        rate = EpochInverseScaling(solver.learning_rate_init / scale, float(est.power_t),
                                    n_samples, steps_per_epoch, t_start)
    else:
        rate = Constant(solver.learning_rate / scale)
    return VelocityMomentum(rate, float(est.momentum), bool(est.nesterovs_momentum))


@dataclass
class Validation:
    """The held-out rows of ``early_stopping``: ``X`` on the model's backend, the labels or
    targets ``y`` as scikit-learn scores them, and their ``sample_weight`` (or None)."""

    X: object
    y: np.ndarray
    sample_weight: np.ndarray | None


def split_validation(est, X, Y, sample_weight, rs):
    """``(X, Y, sample_weight, held-out rows)``: scikit-learn's split when ``early_stopping``
    (stratified only for single-output classifiers), from ``rs`` after the initial weights."""
    stratify = Y if is_classifier(est) and est.n_outputs_ == 1 else None
    arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
    split = train_test_split(*arrays, random_state=rs, test_size=est.validation_fraction,
                             stratify=stratify)
    X, X_val, Y, Y_val = split[:4]
    sw_val = None
    if sample_weight is not None:
        sample_weight, sw_val = split[4:]
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or "
                         "the size of your dataset.")
    return X, Y, sample_weight, (X_val, est._decode(Y_val), sw_val)


class EpochEnd:
    """scikit-learn's bookkeeping after each epoch, as ``MLP.fit``'s callback: ``n_iter_``,
    ``t_``, ``loss_``, ``loss_curve_``, the no-improvement count, the best validation score or
    training loss, the learning rate. Returning True stops ``MLP.fit``: to stop training, or to
    continue it with a new learning rate ("adaptive"). After ``MLP.fit`` returns, ``stopped``
    says whether scikit-learn's rules ended training, ``max_iter_reached`` whether it ran out of
    epochs, and ``best`` holds the host weights of the best validation score (or None)."""

    def __init__(self, est, model, *, scale, n_samples, validation, incremental,
                 reported=None):
        self.est, self.scale, self.n_samples = est, scale, n_samples
        # scikit-learn's value of the epoch's loss (reported.EpochValue: the mean over
        # outputs of squared error with k > 1), or polynn's loss over the scale as it is.
        self.reported = reported
        self.incremental = incremental
        self.validation = None
        if validation is not None:
            X_val, y_val, sw_val = validation
            self.validation = Validation(model.backend.asarray(X_val, model.dtype), y_val,
                                         sw_val)
        self.act = model.activation_fn
        self.dtype = model.dtype
        self.best = None
        self.stopped = self.max_iter_reached = False

    def __call__(self, info) -> bool:
        est = self.est
        loss = float(info.history.loss[-1]) / self.scale
        self.record(loss if self.reported is None else self.reported(loss, info.params))
        if self.validation is not None:
            if self.update_validation(self.score(info.params)):
                self.best = tuple((host_array(W, self.dtype), host_array(b, self.dtype))
                                  for W, b in info.params)
        else:
            self.update_training_loss()
        rate = est._optimizer.learning_rate
        est._optimizer.iteration_ends(est.t_)
        if est._no_improvement_count > est.n_iter_no_change:
            if est._optimizer.trigger_stopping(self.no_improvement_message(), est.verbose):
                self.stopped = True
                return True
            est._no_improvement_count = 0
        if self.incremental:
            return True
        if est.n_iter_ == est.max_iter:
            self.max_iter_reached = True  # warned once MLP.fit has returned
            return True
        # A new constant rate ("adaptive") needs a new optimizer object: restart MLP.fit (the
        # optimizer state carries over, as scikit-learn's velocities do).
        return est._optimizer.lr_schedule == "adaptive" and rate != est._optimizer.learning_rate

    def record(self, loss):
        """Count one epoch of ``n_samples`` with scikit-learn's ``loss``."""
        est = self.est
        est.n_iter_ += 1
        est.loss_ = loss
        est.t_ += self.n_samples
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")

    def score(self, params):
        """The validation score (accuracy / R²) of row-layout backend ``params``; NaN when the
        outputs are not finite (as scikit-learn)."""
        val = self.validation
        Z = host_array(nn_mlp.forward(params, val.X, self.act), self.dtype)
        if not np.isfinite(Z).all():
            return float("nan")
        return self.est._score_outputs(Z, val.y, val.sample_weight)

    def update_validation(self, score) -> bool:
        """scikit-learn's rule with early stopping; True when ``score`` is a new best."""
        est = self.est
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            return True
        return False

    def update_training_loss(self):
        """scikit-learn's rule without early stopping."""
        est = self.est
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]

    def no_improvement_message(self):
        est = self.est
        what = "Validation score" if self.validation is not None else "Training loss"
        return (f"{what} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs.")


def start(est, incremental):
    """A fresh learning-rate bookkeeping and optimizer state for a new ``fit`` (kept by
    ``partial_fit``, as scikit-learn keeps its optimizer), and the curves if there are none
    (e.g. after lbfgs with ``warm_start``)."""
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = _Solver(est.solver, est.learning_rate_init, est.learning_rate,
                                 est.power_t)
        est._training_state = None  # fresh velocities / moments, as scikit-learn
    if not hasattr(est, "loss_curve_"):
        est.loss_curve_, est._no_improvement_count = [], 0
        est.best_loss_ = None if est.early_stopping else np.inf
        est.validation_scores_ = [] if est.early_stopping else None
        est.best_validation_score_ = -np.inf if est.early_stopping else None


def fit_stochastic(est, X, Y, sample_weight, incremental, rs):
    """Train ``est`` with "sgd" or "adam" on host ``X`` ``(m, n_features)`` and targets ``Y``
    ``(m, n_outputs)``: ``max_iter`` epochs (one for ``partial_fit``) under scikit-learn's
    rules, as one ``MLP.fit`` (restarted when the "adaptive" rate changes)."""
    start(est, incremental)
    validation = None
    if est.early_stopping:
        X, Y, sample_weight, validation = split_validation(est, X, Y, sample_weight, rs)
    n_samples = X.shape[0]
    batch_size = est._batch_size(n_samples)
    scale = est._loss_scale()
    model = with_training_state(est._model_for_weights(), est.__dict__.get("_training_state"))
    reported = EpochValue(est, model, batch_size=batch_size, n_samples=n_samples,
                          sample_weight=sample_weight) if mean_over_outputs(est) else None
    epoch_end = EpochEnd(est, model, scale=scale, n_samples=n_samples, validation=validation,
                         incremental=incremental, reported=reported)
    # scikit-learn divides alpha by each batch's weight sum: l2 per unit weight, divided by the
    # batch's mean weight (l2_per_weight) when there are weights.
    options = dict(l2=float(est.alpha) * scale / batch_size, batch_size=batch_size,
                   shuffle=bool(est.shuffle), sample_weight=sample_weight,
                   l2_per_weight=sample_weight is not None, callback=epoch_end,
                   # stream=True keeps X on the host (a memmap stays mapped) and MLP.fit moves
                   # each chunk of mini-batches as it trains; it needs mini-batches to stream.
                   stream=bool(est.stream) and batch_size < n_samples)
    seed = int(rs.randint(np.iinfo(np.int32).max))
    est.n_iter_ = 0
    try:
        # Placed once: an "adaptive" restart of MLP.fit moves nothing again.
        Xd = X if options["stream"] else model.place(X)
        _run_epochs(est, model, Xd, est._model_targets(Y), epoch_end, options, seed,
                    incremental)
    finally:
        est._training_state = training_state(model)
    if epoch_end.max_iter_reached:
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and "
                      "the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
    _keep_weights(est, model, epoch_end)


def _run_epochs(est, model, X, targets, epoch_end, options, seed, incremental):
    """Call ``MLP.fit`` until scikit-learn's rules stop, the epochs run out, a restart is not
    asked for (the "adaptive" rate changed), Ctrl-C, or the loss diverges."""
    steps_per_epoch = -(-X.shape[0] // options["batch_size"])
    t_start, first_call = est.t_, True
    while not epoch_end.stopped and est.n_iter_ < (1 if incremental else est.max_iter):
        optimizer = polynn_optimizer(est, epoch_end.scale, X.shape[0], steps_per_epoch,
                                     incremental, t_start)
        try:
            history = model.fit(X, targets, epochs=est.max_iter - est.n_iter_,
                                optimizer=optimizer, seed=seed if first_call else None,
                                **options)
        except FloatingPointError as err:  # polynn's DivergenceError: weights kept finite
            _diverged(est, model, epoch_end, err)
            return
        first_call = False
        if history.stopped == "interrupted":
            warnings.warn("Training interrupted by user.", stacklevel=5)
            return
        if history.stopped is None:  # ran the epochs asked for without a stop
            return


def _diverged(est, model, epoch_end, err):
    """A non-finite loss: scikit-learn's ValueError without early stopping (the last finite
    weights kept); with it, the epoch scores NaN and the best weights are restored."""
    if epoch_end.validation is None:
        est._store_weights(model)
        raise ValueError("Solver produced non-finite parameter weights. The input data may "
                         "contain large values and need to be preprocessed.") from err
    est.loss_curve_.append(float("nan"))
    est.validation_scores_.append(float("nan"))
    est.n_iter_ += 1
    est.t_ += epoch_end.n_samples


def _keep_weights(est, model, epoch_end):
    """The trained weights into ``coefs_`` / ``intercepts_``; with early stopping, the best."""
    est._store_weights(model)
    if epoch_end.validation is None:
        return
    if epoch_end.best is not None:
        est._best_coefs = [W for W, _ in epoch_end.best]
        est._best_intercepts = [b for _, b in epoch_end.best]
    est.coefs_ = [W.copy() for W in est._best_coefs]
    est.intercepts_ = [b.copy() for b in est._best_intercepts]
