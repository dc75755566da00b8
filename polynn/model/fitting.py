"""Training a model: ``MLP.fit`` = check -> place -> train, ``partial_fit``, and the optimizer
a fit uses. Functions of the model (``self``), bound as :class:`~polynn.model.MLP` methods."""

from __future__ import annotations

import dataclasses

import numpy as np

from polynn.datasets import split_indices
from polynn.init import dropout_key
from polynn.nn.dropout import Dropout
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.optim import make_optimizer
from polynn.train import DivergenceError, History, TrainSpec, run
from polynn.validate import check_fit_options, check_rows


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

    ``optimizer``: "sgd", "momentum", "nesterov" or "adam"; ``lr`` defaults to
    ``polynn.nn.optim.DEFAULT_LEARNING_RATES`` (0.1 for sgd, 0.01 for momentum/nesterov,
    0.001 for adam); ``schedule`` is None (constant) or a schedule object from
    ``polynn.nn.optim``; ``optimizer`` may also be an optimizer object from
    ``polynn.nn.optim`` (e.g. ``Adam(Constant(1e-3), eps=1e-7)``), learning rate included.
    ``validation_split`` (a fraction: a seeded, stratified split) or
    ``validation_data=(X_val, y_val)`` add validation loss/accuracy per epoch; ``patience``
    stops after that many epochs without improvement of the validation loss by more than
    ``min_delta`` and restores the best weights. ``seed`` reseeds the shuffling; Ctrl-C
    stops after the current step and keeps the weights. ``callback(info)`` runs after every
    epoch with a :class:`polynn.train.EpochInfo` (epoch count, history, current row-layout
    params) and stops training by returning True; during the callback the model itself
    holds the current parameters and optimizer state (``predict``, ``loss``,
    ``save_checkpoint`` see them). A loss that becomes NaN/inf raises
    :class:`DivergenceError` and keeps the weights from before the divergence.

    ``sample_weight`` ``(m,)``: non-negative example weights; each batch's data loss becomes
    its weighted mean Σ wᵢ lᵢ / Σ wᵢ (as ``numpy.average``; uniform weights change nothing).
    ``l2_per_weight=True`` also divides the L2 term by the batch's mean weight, which is
    scikit-learn's convention (its alpha is normalised by the batch's sum of weights).

    Memory (see :mod:`polynn.placement`): no copy of ``X`` is made where the backend
    computes in host memory (NumPy, array-api-strict, PyTorch on the CPU): each mini-batch
    is gathered (and cast to the model's dtype) when it is used, also from a
    ``numpy.memmap``. Other backends hold one device copy of the data in the model's dtype;
    ``stream=True`` keeps host data on the host instead and moves the batches as they are
    needed (on JAX, chunks of batches moved while the previous chunk trains), for data
    larger than device memory; it gives the same parameters as the resident path and needs
    mini-batches (``batch_size`` < the number of rows). ``validation_split`` takes its rows
    by index (no copy) and validation is evaluated in chunks of rows.
    """
    options = check_fit_options(dict(
        lr=lr, l2=l2, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
        optimizer=optimizer, momentum=momentum, schedule=schedule,
        validation_split=validation_split, validation_data=validation_data,
        patience=patience, min_delta=min_delta, restore_best_weights=restore_best_weights,
        progress=progress, callback=callback, l2_per_weight=l2_per_weight, stream=stream))
    data, validation = self._place_fit(X, y, sample_weight, options)
    return self._train(data, validation, options)


def place_fit(self, X, y, sample_weight, options):
    """The training data and the validation data (or None), placed."""
    split, val_data = options["validation_split"], options["validation_data"]
    if split is not None and val_data is not None:
        raise ValueError("give validation_split or validation_data, not both")
    if options["patience"] is not None and split is None and val_data is None:
        raise ValueError("early stopping (patience=...) needs validation_split or "
                         "validation_data")
    data = self._placed(X, y, sample_weight=sample_weight,
                        batch_size=options["batch_size"], validation_split=split,
                        stream=options["stream"])
    if split is not None:
        # A seeded random (stratified for classifiers) split, not the last rows: data sets
        # often come sorted by class. The same seed gives the same split on every fit call.
        # Rows are split by index (X, y and the sample weights alike): no copy.
        y = check_rows(y, data.m)
        stratify = self.output in CLASSIFIERS and y.ndim == 1 and np.issubdtype(
            y.dtype, np.integer)
        seed = self.seed if options["seed"] is None else options["seed"]
        rows, val_rows = split_indices(y, test_size=split, stratify=stratify, seed=seed)
        return (dataclasses.replace(data, rows=rows),
                dataclasses.replace(data, rows=val_rows, weights=None))
    if val_data is not None:
        val_data = self._placed(val_data[0], val_data[1], name="X_val", purpose="evaluate",
                                stream=options["stream"])
    return data, val_data


def train(self, data, validation, options) -> History:
    """Run the loop on placed data; the model holds the current state during callbacks and
    the last finite one after a divergence."""
    opt = self._optimizer_for(options["optimizer"], options["lr"], options["momentum"],
                              options["schedule"])
    if options["seed"] is not None:
        self._shuffle_rng = np.random.default_rng(options["seed"])
    callback = options["callback"]
    spec = TrainSpec(self.backend, self.activation_fn, self.output, options["l2"], opt,
                     options["epochs"], options["batch_size"], options["shuffle"],
                     self._shuffle_rng, self._dtype, patience=options["patience"],
                     min_delta=options["min_delta"],
                     restore_best=options["restore_best_weights"],
                     progress=options["progress"], callback=callback,
                     l2_per_weight=options["l2_per_weight"],
                     publish=None if callback is None else self._publish,
                     dropout=dropout_for(self, options["seed"]))
    try:
        self.params, self._opt_state, history = run(spec, self.params, self._opt_state,
                                                    data, validation)
    except DivergenceError as err:
        self._publish(err.params, err.opt_state)
        raise
    return history


def publish(self, params, opt_state):
    """The training loop's current state, held by the model (row layout)."""
    self.params, self._opt_state = params, opt_state


def partial_fit(self, X, y, **fit_options) -> History:
    """One epoch over (X, y) that continues the weights, optimizer state and shuffling
    stream: for data that arrives in pieces. Takes ``fit``'s options except ``epochs``."""
    if "epochs" in fit_options:
        raise TypeError("partial_fit runs exactly one epoch; use fit(epochs=...) for more")
    return self.fit(X, y, epochs=1, **fit_options)


def optimizer_for(self, name, lr, momentum, schedule):
    if not isinstance(name, str):
        # An optimizer object from polynn.nn.optim: it carries its own learning rate.
        if lr is not None or schedule is not None:
            raise ValueError("optimizer is an object with its own learning rate: give lr "
                             "and schedule only with an optimizer name")
        opt = name
    else:
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


def dropout_for(self, seed):
    """The model's :class:`polynn.nn.dropout.Dropout` for a fit (None without dropout): keyed
    by ``seed`` (fit's), or the model's seed when it is None."""
    if not any(self.dropout):
        return None
    key = dropout_key(self.seed if seed is None else seed)
    return Dropout(key, tuple(self.layer_sizes[1:-1]), tuple(self.dropout))
