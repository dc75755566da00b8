"""What ``polynn train`` prints before and after training, and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

from polynn.cli.common import plural
from polynn.nn.losses import CLASSIFIERS
from polynn.nn.optim import DEFAULT_LEARNING_RATES


def _classes_text(classes) -> str:
    from polynn.datasets.labels import label_text

    shown = [label_text(c) for c in classes[:6]]
    return ", ".join(shown) + (", ..." if len(classes) > 6 else "")


def header(args, model, X_train, validation, test, classes, batch_size, epochs, out) -> float:
    """Print the model, the data and the training plan; return the learning rate."""
    held = "".join(f", {part[0].shape[0]} {name}" for name, part in
                   (("validation", validation), ("test", test)) if part is not None)
    labels = "" if classes is None else (
        f", {len(classes)} class{'' if len(classes) == 1 else 'es'} ({_classes_text(classes)})")
    print(f"{model}", file=out)
    print(f"data: {args.dataset}, {X_train.shape[0]} training examples{held}, "
          f"{X_train.shape[1]} features{labels}", file=out)
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES[args.optimizer]
    batch = "full batch" if batch_size is None else f"batches of {batch_size}"
    print(f"training: {args.optimizer}, lr {lr:g}, l2 {args.l2:g}, "
          f"{plural(epochs, 'epoch')}, {batch}", file=out)
    out.flush()
    return lr


def _shown(model, score) -> str:
    return (f"accuracy {100 * score:.2f}%" if model.output in CLASSIFIERS
            else f"R^2 {score:.4f}")


def report(args, model, history, train, validation, test, seconds, every, batch_size,
           out) -> float:
    """After training: why it stopped, the reference's last loss line, then the final loss and
    score of the trained weights on the training data, the validation data and the test data
    (held out); returns the training score."""
    final = model.loss(*train, l2=args.l2)
    epochs = plural(history.epochs, "epoch")
    if (not args.quiet and history.stopped is None and batch_size is None and history.epochs
            and history.epochs % every == 0):
        # The reference's last line: the loss of the final weights (history.loss[k] is the
        # loss before step k's update, so this one is not in the history).
        print(f"epoch {history.epochs:>6}  loss {final:.6f}", file=out)
    if history.stopped == "interrupted":
        partial = (f" and {plural(history.partial_steps, 'step')} of the next"
                   if history.partial_steps else "")
        print(f"interrupted after {epochs}{partial} ({plural(history.steps, 'step')}): "
              "reporting and saving what was trained", file=out)
    elif history.stopped == "early_stopping":
        print(f"early stopping after {epochs}; restored the weights of epoch "
              f"{history.best_epoch}, the best on validation", file=out)
    score = model.score(*train)
    print(f"final loss {final:.6f}  training {_shown(model, score)}  ({epochs} in "
          f"{seconds:.2f} s)", file=out)
    if validation:
        print(f"validation loss {model.loss(*validation, l2=args.l2):.6f}  validation "
              f"{_shown(model, model.score(*validation))}", file=out)
    if test:
        held = plural(test[0].shape[0], "held-out example")
        print(f"test loss {model.loss(*test, l2=args.l2):.6f}  test "
              f"{_shown(model, model.score(*test))} on {held}", file=out)
    out.flush()
    return score


def write_outputs(args, model, history, X, y, score, out):
    """``--save``, ``--history``, ``--plot``, ``--plot-history``."""
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
