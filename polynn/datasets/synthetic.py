"""Synthetic data in the plane (spiral, moons, circles) and scikit-learn's bundled digits.

Each returns ``X`` float64 ``(m, n_features)`` and ``y`` int64 ``(m,)`` in ``0 .. k-1``; random
draws come from ``numpy.random.default_rng(seed)``, so a seed fixes the data.
"""

from __future__ import annotations

import numpy as np

from polynn.validate import check_int, check_real, check_seed


def spiral(n_per_class: int = 100, n_classes: int = 3, *, noise: float = 0.2,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The cs231n spiral: ``n_classes`` interleaved arms in the plane.

    For class j: ``r = linspace(0, 1, n_per_class)``,
    ``t = linspace(4j, 4(j+1), n_per_class) + noise * N(0, 1)``, points ``(r sin t, r cos t)``.

    Parameters
    ----------
    n_per_class : int >= 1, default 100
        Points per arm.
    n_classes : int >= 1, default 3
        Arms (classes).
    noise : float >= 0, default 0.2
        Standard deviation of the Gaussian noise added to the angle ``t``.
    seed : int, default 0
        Seeds ``numpy.random.default_rng``: a seed fixes the data.

    Returns
    -------
    X : numpy.ndarray of float64, shape (n_per_class * n_classes, 2)
    y : numpy.ndarray of int64, shape (n_per_class * n_classes,)
        Labels 0..n_classes-1, rows ordered class by class (all of class 0, then class 1, ...).

    Raises
    ------
    ValueError
        A count below 1 or a negative ``noise``.

    Examples
    --------
    >>> import polynn as pn
    >>> X, y = pn.datasets.spiral(100, 3, seed=0)
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((300, 2), dtype('float64'), (300,), dtype('int64'))
    >>> y[:3], y[-3:]
    (array([0, 0, 0]), array([2, 2, 2]))
    """
    n_per_class = check_int("n_per_class", n_per_class, 1)
    n_classes = check_int("n_classes", n_classes, 1)
    noise = check_real("noise", noise, 0)
    rng = np.random.default_rng(check_seed(seed))
    r = np.linspace(0.0, 1.0, n_per_class)
    blocks = []
    for j in range(n_classes):
        t = np.linspace(j * 4, (j + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * noise
        blocks.append(np.c_[r * np.sin(t), r * np.cos(t)])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    return np.concatenate(blocks).astype(np.float64), y


def _split_two(n_samples):
    n_samples = check_int("n_samples", n_samples, 2)
    n_out = n_samples // 2
    return n_out, n_samples - n_out


def _two_class(xs, ys, n_out, noise, seed):
    """Stack two point sets (class 0 then class 1) and add Gaussian noise of std ``noise``."""
    X = np.column_stack([xs, ys]).astype(np.float64)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_out, len(xs) - n_out])
    rng = np.random.default_rng(check_seed(seed))
    return X + rng.normal(scale=noise, size=X.shape), y


def moons(n_samples: int = 200, *, noise: float = 0.1,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the geometry of scikit-learn's ``make_moons``).

    Class 0 is the upper moon (``n_samples // 2`` points), class 1 the lower one. Rows are
    ordered class by class (not shuffled).

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points in all.
    noise : float >= 0, default 0.1
        Standard deviation of the Gaussian noise added to every coordinate.
    seed : int, default 0
        Seeds the noise.

    Returns
    -------
    X : numpy.ndarray of float64, shape (n_samples, 2)
    y : numpy.ndarray of int64, shape (n_samples,)
        Labels in {0, 1}.
    """
    n_out, n_in = _split_two(n_samples)
    noise = check_real("noise", noise, 0)
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    xs = np.concatenate([np.cos(t_out), 1.0 - np.cos(t_in)])
    ys = np.concatenate([np.sin(t_out), 1.0 - np.sin(t_in) - 0.5])
    return _two_class(xs, ys, n_out, noise, seed)


def circles(n_samples: int = 200, *, noise: float = 0.05, factor: float = 0.5,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A large circle (class 0) around a smaller one (class 1), as scikit-learn's
    ``make_circles``. Rows are ordered class by class (not shuffled).

    Parameters
    ----------
    n_samples : int >= 2, default 200
        Points in all (``n_samples // 2`` on the outer circle).
    noise : float >= 0, default 0.05
        Standard deviation of the Gaussian noise added to every coordinate.
    factor : float in [0, 1), default 0.5
        The inner circle's radius (the outer one's is 1).
    seed : int, default 0
        Seeds the noise.

    Returns
    -------
    X : numpy.ndarray of float64, shape (n_samples, 2)
    y : numpy.ndarray of int64, shape (n_samples,)
        Labels in {0, 1}.
    """
    n_out, n_in = _split_two(n_samples)
    noise = check_real("noise", noise, 0)
    factor = check_real("factor", factor, 0, 1, high_open=True)
    t_out = np.linspace(0.0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2 * np.pi, n_in, endpoint=False)
    xs = np.concatenate([np.cos(t_out), factor * np.cos(t_in)])
    ys = np.concatenate([np.sin(t_out), factor * np.sin(t_in)])
    return _two_class(xs, ys, n_out, noise, seed)


# --------------------------------------------------------------------------- scikit-learn digits


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits bundled with scikit-learn (no download).

    Returns
    -------
    X : numpy.ndarray of float64, shape (1797, 64)
        Pixels scaled to [0, 1] (pixel / 16).
    y : numpy.ndarray of int64, shape (1797,)
        Digits 0..9.

    Raises
    ------
    ImportError
        scikit-learn is not installed: ``pip install "polynn[sklearn]"``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            'digits() needs scikit-learn, which is not installed: pip install "polynn[sklearn]"'
        ) from err
    data = load_digits()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target, dtype=np.int64)
