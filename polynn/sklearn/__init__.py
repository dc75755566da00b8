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
  reported (``loss_``, ``loss_curve_``) is polynn's divided by ``s``: scikit-learn's value.
  Squared error with k > 1 outputs is the exception scikit-learn makes: it reports, stops on
  and hands L-BFGS the *mean* over outputs while its gradient is that of the sum; the estimator
  does the same (``reported.py``: ``(G + (k - 1) P) / k`` from the value G its gradient
  follows and the penalty P; exact with one batch per epoch and for L-BFGS, the penalty of
  mini-batches taken as the mean of the epoch's first and last weights'), while ``pn.MLP``'s
  loss stays the mean squared error whose gradient it is. ``sample_weight`` makes each
  batch's data loss ``Σ wᵢ lᵢ / Σ wᵢ`` and divides the
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
  values. The backend model is derived from them and from the parameters (``backend``,
  ``device``, ``activation``, ...) whenever it is needed, so changing either is always seen;
  it is never pickled: an estimator's pickled state is host arrays and configuration (the
  optimizer's velocities or moments included), so it loads in any process, also without the
  library it trained on (``set_params(backend="numpy")`` then predicts with NumPy). They are
  float32 for float32 input and float64 otherwise (``dtype=`` overrides; float64 on JAX turns on
  x64 mode), and predictions come in that dtype, as in scikit-learn.
- **Targets.** Labels go through scikit-learn's ``LabelBinarizer``: two classes train one
  logistic unit, more a softmax layer, a 2-D 0/1 indicator (multilabel) one logistic unit per
  label with binary cross-entropy. The regressor's ``loss="poisson"`` uses polynn's Poisson pair
  (exponential output, half Poisson deviance).
- **Inputs.** Sparse ``X`` is densified for training (refused above ``MAX_DENSE_ELEMENTS``, with
  a message) and in row blocks for prediction. With ``sklearn.set_config(array_api_dispatch=
  True)``, an ``X`` of PyTorch / JAX / CuPy / array-api-strict trains on its own backend and
  device (validated on a host copy; unless ``backend`` is given) and predictions come back in
  the input's namespace and device (non-numeric labels stay NumPy); ``y`` and ``sample_weight``
  of any library are host data. Without dispatch every output is NumPy. Dispatch needs SciPy's
  array API support: set the environment variable ``SCIPY_ARRAY_API=1`` before Python imports
  scipy or scikit-learn (``SCIPY_ARRAY_API=1 python script.py``); without it scikit-learn's
  ``set_config`` / ``config_context(array_api_dispatch=True)`` raises a RuntimeError that says
  so (tested in ``tests/test_sklearn_extra.py``).

Modules: ``inputs`` (dispatch, dense/sparse, host copies), ``backend_model`` (the backend model
derived from an estimator's state, the optimizer's state as host data), ``stochastic`` (sgd and
adam: learning rate and stopping rules), ``lbfgs``, ``_base`` (the shared estimator),
``classifier``, ``regressor``, ``reported`` (scikit-learn's multi-output squared error value).
"""

# The extra's libraries are named with the install command when missing (as polynn names a
# missing backend), not left as a bare ModuleNotFoundError from deep inside an import.
EXTRA_PROJECTS = {"sklearn": "scikit-learn", "scipy": "scipy"}

try:
    from polynn.sklearn.classifier import MLPClassifier
    from polynn.sklearn.regressor import MLPRegressor
except ModuleNotFoundError as error:
    missing = (error.name or "").partition(".")[0]
    if missing not in EXTRA_PROJECTS:
        raise
    raise ModuleNotFoundError(
        f"polynn.sklearn needs {EXTRA_PROJECTS[missing]}, which is not installed: "
        'pip install "polynn[sklearn]"', name=error.name) from error

__all__ = ["MLPClassifier", "MLPRegressor"]
