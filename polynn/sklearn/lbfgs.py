"""The "lbfgs" solver: ``scipy.optimize.minimize(method="L-BFGS-B")`` on the host over
scikit-learn's flat parameter vector, each evaluation moving the vector to the backend and the
flat gradient back (polynn's row-layout ``value_and_grad``, compiled on JAX)."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import scipy.optimize
from array_api_compat import array_namespace
from sklearn.exceptions import ConvergenceWarning

from polynn.backend import to_host
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import get_activation

from .reported import mean_over_outputs, sklearn_value


def pack(params):
    """scikit-learn's flat parameter vector of host ``(W, b)`` pairs: every W raveled, then
    every b, as float64."""
    return np.hstack([W.ravel() for W, _ in params] + [b.ravel() for _, b in params]).astype(
        np.float64)


def unpack(theta, params):
    """Host ``(W, b)`` pairs shaped and typed as ``params`` from the flat vector ``theta``."""
    pieces = np.split(theta, np.cumsum([W.size for W, _ in params]
                                       + [b.size for _, b in params])[:-1])
    L = len(params)
    return tuple((pieces[i].reshape(W.shape).astype(W.dtype), pieces[L + i].astype(b.dtype))
                 for i, (W, b) in enumerate(params))


@functools.lru_cache(maxsize=32)
def _flat_value_and_grad(backend, activation, output, l2, shapes):
    """``f(theta, X, T, sample_weight) -> (loss, grad)`` on flat vectors in scikit-learn's
    packing, around polynn's row-layout ``value_and_grad``: the vector is cut into ``(W, b)`` of
    ``shapes`` and the gradient packed back on the backend (compiled on JAX), so one evaluation
    moves one vector to the backend and one back."""
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


def objective(est, model, X, T, sample_weight):
    """``f(theta) -> (loss, grad)`` on scikit-learn's scale for a flat float64 parameter vector
    (scikit-learn's packing) of ``model``'s shapes, targets ``T`` ``(m, k)``: one host ->
    backend copy of the parameters and one backend -> host copy of the gradient per
    evaluation."""
    backend, dtype = model.backend, model.dtype
    shapes = tuple((tuple(W.shape), tuple(b.shape)) for W, b in model.params)
    Xd = backend.asarray(X, dtype)
    Td = backend.asarray(T, dtype)
    swd = None if sample_weight is None else backend.asarray(sample_weight, dtype)
    scale = est._loss_scale()
    n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    flat_value_and_grad = _flat_value_and_grad(backend, model.activation, model.output,
                                               float(est.alpha) * scale / n, shapes)

    k = T.shape[1] if mean_over_outputs(est) else 1
    n_weights = sum(math.prod(W) for W, _ in shapes)  # the packed weights come first
    penalty = 0.5 * float(est.alpha) / n

    def f(theta):
        loss, grad = flat_value_and_grad(backend.asarray(theta, dtype), Xd, Td, swd)
        value = float(to_host(loss)) / scale
        if k > 1:  # scikit-learn's value (the mean over outputs) next to its gradient
            coefs = np.asarray(theta[:n_weights], dtype=np.float64)
            value = sklearn_value(value, penalty * float(coefs @ coefs), k)
        return value, to_host(grad).astype(np.float64) / scale

    return f


class _Tracked:
    """An objective that remembers the lowest loss evaluated and its parameters, and counts
    evaluations and iterations: what Ctrl-C keeps."""

    def __init__(self, f):
        self.f = f
        self.best_loss, self.best_theta = math.inf, None
        self.evaluations = self.iterations = 0

    def __call__(self, theta):
        loss, grad = self.f(theta)
        self.evaluations += 1
        if loss < self.best_loss:
            self.best_loss, self.best_theta = loss, np.array(theta)
        return loss, grad

    def iteration(self, *_):
        self.iterations += 1

    def interrupted(self, theta0):
        """The result to keep after Ctrl-C: the best parameters evaluated (a consistent
        model), or ``theta0`` when none was."""
        if self.best_theta is None:
            return scipy.optimize.OptimizeResult(x=theta0, fun=self.f(theta0)[0], nit=0,
                                                 nfev=self.evaluations, status=0)
        return scipy.optimize.OptimizeResult(x=self.best_theta, fun=self.best_loss,
                                             nit=self.iterations, nfev=self.evaluations,
                                             status=0)


def minimize(est, f, theta0):
    """scipy's L-BFGS-B from ``theta0`` with ``max_fun``, ``max_iter``, ``gtol=tol``;
    scikit-learn's ConvergenceWarning when it did not converge."""
    tracked = _Tracked(f)
    try:
        result = scipy.optimize.minimize(
            tracked, theta0, method="L-BFGS-B", jac=True, callback=tracked.iteration,
            options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=5)
        result = tracked.interrupted(theta0)
    if result.status != 0:
        message = result.message
        message = message.decode("latin1") if isinstance(message, bytes) else message
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status="
                      f"{result.status}):\n{message}.\n\nIncrease the number of iterations to "
                      f"improve the convergence (max_iter={est.max_iter}).\nYou might also "
                      "want to scale the data.", ConvergenceWarning, stacklevel=5)
    return result


def fit_lbfgs(est, X, Y, sample_weight):
    """Train ``est`` with L-BFGS-B on host ``X`` ``(m, n_features)`` and targets ``Y``
    ``(m, n_outputs)``."""
    model = est._model_for_weights()
    params = est._host_params()
    result = minimize(est, objective(est, model, X, est._target_matrix(Y), sample_weight),
                      pack(params))
    est.n_iter_ = min(int(result.nit), int(est.max_iter))
    est.loss_ = float(result.fun)
    if est.verbose:
        print(f"L-BFGS-B: {result.nit} iterations, {result.nfev} evaluations, loss = "
              f"{est.loss_:.8f}")
    theta = np.asarray(result.x)
    if not np.isfinite(theta).all() or not math.isfinite(est.loss_):
        raise ValueError("Solver produced non-finite parameter weights. The input data may "
                         "contain large values and need to be preprocessed.")
    model.params = tuple((model.backend.asarray(W, model.dtype),
                          model.backend.asarray(b, model.dtype)) for W, b in unpack(theta, params))
    est._store_weights(model)
