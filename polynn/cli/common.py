"""What every command shares: the usage error, the parser class, loading a dataset by name and
checking output paths before any work."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

# The options that name a file a command writes (their argparse destinations).
OUTPUT_OPTIONS = ("save", "history", "plot", "plot_history", "out")
PLOT_OPTIONS = ("plot", "plot_history")


class UsageError(Exception):
    """Bad command-line input: reported as ``polynn: error: ...`` with exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UsageError` (one line, status 2), not an exit."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def plural(n, word) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def load_dataset(name):
    """``(X, y)`` of the dataset called ``name`` (see :func:`polynn.datasets.get`): ``X`` float64
    ``(m, n_features)``, ``y`` ``(m,)`` the label values as the data holds them (a CSV file's
    labels as written: integers, numbers or names, never re-encoded to indices here)."""
    from polynn import datasets

    if isinstance(name, str) and name.startswith("csv:") and name[4:]:
        X, codes, classes = datasets.load_csv(os.path.expanduser(name[4:]))
        return np.asarray(X, dtype=np.float64), classes[codes]
    X, y = datasets.get(name)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def _flag(option) -> str:
    return f"--{option.replace('_', '-')}"


def check_output_path(option, path):
    """Refuse, before any work, an output path that cannot be written."""
    shown = f"{_flag(option)} {path}"
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


def check_outputs(args):
    """Fail before training, not after it, when an output cannot be written: every path of
    :data:`OUTPUT_OPTIONS` the command has, and a plot's suffix against matplotlib's formats."""
    for option in OUTPUT_OPTIONS:
        path = getattr(args, option, None)
        if path is not None:
            check_output_path(option, path)
    plots = [(_flag(option), getattr(args, option, None)) for option in PLOT_OPTIONS]
    plots = [(flag, path) for flag, path in plots if path]
    if not plots:
        return
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError('plotting needs matplotlib, which is not installed: '
                         'pip install "polynn[plot]"')
    from polynn.plot import image_formats

    formats = image_formats()
    for flag, path in plots:
        suffix = Path(path).suffix[1:].lower()
        if suffix and suffix not in formats:
            raise UsageError(f"{flag} {path}: matplotlib cannot write .{suffix} images; "
                             f"use one of {', '.join(sorted(formats))}")
