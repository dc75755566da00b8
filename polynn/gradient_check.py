"""Independent judges of the hand-derived gradients.

polynn's ``backward`` (``polynn.nn.mlp.value_and_grad``) is checked against two judges that know
nothing about it:

- ``jax``: ``jax.grad`` of the *same* regularised loss (``polynn.nn.mlp.loss``, which is array API
  code and so traces under JAX), in float64 with x64 mode enabled for the computation only;
- ``fd``: central finite differences of that loss on NumPy float64.

All arrays here are host NumPy float64: ``params`` is a tuple of ``(W (n_in, n_out), b (n_out,))``
pairs, ``X`` is ``(m, n_0)`` and ``T`` the target matrix ``(m, n_L)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from polynn.init import dropout_key, init_params
from polynn.nn import mlp as nn_mlp
from polynn.nn.activations import layer_activations
from polynn.nn.dropout import dropout_masks
from polynn.nn.losses import get_output
from polynn.validate import (
    check_activations,
    check_dropout,
    check_int,
    check_l2,
    check_layer_sizes,
    check_seed,
)

# What each judge can resolve in float64: autodiff agrees to rounding, central differences to
# about eps**2 (truncation) + 1e-16/eps (cancellation) relative to the gradient's scale.
DEFAULT_TOL = {"jax": 1e-10, "fd": 1e-6}
_TINY = np.finfo(np.float64).tiny


def _host64(params):
    return tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)


@contextlib.contextmanager
def jax_float64():
    """JAX float64 (x64 mode) for the duration of the block only: the process-wide setting is
    left as found, so a judge never changes the dtype of a JAX model elsewhere. JAX must be
    installed (ImportError otherwise)."""
    import jax

    if hasattr(jax, "enable_x64"):  # JAX >= 0.8
        with jax.enable_x64(True):
            yield
    else:
        from jax.experimental import enable_x64

        with enable_x64():
            yield


def jax_gradients(params, X, T, activation="relu", output="softmax", l2=0.0, masks=None):
    """``jax.grad`` of ``polynn.nn.mlp.loss`` in float64: a tuple of ``(dW, db)`` NumPy float64
    arrays shaped like ``params``; ``masks``: None or per hidden layer a host dropout mask
    ``(n_l, m)`` (or None), the same masks the loss applies. Raises ImportError when JAX is not
    installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as err:
        raise ImportError('the jax judge needs JAX: pip install "polynn[jax]"') from err
    with jax_float64():
        p = tuple((jnp.asarray(W, dtype=jnp.float64), jnp.asarray(b, dtype=jnp.float64))
                  for W, b in _host64(params))
        Xj = jnp.asarray(X, dtype=jnp.float64)
        Tj = jnp.asarray(T, dtype=jnp.float64)
        Dj = None if masks is None else tuple(
            None if D is None else jnp.asarray(D, dtype=jnp.float64) for D in masks)
        grads = jax.grad(nn_mlp.loss)(p, Xj, Tj, activation, output, float(l2), None, Dj)
        return tuple((np.asarray(dW), np.asarray(db)) for dW, db in grads)


def finite_difference_gradients(params, X, T, activation="relu", output="softmax", l2=0.0,
                                eps=1e-5, masks=None):
    """Central differences ``(L(θ + eps·e_i) − L(θ − eps·e_i)) / 2eps`` of ``polynn.nn.mlp.loss``
    on NumPy float64, one parameter at a time (meant for small networks: 2 losses per parameter).
    ``eps=1e-5`` balances truncation (~eps²) against cancellation (~1e-16/eps): measured on deep
    narrow sigmoid nets, whose small early-layer gradients suffer most, it is ~20x closer than 1e-6.
    ``masks`` as in :func:`jax_gradients`. Returns a tuple of ``(dW, db)`` NumPy float64 arrays
    shaped like ``params``."""
    params = _host64(params)
    X, T = np.asarray(X, np.float64), np.asarray(T, np.float64)
    flat = [a.copy() for pair in params for a in pair]  # perturbed in place, one entry at a time

    def loss():
        pairs = tuple(zip(flat[0::2], flat[1::2]))
        return float(nn_mlp.loss(pairs, X, T, activation, output, l2, None, masks))

    grads = []
    for a in flat:
        g = np.empty_like(a)
        view, gview = a.reshape(-1), g.reshape(-1)
        for i in range(view.size):
            saved = view[i]
            view[i] = saved + eps
            up = loss()
            view[i] = saved - eps
            down = loss()
            view[i] = saved
            gview[i] = (up - down) / (2 * eps)
        grads.append(g)
    return tuple(zip(grads[0::2], grads[1::2]))


def _jax_judge(params, X, T, activation, output, l2, eps, masks):
    return jax_gradients(params, X, T, activation, output, l2, masks)  # exact: no step size


# judge name -> (its gradients(params, X, T, activation, output, l2, eps, masks) of the same loss,
# what a result says when the judge's library is missing)
_JUDGES = {
    "jax": (_jax_judge, 'unavailable: install polynn[jax] (pip install "polynn[jax]")'),
    "fd": (finite_difference_gradients, None),
}
JUDGES = tuple(_JUDGES)


def relative_error(a, b) -> float:
    """``max|a − b| / max(max|a|, max|b|, tiny)``: 0 for two all-zero arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                _TINY)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


@dataclass
class GradcheckResult:
    """Per-layer relative errors of polynn's gradients against each judge.

    ``errors[judge]`` is a list with one ``(dW error, db error)`` pair per layer, or a string
    saying why the judge could not run (e.g. ``"unavailable: install polynn[jax]"``)."""

    layer_sizes: tuple
    activation: str | tuple[str, ...]  # a name, or a tuple of names (one per hidden layer)
    output: str
    l2: float
    m: int
    seed: int | list[int] | None
    loss: float
    errors: dict = field(default_factory=dict)
    dropout: float | tuple[float, ...] = 0.0  # a rate, or a tuple of rates (one per hidden layer)

    def available(self) -> list:
        return [j for j, e in self.errors.items() if not isinstance(e, str)]

    def max_error(self, judge) -> float:
        return max(max(pair) for pair in self.errors[judge])

    def ok(self, tol=None) -> bool:
        """True when every available judge agrees within ``tol``: a float for all judges, a
        dict judge -> float, or None for :data:`DEFAULT_TOL`. False when no judge could run."""
        judges = self.available()
        if not judges:
            return False
        for judge in judges:
            limit = tol.get(judge, DEFAULT_TOL[judge]) if isinstance(tol, dict) else (
                DEFAULT_TOL[judge] if tol is None else tol)
            if not self.max_error(judge) <= limit:
                return False
        return True

    def table(self) -> str:
        """A text table: one row per parameter array, one column per judge."""
        judges = list(self.errors)
        sizes = self.layer_sizes
        activation = (self.activation if isinstance(self.activation, str)
                      else ",".join(self.activation))
        dropout = (f" dropout={self.dropout:g}" if isinstance(self.dropout, float)
                   else f" dropout={list(self.dropout)}") if self.dropout else ""
        head = (f"gradcheck {list(sizes)} activation={activation} output={self.output} "
                f"l2={self.l2:g}{dropout} m={self.m} seed={self.seed} loss={self.loss:.6g}")
        lines = [head, f"{'param':<8}{'shape':<12}" + "".join(f"{'vs ' + j:>14}" for j in judges)]
        for layer in range(len(sizes) - 1):
            for k, (name, shape) in enumerate(
                    ((f"W{layer + 1}", (sizes[layer], sizes[layer + 1])),
                     (f"b{layer + 1}", (sizes[layer + 1],)))):
                cells = "".join(
                    f"{'-':>14}" if isinstance(self.errors[j], str)
                    else f"{self.errors[j][layer][k]:>14.3e}" for j in judges)
                lines.append(f"{name:<8}{str(shape):<12}{cells}")
        lines.extend(f"{j}: {e}" for j, e in self.errors.items() if isinstance(e, str))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def random_problem(layer_sizes, output="softmax", m=8, seed=0):
    """A random float64 problem: He-initialised ``params`` with small random biases (so that b
    takes part), ``X`` ``(m, n_0)`` standard normal, and targets ``T`` ``(m, n_L)`` that suit the
    output: one-hot random labels (softmax), 0/1 entries (sigmoid), normal values (identity),
    Poisson counts (poisson)."""
    get_output(output)  # validates the name
    rng = np.random.default_rng(seed)
    params = tuple((W, 0.1 * rng.standard_normal(b.shape))
                   for W, b in init_params(layer_sizes, "he", seed))
    X = rng.standard_normal((m, layer_sizes[0]))
    draw = _TARGETS.get(output, _TARGETS["identity"])
    return params, X, draw(rng, m, layer_sizes[-1])


# output -> random targets (m, k) that suit it, float64
_TARGETS = {
    "softmax": lambda rng, m, k: np.eye(k)[rng.integers(0, k, m)],
    "sigmoid": lambda rng, m, k: rng.integers(0, 2, (m, k)).astype(np.float64),
    "poisson": lambda rng, m, k: rng.poisson(1.5, (m, k)).astype(np.float64),
    "identity": lambda rng, m, k: rng.standard_normal((m, k)),
}


def gradcheck(layer_sizes: Sequence[int] = (3, 5, 4, 3),
              activation: str | Sequence[str] = "tanh", output: str = "softmax",
              l2: float = 1e-3, m: int = 8, seed: int | Sequence[int] | None = 0,
              methods: Iterable[str] = JUDGES,
              negative_slope: float = 0.01, eps: float = 1e-5,
              dropout: float | Sequence[float] = 0.0) -> GradcheckResult:
    """Compare polynn's hand-derived gradients with independent judges on a random float64
    problem (see :func:`random_problem`).

    Parameters
    ----------
    layer_sizes : sequence of int, default (3, 5, 4, 3)
        The network, as :class:`polynn.MLP` takes it.
    activation : str or sequence of str, default "tanh"
        One name for every hidden layer or one per hidden layer.
    output : str, default "softmax"
        The output/loss pair.
    l2 : float >= 0, default 1e-3
        L2 penalty.
    m : int >= 1, default 8
        Examples in the random problem.
    seed : int, list of int or None, default 0
        Seeds the problem and the dropout masks.
    methods : iterable of str, default every judge
        Judges by name (``JUDGES``): e.g. "fd" (central finite differences); the JAX
        judge needs JAX (without it, its errors say so).
    negative_slope : float > 0, default 0.01
        leaky_relu's slope.
    eps : float > 0, default 1e-5
        The finite-difference step.
    dropout : float or sequence of float, default 0
        A rate for every hidden layer or one per hidden layer: polynn's backward and every
        judge see the same masks (:mod:`polynn.nn.dropout`, drawn from ``seed`` at step 0).

    Returns
    -------
    GradcheckResult
        The relative errors per judge and layer; ``ok()`` says whether all are small.

    Raises
    ------
    ValueError
        An unknown method, or a configuration :class:`polynn.MLP` would refuse.

    Examples
    --------
    >>> from polynn.gradient_check import gradcheck
    >>> result = gradcheck((3, 5, 4, 2), activation=["relu", "tanh"], dropout=0.5, methods=["fd"])
    >>> result.ok()
    True
    """
    sizes = tuple(check_layer_sizes(layer_sizes))
    m, l2, seed = check_int("m", m, 1), check_l2(l2), check_seed(seed)
    unknown = [j for j in methods if j not in JUDGES]
    if unknown:
        raise ValueError(f"unknown gradcheck method(s) {unknown}; choose from {list(JUDGES)}")
    activation = check_activations(activation, len(sizes) - 2)
    rates = check_dropout(dropout, len(sizes) - 2)
    act = layer_activations(activation, negative_slope=negative_slope)
    params, X, T = random_problem(sizes, output, m, seed)
    masks = None
    if any(rates):
        masks = dropout_masks(dropout_key(seed), 0, np.arange(m), sizes[1:-1], rates,
                              np.float64)
    value, mine = nn_mlp.value_and_grad(params, X, T, act, output, l2, masks=masks)
    result = GradcheckResult(sizes, activation, output, float(l2), int(m), seed, float(value),
                             dropout=dropout if isinstance(dropout, float) else rates)
    for judge in methods:
        gradients, unavailable = _JUDGES[judge]
        try:
            theirs = gradients(params, X, T, act, output, l2, eps, masks)
        except ImportError:
            result.errors[judge] = unavailable
            continue
        result.errors[judge] = [(relative_error(dW, tW), relative_error(db, tb))
                                for (dW, db), (tW, tb) in zip(mine, theirs)]
    return result
