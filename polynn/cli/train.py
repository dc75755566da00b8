"""``polynn train``: train an MLP on a dataset, report, and write the model, history and plots.

Exit status 130 when Ctrl-C stopped training (after reporting and saving what was trained),
0 otherwise (see :mod:`polynn.cli` for the errors)."""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

from polynn.backend import DTYPES
from polynn.cli.common import UsageError, check_outputs, load_dataset
from polynn.cli.options import (
    add_architecture_options,
    add_backend_options,
    add_distributed_options,
    fraction,
    nonneg_int,
    positive_float,
    positive_int,
    start_distributed,
)
from polynn.cli.report import header, report, write_outputs
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.optim import DEFAULT_LEARNING_RATES, OPTIMIZERS

DESCRIPTION = (
    "Train an MLP. With no options this reproduces the reference program: spiral data (300 "
    "points, 3 classes, data seed 0), 2-25-3 ReLU/softmax, He init, learning rate 0.1, l2 1e-3, "
    "10,000 full-batch gradient-descent steps in float64. Labels may be any values (integers, "
    "numbers, names): the saved model keeps them, and 'polynn predict' prints them. Ctrl-C "
    "stops training, reports and saves what was trained, and exits with status 130.")

#: Default length of a run: about this many steps (full batch: this many epochs).
DEFAULT_STEPS = 10_000
#: Up to this many training rows the default is the full batch (the reference program).
FULL_BATCH_ROWS = 5_000
#: Mini-batch size when the data has more rows than FULL_BATCH_ROWS and no --batch-size.
DEFAULT_BATCH_SIZE = 128
#: Default lines of --print-every over a run (epoch 0, then every epochs // PRINTED_LINES).
PRINTED_LINES = 4

# The warning of a float64 model on JAX: the CLI's own default, not the user's choice.
_X64_WARNING = "dtype='float64' on JAX"


def add_parser(commands):
    """Register ``train`` with its options on the ``commands`` subparsers."""
    p = commands.add_parser("train", help="train an MLP (default: the reference spiral program)",
                            description=DESCRIPTION)
    add_backend_options(p)
    p.add_argument("--dataset", default="spiral",
                   help="spiral, moons, circles, digits (needs scikit-learn: pip install "
                        "\"polynn[sklearn]\"), csv:PATH (label in the last column) or "
                        "idx:DIR (MNIST IDX files); the input and output layer sizes come from "
                        "it (default: spiral)")
    add_architecture_options(p, layers=[25], activation="relu")
    p.add_argument("--dtype", choices=DTYPES, default=None,
                   help="floating dtype (default: float64, as the reference program; float32 "
                        "is faster on GPUs)")
    _add_training_options(p)
    _add_output_options(p)
    add_distributed_options(p)
    p.set_defaults(run=cmd_train)


def _add_training_options(p):
    rates = ", ".join(f"{rate:g} for {name}" for name, rate in DEFAULT_LEARNING_RATES.items())
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd",
                   help="default: sgd (plain gradient descent, as the reference)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate (default: {rates})")
    p.add_argument("--epochs", type=nonneg_int, default=None,
                   help=f"passes over the data; full batch: one step each (default: about "
                        f"{DEFAULT_STEPS} steps: {DEFAULT_STEPS} full-batch epochs, or as many "
                        "epochs of mini-batches)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"mini-batch size (default: the full batch up to {FULL_BATCH_ROWS} "
                        f"training rows, {DEFAULT_BATCH_SIZE} above)")
    p.add_argument("--stream", action="store_true",
                   help="keep the data on the host and move mini-batches to the device as they "
                        "are needed (JAX: in prefetched chunks), for data larger than device "
                        "memory; needs --batch-size")
    p.add_argument("--validation-split", type=fraction, default=None, metavar="FRACTION",
                   help="hold out this fraction of the training rows (stratified) for "
                        "validation loss/accuracy after every epoch")
    p.add_argument("--test-split", type=fraction, default=None, metavar="FRACTION",
                   help="hold out this fraction of the data (stratified, before any "
                        "validation split) and report the accuracy on it after training")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping: epochs without validation improvement (needs "
                        "--validation-split)")


def _add_output_options(p):
    p.add_argument("--print-every", type=positive_int, default=None, metavar="N",
                   help=f"print the loss every N epochs as training goes (default: "
                        f"{PRINTED_LINES} lines a run: 2500 for the reference's 10000)")
    p.add_argument("--save", metavar="MODEL.safetensors",
                   help="write the trained model here (a safetensors file, with the class "
                        "values)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="decision boundary for 2-D data, the training curves otherwise")
    p.add_argument("--plot-history", metavar="FILE.png",
                   help="training curves (loss, accuracy; train and validation)")
    p.add_argument("--history", metavar="FILE.json", help="write the training history")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no intermediate losses (the bar is drawn only "
                        "when stderr is a terminal)")


def check_options(args) -> None:
    """Refuse, in the command line's words, option combinations that fit would refuse."""
    if args.patience is not None and args.validation_split is None:
        raise UsageError("--patience (early stopping) needs --validation-split")
    if args.stream and args.batch_size is None:
        raise UsageError("--stream moves mini-batches to the device: it needs --batch-size")
    if args.stream and args.mesh is not None:
        raise UsageError("--stream and --mesh do not go together: with --mesh the data is "
                         "placed on the devices")


def targets(args, y):
    """``(y, classes)``: class indices 0..k-1 and the class values for classifiers (labels
    of any value, :func:`polynn.datasets.labels.encode_labels`), the values for regression."""
    from polynn.datasets.labels import encode_labels

    if args.output not in CLASSIFIERS:
        if y.dtype.kind not in "biuf":
            raise UsageError(f"--output {args.output} regresses on numbers, but the labels "
                             f"are names (e.g. {y[0]!r}): use --output softmax")
        return y.astype(np.float64), None
    y, classes = encode_labels(y, name=f"the labels of {args.dataset}")
    if args.output == "sigmoid" and len(classes) != 2:
        raise UsageError(f"--output sigmoid needs 2 classes; the data has {len(classes)}: use "
                         "--output softmax")
    return y, classes


def _split(args, X, y, fraction_, option):
    """``(X_rest, y_rest, (X_held, y_held))`` a seeded split of ``fraction_`` (stratified
    for classifiers), or ``(X, y, None)``."""
    if fraction_ is None:
        return X, y, None
    from polynn.datasets import train_test_split

    try:
        X_rest, X_held, y_rest, y_held = train_test_split(
            X, y, test_size=fraction_, seed=args.seed, stratify=args.output in CLASSIFIERS)
    except ValueError:
        raise UsageError(f"{option} {fraction_:g} of {X.shape[0]} rows leaves no row on one "
                         "side; both sides need at least one") from None
    return X_rest, y_rest, (X_held, y_held)


def plan(args, m: int):
    """``(batch_size, epochs, print_every)``: the options, or defaults sized to the ``m``
    training rows (about :data:`DEFAULT_STEPS` steps, full batch up to
    :data:`FULL_BATCH_ROWS` rows, :data:`PRINTED_LINES` lines)."""
    batch_size = args.batch_size
    if batch_size is None and m > FULL_BATCH_ROWS:
        batch_size = DEFAULT_BATCH_SIZE
    if args.stream and (batch_size is None or batch_size >= m):
        raise UsageError(f"--stream moves mini-batches: give a --batch-size smaller than the "
                         f"{m} training rows")
    per_epoch = 1 if batch_size is None or batch_size >= m else math.ceil(m / batch_size)
    epochs = args.epochs
    if epochs is None:
        epochs = max(1, math.ceil(DEFAULT_STEPS / per_epoch))
    every = args.print_every or max(1, epochs // PRINTED_LINES)
    return batch_size, epochs, every


def build_model(args, X, classes, n_outputs):
    """The MLP for ``X`` (and ``classes``); the CLI's own float64 default enables JAX's x64
    without a warning (the user chose nothing)."""
    from polynn.model import MLP

    with warnings.catch_warnings():
        if args.dtype is None:
            warnings.filterwarnings("ignore", message=_X64_WARNING)
        model = MLP([X.shape[1], *args.layers, n_outputs], activation=args.activation,
                    output=args.output, backend=args.backend, device=args.device,
                    dtype=args.dtype or "float64", seed=args.seed, mesh=args.mesh,
                    dropout=args.dropout)
    model.classes = classes
    return model


def output_units(output, y, classes) -> int:
    """The output layer's size: one unit per class (softmax), one for two classes (sigmoid),
    one per regression target."""
    if output == "softmax":
        return len(classes)
    return 1 if y.ndim == 1 else y.shape[1]


def cmd_train(args, out, err) -> int:
    from polynn.train.progress import Progress

    check_outputs(args)
    check_options(args)
    main_process = start_distributed(args)
    if not main_process:  # every process trains; process 0 alone prints and writes
        out, args.quiet = open(os.devnull, "w"), True  # noqa: SIM115 - lives for the process
    X, y = load_dataset(args.dataset)
    y, classes = targets(args, y)
    X, y, test = _split(args, X, y, args.test_split, "--test-split")
    X_train, y_train, validation = _split(args, X, y, args.validation_split,
                                          "--validation-split")
    batch_size, epochs, every = plan(args, X_train.shape[0])
    model = build_model(args, X, classes, output_units(args.output, y, classes))
    lr = header(args, model, X_train, validation, test, classes, batch_size, epochs, out)
    progress = Progress("auto" if not args.quiet else False,
                        every=None if args.quiet else every, out=out, stream=err)
    tic = time.perf_counter()
    history = model.fit(X_train, y_train, lr=lr, l2=args.l2, epochs=epochs,
                        batch_size=batch_size, optimizer=args.optimizer,
                        validation_data=validation, patience=args.patience,
                        progress=progress, stream=args.stream)
    seconds = time.perf_counter() - tic
    score = report(args, model, history, (X_train, y_train), validation, test, seconds,
                   every, batch_size, out)
    print(model.summary(), file=out)
    if main_process:
        write_outputs(args, model, history, X, y, score, out)
    elif args.save:
        model.save(args.save)  # gathering the weights may need every process; 0 writes
    return 130 if history.stopped == "interrupted" else 0
