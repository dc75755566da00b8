"""The MLP class: configuration + parameters + backend; fit / predict / score / save."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from array_api_compat import array_namespace, to_device

from polynn.backend import BACKENDS, DTYPES, Backend, get_backend, to_host
from polynn.datasets import split_indices
from polynn.init import INITIALIZERS, init_params
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import ACTIVATIONS, get_activation
from polynn.nn.losses import CLASSIFIERS, OUTPUTS, get_output
from polynn.nn.optim import OPTIMIZERS, make_optimizer
from polynn.train import DivergenceError, History, TrainSpec, eval_chunk_rows, run, take_rows
from polynn.validate import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_resident_X,
    check_sample_weight,
    check_seed,
    check_validation_split,
    check_X,
    encode_targets,
    host_array,
)
from polynn.validate import check_l2 as _check_l2
from polynn.validate import check_layer_sizes as _check_layer_sizes


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
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("output", output, OUTPUTS)
        check_choice("init", init, INITIALIZERS)
        if not isinstance(backend, Backend) and backend is not None:
            check_choice("backend", backend, BACKENDS)
        check_choice("dtype", dtype, DTYPES)
        self.activation, self.output, self.init = activation, output, init
        # leaky_relu's slope for negative inputs (0 would be relu; NaN poisons every gradient).
        self.negative_slope = check_real("negative_slope", negative_slope, 0, low_open=True)
        self.seed = check_seed(seed)
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
            return take_rows(self.backend, resident, slice(None), self.dtype, self._dtype)
        X = check_X(X, self.n_features, name, self.dtype)
        if self.backend.mesh is not None:
            return self.backend.place_rows(X, self.dtype)
        return self.backend.asarray(X, self.dtype, copy=False)

    def _resident(self, X, name="X"):
        """``X`` checked on the device if it is already an array of this (non-NumPy) backend —
        no round trip through the host for GPU data, and no copy: batches and chunks are cast
        to the model's dtype when used; None for any other array."""
        if self.backend.name == "numpy" or isinstance(X, np.ndarray):
            return None
        try:
            xp = array_namespace(X)
        except TypeError:
            return None
        if xp is not self.backend.xp:
            return None
        X = check_resident_X(X, xp, self._dtype, self.dtype, self.n_features, name, cast=False)
        if self.backend.mesh is not None:
            # A global array already on this mesh keeps its placement (e.g. rows that each
            # process contributed, polynn.distributed.global_rows); others are split over it.
            if getattr(getattr(X, "sharding", None), "mesh", None) != self.backend.mesh:
                X = self.backend.place_rows(X)
        elif self.backend.device is not None:
            X = to_device(X, self.backend.device)
        return X

    def _host_batches(self) -> bool:
        """True where batches are best gathered from host data when used (the backend computes
        in host memory: NumPy, array-api-strict, PyTorch on the CPU); False where the data
        lives on the device, in one copy (JAX, CuPy, PyTorch on a GPU)."""
        if self.backend.name == "torch":
            return getattr(self.backend.device, "type", "cpu") == "cpu"
        return self.backend.name in ("numpy", "array_api_strict")

    def _device_copy(self, X):
        """Host ``X`` as the one device-resident copy in the model's dtype."""
        return self.backend.asarray(X, self.dtype, copy=False)

    def _columns(self, y, m, name="y", host=False):
        """Targets as columns ``(n_outputs, m)`` in the model's dtype: on the backend, or as
        a host array when ``host`` (float64 for bfloat16, which NumPy lacks: cast per batch on
        the device, rounded once)."""
        y = host_array(y, name)
        if y.shape[:1] != (m,):
            raise ValueError(f"X has {m} rows but {name} has shape {y.shape}: they must have "
                             "the same number of rows")
        T = np.empty((self.n_outputs, m), np.float64 if self.dtype == "bfloat16" else self.dtype)
        # Encoded a block of rows at a time: the float64 (rows, k) matrix encode_targets builds
        # never exists for all rows (it is twice T's size in float32).
        block = max(1, (4 << 20) // (8 * self.n_outputs))
        try:
            for start in range(0, m, block):
                part = encode_targets(y[start : start + block], self.output, self.n_outputs,
                                      min(block, m - start), name, self.dtype)
                T[:, start : start + block] = part.T
        except (TypeError, ValueError):
            # The whole y names the culprit with its row number (error path only).
            encode_targets(y, self.output, self.n_outputs, m, name, self.dtype)
            raise
        return T if host else self.backend.asarray(T, self.dtype, copy=False)

    def _targets(self, y, m, name="y", columns=False):
        """The target matrix on the backend in the model's dtype: ``(m, n_outputs)``, or
        ``(n_outputs, m)`` with ``columns`` (the training layout, transposed on the host)."""
        T = encode_targets(y, self.output, self.n_outputs, m, name, self.dtype)
        if columns:
            T = np.ascontiguousarray(T.T)
        if self.backend.mesh is not None:
            return self.backend.place_rows(T, self.dtype, axis=1 if columns else 0)
        return self.backend.asarray(T, self.dtype, copy=False)

    # -- the math, exposed -----------------------------------------------------------------------
    def forward(self, X, *, batch_size=None):
        """The output layer's pre-activation Z ``(m, n_outputs)`` as a backend array, computed
        in chunks of ``batch_size`` rows (see :meth:`predict`)."""
        parts = [Z for _, _, Z in self._chunks(X, batch_size, "forward")]
        return parts[0] if len(parts) == 1 else self.backend.xp.concat(parts, axis=0)

    def _chunks(self, X, batch_size, what, name="X"):
        """Yield ``(start, stop, out)`` over consecutive row chunks of validated ``X``: ``out``
        is the backend array ``(stop - start, n_outputs)`` of the chunk's output
        pre-activations (``what="forward"``) or outputs (probabilities or values,
        ``what="output"``). Each chunk is cast to the model's dtype when used, so no copy of
        ``X`` and no activations for all rows exist at once."""
        resident = self._resident(X, name)
        X = resident if resident is not None else check_X(X, self.n_features, name,
                                                          self.dtype)
        chunks = self._row_chunks(X.shape[0], batch_size)
        infer = _inference(self.backend, self._act, self.output, what)
        params_t = self.backend.call(nn_mlp.to_columns, self.params)
        for start, stop in chunks:
            part = take_rows(self.backend, X, slice(start, stop), self.dtype, self._dtype)
            yield start, stop, infer(params_t, part)

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

    def loss(self, X, y, *, l2=0.0, sample_weight=None, batch_size=None) -> float:
        """The regularised loss of the current parameters on (X, y), as a float; evaluated in
        chunks of ``batch_size`` rows (see :meth:`predict`), each chunk's (weighted) mean loss
        counted by its rows (or its sum of weights)."""
        resident = self._resident(X)
        X = resident if resident is not None else check_X(X, self.n_features, "X", self.dtype)
        m = X.shape[0]
        T = encode_targets(y, self.output, self.n_outputs, m, "y", self.dtype)
        w = None if sample_weight is None else check_sample_weight(sample_weight, m)
        l2 = _check_l2(l2)
        total = 0.0
        for start, stop in self._row_chunks(m, batch_size):
            share = (stop - start) if w is None else float(w[start:stop].sum())
            if share == 0:
                continue  # rows of weight 0 add nothing (and their weighted mean is 0/0)
            part = take_rows(self.backend, X, slice(start, stop), self.dtype, self._dtype)
            chunk_weights = None if w is None else self.backend.asarray(w[start:stop],
                                                                        self.dtype)
            value = self.backend.call(
                nn_mlp.loss, self.params, part, self.backend.asarray(T[start:stop], self.dtype),
                sample_weight=chunk_weights,
                static=dict(activation=self._act, output=self.output, l2=0.0))
            total += float(to_host(value)) * share
        penalty = self.backend.call(_penalty, self.params, static=dict(l2=l2))
        return total / (m if w is None else float(w.sum())) + float(to_host(penalty))

    def _row_chunks(self, m, batch_size):
        """``(start, stop)`` of consecutive chunks of ``batch_size`` rows (default: about
        ``EVAL_CHUNK_BYTES`` of activations per chunk) out of ``m``."""
        if batch_size is None:
            batch_size = eval_chunk_rows(self.layer_sizes,
                                         np.dtype(_itemsize_dtype(self.dtype)).itemsize)
        else:
            check_int("batch_size", batch_size, 1)
        return [(start, min(m, start + int(batch_size))) for start in range(0, m, int(batch_size))]

    # -- training --------------------------------------------------------------------------------
    def fit(self, X, y, *, lr=None, l2=0.0, epochs=100, batch_size=None, shuffle=True, seed=None,
            optimizer="sgd", momentum=0.9, schedule=None, validation_split=None,
            validation_data=None, patience=None, min_delta=0.0, restore_best_weights=True,
            progress=False, callback=None, sample_weight=None, l2_per_weight=False,
            stream=False) -> History:
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

        Memory: no copy of ``X`` is made on NumPy, array-api-strict and PyTorch on the CPU:
        each mini-batch is gathered (and cast to the model's dtype) when it is used, also from a
        ``numpy.memmap`` (see :func:`polynn.datasets.load_npy`). JAX, CuPy and PyTorch on a GPU
        hold one device copy of the data in the model's dtype; ``stream=True`` keeps host data
        on the host instead and moves the batches as they are needed (on JAX, chunks of batches
        moved while the previous chunk trains), for data larger than device memory. Streaming
        gives the same parameters as the resident path (the same batches in the same order). It
        needs mini-batches (``batch_size`` < the number of rows). ``validation_split`` takes its
        rows by index (no copy) and validation is evaluated in chunks of rows.
        """
        _check_fit_options(lr=lr, l2=l2, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                           seed=seed, optimizer=optimizer, momentum=momentum, schedule=schedule,
                           validation_split=validation_split, validation_data=validation_data,
                           patience=patience, min_delta=min_delta,
                           restore_best_weights=restore_best_weights, progress=progress,
                           callback=callback, l2_per_weight=l2_per_weight)
        check_bool("stream", stream)
        resident = self._resident(X)
        if stream and resident is not None:
            raise ValueError("stream=True streams host data (a NumPy array or memmap), but X is "
                             f"already a {self.backend.name} array on the device")
        X = check_X(X, self.n_features, "X", self.dtype) if resident is None else resident
        m = X.shape[0]
        y = host_array(y, "y")
        if validation_split is not None:
            check_validation_split(validation_split, m)
        if y.shape[:1] != (m,):
            raise ValueError(f"X has {m} rows but y has shape {y.shape}: they must have the "
                             "same number of rows")
        weights = None if sample_weight is None else check_sample_weight(sample_weight, m)
        if validation_split is not None and validation_data is not None:
            raise ValueError("give validation_split or validation_data, not both")
        # Host data stays on the host (batches gathered when used) on host-memory backends and
        # when streaming; elsewhere it gets one device copy.
        host = resident is None and (stream or self._host_batches())
        rows = validation = None
        if validation_split is not None:
            # A seeded random (stratified for classifiers) split, not the last rows: data sets
            # often come sorted by class. The same seed gives the same split on every fit call.
            # Rows are split by index (X, y and the sample weights alike): training and
            # validation gather them from X when used, no copy.
            stratify = self.output in CLASSIFIERS and y.ndim == 1 and np.issubdtype(
                y.dtype, np.integer)
            rows, val_rows = split_indices(y, test_size=validation_split, stratify=stratify,
                                           seed=self.seed if seed is None else seed)
        if stream and (batch_size is None or batch_size >= (m if rows is None else len(rows))):
            raise ValueError("stream=True streams mini-batches: give a batch_size smaller than "
                             "the number of training rows (a full-batch step needs every row "
                             "on the device at once)")
        mesh = self.backend.mesh is not None
        if stream and mesh:
            raise ValueError("stream=True moves batches to one device; with mesh= the data is "
                             "placed on the mesh instead (leave stream=False)")
        T = self._columns(y, m, host=host or mesh)
        Xd = X if host or mesh or resident is not None else self._device_copy(X)
        if weights is not None:
            weights = weights.astype(T.dtype) if host or mesh else self.backend.asarray(
                weights, self.dtype)
        if mesh:
            if batch_size is not None and batch_size < (m if rows is None else len(rows)):
                # Mini-batches on a mesh: every device holds all rows (replicated: asarray),
                # so gathering a batch needs no communication and a step's only collective is
                # the gradient all-reduce (see polynn.distributed).
                T = self.backend.asarray(T, self.dtype)
                weights = None if weights is None else self.backend.asarray(weights, self.dtype)
                if resident is None:
                    Xd = self._device_copy(X)  # replicated
            else:
                # Full batch: rows split over the "data" devices.
                T = self.backend.place_rows(T, self.dtype, axis=1)
                weights = None if weights is None else self.backend.place_rows(weights,
                                                                               self.dtype)
                if resident is None:
                    Xd = self.backend.place_rows(X, self.dtype)
        if validation_split is not None:
            validation = (Xd, T, val_rows)
        elif validation_data is not None:
            X_val, y_val = validation_data
            val_resident = self._resident(X_val, "X_val")
            if val_resident is None:
                X_val = check_X(X_val, self.n_features, "X_val", self.dtype)
                X_val = X_val if host else self._device_copy(X_val)
            else:
                X_val = val_resident
            validation = (X_val, self._columns(y_val, X_val.shape[0], "y_val",
                                               host=val_resident is None and host))
        if patience is not None and validation is None:
            raise ValueError("early stopping (patience=...) needs validation_split or "
                             "validation_data")
        opt = self._optimizer_for(optimizer, lr, momentum, schedule)
        if seed is not None:
            self._shuffle_rng = np.random.default_rng(seed)
        spec = TrainSpec(self.backend, self._act, self.output, _check_l2(l2), opt, int(epochs),
                         batch_size, shuffle, self._shuffle_rng, dtype=self._dtype,
                         dtype_name=self.dtype, stream=bool(stream) and self.backend.jit,
                         patience=patience, min_delta=min_delta,
                         restore_best=restore_best_weights, progress=progress, callback=callback,
                         l2_per_weight=bool(l2_per_weight))
        try:
            self.params, self._opt_state, history = run(spec, self.params, self._opt_state, Xd,
                                                        T, validation, weights=weights,
                                                        rows=rows)
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

    def predict_proba(self, X, *, batch_size=None) -> np.ndarray:
        """Class probabilities as a host NumPy array: ``(m, k)`` for softmax; ``(m, 2)`` columns
        [P(0), P(1)] for one sigmoid unit; ``(m, k)`` per-label P(1) for multilabel. Computed
        in chunks of ``batch_size`` rows (see :meth:`predict`)."""
        if self.output not in CLASSIFIERS:
            raise ValueError("predict_proba needs a classifier (output='softmax' or 'sigmoid')")
        binary = self.output == "sigmoid" and not self._multilabel
        out = None
        for start, stop, P in self._chunks(X, batch_size, "output"):
            P = to_host(P)
            if out is None:
                out = np.empty((_rows(X), 2 if binary else P.shape[1]), P.dtype)
            if binary:
                out[start:stop, 0] = 1.0 - P[:, 0]
                out[start:stop, 1] = P[:, 0]
            else:
                out[start:stop] = P
        return out

    def predict(self, X, *, batch_size=None) -> np.ndarray:
        """As a host NumPy array: predicted labels (int64 ``(m,)``) for classifiers, a 0/1
        indicator (int64 ``(m, k)``) for multilabel, or values for regression (``(m,)`` with one
        output, else ``(m, k)``; the predicted means e^z for poisson).

        Rows are processed in chunks of ``batch_size`` (default: as many as keep one chunk's
        activations near 8 MiB), so predicting on many rows, a memory-mapped file included,
        never holds a copy of ``X`` or every row's activations at once."""
        out = None
        for start, stop, Z in self._chunks(X, batch_size, "forward"):
            Z = to_host(Z)
            if self.output in ("identity", "poisson"):
                part = np.exp(Z) if self.output == "poisson" else Z
            elif self.output == "sigmoid":
                part = (Z > 0).astype(np.int64)
            else:
                part = np.argmax(Z, axis=1).astype(np.int64)
            if out is None:
                out = np.empty((_rows(X),) + part.shape[1:], part.dtype)
            out[start:stop] = part
        single = self.output != "softmax" and not self._multilabel and out.shape[1] == 1
        return out[:, 0] if single else out

    def score(self, X, y, *, batch_size=None) -> float:
        """Accuracy for classifiers (subset accuracy for multilabel: every label right); the
        coefficient of determination R² for regression (identity and poisson). Predictions are
        computed in chunks of ``batch_size`` rows (see :meth:`predict`)."""
        pred = self.predict(X, batch_size=batch_size)
        if self.output in CLASSIFIERS:
            labels = encode_targets(y, self.output, self.n_outputs, pred.shape[0])
            if self._multilabel:
                return float(np.mean(np.all(pred == labels, axis=1)))
            truth = labels.argmax(axis=1) if self.output == "softmax" else labels[:, 0]
            return float(np.mean(pred == truth))
        # Regression targets as fit takes them: (m,) or (m, k), finite (NaN is an error, not 0.0).
        y = encode_targets(y, "identity", self.n_outputs, pred.shape[0]).reshape(pred.shape)
        ss_res = np.sum((y - pred) ** 2)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0

    def to(self, backend=None, device=None, dtype=None, mesh=None) -> MLP:
        """A copy of this model on another backend/device/dtype/mesh (same weights)."""
        return MLP.from_params(self.params, activation=self.activation, output=self.output,
                               backend=backend, device=device,
                               dtype=self.dtype if dtype is None else dtype,
                               seed=self.seed, negative_slope=self.negative_slope, mesh=mesh)

    def host_params(self):
        """The parameters as host NumPy arrays: a tuple of ``(W, b)``."""
        return tuple((to_host(W), to_host(b)) for W, b in self.params)


# --- validation of fit's options (the data checks live in polynn/validate.py) ---------------
@functools.lru_cache(maxsize=64)
def _inference(backend, activation, output, what):
    """``infer(params_t, X (rows, n_0)) -> (rows, n_L)``: the output pre-activations
    (``what="forward"``) or outputs (``"output"``) of one chunk, compiled on JAX."""
    pair = get_output(output)

    def infer(params_t, X):
        Z, _ = nn_mlp.forward_columns(params_t, nn_mlp.augment(X), activation)
        return (pair.output(Z) if what == "output" else Z).T

    return backend.compile(infer)


def _penalty(params, l2):
    """``0.5 * l2 * Σ‖W‖²`` of row-layout ``params`` (0-d array, or 0.0)."""
    params_t = nn_mlp.to_columns(params)
    return nn_mlp.l2_penalty_columns(params_t, nn_mlp.weight_decay(params_t, l2))


def _rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _itemsize_dtype(name):
    return "float32" if name == "bfloat16" else name


def _check_fit_options(*, lr, l2, epochs, batch_size, shuffle, seed, optimizer, momentum,
                       schedule, validation_split, validation_data, patience, min_delta,
                       restore_best_weights, progress, callback, l2_per_weight):
    """Refuse a bad ``fit`` option by name before any data is touched."""
    check_real("lr", lr, 0, low_open=True, allow_none=True)
    _check_l2(l2)
    check_int("epochs", epochs, 0)
    check_int("batch_size", batch_size, 1, allow_none=True)
    check_bool("shuffle", shuffle)
    check_seed(seed)
    if isinstance(optimizer, str) or not (hasattr(optimizer, "init")
                                          and hasattr(optimizer, "update")):
        check_choice("optimizer", optimizer, OPTIMIZERS)  # else an optimizer object
    check_real("momentum", momentum, 0, 1)
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be None or a schedule from polynn.nn.optim (a callable "
                        f"of the step count), got {schedule!r}")
    if validation_split is not None:
        check_real("validation_split", validation_split, 0, 1, low_open=True, high_open=True)
    if validation_data is not None and not (isinstance(validation_data, (tuple, list))
                                            and len(validation_data) == 2):
        raise TypeError("validation_data must be a pair (X_val, y_val), got "
                        f"{type(validation_data).__name__}")
    check_int("patience", patience, 0, allow_none=True)
    check_real("min_delta", min_delta, 0)
    check_bool("restore_best_weights", restore_best_weights)
    check_bool("progress", progress)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be None or a callable, got {callback!r}")
    check_bool("l2_per_weight", l2_per_weight)
