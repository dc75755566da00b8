"""``polynn predict``: predictions of a saved model, one line per data row."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from polynn.cli.common import UsageError, check_outputs, load_dataset
from polynn.cli.options import add_backend_options
from polynn.datasets.labels import encode_labels, label_text
from polynn.nn.losses import CLASSIFIERS

DESCRIPTION = (
    "Predict with a model saved by 'polynn train --save'. DATA is a UTF-8 CSV file (the model's "
    "features, optionally followed by a label column; a first row with no number in it is a "
    "header and skipped) or a dataset name as for 'train --dataset'. Predictions go one line "
    "per data row to stdout (or --out): the class values the model was trained on (its "
    "labels as they were written), or regression values. Accuracy on labelled data goes to "
    "stderr; the labels are compared with the model's classes, and a label the model never "
    "saw is an error.")


def add_parser(commands):
    """Register ``predict`` with its options on the ``commands`` subparsers."""
    p = commands.add_parser("predict", help="predict with a saved model", description=DESCRIPTION)
    p.add_argument("model", metavar="MODEL", help="a .safetensors file from 'train --save'")
    p.add_argument("data", metavar="DATA", help="CSV path or dataset name")
    p.add_argument("--out", metavar="FILE", help="write predictions here")
    p.add_argument("--proba", action="store_true",
                   help="class probabilities, comma-separated in the order of the model's "
                        "classes, instead of labels")
    add_backend_options(p)
    p.set_defaults(run=cmd_predict)


def _read_data(data, n_features):
    """``(X, labels or None)`` of DATA: a dataset name (``csv:``/``idx:`` prefixed, or anything
    that is not an existing file nor ends with .csv) or a CSV file of the model's features."""
    from polynn import datasets

    if data.startswith(datasets.PREFIXES) or not (Path(data).exists() or data.endswith(".csv")):
        return load_dataset(data)
    return datasets.load_csv_features(data, n_features)


def _lines(model, X, proba) -> list:
    """One text line per row of ``X``: probabilities (columns in the order of the model's
    classes), class values (the model's ``classes``; indices for a file without them), 0/1
    per label (multilabel) or regression values."""
    if proba:
        return [",".join(f"{p:.6g}" for p in row) for row in model.predict_proba(X)]
    pred = model.predict(X)  # (m,) or (m, k): one line per row either way
    if model.output in CLASSIFIERS and pred.ndim == 1:
        classes = _classes(model)
        return [_cell(label_text(classes[i])) for i in pred]
    if model.output in CLASSIFIERS:
        return [",".join(str(int(v)) for v in row) for row in pred]
    return [",".join(f"{v:.10g}" for v in np.atleast_1d(row)) for row in pred]


def _classes(model):
    """The model's class values; 0..k-1 for a file written before models kept them."""
    if model.classes is not None:
        return model.classes
    return np.arange(model.n_outputs if model.output == "softmax" else 2)


def _cell(text: str) -> str:
    """A class name as one CSV cell (quoted when it holds a comma or a quote)."""
    if any(c in text for c in ',"') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _accuracy(model, X, labels, data):
    """The accuracy of the model's predictions on ``labels`` (values), mapped through the
    model's classes (never re-encoded from the data's own values): a label the model never
    saw is an error naming it. None for regression and multilabel models."""
    multilabel = model.output == "sigmoid" and model.n_outputs > 1
    if labels is None or model.output not in CLASSIFIERS or multilabel:
        return None
    try:
        truth, _ = encode_labels(labels, _classes(model), name=data)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return float(np.mean(model.predict(X) == truth))


def cmd_predict(args, out, err) -> int:
    from polynn.model import load

    check_outputs(args)
    with warnings.catch_warnings():
        # float64 on JAX: the file's dtype, not a choice made here; x64 is enabled silently.
        warnings.filterwarnings("ignore", message="dtype='float64' on JAX")
        model = load(args.model, backend=args.backend, device=args.device)
    X, labels = _read_data(args.data, model.n_features)
    accuracy = _accuracy(model, X, labels, args.data)  # before any output: a bad label stops
    rows = _lines(model, X, args.proba)
    text = "\n".join(rows) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {len(rows)} predictions to {args.out}", file=err)
    else:
        out.write(text)
    if accuracy is not None:
        print(f"accuracy {100 * accuracy:.2f}% on {len(labels)} labelled examples", file=err)
    return 0
