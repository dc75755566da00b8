"""The MLP class: configuration + parameters + backend; fit / predict / score / save."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from polynn import io
from polynn.backend import BACKENDS, DTYPES, Backend, get_backend, to_host
from polynn.datasets.labels import encode_targets
from polynn.distributed import is_main_process
from polynn.init import INITIALIZERS, init_params
from polynn.model import fitting, hidden, inference, prediction, record
from polynn.model import summary as summary_module
from polynn.model.class_weight import example_weights
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import layer_activations
from polynn.nn.layout import params_to_columns
from polynn.nn.losses import OUTPUTS
from polynn.placement import place, row_chunks, take_columns, take_rows, target_dtype
from polynn.validate import (
    check_activations,
    check_choice,
    check_dropout,
    check_l2,
    check_layer_sizes,
    check_layers,
    check_real,
    check_rows,
    check_sample_weight,
    check_seed,
    dropout_value,
    normalize_sample_weight,
)


class MLP:
    """A multilayer perceptron whose math runs on any array API backend.

    Parameters
    ----------
    layer_sizes : sequence of int, length >= 2
        ``[n_features, hidden..., n_outputs]``. Layer l has ``W`` ``(n_{l-1}, n_l)`` and ``b``
        ``(n_l,)``.
    activation : "relu" | "leaky_relu" | "tanh" | "sigmoid" | "identity", or a list of them
        Hidden-layer activation: one name for every hidden layer, or one per hidden layer (the
        first hidden layer's first; kept as a tuple). ``negative_slope`` configures leaky_relu
        (default 0.01).
    output : "softmax" | "sigmoid" | "identity" | "poisson"
        Output/loss pair: softmax + cross-entropy (integer labels 0..k-1), sigmoid + binary
        cross-entropy (one output unit and 0/1 labels ``(m,)``; or k units and a multilabel 0/1
        indicator ``y`` ``(m, k)``), identity + mean squared error, poisson: exp output + half
        Poisson deviance (non-negative targets, e.g. counts).
    backend : "numpy" | "jax" | "cupy" | "torch" | "array_api_strict", default ``$POLYNN_BACKEND``
        or "numpy" (JAX when ``mesh`` is given).
    device : backend-specific device ("cpu", "gpu:0", "cuda:1", ...) or None for the default.
    dtype : "float32" | "float64" | "bfloat16" | "mixed_bfloat16" (the last two JAX and
        PyTorch only). Host outputs of a bfloat16 model (``predict``, ``predict_proba``,
        ``host_params``) are float32. "mixed_bfloat16" is Keras's mixed-precision policy: the
        parameters, optimizer state and data are float32 and each training step computes in
        bfloat16 (:mod:`polynn.nn.mixed`); inference and evaluation use the float32
        parameters, and every output is float32.
    dropout : float in [0, 1) or a list of them (one per hidden layer), default 0
        Inverted dropout on the hidden layers' activations while ``fit`` trains (never in
        ``predict``, ``score``, ``loss``, validation, or ``value_and_grad`` without
        ``training=True``). The masks come from a counter-based hash of (seed, step, layer,
        example, unit) (:mod:`polynn.nn.dropout`): one seed gives the same masks, bit for bit,
        on every backend. The key is the model's ``seed`` (``fit(seed=...)`` when given), the
        step the optimizer's step count, the example its row in ``X``. Kept as ``dropout``, a
        tuple of one rate per hidden layer.
    init : "he" (N(0, 2/n_in)) | "glorot" (uniform); drawn on the host, so a seed gives the same
        initial weights, bit for bit, on every backend.
    seed : int, list of int or None, default 0; fixes the initial weights and the shuffling of
        every later ``fit`` (None: fresh entropy).
    negative_slope : float > 0, default 0.01
        leaky_relu's slope for negative inputs.
    mesh : JAX only: None (one device), a device count N, "all", a ``(data, model)`` pair or a
        ``jax.sharding.Mesh`` with a "data" (and optionally "model") axis: train data-parallel
        over the "data" devices (and split wide hidden layers over "model"); see
        :func:`polynn.backend.resolve_mesh` and :mod:`polynn.distributed`. Results equal the
        one-device run up to rounding.

    Raises
    ------
    ValueError
        An unknown choice, a size or rate out of range (:class:`polynn.validate.ParameterError`).
    polynn.BackendUnavailableError
        The backend's library is not installed, or the device does not exist.

    Examples
    --------
    >>> import polynn as pn
    >>> model = pn.MLP([2, 64, 32, 3], activation=["relu", "tanh"], dropout=[0.2, 0.1],
    ...                backend="numpy", seed=0)
    >>> model.activation, model.dropout
    (('relu', 'tanh'), (0.2, 0.1))
    >>> X, y = pn.datasets.spiral(100, 3, seed=0)
    >>> history = model.fit(X, y, epochs=5, batch_size=50, optimizer="adam", lr=0.01)
    >>> model.predict(X).shape
    (300,)
    """

    def __init__(self, layer_sizes: Sequence[int], *, activation: str | Sequence[str] = "relu",
                 output: str = "softmax", backend: str | Backend | None = None,
                 device: Any = None, dtype: str = "float32", init: str = "he",
                 seed: int | Sequence[int] | None = 0, negative_slope: float = 0.01,
                 mesh: Any = None,
                 dropout: float | Sequence[float] = 0.0) -> None:
        self.layer_sizes = check_layer_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        activation = check_activations(activation, n_hidden)
        self.dropout = check_dropout(dropout, n_hidden)
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
        self._dtype = self.backend.dtype_record(dtype)  # enables x64 on JAX for float64
        self.params = self._to_backend(init_params(self.layer_sizes, init, seed))
        self._reset_training_state()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Sequence[tuple[Any, Any]], *,
                    activation: str | Sequence[str] = "relu", output: str = "softmax",
                    backend: str | Backend | None = None, device: Any = None,
                    dtype: str | None = None, seed: int | Sequence[int] | None = 0,
                    negative_slope: float = 0.01,
                    mesh: Any = None, dropout: float | Sequence[float] = 0.0) -> MLP:
        """Build a model around existing parameters (copied to the chosen backend).

        Parameters
        ----------
        params : sequence of (W, b) pairs
            ``W`` ``(n_{l-1}, n_l)`` and ``b`` ``(n_l,)`` per layer: NumPy or any backend's
            arrays.
        activation, output, backend, device, seed, negative_slope, mesh, dropout
            As :class:`MLP` takes them.
        dtype : str, optional
            The model's dtype; default W's dtype (float32 when it is not one of polynn's).

        Returns
        -------
        MLP
            A model with these parameters.
        """
        host = tuple((to_host(W), to_host(b)) for W, b in params)
        sizes = check_layers(host)
        if dtype is None:
            dtype = str(host[0][0].dtype)
            dtype = dtype if dtype in DTYPES else "float32"
        model = cls(sizes, activation=activation, output=output, backend=backend,
                    device=device, dtype=dtype, seed=seed, negative_slope=negative_slope,
                    mesh=mesh, dropout=dropout)
        model.params = model._to_backend(host)
        return model

    to_record = record.to_record
    classes = record.classes  # the class values (None: the indices 0..k-1)
    from_record = classmethod(record.from_record)
    __getstate__ = record.getstate
    __setstate__ = record.setstate

    def _to_backend(self, host_params):
        name = self._dtype.name
        return tuple((self.backend.asarray(W, name), self.backend.asarray(b, name))
                     for W, b in host_params)

    def _reset_training_state(self):
        self._optimizer = None
        self._opt_state = None
        self._shuffle_rng = np.random.default_rng(self.seed)

    def _set_training_state(self, optimizer, opt_state, shuffle_rng):
        self._optimizer, self._opt_state, self._shuffle_rng = optimizer, opt_state, shuffle_rng

    @property
    def dtype(self) -> str:
        """The model's dtype by name: "float32", "float64" or "bfloat16"."""
        return self._dtype.name

    @property
    def dtype_record(self) -> Any:
        """The backend's ``DType`` record of the model's dtype (name, native dtype, host dtype,
        itemsize, largest finite value)."""
        return self._dtype

    @property
    def optimizer(self) -> Any:
        """The optimizer of the last ``fit`` (a :mod:`polynn.nn.optim` object) or None."""
        return self._optimizer

    @property
    def opt_state(self) -> Any:
        """The optimizer's state (a NamedTuple: count, then trees shaped like ``params``), or
        None before the first ``fit``."""
        return self._opt_state

    @property
    def activation_fn(self) -> Any:
        """The hidden layers' activation: a :mod:`polynn.nn.activations` pair (forward,
        backward) with the model's ``negative_slope`` (a tuple of them, one per hidden layer,
        for per-layer activations), as ``polynn.nn.mlp`` takes it."""
        return layer_activations(self.activation, negative_slope=self.negative_slope)


    @property
    def n_features(self) -> int:
        """The number of input features, ``layer_sizes[0]``."""
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """The number of output units, ``layer_sizes[-1]``."""
        return self.layer_sizes[-1]

    def __repr__(self) -> str:
        activation = self.activation if isinstance(self.activation, str) else list(
            self.activation)
        dropout = f", dropout={dropout_value(self.dropout)!r}" if any(self.dropout) else ""
        return (f"MLP({self.layer_sizes}, activation={activation!r}, output={self.output!r}, "
                f"backend={self.backend.name!r}, device={self.backend.device_name!r}, "
                f"dtype={self.dtype!r}{dropout})")

    summary = summary_module.summary

    # -- data ------------------------------------------------------------------------------------
    def _columns(self, y, m, name="y"):
        """Targets as host columns ``(n_outputs, m)`` in :func:`polynn.placement.target_dtype`,
        encoded a block of rows at a time: the float64 ``(rows, k)`` matrix encode_targets
        builds never exists for all rows (it is twice T's size in float32)."""
        y = check_rows(y, m, name)
        T = np.empty((self.n_outputs, m), target_dtype(self._dtype))
        block = max(1, (4 << 20) // (8 * self.n_outputs))
        try:
            for start in range(0, m, block):
                part = encode_targets(y[start : start + block], self.output, self.n_outputs,
                                      min(block, m - start), name, self._dtype)
                T[:, start : start + block] = part.T
        except (TypeError, ValueError):
            # The whole y names the culprit with its row number (error path only).
            encode_targets(y, self.output, self.n_outputs, m, name, self._dtype)
            raise
        return T

    def _placed(self, X, y=None, *, sample_weight=None, class_weight=None, name="X", **where):
        """``X`` (and targets ``y``, weights) placed by :func:`polynn.placement.place`."""
        data = place(self.backend, self._dtype, X, n_features=self.n_features, name=name,
                     **where)
        if y is None:
            return data
        weights = None if sample_weight is None else check_sample_weight(sample_weight, data.m)
        T = self._columns(y, data.m, "y" if name == "X" else "y_val")
        return data.with_targets(T, example_weights(class_weight, T, self.output, weights))

    def place(self, X: Any, *, name: str = "X") -> Any:
        """``X``, checked, where this model keeps data that it reads again and again.

        Parameters
        ----------
        X : array, shape (m, n_features)
            Features.
        name : str, default "X"
            The name error messages use.

        Returns
        -------
        array
            One device copy in the model's dtype, or the host data itself on backends that
            compute in host memory; an array this backend owns is used in place (see
            :mod:`polynn.placement`). Passing it to ``fit`` moves nothing again.
        """
        return self._placed(X, name=name, purpose="evaluate").X

    # -- the math, exposed -----------------------------------------------------------------------
    def forward(self, X: Any, *, batch_size: int | None = None) -> Any:
        """The output layer's pre-activation.

        Parameters
        ----------
        X : array, shape (m, n_features)
            Features.
        batch_size : int, optional
            Rows per chunk (see :meth:`predict`).

        Returns
        -------
        backend array, shape (m, n_outputs)
            Z of the output layer, in the model's dtype.
        """
        parts = [Z for _, _, Z in self._chunks(X, batch_size, "forward")]
        return parts[0] if len(parts) == 1 else self.backend.xp.concat(parts, axis=0)

    def _chunks(self, X, batch_size, what, name="X"):
        """Yield ``(start, stop, out)`` over consecutive row chunks of validated ``X``: ``out``
        is the backend array ``(stop - start, n_outputs)`` of the chunk's output
        pre-activations (``what="forward"``) or outputs (probabilities or values,
        ``what="output"``). Each chunk is cast to the model's dtype when used, so no copy of
        ``X`` and no activations for all rows exist at once."""
        data = self._placed(X, name=name, purpose="infer")
        chunks = row_chunks(data.m, batch_size, self.layer_sizes, self._dtype)
        infer = inference.inference(self.backend, self.activation_fn, self.output, what)
        params_t = self.backend.call(params_to_columns, self.params)
        for start, stop in chunks:  # row counts bucketed on JAX: see inference.run_chunk
            yield start, stop, inference.run_chunk(self.backend, infer, params_t, data.X, start,
                                                   stop, self._dtype)

    def value_and_grad(self, X: Any, y: Any, *, l2: float = 0.0, sample_weight: Any = None,
                       training: bool = False) -> tuple[float, Any]:
        """The regularised loss and its hand-derived gradients on ``(X, y)``.

        Parameters
        ----------
        X : array, shape (m, n_features)
            Features.
        y : array, shape (m,) or (m, k)
            Labels or targets, as :meth:`fit` takes them.
        l2 : float >= 0, default 0
            L2 penalty.
        sample_weight : array, shape (m,), optional
            The data loss is Σ wᵢ lᵢ / Σ wᵢ.
        training : bool, default False
            Apply the model's dropout as a full-batch ``fit`` step would at the optimizer's
            step count (0 before any ``fit``), rows being examples 0..m-1.

        Returns
        -------
        loss : float
        grads : tuple of (dW, db)
            Backend arrays per layer, shaped like ``params``.
        """
        data = self._placed(X, y, sample_weight=sample_weight)  # as a full-batch step
        every, dtype = slice(None), self._dtype
        Xd = take_rows(self.backend, data.X, every, dtype)
        T = take_columns(self.backend, data.T, every, dtype)
        weights = None if data.weights is None else take_rows(self.backend, data.weights,
                                                              every, dtype)
        masks = None
        dropout = fitting.dropout_for(self, None)
        if training and dropout is not None:
            step = 0 if self._opt_state is None else int(to_host(self._opt_state[0]))
            masks = self.backend.call(dropout.masks, step, np.arange(data.m), Xd)
        loss, grads = self.backend.call(
            nn_mlp.value_and_grad, self.params, Xd, T.T, sample_weight=weights, masks=masks,
            static=dict(activation=self.activation_fn, output=self.output, l2=check_l2(l2)))
        return float(to_host(loss)), grads

    def loss(self, X: Any, y: Any, *, l2: float = 0.0, sample_weight: Any = None,
             batch_size: int | None = None) -> float:
        """The regularised loss of the current parameters on ``(X, y)``.

        Parameters
        ----------
        X : array, shape (m, n_features)
            Features.
        y : array, shape (m,) or (m, k)
            Labels or targets, as :meth:`fit` takes them.
        l2 : float >= 0, default 0
            L2 penalty.
        sample_weight : array, shape (m,), optional
            Example weights (the weighted mean loss).
        batch_size : int, optional
            Rows per chunk (see :meth:`predict`); chunks are counted by rows (or weights).

        Returns
        -------
        float
        """
        X = self._placed(X, purpose="infer").X
        m = X.shape[0]
        T = encode_targets(y, self.output, self.n_outputs, m, "y", self._dtype)
        w = None if sample_weight is None else normalize_sample_weight(
            check_sample_weight(sample_weight, m))[0]  # (as fit: in float64, then cast)
        l2 = check_l2(l2)
        backend, total = self.backend, 0.0
        for start, stop in row_chunks(m, batch_size, self.layer_sizes, self._dtype):
            share = (stop - start) if w is None else float(w[start:stop].sum())
            if share == 0:
                continue  # rows of weight 0 add nothing (and their weighted mean is 0/0)
            part = take_rows(backend, X, slice(start, stop), self._dtype)
            chunk_weights = None if w is None else backend.asarray(w[start:stop], self.dtype)
            value = backend.call(
                nn_mlp.loss, self.params, part, backend.asarray(T[start:stop], self.dtype),
                sample_weight=chunk_weights,
                static=dict(activation=self.activation_fn, output=self.output, l2=0.0))
            total += float(to_host(value)) * share
        penalty = backend.call(inference.penalty, self.params, static=dict(l2=l2))
        return total / (m if w is None else float(w.sum())) + float(to_host(penalty))

    # -- training (polynn.model.fitting) ---------------------------------------------------------
    fit = fitting.fit
    partial_fit = fitting.partial_fit
    _place_fit = fitting.place_fit
    _train = fitting.train
    _publish = fitting.publish
    _optimizer_for = fitting.optimizer_for

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights and configuration to one ``.safetensors`` file (no pickle), atomically.

        With several processes every process calls it (gathering split parameters is
        collective) and only process 0 writes. See :func:`polynn.load` and :mod:`polynn.io`.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists).

        Examples
        --------
        >>> import polynn as pn
        >>> model = pn.MLP([2, 8, 3], seed=0)
        >>> model.save("model.safetensors")
        >>> pn.load("model.safetensors").layer_sizes
        [2, 8, 3]
        """
        self._write(path, checkpoint=False)

    def save_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Like :meth:`save`, plus the optimizer, its state and the shuffling stream, so that
        :func:`polynn.load_checkpoint` resumes training exactly where it stopped.

        Parameters
        ----------
        path : str or path-like
            The file to write.
        """
        self._write(path, checkpoint=True)

    def _write(self, path, checkpoint: bool) -> None:
        model_record = self.to_record(checkpoint=checkpoint)  # every process: collective
        if is_main_process():
            io.write(path, model_record)

    # -- inference -------------------------------------------------------------------------------
    @property
    def _multilabel(self) -> bool:
        return self.output == "sigmoid" and self.n_outputs > 1

    hidden = hidden.hidden  # a hidden layer's activations (m, n_layer): polynn.model.hidden

    predict_proba = prediction.predict_proba
    predict = prediction.predict
    score = prediction.score

    def to(self, backend: str | Backend | None = None, device: Any = None,
           dtype: str | None = None, mesh: Any = None) -> MLP:
        """A copy of this model (same weights) on another backend, device, dtype or mesh.

        Parameters
        ----------
        backend : str or Backend, optional
            Default: the model's own backend.
        device, mesh
            As :class:`MLP` takes them.
        dtype : str, optional
            Default: the model's dtype.

        Returns
        -------
        MLP
            The copy (the class values too; no training state).
        """
        copy = MLP.from_params(self.params, activation=self.activation, output=self.output,
                               backend=self.backend if backend is None else backend,
                               device=device, dtype=self.dtype if dtype is None else dtype,
                               seed=self.seed, negative_slope=self.negative_slope, mesh=mesh,
                               dropout=self.dropout)
        copy.classes = self.classes
        return copy

    def host_params(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """The parameters as host NumPy arrays.

        Returns
        -------
        tuple of (W, b)
            NumPy arrays in the model's host dtype: ``W`` ``(n_{l-1}, n_l)``, ``b`` ``(n_l,)``.
        """
        return tuple((inference.host_output(W, self._dtype), inference.host_output(b, self._dtype))
                     for W, b in self.params)
