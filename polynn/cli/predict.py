"""``polynn predict``: predictions of a saved model, one line per data row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polynn.cli.common import check_outputs, load_dataset
from polynn.cli.options import add_backend_options
from polynn.nn.losses import CLASSIFIERS

DESCRIPTION = (
    "Predict with a model saved by 'polynn train --save'. DATA is a UTF-8 CSV file (the model's "
    "features, optionally followed by a label column; a first row with no number in it is a "
    "header and skipped) or a dataset name as for 'train --dataset'. Predictions go one line "
    "per data row to stdout (or --out); accuracy on labelled data to stderr.")


def add_parser(commands):
    """Register ``predict`` with its options on the ``commands`` subparsers."""
    p = commands.add_parser("predict", help="predict with a saved model", description=DESCRIPTION)
    p.add_argument("model", metavar="MODEL", help="a .safetensors file from 'train --save'")
    p.add_argument("data", metavar="DATA", help="CSV path or dataset name")
    p.add_argument("--out", metavar="FILE", help="write predictions here")
    p.add_argument("--proba", action="store_true",
                   help="class probabilities, comma-separated, instead of labels")
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
    """One text line per row of ``X``: probabilities, labels or regression values."""
    if proba:
        return [",".join(f"{p:.6g}" for p in row) for row in model.predict_proba(X)]
    pred = model.predict(X)  # (m,) or (m, k): one line per row either way
    if model.output in CLASSIFIERS:
        return [",".join(str(int(v)) for v in np.atleast_1d(row)) for row in pred]
    return [",".join(f"{v:.10g}" for v in np.atleast_1d(row)) for row in pred]


def cmd_predict(args, out, err) -> int:
    from polynn.model import load

    check_outputs(args)
    model = load(args.model, backend=args.backend, device=args.device)
    X, labels = _read_data(args.data, model.n_features)
    rows = _lines(model, X, args.proba)
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
