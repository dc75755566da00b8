"""Pictures of a model: its decision boundary on 2-D data, and its training curves.

matplotlib is an optional extra (``pip install "polynn[plot]"``). Figures are drawn on
matplotlib's Agg canvas without pyplot, so nothing here opens a window or changes the caller's
matplotlib backend. Both functions write an image file (PNG unless the path's suffix names
another format matplotlib knows: :func:`image_formats`) and return its path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from polynn.validate import check_int


def _figure(**kw):
    """A pyplot-free Agg figure; ImportError with the install hint when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('plotting needs matplotlib: pip install "polynn[plot]"') from err
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def image_formats() -> dict[str, str]:
    """The image formats matplotlib writes here: the suffixes a plot's path may end with.

    Returns
    -------
    dict of str to str
        ``{suffix: description}`` (e.g. ``"png"``, ``"svg"``, ``"pdf"``).

    Raises
    ------
    ImportError
        With the install hint, when matplotlib is missing.
    """
    return dict(_figure().canvas.get_supported_filetypes())


def _save(fig, path) -> Path:
    path = Path(path)
    fig.savefig(path, format=None if path.suffix else "png", dpi=100, bbox_inches="tight")
    return path


def decision_boundary(model: Any, X: Any, y: Any, path: str | os.PathLike[str], *,
                      resolution: int = 200, title: str | None = None) -> Path:
    """Draw the model's predicted class over the plane around ``X`` (filled contours) with the
    points of ``X`` coloured by their labels ``y`` on top, like the reference program's
    ``plot_contour``; regression models (output="identity") show their first output instead.

    Parameters
    ----------
    model : polynn.MLP or estimator
        Anything with ``predict``.
    X : array-like, shape (m, 2)
        Points in the plane.
    y : array-like, shape (m,)
        Labels, or values for regression.
    path : str or path-like
        The image file (its suffix picks the format, see :func:`image_formats`; none: PNG).
    resolution : int >= 2, default 200
        Grid points per axis.
    title : str, optional
        The figure's title.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        ``X`` without exactly two columns, or ``y`` of another length.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError("decision_boundary needs 2-D data: X of shape (m, 2), got shape "
                         f"{X.shape}; plot the training curves with history_curves instead")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"X has {X.shape[0]} rows but y has shape {y.shape}")
    resolution = check_int("resolution", resolution, 2)
    fig = _figure(figsize=(6, 5))
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    Z = np.asarray(model.predict(np.c_[gx.ravel(), gy.ravel()]))
    Z = (Z[:, 0] if Z.ndim == 2 else Z).reshape(gx.shape)
    ax = fig.add_subplot()
    if getattr(model, "output", "softmax") == "identity":
        filled = ax.contourf(gx, gy, Z, levels=20, cmap="viridis", alpha=0.8)
        fig.colorbar(filled, ax=ax, label="prediction")
        ax.scatter(X[:, 0], X[:, 1], c=y.reshape(len(y), -1)[:, 0], cmap="viridis",
                   edgecolors="k", s=25)
    else:
        from matplotlib.colors import ListedColormap

        k = max(int(getattr(model, "n_outputs", 0)), 2, int(Z.max()) + 1, int(y.max()) + 1)
        cmap = ListedColormap([f"C{i % 10}" for i in range(k)])
        levels = np.arange(k + 1) - 0.5
        ax.contourf(gx, gy, Z, levels=levels, cmap=cmap, alpha=0.35)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=k - 0.5, edgecolors="k",
                   s=25)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title if title is not None else "decision boundary")
    return _save(fig, path)


def _series(history, name):
    values = history.get(name) if isinstance(history, dict) else getattr(history, name, None)
    return list(values or [])


def history_curves(history: Any, path: str | os.PathLike[str], *,
                   title: str | None = None) -> Path:
    """Plot the loss and, when recorded, the accuracy per epoch, for training and (when present)
    validation.

    Parameters
    ----------
    history : History or dict
        A :class:`polynn.train.History` or its ``as_dict()`` (e.g. read back from JSON).
    path : str or path-like
        The image file (its suffix picks the format; none: PNG).
    title : str, optional
        The figure's title.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        The history has no loss values.
    """
    loss = _series(history, "loss")
    if not loss:
        raise ValueError("history has no loss values to plot (was the model trained?)")
    curves = [("loss", loss, _series(history, "val_loss"))]
    accuracy = _series(history, "accuracy")
    if accuracy:
        curves.append(("accuracy", accuracy, _series(history, "val_accuracy")))
    fig = _figure(figsize=(6 * len(curves), 4))
    for i, (name, train, val) in enumerate(curves):
        ax = fig.add_subplot(1, len(curves), i + 1)
        ax.plot(np.arange(len(train)), train, label=f"train {name}")
        if val:
            ax.plot(np.arange(len(val)), val, label=f"validation {name}")
        if name == "loss" and min(train) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)
