"""``polynn train``: train an MLP on a dataset, report, and write the model, history and plots."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from polynn.backend import DTYPES
from polynn.cli.common import UsageError, check_outputs, load_dataset, plural
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
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.optim import DEFAULT_LEARNING_RATES, OPTIMIZERS

DESCRIPTION = (
    "Train an MLP. With no options this reproduces the reference program: spiral data (300 "
    "points, 3 classes, data seed 0), 2-25-3 ReLU/softmax, He init, learning rate 0.1, l2 1e-3, "
    "10,000 full-batch gradient-descent steps in float64.")


def add_parser(commands):
    """Register ``train`` with its options on the ``commands`` subparsers."""
    p = commands.add_parser("train", help="train an MLP (default: the reference spiral program)",
                            description=DESCRIPTION)
    add_backend_options(p)
    p.add_argument("--dataset", default="spiral",
                   help="spiral, moons, circles, digits, csv:PATH (label in the last column) or "
                        "idx:DIR (MNIST IDX files); the input and output layer sizes come from "
                        "it (default: spiral)")
    add_architecture_options(p, layers=[25], activation="relu")
    p.add_argument("--dtype", choices=DTYPES, default="float64",
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
    p.add_argument("--epochs", type=nonneg_int, default=10_000,
                   help="passes over the data; full batch: one step each (default: 10000)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size (default: the full batch)")
    p.add_argument("--stream", action="store_true",
                   help="keep the data on the host and move mini-batches to the device as they "
                        "are needed (JAX: in prefetched chunks), for data larger than device "
                        "memory; needs --batch-size")
    p.add_argument("--validation-split", type=fraction, default=None, metavar="FRACTION",
                   help="hold out this fraction (stratified) for validation loss/accuracy")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping: epochs without validation improvement (needs "
                        "--validation-split)")


def _add_output_options(p):
    p.add_argument("--print-every", type=positive_int, default=2500, metavar="N",
                   help="print the loss every N epochs (default: 2500)")
    p.add_argument("--save", metavar="MODEL.safetensors",
                   help="write the trained model here (a safetensors file)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="decision boundary for 2-D data, the training curves otherwise")
    p.add_argument("--plot-history", metavar="FILE.png",
                   help="training curves (loss, accuracy; train and validation)")
    p.add_argument("--history", metavar="FILE.json", help="write the training history")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no intermediate losses")


def output_units(output, y) -> int:
    """The output layer's size for labels ``y`` (int ``(m,)``) and the output/loss pair."""
    if output == "softmax":
        return int(y.max()) + 1
    if output == "sigmoid":
        if set(np.unique(y).tolist()) - {0, 1}:
            raise UsageError(f"--output sigmoid needs 2 classes (labels 0/1); the data has "
                             f"{len(np.unique(y))} classes: use --output softmax")
        return 1
    return 1  # identity, poisson: regress the label value


def _split(args, X, y):
    """``(X_train, y_train, validation)``: a seeded split when ``--validation-split`` asks
    (stratified for classifiers), else all of the data and None."""
    if args.validation_split is None:
        return X, y, None
    from polynn.datasets import train_test_split

    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=args.validation_split, seed=args.seed,
        stratify=args.output in CLASSIFIERS)
    return X_train, y_train, (X_val, y_val)


def _header(args, model, X, y, X_train, validation, out) -> float:
    """Print the model, the data and the training plan; return the learning rate."""
    classify = args.output in CLASSIFIERS
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    print(f"{model}", file=out)
    print(f"data: {args.dataset}, {X_train.shape[0]} training examples"
          + (f", {validation[0].shape[0]} validation" if validation else "")
          + f", {X.shape[1]} features" + (f", {len(np.unique(y))} classes" if classify else ""),
          file=out)
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES[args.optimizer]
    print(f"training: {args.optimizer}, lr {lr:g}, l2 {args.l2:g}, "
          f"{plural(args.epochs, 'epoch')}, {batch}", file=out)
    out.flush()
    return lr


def cmd_train(args, out, err) -> int:
    from polynn.model import MLP

    check_outputs(args)
    main_process = start_distributed(args)
    if not main_process:  # every process trains; process 0 alone prints and writes
        out, args.quiet = open(os.devnull, "w"), True  # noqa: SIM115 - lives for the process
    X, y = load_dataset(args.dataset)
    model = MLP([X.shape[1], *args.layers, output_units(args.output, y)],
                activation=args.activation, output=args.output, backend=args.backend,
                device=args.device, dtype=args.dtype, seed=args.seed, mesh=args.mesh,
                dropout=args.dropout)
    X_train, y_train, validation = _split(args, X, y)
    lr = _header(args, model, X, y, X_train, validation, out)
    tic = time.perf_counter()
    history = model.fit(X_train, y_train, lr=lr, l2=args.l2, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=args.optimizer,
                        validation_data=validation, patience=args.patience,
                        progress=not args.quiet, stream=args.stream)
    seconds = time.perf_counter() - tic
    score = _report(args, model, history, X_train, y_train, validation, seconds, out)
    print(model.summary(), file=out)
    if main_process:
        _write_outputs(args, model, history, X, y, score, out)
    elif args.save:
        model.save(args.save)  # gathering the weights may need every process; 0 writes
    return 0


def _print_losses(args, history, final, out):
    """The loss every ``--print-every`` epochs, as the reference program prints it."""
    for epoch in range(0, len(history.loss), args.print_every):
        print(f"epoch {epoch:>6}  loss {history.loss[epoch]:.6f}", file=out)
    if (history.stopped is None and args.batch_size is None and history.epochs
            and history.epochs % args.print_every == 0):
        # The reference's last line: the loss of the final weights (history.loss[k] is the
        # loss before step k's update, so this one is not in the history).
        print(f"epoch {history.epochs:>6}  loss {final:.6f}", file=out)


def _report(args, model, history, X, y, validation, seconds, out) -> float:
    """Print the losses every ``--print-every`` epochs, then the final loss and score of the
    trained weights (and on the validation data); returns the training score."""
    final = model.loss(X, y, l2=args.l2)
    epochs = plural(history.epochs, "epoch")
    if not args.quiet:
        _print_losses(args, history, final, out)
    if history.stopped == "interrupted":
        print(f"interrupted after {epochs}: reporting and saving what was trained", file=out)
    elif history.stopped == "early_stopping":
        print(f"early stopping after {epochs}; restored the weights of epoch "
              f"{history.best_epoch}, the best on validation", file=out)

    def shown(score):
        return (f"accuracy {100 * score:.2f}%" if model.output in CLASSIFIERS
                else f"R^2 {score:.4f}")

    score = model.score(X, y)
    print(f"final loss {final:.6f}  training {shown(score)}  ({epochs} in {seconds:.2f} s)",
          file=out)
    if validation:
        print(f"validation loss {model.loss(*validation, l2=args.l2):.6f}  validation "
              f"{shown(model.score(*validation))}", file=out)
    return score


def _write_outputs(args, model, history, X, y, score, out):
    if args.save:
        model.save(args.save)
        print(f"saved model to {args.save}", file=out)
    if args.history:
        Path(args.history).write_text(json.dumps(history.as_dict(), indent=1) + "\n")
        print(f"wrote history to {args.history}", file=out)
    if args.plot:
        _plot(args, model, history, X, y, score, out)
    if args.plot_history:
        from polynn import plot

        plot.history_curves(history, args.plot_history)
        print(f"wrote training curves to {args.plot_history}", file=out)


def _plot(args, model, history, X, y, score, out):
    """``--plot``: the decision boundary of 2-D data, the training curves otherwise."""
    from polynn import plot

    if X.shape[1] != 2:
        plot.history_curves(history, args.plot)
        print(f"wrote training curves to {args.plot} (data is not 2-D)", file=out)
        return
    kind = "accuracy" if args.output in CLASSIFIERS else "R^2"
    activation = args.activation if isinstance(args.activation, str) else ",".join(
        args.activation)
    title = (f"{args.dataset}: {'-'.join(map(str, model.layer_sizes))} "
             f"{activation}/{args.output}, {kind} {score:.3f}")
    plot.decision_boundary(model, X, y, args.plot, title=title)
    print(f"wrote decision boundary to {args.plot}", file=out)
