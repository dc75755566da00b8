"""The MLP class: configuration + parameters + backend; fit / predict / score / save."""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral

import numpy as np
from array_api_compat import array_namespace, to_device

from polynn.backend import get_backend, to_host
from polynn.datasets import train_test_split
from polynn.init import INITIALIZERS, init_params
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import ACTIVATIONS, get_activation
from polynn.nn.losses import CLASSIFIERS, OUTPUTS
from polynn.nn.optim import make_optimizer
from polynn.train import DivergenceError, History, TrainSpec, run


class MLP:
    """A multilayer perceptron whose math runs on any array API backend.

    Parameters
    ----------
    layer_sizes : sequence of int, length >= 2
        ``[n_features, hidden..., n_outputs]``. Layer l has ``W`` ``(n_{l-1}, n_l)`` and ``b``
        ``(n_l,)``.
    activation : "relu" | "leaky_relu" | "tanh" | "sigmoid" | "identity"
        Hidden-layer activation (``negative_slope`` configures leaky_relu; default 0.01).
    output : "softmax" | "sigmoid" | "identity" | "poisson"
        Output/loss pair: softmax + cross-entropy (integer labels 0..k-1), sigmoid + binary
        cross-entropy (one output unit and 0/1 labels ``(m,)``; or k units and a multilabel 0/1
        indicator ``y`` ``(m, k)``), identity + mean squared error, poisson: exp output + half
        Poisson deviance (non-negative targets, e.g. counts).
    backend : "numpy" | "jax" | "cupy" | "torch" | "array_api_strict", default ``$POLYNN_BACKEND``
        or "numpy".
    device : backend-specific device ("cpu", "gpu:0", "cuda:1", ...) or None for the default.
    dtype : "float32" | "float64" | "bfloat16" (JAX and PyTorch only).
    init : "he" (N(0, 2/n_in)) | "glorot" (uniform); drawn on the host, so a seed gives the same
        initial weights, bit for bit, on every backend.
    seed : int; fixes the initial weights and the shuffling of every later ``fit``.
    mesh : JAX only: None (one device), a device count N, "all", a ``(data, model)`` pair or a
        ``jax.sharding.Mesh`` with a "data" (and optionally "model") axis: train data-parallel
        over the "data" devices (and split wide hidden layers over "model"); see
        :func:`polynn.backend.resolve_mesh` and :mod:`polynn.distributed`. Results equal the
        one-device run up to rounding.
    """

    def __init__(self, layer_sizes, *, activation="relu", output="softmax", backend=None,
                 device=None, dtype="float32", init="he", seed=0, negative_slope=0.01,
                 mesh=None):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{sorted(ACTIVATIONS)}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {sorted(OUTPUTS)}")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; choose one of {sorted(INITIALIZERS)}")
        self.activation, self.output, self.init = activation, output, init
        self.negative_slope = float(negative_slope)
        self.seed = seed
        self.backend = get_backend(backend, device, mesh)
        self.dtype = dtype
        self._dtype = self.backend.dtype(dtype)  # validates the name, enables x64 on JAX
        self.params = self._to_backend(init_params(self.layer_sizes, init, seed))
        self._reset_training_state()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params, *, activation="relu", output="softmax", backend=None,
                    device=None, dtype=None, seed=0, negative_slope=0.01, mesh=None):
        """Build a model around existing parameters: a sequence of ``(W, b)`` pairs as NumPy or
        any backend's arrays (copied to the chosen backend). ``dtype`` defaults to W's dtype."""
        host = tuple((to_host(W), to_host(b)) for W, b in params)
        if not host:
            raise ValueError("params is empty: need at least one (W, b) layer")
        sizes = [host[0][0].shape[0]] if host[0][0].ndim == 2 else None
        for layer, (W, b) in enumerate(host):
            if W.ndim != 2 or b.shape != (W.shape[1],) or W.shape[0] != sizes[-1]:
                raise ValueError(f"layer {layer}: W {W.shape} and b {b.shape} do not chain "
                                 f"(expected W ({sizes[-1]}, n_out) and b (n_out,))")
            sizes.append(W.shape[1])
        if dtype is None:
            dtype = str(host[0][0].dtype)
            dtype = dtype if dtype in ("float32", "float64", "bfloat16") else "float32"
        model = cls(sizes, activation=activation, output=output, backend=backend,
                    device=device, dtype=dtype, seed=seed, negative_slope=negative_slope,
                    mesh=mesh)
        model.params = model._to_backend(host)
        return model

    def _to_backend(self, host_params):
        return tuple((self.backend.asarray(W, self.dtype), self.backend.asarray(b, self.dtype))
                     for W, b in host_params)

    def _reset_training_state(self):
        self._optimizer = None
        self._opt_state = None
        self._shuffle_rng = np.random.default_rng(self.seed)

    @property
    def _act(self):
        return get_activation(self.activation, negative_slope=self.negative_slope)

    @property
    def n_features(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    def __repr__(self) -> str:
        return (f"MLP({self.layer_sizes}, activation={self.activation!r}, output={self.output!r}, "
                f"backend={self.backend.name!r}, device={self.backend.device_name!r}, "
                f"dtype={self.dtype!r})")

    # -- data ------------------------------------------------------------------------------------
    def _inputs(self, X, name="X"):
        """``X`` validated as ``(m, n_features)`` with finite values, as a backend array of the
        model's dtype. Data already on this backend is checked there and never leaves it."""
        resident = self._resident(X, name)
        if resident is not None:
            return resident
        X = check_X(X, self.n_features, name)
        if self.backend.mesh is not None:
            return self.backend.place_rows(X, self.dtype)
        return self.backend.asarray(X, self.dtype, copy=False)

    def _resident(self, X, name="X"):
        """``X`` checked and cast on the device if it is already an array of this (non-NumPy)
        backend — no round trip through the host for GPU data; None otherwise."""
        if self.backend.name == "numpy" or isinstance(X, np.ndarray):
            return None
        try:
            xp = array_namespace(X)
        except TypeError:
            return None
        if xp is not self.backend.xp:
            return None
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (m examples, n_features), got shape "
                             f"{tuple(X.shape)}")
        if X.shape[0] == 0 or X.shape[1] != self.n_features:
            raise ValueError(f"{name} has shape {tuple(X.shape)} but the model's first layer "
                             f"expects {self.n_features} features (and at least one row)")
        if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
            raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
        if X.dtype != self._dtype:
            X = xp.astype(X, self._dtype)
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError(f"{name} contains NaN or infinity")
        if self.backend.mesh is not None:
            # A global array already on this mesh keeps its placement (e.g. rows that each
            # process contributed, polynn.distributed.global_rows); others are split over it.
            if getattr(getattr(X, "sharding", None), "mesh", None) != self.backend.mesh:
                X = self.backend.place_rows(X)
        elif self.backend.device is not None:
            X = to_device(X, self.backend.device)
        return X

    def _targets(self, y, m, name="y", columns=False):
        """The target matrix on the backend in the model's dtype: ``(m, n_outputs)``, or
        ``(n_outputs, m)`` with ``columns`` (the training layout, transposed on the host)."""
        T = encode_targets(y, self.output, self.n_outputs, m, name)
        if columns:
            T = np.ascontiguousarray(T.T)
        if self.backend.mesh is not None:
            return self.backend.place_rows(T, self.dtype, axis=1 if columns else 0)
        return self.backend.asarray(T, self.dtype, copy=False)

    # -- the math, exposed -----------------------------------------------------------------------
    def forward(self, X):
        """The output layer's pre-activation Z ``(m, n_outputs)`` as a backend array."""
        return self.backend.call(nn_mlp.forward, self.params, self._inputs(X),
                                 static=dict(activation=self._act))

    def _weights(self, sample_weight, m):
        if sample_weight is None:
            return None
        weights = check_sample_weight(sample_weight, m)
        if self.backend.mesh is not None:
            return self.backend.place_rows(weights, self.dtype)
        return self.backend.asarray(weights, self.dtype)

    def value_and_grad(self, X, y, *, l2=0.0, sample_weight=None):
        """The regularised loss (float) and the hand-derived gradients: a tuple of ``(dW, db)``
        backend arrays per layer, shaped like ``params``. ``sample_weight`` ``(m,)``: the data
        loss is Σ wᵢ lᵢ / Σ wᵢ."""
        Xd = self._inputs(X)
        m = Xd.shape[0]
        loss, grads = self.backend.call(
            nn_mlp.value_and_grad, self.params, Xd, self._targets(y, m),
            sample_weight=self._weights(sample_weight, m),
            static=dict(activation=self._act, output=self.output, l2=_check_l2(l2)))
        return float(to_host(loss)), grads

    def loss(self, X, y, *, l2=0.0, sample_weight=None) -> float:
        """The regularised loss of the current parameters on (X, y), as a float."""
        Xd = self._inputs(X)
        m = Xd.shape[0]
        value = self.backend.call(
            nn_mlp.loss, self.params, Xd, self._targets(y, m),
            sample_weight=self._weights(sample_weight, m),
            static=dict(activation=self._act, output=self.output, l2=_check_l2(l2)))
        return float(to_host(value))

    # -- training --------------------------------------------------------------------------------
    def fit(self, X, y, *, lr=None, l2=0.0, epochs=100, batch_size=None, shuffle=True, seed=None,
            optimizer="sgd", momentum=0.9, schedule=None, validation_split=None,
            validation_data=None, patience=None, min_delta=0.0, restore_best_weights=True,
            progress=False, callback=None, sample_weight=None, l2_per_weight=False) -> History:
        """Train on ``X`` ``(m, n_features)`` and labels/targets ``y``; returns a :class:`History`.

        Full batch when ``batch_size`` is None (each step is an epoch; ``history.loss[k]`` is the
        loss of step k's forward pass, before its update), mini-batches otherwise (per-epoch mean
        loss). Calling ``fit`` again continues from the current weights, and from the optimizer
        state and shuffling stream when the optimizer settings are unchanged.

        ``optimizer``: "sgd", "momentum", "nesterov" or "adam"; ``lr`` defaults to 0.1 for sgd,
        0.01 for momentum/nesterov and 0.001 for adam; ``schedule`` is None (constant) or a
        schedule object from ``polynn.nn.optim``; ``optimizer`` may also be an optimizer
        object from ``polynn.nn.optim`` (e.g. ``Adam(Constant(1e-3), eps=1e-7)``), learning rate
        included. ``validation_split`` (a fraction, taken from
        the end of the data like Keras) or ``validation_data=(X_val, y_val)`` add validation
        loss/accuracy per epoch; ``patience`` stops after that many epochs without improvement of
        the validation loss by more than ``min_delta`` and restores the best weights.
        ``seed`` reseeds the shuffling; Ctrl-C stops after the current step and keeps the
        weights. ``callback(info)`` runs after every epoch with a :class:`polynn.train.EpochInfo`
        (epoch count, history, current row-layout params) and stops training by returning True.
        A loss that becomes NaN/inf raises :class:`DivergenceError` and keeps the weights from
        before the divergence.

        ``sample_weight`` ``(m,)``: non-negative example weights; each batch's data loss becomes
        its weighted mean Σ wᵢ lᵢ / Σ wᵢ (as ``numpy.average``; uniform weights change nothing).
        ``l2_per_weight=True`` also divides the L2 term by the batch's mean weight, which is
        scikit-learn's convention (its alpha is normalised by the batch's sum of weights).
        """
        resident = None if validation_split is not None else self._resident(X)
        X = check_X(X, self.n_features) if resident is None else resident
        m = X.shape[0]
        y = to_host(y)
        if y.shape[:1] != (m,):
            raise ValueError(f"X has {m} rows but y has shape {y.shape}: they must have the "
                             "same number of rows")
        validation = None
        weights = None if sample_weight is None else check_sample_weight(sample_weight, m)
        if validation_split is not None and validation_data is not None:
            raise ValueError("give validation_split or validation_data, not both")
        if validation_split is not None:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            # A seeded random (stratified for classifiers) split, not the last rows: data sets
            # often come sorted by class. The same seed gives the same split on every fit call.
            stratify = self.output in CLASSIFIERS and y.ndim == 1 and np.issubdtype(
                y.dtype, np.integer)
            # Split row indices, so that X, y and the sample weights split alike.
            train, held_out, y, y_val = train_test_split(
                np.arange(m)[:, None], y, test_size=validation_split, stratify=stratify,
                seed=self.seed if seed is None else seed)
            X, X_val = X[train[:, 0]], X[held_out[:, 0]]
            if weights is not None:
                weights = weights[train[:, 0]]
            if X.shape[0] == 0:
                raise ValueError(f"validation_split={validation_split} leaves no training rows")
            validation_data, m = (X_val, y_val), X.shape[0]
        if validation_data is not None:
            X_val, y_val = validation_data
            X_val = self._inputs(X_val, "X_val")
            validation = (X_val, self._targets(y_val, X_val.shape[0], "y_val", columns=True))
        if patience is not None and validation is None:
            raise ValueError("early stopping (patience=...) needs validation_split or "
                             "validation_data")
        if batch_size is not None and (not isinstance(batch_size, Integral) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if not isinstance(epochs, Integral) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        T = self._targets(y, m, columns=True)
        if weights is not None:
            weights = self.backend.place_rows(weights, self.dtype)
        if resident is not None:
            Xd = resident
        elif self.backend.mesh is not None:
            Xd = X  # placed below
        elif self.backend.name == "numpy":
            Xd = X  # host data is the backend's: batches are gathered and cast when used
        else:
            Xd = self.backend.asarray(X, self.dtype, copy=False)
        if self.backend.mesh is not None and batch_size is not None and batch_size < m:
            # Mini-batches on a mesh: every device holds all rows of host data, so gathering a
            # batch needs no communication and a step's only collective is the gradient
            # all-reduce (from rows split over the devices, XLA all-reduces every gathered
            # batch: more bytes than the gradients for an MNIST-sized network).
            T, weights = self.backend.replicate((T, weights))
            if resident is None:
                Xd = self.backend.asarray(X, self.dtype, copy=False)  # replicated
        elif self.backend.mesh is not None and resident is None:
            Xd = self.backend.place_rows(X, self.dtype)
        opt = self._optimizer_for(optimizer, lr, momentum, schedule)
        if seed is not None:
            self._shuffle_rng = np.random.default_rng(seed)
        spec = TrainSpec(self.backend, self._act, self.output, _check_l2(l2), opt, int(epochs),
                         batch_size, shuffle, self._shuffle_rng, dtype=self._dtype,
                         patience=patience, min_delta=min_delta,
                         restore_best=restore_best_weights, progress=progress, callback=callback,
                         l2_per_weight=bool(l2_per_weight))
        try:
            self.params, self._opt_state, history = run(spec, self.params, self._opt_state, Xd,
                                                        T, validation, weights=weights)
        except DivergenceError as err:
            self.params, self._opt_state = err.params, err.opt_state
            raise
        return history

    def partial_fit(self, X, y, **fit_options) -> History:
        """One epoch over (X, y) that continues the weights, optimizer state and shuffling
        stream: for data that arrives in pieces. Takes ``fit``'s options except ``epochs``."""
        if "epochs" in fit_options:
            raise TypeError("partial_fit runs exactly one epoch; use fit(epochs=...) for more")
        return self.fit(X, y, epochs=1, **fit_options)

    def save(self, path) -> None:
        """Write weights and configuration to one ``.safetensors`` file (no pickle),
        atomically; see :func:`polynn.load` and :mod:`polynn.io` for the layout."""
        from polynn.io import save  # here, not at the top: polynn.io imports this module

        save(self, path)

    def save_checkpoint(self, path) -> None:
        """Like :meth:`save`, plus the optimizer, its state and the shuffling stream, so that
        :func:`polynn.io.load_checkpoint` resumes training exactly where it stopped."""
        from polynn.io import save_checkpoint  # (polynn.io imports this module)

        save_checkpoint(self, path)

    def _optimizer_for(self, name, lr, momentum, schedule):
        if not isinstance(name, str):
            # An optimizer object from polynn.nn.optim: it carries its own learning rate.
            if lr is not None or schedule is not None:
                raise ValueError("optimizer is an object with its own learning rate: give lr "
                                 "and schedule only with an optimizer name")
            opt = name
        else:
            defaults = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001}
            if lr is None:
                lr = defaults.get(name, 0.1)
            options = {"momentum": momentum} if name in ("momentum", "nesterov") else {}
            opt = make_optimizer(name, schedule if schedule is not None else lr, **options)
        previous = self._optimizer
        same_kind = previous is not None and dataclasses.replace(
            previous, learning_rate=opt.learning_rate) == opt
        if not same_kind or self._opt_state is None:
            # A new optimizer (or new hyper-parameters) starts from a fresh state; a changed
            # learning rate alone keeps the momentum / moment buffers and the step count.
            self._opt_state = opt.init(self.params)
        self._optimizer = opt
        return opt

    # -- inference -------------------------------------------------------------------------------
    @property
    def _multilabel(self) -> bool:
        return self.output == "sigmoid" and self.n_outputs > 1

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities as a host NumPy array: ``(m, k)`` for softmax; ``(m, 2)`` columns
        [P(0), P(1)] for one sigmoid unit; ``(m, k)`` per-label P(1) for multilabel."""
        if self.output not in CLASSIFIERS:
            raise ValueError("predict_proba needs a classifier (output='softmax' or 'sigmoid')")
        P = to_host(self.backend.call(nn_mlp.predict_output, self.params, self._inputs(X),
                                      static=dict(activation=self._act, output=self.output)))
        if self.output == "sigmoid" and not self._multilabel:
            P = np.concatenate([1.0 - P, P], axis=1)
        return P

    def predict(self, X) -> np.ndarray:
        """As a host NumPy array: predicted labels (int64 ``(m,)``) for classifiers, a 0/1
        indicator (int64 ``(m, k)``) for multilabel, or values for regression (``(m,)`` with one
        output, else ``(m, k)``; the predicted means e^z for poisson)."""
        Z = to_host(self.forward(X))
        if self.output in ("identity", "poisson"):
            Y = np.exp(Z) if self.output == "poisson" else Z
            return Y[:, 0] if Y.shape[1] == 1 else Y
        if self.output == "sigmoid":
            hits = (Z > 0).astype(np.int64)
            return hits if self._multilabel else hits[:, 0]
        return np.argmax(Z, axis=1).astype(np.int64)

    def score(self, X, y) -> float:
        """Accuracy for classifiers (subset accuracy for multilabel: every label right); the
        coefficient of determination R² for regression (identity and poisson)."""
        pred = self.predict(X)
        if self.output in CLASSIFIERS:
            labels = encode_targets(y, self.output, self.n_outputs, pred.shape[0])
            if self._multilabel:
                return float(np.mean(np.all(pred == labels, axis=1)))
            truth = labels.argmax(axis=1) if self.output == "softmax" else labels[:, 0]
            return float(np.mean(pred == truth))
        y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
        ss_res = np.sum((y - pred) ** 2)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0

    def to(self, backend=None, device=None, dtype=None, mesh=None) -> MLP:
        """A copy of this model on another backend/device/dtype/mesh (same weights)."""
        return MLP.from_params(self.params, activation=self.activation, output=self.output,
                               backend=backend, device=device, dtype=dtype or self.dtype,
                               seed=self.seed, negative_slope=self.negative_slope, mesh=mesh)

    def host_params(self):
        """The parameters as host NumPy arrays: a tuple of ``(W, b)``."""
        return tuple((to_host(W), to_host(b)) for W, b in self.params)


# --- validation (host side, before anything reaches a backend) ---------------------------------
def _check_layer_sizes(layer_sizes):
    try:
        sizes = [int(n) for n in layer_sizes]
    except (TypeError, ValueError):
        raise ValueError(f"layer_sizes must be a sequence of positive integers, got "
                         f"{layer_sizes!r}") from None
    if len(sizes) < 2 or any(n < 1 for n in sizes) or any(
            isinstance(n, float) and not float(n).is_integer() for n in layer_sizes):
        raise ValueError(f"layer_sizes needs at least 2 positive integers [n_features, ..., "
                         f"n_outputs], got {list(layer_sizes)!r}")
    return sizes


def _check_l2(l2):
    l2 = float(l2)
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a non-negative finite number, got {l2!r}")
    return l2


def check_X(X, n_features, name="X") -> np.ndarray:
    """``X`` as a host floating array of shape ``(m, n_features)`` with finite values."""
    X = to_host(X) if not isinstance(X, np.ndarray) else X
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (m examples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features but the model's first layer expects "
                         f"{n_features} (layer_sizes[0])")
    # min/max propagate NaN and ±inf without allocating a mask the size of X (isfinite(X).all()
    # took 0.25 s on 60,000 x 784); the mask is built only to name the first bad entry.
    if np.issubdtype(X.dtype, np.floating) and not (np.isfinite(X.min())
                                                     and np.isfinite(X.max())):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name} contains NaN or infinity (first at row {bad[0]}, column "
                         f"{bad[1]})")
    return X


def check_sample_weight(sample_weight, m, name="sample_weight") -> np.ndarray:
    """``sample_weight`` as a host float64 ``(m,)`` array of finite non-negative weights with a
    positive sum."""
    w = to_host(sample_weight) if not isinstance(sample_weight, np.ndarray) else sample_weight
    w = np.asarray(w)
    if not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    if w.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},), one weight per row of X, got {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or w.min() < 0 or not w.sum() > 0:
        raise ValueError(f"{name} must be finite and non-negative with a positive sum")
    return w


def encode_targets(y, output, n_outputs, m, name="y") -> np.ndarray:
    """Labels/targets as the float64 target matrix ``(m, n_outputs)`` the loss pairs expect:
    one-hot rows (softmax), one 0/1 column (sigmoid), the values themselves (identity)."""
    y = to_host(y) if not isinstance(y, np.ndarray) else y
    y = np.asarray(y)
    if y.shape[:1] != (m,):
        raise ValueError(f"X has {m} rows but {name} has shape {y.shape}: they must have the "
                         "same number of rows")
    if output in ("identity", "poisson"):
        if not np.issubdtype(y.dtype, np.number):
            raise TypeError(f"{name} must hold numbers for regression, got dtype {y.dtype}")
        T = y.reshape(m, -1).astype(np.float64)
        if T.shape[1] != n_outputs:
            raise ValueError(f"{name} has {T.shape[1]} target column(s) but the model has "
                             f"{n_outputs} output unit(s) (layer_sizes[-1])")
        if not np.isfinite(T).all():
            raise ValueError(f"{name} contains NaN or infinity")
        if output == "poisson" and T.min() < 0:
            raise ValueError(f"{name} has negative values (e.g. {T[T < 0][:3].tolist()}); "
                             "output='poisson' models non-negative targets such as counts")
        return T
    if output == "sigmoid" and n_outputs > 1:
        # Multilabel: a 0/1 indicator matrix, one column per output unit.
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{name} must be a 0/1 indicator matrix of shape ({m}, {n_outputs}) "
                             f"for output='sigmoid' with {n_outputs} units (multilabel), got "
                             f"shape {y.shape}")
        T = np.asarray(y, dtype=np.float64) if np.issubdtype(y.dtype, np.number) or (
            y.dtype == bool) else None
        if T is None or not np.all((T == 0) | (T == 1)):
            raise ValueError(f"{name} must hold only 0 and 1 for multilabel output='sigmoid'")
        return T
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not np.issubdtype(y.dtype, np.floating):
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels 0..k-1; it has non-integer "
                             f"values such as {y[~(y == np.round(y))][:3]}")
    labels = y.astype(np.int64)
    n_classes = 2 if output == "sigmoid" else n_outputs
    if labels.min() < 0 or labels.max() >= n_classes:
        bad = labels[(labels < 0) | (labels >= n_classes)][:3]
        raise ValueError(f"{name} has labels outside 0..{n_classes - 1} (e.g. {bad.tolist()}); "
                         f"output={output!r} with {n_outputs} output unit(s) takes labels "
                         f"0..{n_classes - 1}")
    if output == "sigmoid":
        return labels.reshape(m, 1).astype(np.float64)
    T = np.zeros((m, n_outputs))
    T[np.arange(m), labels] = 1.0
    return T
