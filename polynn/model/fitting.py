"""Training a model: ``MLP.fit`` = check -> place -> train, ``partial_fit``, and the optimizer
a fit uses. Functions of the model (``self``), bound as :class:`~polynn.model.MLP` methods."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from polynn.datasets import split_indices
from polynn.init import dropout_key
from polynn.nn.dropout import Dropout
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.optim import make_optimizer
from polynn.train import DivergenceError, EpochInfo, History, TrainSpec, run
from polynn.validate import check_fit_options, check_rows

if TYPE_CHECKING:
    from polynn.model.mlp import MLP


def fit(self: MLP, X: Any, y: Any, *, lr: float | None = None, l2: float = 0.0,
        epochs: int = 100, batch_size: int | None = None, shuffle: bool = True,
        seed: int | None = None, optimizer: str | Any = "sgd", momentum: float = 0.9,
        schedule: Any = None, validation_split: float | None = None,
        validation_data: tuple[Any, Any] | None = None, patience: int | None = None,
        min_delta: float = 0.0, restore_best_weights: bool = True, progress: bool = False,
        callback: Callable[[EpochInfo], bool | None] | None = None, sample_weight: Any = None,
        l2_per_weight: bool = False, stream: bool = False,
        class_weight: str | dict[int, float] | None = None) -> History:
    """Train on ``(X, y)``, continuing from the current weights.

    Full batch when ``batch_size`` is None (each step is an epoch), mini-batches otherwise.
    Calling ``fit`` again continues from the current weights, and from the optimizer state and
    shuffling stream when the optimizer settings are unchanged. No copy of ``X`` is made where
    the backend computes in host memory (a ``numpy.memmap`` included); other backends hold one
    device copy in the model's dtype unless ``stream=True`` (see :mod:`polynn.placement`).

    Parameters
    ----------
    X : array, shape (m, n_features)
        Real features: NumPy (memmaps included) or the model backend's array; checked finite.
    y : array, shape (m,) or (m, k)
        Integer labels 0..k-1 (softmax; or the values of ``classes``), 0/1 labels or a
        multilabel 0/1 indicator ``(m, k)`` (sigmoid), real targets (identity) or
        non-negative targets (poisson).
    lr : float > 0, optional
        Learning rate; default ``polynn.nn.optim.DEFAULT_LEARNING_RATES`` (0.1 for sgd, 0.01
        for momentum/nesterov, 0.001 for adam).
    l2 : float >= 0, default 0
        L2 penalty ``l2/2 * sum(W**2)`` added to the mean loss (biases are not penalised).
    epochs : int >= 1, default 100
        Passes over the training rows.
    batch_size : int >= 1, optional
        Rows per step; None (or >= m) for full batch.
    shuffle : bool, default True
        Reshuffle the rows every epoch (mini-batches).
    seed : int, optional
        Reseeds the shuffling, the validation split and the dropout masks (default: the
        model's ``seed``).
    optimizer : {"sgd", "momentum", "nesterov", "adam"} or optimizer object, default "sgd"
        A name, or an object of :mod:`polynn.nn.optim` (e.g. ``Adam(Constant(1e-3))``).
    momentum : float in [0, 1), default 0.9
        For "momentum" and "nesterov".
    schedule : schedule object, optional
        A learning-rate schedule of :mod:`polynn.nn.optim` (None: constant ``lr``).
    validation_split : float in (0, 1), optional
        The fraction of rows held out for validation: ``ceil(validation_split * m)`` rows
        drawn by :func:`polynn.datasets.split_indices`, seeded by ``seed`` (else the model's
        seed, so every ``fit`` holds out the same rows) and stratified for classifiers with
        integer labels ``(m,)`` (each class in proportion to its size, by largest
        remainder). Not the last rows: data sets often come sorted by class. The rows are
        taken by index (no copy); validation rows are unweighted.
    validation_data : tuple (X_val, y_val), optional
        Validation data instead of ``validation_split`` (not both).
    patience : int >= 1, optional
        Stop after this many epochs without the validation loss improving by more than
        ``min_delta`` (needs validation data).
    min_delta : float >= 0, default 0
        The improvement ``patience`` waits for.
    restore_best_weights : bool, default True
        On early stopping, go back to the weights of the best validation loss.
    progress : bool, default False
        Show a progress bar (tqdm).
    callback : callable, optional
        ``callback(info)`` after every epoch with a :class:`polynn.train.EpochInfo`; returning
        True stops training. The model holds the current parameters during the call.
    sample_weight : array of float >= 0, shape (m,), optional
        Example weights: each batch's data loss is Σ wᵢ lᵢ / Σ wᵢ.
    l2_per_weight : bool, default False
        Also divide the L2 term by the batch's mean weight (scikit-learn's convention).
    stream : bool, default False
        Keep host data on the host and move mini-batches to the device as needed (data
        larger than device memory); needs ``batch_size`` < the number of training rows.
    class_weight : "balanced" or dict {class index: weight}, optional
        Multiplied with ``sample_weight`` (scikit-learn's meaning; one label per example).

    Returns
    -------
    History
        Losses (and accuracies, validation metrics) per epoch; full batch: ``loss[k]`` is
        step k's loss before its update.

    Raises
    ------
    polynn.validate.ParameterError
        An option out of range or of the wrong type (a ``ValueError`` and ``TypeError``).
    ValueError
        ``X`` or ``y`` of the wrong shape, non-finite, or labels the output cannot take;
        ``validation_split`` and ``validation_data`` both given; ``patience`` without
        validation data.
    polynn.DivergenceError
        The loss became NaN or inf; the model keeps the weights from before.

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(50, 3, seed=0)
    >>> model = pn.MLP([2, 16, 3], seed=0)
    >>> history = model.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01,
    ...                     validation_split=0.2)
    >>> history.epochs, len(history.val_loss)
    (3, 3)
    """
    options = check_fit_options(dict(
        lr=lr, l2=l2, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
        optimizer=optimizer, momentum=momentum, schedule=schedule,
        validation_split=validation_split, validation_data=validation_data,
        patience=patience, min_delta=min_delta, restore_best_weights=restore_best_weights,
        progress=progress, callback=callback, l2_per_weight=l2_per_weight, stream=stream,
        class_weight=class_weight))
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
                        class_weight=options.get("class_weight"),
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


def partial_fit(self: MLP, X: Any, y: Any, **fit_options: Any) -> History:
    """One epoch over ``(X, y)`` that continues the weights, optimizer state and shuffling
    stream: for data that arrives in pieces.

    Parameters
    ----------
    X : array, shape (m, n_features)
        Features, as :meth:`fit` takes them.
    y : array, shape (m,) or (m, k)
        Labels or targets, as :meth:`fit` takes them.
    **fit_options
        :meth:`fit`'s keyword options, except ``epochs``.

    Returns
    -------
    History
        The epoch's record.

    Raises
    ------
    TypeError
        ``epochs`` given.
    """
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
