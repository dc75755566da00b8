"""The ``polynn`` command: train, predict, gradcheck, backends.

``main(argv)`` returns the exit status: 0 on success, 1 when training fails (divergence), a
gradient check exceeds its tolerance or something unexpected breaks, 2 for bad input (options,
files, a backend or optional extra that is missing), 130 when interrupted outside training.
Every failure prints one line ``polynn: error: ...`` to stderr and no traceback; set the
environment variable ``POLYNN_TRACEBACK=1`` to get the traceback as well.

Output paths (``--save``, ``--history``, ``--plot``, ``--plot-history``, ``--out``) are checked
before any work: the directory exists and is writable, the path is not a directory, an existing
file is writable, and a plot's suffix names a format matplotlib writes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from polynn.backend import BACKENDS, DTYPES, ENV_VAR, available_backends, default_backend_name
from polynn.nn.activations import ACTIVATIONS
from polynn.nn.losses import CLASSIFIERS, OUTPUTS
from polynn.nn.optim import OPTIMIZERS
from polynn.train import DivergenceError

# MLP.fit's default learning rate per optimizer, shown in the training header.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001}
#: Set to 1 to see the Python traceback of a failing command as well as its one-line message.
TRACEBACK_VAR = "POLYNN_TRACEBACK"


class UsageError(Exception):
    """Bad command-line input: reported as ``polynn: error: ...`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --- argument types -----------------------------------------------------------------------------
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _nonneg_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _nonneg_float(text):
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text):
    value = _nonneg_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0, got 0")
    return value


def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


# --- the parser ---------------------------------------------------------------------------------
def _add_backend_options(p):
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help=f"array backend (default: ${ENV_VAR} or numpy; now "
                        f"{default_backend_name()!r})")
    p.add_argument("--device", default=None, help="backend device, e.g. cpu, gpu:0, cuda:1")


def _add_distributed_options(p):
    group = p.add_argument_group(
        "many devices and processes (JAX)",
        "Data-parallel training on a JAX mesh; with several processes run the same command in "
        "each (only process 0 prints and writes files).")
    group.add_argument("--mesh", default=None, metavar="N|all|DxM",
                       help="train on N devices (or all, or D data x M model devices)")
    group.add_argument("--cpu-devices", type=_positive_int, default=None, metavar="N",
                       help="make JAX's CPU expose N devices (to try --mesh on a laptop)")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address: join a multi-process run "
                            "(jax.distributed.initialize)")
    group.add_argument("--num-processes", type=_positive_int, default=None, metavar="N")
    group.add_argument("--process-id", type=_nonneg_int, default=None, metavar="I")


def _start_distributed(args) -> bool:
    """Force CPU devices and join the cluster as asked, before JAX starts; True on the process
    that prints and writes (process 0, or the only one)."""
    from polynn import distributed

    if args.coordinator or args.num_processes or args.process_id is not None:
        if not (args.coordinator and args.num_processes and args.process_id is not None):
            raise UsageError("--coordinator, --num-processes and --process-id go together")
        distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                               cpu_devices=args.cpu_devices)
    elif args.cpu_devices is not None:
        distributed.force_cpu_devices(args.cpu_devices)
    return distributed.is_main_process()


def _add_architecture_options(p, *, layers, activation):
    p.add_argument("--layers", type=_positive_int, nargs="*", default=layers, metavar="N",
                   help="hidden layer sizes, e.g. --layers 64 64 (default: "
                        f"{' '.join(map(str, layers))}; give no number for none)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default=activation,
                   help=f"hidden-layer activation (default: {activation})")
    p.add_argument("--output", choices=sorted(OUTPUTS), default="softmax",
                   help="output/loss pair: softmax + cross-entropy, sigmoid + binary "
                        "cross-entropy (2 classes), identity + mean squared error, poisson "
                        "(exp) + Poisson deviance for counts (default: softmax)")
    p.add_argument("--l2", type=_nonneg_float, default=1e-3,
                   help="L2 strength: loss += 0.5 * l2 * sum(W**2) (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights and of the shuffling (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="polynn", description="Multilayer perceptrons from scratch on NumPy, "
                     "JAX, PyTorch, CuPy or array-api-strict.")
    from polynn import __version__

    parser.add_argument("--version", action="version", version=f"polynn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train an MLP (default: the reference spiral program)",
        description="Train an MLP. With no options this reproduces the reference program: "
                    "spiral data (300 points, 3 classes, data seed 0), 2-25-3 ReLU/softmax, "
                    "He init, learning rate 0.1, l2 1e-3, 10,000 full-batch gradient-descent "
                    "steps in float64.")
    _add_backend_options(train)
    train.add_argument("--dataset", default="spiral",
                       help="spiral, moons, circles, digits, csv:PATH (label in the last "
                            "column) or idx:DIR (MNIST IDX files); the input and output "
                            "layer sizes come from it (default: spiral)")
    _add_architecture_options(train, layers=[25], activation="relu")
    train.add_argument("--dtype", choices=DTYPES, default="float64",
                       help="floating dtype (default: float64, as the reference program; "
                            "float32 is faster on GPUs)")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd",
                       help="default: sgd (plain gradient descent, as the reference)")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default: 0.1 for sgd, 0.01 for momentum/nesterov, "
                            "0.001 for adam)")
    train.add_argument("--epochs", type=_nonneg_int, default=10_000,
                       help="passes over the data; full batch: one step each (default: 10000)")
    train.add_argument("--batch-size", type=_positive_int, default=None,
                       help="mini-batch size (default: the full batch)")
    train.add_argument("--stream", action="store_true",
                       help="keep the data on the host and move mini-batches to the device as "
                            "they are needed (JAX: in prefetched chunks), for data larger than "
                            "device memory; needs --batch-size")
    train.add_argument("--validation-split", type=_fraction, default=None, metavar="FRACTION",
                       help="hold out this fraction (stratified) for validation loss/accuracy")
    train.add_argument("--patience", type=_positive_int, default=None,
                       help="early stopping: epochs without validation improvement "
                            "(needs --validation-split)")
    train.add_argument("--print-every", type=_positive_int, default=2500, metavar="N",
                       help="print the loss every N epochs (default: 2500)")
    train.add_argument("--save", metavar="MODEL.safetensors",
                       help="write the trained model here (a safetensors file)")
    train.add_argument("--plot", metavar="FILE.png",
                       help="decision boundary for 2-D data, the training curves otherwise")
    train.add_argument("--plot-history", metavar="FILE.png", help="training curves (loss, "
                       "accuracy; train and validation)")
    train.add_argument("--history", metavar="FILE.json", help="write the training history")
    train.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar and no intermediate losses")
    _add_distributed_options(train)
    train.set_defaults(run=cmd_train)

    predict = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Predict with a model saved by 'polynn train --save'. DATA is a UTF-8 CSV "
                    "file (the model's features, optionally followed by a label column; a "
                    "first row with no number in it is a header and skipped) or a dataset "
                    "name as for 'train --dataset'. Predictions go one line per data row to "
                    "stdout (or --out); accuracy on labelled data to stderr.")
    predict.add_argument("model", metavar="MODEL",
                         help="a .safetensors file from 'train --save'")
    predict.add_argument("data", metavar="DATA", help="CSV path or dataset name")
    predict.add_argument("--out", metavar="FILE", help="write predictions here")
    predict.add_argument("--proba", action="store_true",
                         help="class probabilities, comma-separated, instead of labels")
    _add_backend_options(predict)
    predict.set_defaults(run=cmd_predict)

    check = commands.add_parser(
        "gradcheck", help="check the hand-derived gradients against jax.grad and finite "
                          "differences",
        description="Compare polynn's hand-derived backpropagation with jax.grad of the same "
                    "loss and with central finite differences, in float64, on random data. "
                    "Exit status 1 when an error exceeds the tolerance.")
    _add_architecture_options(check, layers=[5, 4], activation="relu")
    check.add_argument("--inputs", type=_positive_int, default=3, help="input features "
                       "(default: 3)")
    check.add_argument("--outputs", type=_positive_int, default=None,
                       help="output units (default: 3; 1 for --output sigmoid)")
    check.add_argument("-m", "--examples", type=_positive_int, default=8, dest="m",
                       help="rows of random data (default: 8)")
    check.add_argument("--method", choices=["jax", "fd"], nargs="+", default=["jax", "fd"],
                       help="judges (default: jax fd)")
    check.add_argument("--tol", type=_nonneg_float, default=None,
                       help="largest relative error allowed (default: 1e-10 against jax, "
                            "1e-6 against finite differences)")
    check.add_argument("--all", action="store_true",
                       help="check every activation x output pair")
    check.set_defaults(run=cmd_gradcheck)

    backends = commands.add_parser("backends", help="which backends are usable here, and why "
                                   "not", description="List the array backends: usable here, "
                                   "or why not and what to install.")
    backends.set_defaults(run=cmd_backends)
    return parser


# --- train --------------------------------------------------------------------------------------
def _load_dataset(name):
    from polynn import datasets

    X, y = datasets.get(name)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _output_units(output, y):
    if output == "softmax":
        return int(y.max()) + 1
    if output == "sigmoid":
        if set(np.unique(y).tolist()) - {0, 1}:
            raise UsageError(f"--output sigmoid needs 2 classes (labels 0/1); the data has "
                             f"{len(np.unique(y))} classes: use --output softmax")
        return 1
    return 1  # identity, poisson: regress the label value


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _check_output_path(option, path):
    """Refuse, before any work, an output path that cannot be written."""
    shown = f"--{option.replace('_', '-')} {path}"
    if Path(path).is_dir():
        raise UsageError(f"{shown}: is a directory")
    target = Path(os.path.realpath(path))  # a symlink is written through
    directory = target.parent
    if not directory.is_dir():
        raise UsageError(f"{shown}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{shown}: directory {directory} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{shown}: the file exists and is not writable")


def _check_outputs(args):
    """Fail before training, not after it, when an output cannot be written."""
    for option in ("save", "history", "plot", "plot_history", "out"):
        path = getattr(args, option, None)
        if path is not None:
            _check_output_path(option, path)
    plots = [(option, getattr(args, option, None)) for option in ("plot", "plot_history")]
    plots = [(f"--{option.replace('_', '-')}", path) for option, path in plots if path]
    if plots:
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError('plotting needs matplotlib, which is not installed: '
                             'pip install "polynn[plot]"')
        from polynn.plot import _figure

        formats = _figure().canvas.get_supported_filetypes()
        for option, path in plots:
            suffix = Path(path).suffix[1:].lower()
            if suffix and suffix not in formats:
                raise UsageError(f"{option} {path}: matplotlib cannot write .{suffix} images; "
                                 f"use one of {', '.join(sorted(formats))}")


def cmd_train(args, out, err) -> int:
    from polynn.model import MLP

    _check_outputs(args)
    main_process = _start_distributed(args)
    if not main_process:  # every process trains; process 0 alone prints and writes
        out, args.quiet = open(os.devnull, "w"), True  # noqa: SIM115 - lives for the process
    X, y = _load_dataset(args.dataset)
    model = MLP([X.shape[1], *args.layers, _output_units(args.output, y)],
                activation=args.activation, output=args.output, backend=args.backend,
                device=args.device, dtype=args.dtype, seed=args.seed, mesh=args.mesh)
    X_train, y_train, validation = X, y, None
    if args.validation_split is not None:
        from polynn.datasets import train_test_split

        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=args.validation_split, seed=args.seed,
            stratify=args.output in CLASSIFIERS)
        validation = (X_val, y_val)
    classify = args.output in CLASSIFIERS
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    print(f"{model}", file=out)
    print(f"data: {args.dataset}, {X_train.shape[0]} training examples"
          + (f", {validation[0].shape[0]} validation" if validation else "")
          + f", {X.shape[1]} features" + (f", {len(np.unique(y))} classes" if classify else ""),
          file=out)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    print(f"training: {args.optimizer}, lr {lr:g}, l2 {args.l2:g}, "
          f"{_plural(args.epochs, 'epoch')}, {batch}", file=out)
    out.flush()
    tic = time.perf_counter()
    history = model.fit(X_train, y_train, lr=lr, l2=args.l2, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=args.optimizer,
                        validation_data=validation, patience=args.patience,
                        progress=not args.quiet, stream=args.stream)
    seconds = time.perf_counter() - tic
    score = _report(args, model, history, X_train, y_train, validation, seconds, out)
    if main_process:
        _write_outputs(args, model, history, X, y, score, out)
    elif args.save:
        model.save(args.save)  # gathering the weights may need every process; 0 writes
    return 0


def _report(args, model, history, X, y, validation, seconds, out) -> float:
    """Print the losses every ``--print-every`` epochs, then the final loss and score of the
    trained weights (and on the validation data); returns the training score."""
    final = model.loss(X, y, l2=args.l2)
    epochs = _plural(history.epochs, "epoch")
    if not args.quiet:
        for epoch in range(0, len(history.loss), args.print_every):
            print(f"epoch {epoch:>6}  loss {history.loss[epoch]:.6f}", file=out)
        if (history.stopped is None and args.batch_size is None and history.epochs
                and history.epochs % args.print_every == 0):
            # The reference's last line: the loss of the final weights (history.loss[k] is
            # the loss before step k's update, so this one is not in the history).
            print(f"epoch {history.epochs:>6}  loss {final:.6f}", file=out)
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
        from polynn.io import save

        save(model, args.save)
        print(f"saved model to {args.save}", file=out)
    if args.history:
        Path(args.history).write_text(json.dumps(history.as_dict(), indent=1) + "\n")
        print(f"wrote history to {args.history}", file=out)
    from polynn import plot

    if args.plot:
        if X.shape[1] == 2:
            kind = "accuracy" if args.output in CLASSIFIERS else "R^2"
            title = (f"{args.dataset}: {'-'.join(map(str, model.layer_sizes))} "
                     f"{args.activation}/{args.output}, {kind} {score:.3f}")
            plot.decision_boundary(model, X, y, args.plot, title=title)
            print(f"wrote decision boundary to {args.plot}", file=out)
        else:
            plot.history_curves(history, args.plot)
            print(f"wrote training curves to {args.plot} (data is not 2-D)", file=out)
    if args.plot_history:
        plot.history_curves(history, args.plot_history)
        print(f"wrote training curves to {args.plot_history}", file=out)


# --- predict ------------------------------------------------------------------------------------
def cmd_predict(args, out, err) -> int:
    from polynn.io import load

    _check_outputs(args)
    model = load(args.model, backend=args.backend, device=args.device)
    if args.data.partition(":")[0] in ("csv", "idx") or not (
            Path(args.data).exists() or args.data.endswith(".csv")):
        X, labels = _load_dataset(args.data)
    else:
        from polynn.datasets import load_csv_features

        X, labels = load_csv_features(args.data, model.n_features)
    if args.proba:
        rows = [",".join(f"{p:.6g}" for p in row) for row in model.predict_proba(X)]
    else:
        pred = model.predict(X)  # (m,) or (m, k): one line per row either way
        if model.output in CLASSIFIERS:
            rows = [",".join(str(int(v)) for v in np.atleast_1d(row)) for row in pred]
        else:
            rows = [",".join(f"{v:.10g}" for v in np.atleast_1d(row)) for row in pred]
    text = "\n".join(rows) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {len(rows)} predictions to {args.out}", file=err)
    else:
        out.write(text)
    predicted = model.predict(X) if labels is not None and model.output in CLASSIFIERS else None
    if predicted is not None and predicted.ndim == 1:  # (multilabel: (m, k), no single label)
        accuracy = float(np.mean(predicted == labels))
        print(f"accuracy {100 * accuracy:.2f}% on {len(labels)} labelled examples", file=err)
    return 0


# --- gradcheck, backends ------------------------------------------------------------------------
def cmd_gradcheck(args, out, err) -> int:
    from polynn.gradcheck import DEFAULT_TOL, gradcheck

    pairs = ([(a, o) for a in sorted(ACTIVATIONS) for o in sorted(OUTPUTS)] if args.all
             else [(args.activation, args.output)])
    failed = 0
    for activation, output in pairs:
        outputs = args.outputs or (1 if output == "sigmoid" else 3)
        result = gradcheck([args.inputs, *args.layers, outputs], activation, output,
                           l2=args.l2, m=args.m, seed=args.seed, methods=tuple(args.method))
        tol = {j: DEFAULT_TOL[j] if args.tol is None else args.tol for j in args.method}
        ok = result.ok(tol)
        failed += not ok
        print(result.table(), file=out)
        worst = ", ".join(f"{j} {result.max_error(j):.2e} (tol {tol[j]:g})"
                          for j in result.available())
        print(f"{'OK' if ok else 'FAILED'}: max relative error {worst or 'n/a: no judge ran'}\n",
              file=out)
    if len(pairs) > 1:
        print(f"{len(pairs) - failed} of {len(pairs)} activation x output pairs OK", file=out)
    return 1 if failed else 0


def cmd_backends(args, out, err) -> int:
    default = default_backend_name()
    for name, reason in available_backends().items():
        mark = " (default)" if name == default else ""
        print(f"{name:<17} {'usable' if reason is None else 'not usable: ' + reason}{mark}",
              file=out)
    return 0


# --- entry point --------------------------------------------------------------------------------
def _format_warning(message, category, filename, lineno, line=None):
    return f"polynn: warning: {message}\n"


def _one_line(e: BaseException) -> str:
    message = str(e) or ("" if isinstance(e, MemoryError) else type(e).__name__)
    if isinstance(e, OSError) and e.filename and e.strerror:
        message = f"{e.strerror}: {e.filename}"
    return " ".join(message.split())


def _silence_stdout():
    """After a broken pipe (``polynn predict ... | head``): send what is left to /dev/null, so
    that the interpreter's final flush does not report the same error again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured, replaced)
        pass


def main(argv=None) -> int:
    """Run the ``polynn`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    status. No exception escapes: each failure is one ``polynn: error: ...`` line on stderr
    (``POLYNN_TRACEBACK=1`` prints the traceback before it)."""
    from polynn.backend import BackendUnavailableError

    out, err = sys.stdout, sys.stderr
    show_traceback = os.environ.get(TRACEBACK_VAR, "") not in ("", "0") or bool(
        os.environ.get("POLYNN_DEBUG"))

    def fail(e: BaseException, code: int, prefix: str = "") -> int:
        if show_traceback:
            traceback.print_exception(type(e), e, e.__traceback__, file=err)
        print(f"polynn: error: {prefix}{_one_line(e)}", file=err)
        return code

    with warnings.catch_warnings():
        warnings.formatwarning = _format_warning
        try:
            args = build_parser().parse_args(argv)
            code = args.run(args, out, err)
            out.flush()  # a broken pipe shows here, where it is handled, not at exit
            return code
        except SystemExit as exit_:  # --help, --version
            return exit_.code if isinstance(exit_.code, int) else 0
        except DivergenceError as e:
            return fail(e, 1)
        except KeyboardInterrupt:
            print("polynn: interrupted", file=err)
            return 130
        except BrokenPipeError:
            _silence_stdout()
            return 1
        except (UsageError, BackendUnavailableError, ImportError, ValueError, TypeError,
                OSError) as e:
            return fail(e, 2)
        except MemoryError as e:
            return fail(e, 1, "out of memory: " if str(e) else "out of memory")
        except Exception as e:  # anything unforeseen: still one line, with its type
            return fail(e, 1, f"{type(e).__name__}: ")
        finally:
            warnings.formatwarning = _original_formatwarning


_original_formatwarning = warnings.formatwarning

if __name__ == "__main__":
    sys.exit(main())
