"""Optimizers as pure ``(init, update)`` pairs, and learning-rate schedules.

``init(params) -> state`` and ``update(grads, state, params, inplace=False) -> (new_params,
new_state)`` never mutate their arguments unless ``inplace=True``, which lets a caller that owns
the parameters (the training loop on eager backends) update them without allocating.
``params`` and ``grads`` are tuples of ``(W, b)`` pairs (or the columns layout's ``(Wb, ...)``).
The state is a NamedTuple with named fields, as Optax's (``ScaleByAdamState(count, mu, nu)``):
``count`` first (the step count: a Python int in eager loops, a 0-d integer array inside a
compiled JAX loop; everything here is written with operators that accept both), then trees
shaped like the parameters. Files name their tensors after these fields (see ``state_fields``).

Optimizers and schedules are frozen dataclasses: hashable by value, so a compiled training loop
can be cached per configuration and reused across ``fit`` calls.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from polynn.nn import scalars
from polynn.nn.kernels import descend, subtract
from polynn.nn.namespace import Array, namespace

# A step count: a Python int in eager loops, a 0-d integer array inside a compiled JAX loop.
Count = Any
# Nested tuples of arrays shaped like the parameters (``((W, b), ...)`` or ``(Wb, ...)``).
Tree = Any


def _checked(obj: object, **values: Any) -> None:
    """Store the checked ``values`` on the frozen dataclass ``obj`` (its ``__post_init__``):
    every optimizer and schedule refuses bad numbers when it is built, so a file's fields,
    rebuilt through these constructors, are refused by the same rules."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _learning_rate(owner: str, lr: object) -> float:
    return scalars.positive(owner, "lr", lr)


def _schedule(owner: str, learning_rate: object) -> Callable[[Count], Any]:
    """An optimizer's ``learning_rate``: a schedule (any callable ``t -> rate``; polynn's own
    checked their numbers when built) or a real number, which becomes :class:`Constant`."""
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"{owner}: learning_rate must be a schedule (e.g. Constant(0.01)) or a "
                        f"positive number, got {learning_rate!r:.60}")
    return Constant(_learning_rate(owner, learning_rate))


def _momentum(owner: str, momentum: object) -> float:
    # scikit-learn's range for its momentum (0 <= momentum <= 1).
    return scalars.real(owner, "momentum", momentum, low=0.0, high=1.0)


def _gamma(owner: str, gamma: object) -> float:
    # A decay: 0 <= gamma <= 1 (gamma = 0 stops learning after ``every`` steps, which is
    # harmless; gamma > 1 grows without bound, a negative one alternates into ascent).
    return scalars.real(owner, "gamma", gamma, low=0.0, high=1.0)


# --- learning-rate schedules: callables t -> learning rate --------------------------------------
@dataclass(frozen=True)
class Constant:
    """``lr`` at every step (a finite float > 0)."""

    lr: float

    def __post_init__(self) -> None:
        _checked(self, lr=_learning_rate("Constant", self.lr))

    def __call__(self, t: Count) -> Any:
        return self.lr


@dataclass(frozen=True)
class InverseScaling:
    """``lr / (t + 1) ** power`` (scikit-learn's ``invscaling``, counted in steps)."""

    lr: float
    power: float = 0.5

    def __post_init__(self) -> None:
        _checked(self, lr=_learning_rate("InverseScaling", self.lr),
                 power=scalars.real("InverseScaling", "power", self.power, low=0.0))

    def __call__(self, t: Count) -> Any:
        return self.lr / (t + 1) ** self.power


@dataclass(frozen=True)
class StepDecay:
    """``lr * gamma ** floor(t / every)``: multiply by gamma every ``every`` steps."""

    lr: float
    gamma: float = 0.5
    every: int = 1000

    def __post_init__(self) -> None:
        _checked(self, lr=_learning_rate("StepDecay", self.lr),
                 gamma=_gamma("StepDecay", self.gamma),
                 every=scalars.integer("StepDecay", "every", self.every, low=1))

    def __call__(self, t: Count) -> Any:
        return self.lr * self.gamma ** (t // self.every)


@dataclass(frozen=True)
class ExponentialDecay:
    """``lr * gamma ** (t / every)``: smooth decay by gamma per ``every`` steps."""

    lr: float
    gamma: float = 0.5
    every: int = 1000

    def __post_init__(self) -> None:
        _checked(self, lr=_learning_rate("ExponentialDecay", self.lr),
                 gamma=_gamma("ExponentialDecay", self.gamma),
                 every=scalars.positive("ExponentialDecay", "every", self.every))

    def __call__(self, t: Count) -> Any:
        return self.lr * self.gamma ** (t / self.every)


@dataclass(frozen=True)
class EpochInverseScaling:
    """scikit-learn's "invscaling" rate, which changes once per epoch and counts samples: ``lr``
    during the first epoch of a ``fit``, then ``lr / (t0 + epoch * n_samples + 1) ** power``,
    with ``epoch = t // steps_per_epoch`` and ``t0`` the samples seen before this ``fit``.
    Written with floor divisions, which accept an int or an array count."""

    lr: float
    power: float
    n_samples: int
    steps_per_epoch: int
    t0: int = 0

    def __post_init__(self) -> None:
        owner = "EpochInverseScaling"
        _checked(self, lr=_learning_rate(owner, self.lr),
                 power=scalars.real(owner, "power", self.power, low=0.0),
                 n_samples=scalars.integer(owner, "n_samples", self.n_samples, low=1),
                 steps_per_epoch=scalars.integer(owner, "steps_per_epoch",
                                                 self.steps_per_epoch, low=1),
                 t0=scalars.integer(owner, "t0", self.t0, low=0))

    def __call__(self, t: Count) -> Any:
        epoch = t // self.steps_per_epoch
        after_first = 1 - 1 // (epoch + 1)  # 0 in the first epoch, 1 afterwards
        seen = after_first * (self.t0 + epoch * self.n_samples)
        return self.lr / (seen + 1.0) ** self.power


Schedule = Constant | InverseScaling | StepDecay | ExponentialDecay | EpochInverseScaling
SCHEDULES = {
    "constant": Constant,
    "invscaling": InverseScaling,
    "step": StepDecay,
    "exponential": ExponentialDecay,
}


def as_schedule(learning_rate: float | Schedule | Callable[[Count], Any]) -> Schedule:
    """A float becomes a constant schedule; a schedule is returned as is."""
    if callable(learning_rate):
        return learning_rate  # type: ignore[return-value]  # any t -> rate callable is a schedule
    lr = float(learning_rate)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a positive finite number, got {learning_rate!r}")
    return Constant(lr)


# --- optimizers ---------------------------------------------------------------------------------
def tree_map(fn: Callable[..., Any], *trees: Tree) -> Tree:
    """Apply ``fn`` leaf by leaf to nested tuples of arrays of one structure (row-layout
    ``((W, b), ...)`` pairs or the training layout's flat ``(Wb, ...)``)."""
    if isinstance(trees[0], tuple):
        return tuple(tree_map(fn, *branches) for branches in zip(*trees))
    return fn(*trees)


def _count_in_dtype_of(t: Count, params: Tree) -> Count:
    """The step count ``t`` for computing step sizes: a Python int as it is (eager loops), an
    array count (a compiled JAX loop) cast to the parameters' dtype. Otherwise JAX would compute
    schedules and Adam's bias corrections in its default float dtype, which is float64 once any
    float64 model turned x64 on: a float32 run's results would depend on what else the process
    did (issue 14, symptom 9)."""
    if isinstance(t, int):
        return t
    like = params
    while isinstance(like, tuple):
        like = like[0]
    xp = namespace(like)
    return xp.astype(t, like.dtype)


def _zeros_like(params: Tree) -> Tree:
    def zeros(p: Array) -> Array:
        return namespace(p).zeros_like(p)

    return tree_map(zeros, params)


# --- optimizer states: the step count, then trees shaped like the parameters ------------------
class SGDState(NamedTuple):
    """Plain SGD keeps only the step count."""

    count: Any


class MomentumState(NamedTuple):
    """The step count and the velocity, one buffer per parameter."""

    count: Any
    velocity: Any


class AdamState(NamedTuple):
    """The step count and Adam's first and second moment estimates."""

    count: Any
    first: Any
    second: Any


def state_fields(optimizer_or_state: Any) -> tuple[str, ...]:
    """The names of the parameter-shaped trees of an optimizer's state (an optimizer object or
    a state): ``()`` for SGD, ``("velocity",)`` for the momentum methods, ``("first",
    "second")`` for Adam. Files name their tensors after them."""
    state_type = getattr(optimizer_or_state, "State", type(optimizer_or_state))
    return tuple(state_type._fields[1:])


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: ``W ← W − η(t)·dW``."""

    learning_rate: Schedule
    State = SGDState

    def __post_init__(self) -> None:
        _checked(self, learning_rate=_schedule("SGD", self.learning_rate))

    def init(self, params: Tree) -> SGDState:
        return SGDState(0)

    def update(self, grads: Tree, state: SGDState, params: Tree, inplace: bool = False
               ) -> tuple[Tree, SGDState]:
        (t,) = state
        eta = self.learning_rate(_count_in_dtype_of(t, params))
        new = tree_map(lambda p, g: descend(p, g, eta, inplace), params, grads)
        return new, SGDState(t + 1)


@dataclass(frozen=True)
class Momentum:
    """Heavy-ball momentum as PyTorch writes it: ``v ← μv + g``; ``W ← W − η·v``, or with
    Nesterov ``W ← W − η·(g + μv)``."""

    learning_rate: Schedule
    momentum: float = 0.9
    nesterov: bool = False
    State = MomentumState

    def __post_init__(self) -> None:
        _checked(self, learning_rate=_schedule("Momentum", self.learning_rate),
                 momentum=_momentum("Momentum", self.momentum),
                 nesterov=scalars.flag("Momentum", "nesterov", self.nesterov))

    def init(self, params: Tree) -> MomentumState:
        return MomentumState(0, _zeros_like(params))

    def update(self, grads: Tree, state: MomentumState, params: Tree, inplace: bool = False
               ) -> tuple[Tree, MomentumState]:
        t, velocity = state
        eta, mu = self.learning_rate(_count_in_dtype_of(t, params)), self.momentum
        velocity = tree_map(lambda v, g: mu * v + g, velocity, grads)
        step = tree_map(lambda g, v: g + mu * v, grads, velocity) if self.nesterov else velocity
        new = tree_map(lambda p, s: descend(p, s, eta, inplace), params, step)
        return new, MomentumState(t + 1, velocity)


@dataclass(frozen=True)
class VelocityMomentum:
    """Momentum in the velocity form of Sutskever et al., as scikit-learn's ``SGDOptimizer``
    writes it: ``v ← μv − η(t)·g``, then ``W ← W + v``, or with Nesterov ``W ← W + μv − η(t)·g``
    (the new v). For a constant η this equals :class:`Momentum` (``v = −η·v_torch``); when η
    changes (scikit-learn's "invscaling" and "adaptive" rates) the velocity keeps the step
    sizes it was built with, where :class:`Momentum` rescales the whole velocity by the new η."""

    learning_rate: Schedule
    momentum: float = 0.9
    nesterov: bool = True
    State = MomentumState

    def __post_init__(self) -> None:
        _checked(self, learning_rate=_schedule("VelocityMomentum", self.learning_rate),
                 momentum=_momentum("VelocityMomentum", self.momentum),
                 nesterov=scalars.flag("VelocityMomentum", "nesterov", self.nesterov))

    def init(self, params: Tree) -> MomentumState:
        return MomentumState(0, _zeros_like(params))

    def update(self, grads: Tree, state: MomentumState, params: Tree, inplace: bool = False
               ) -> tuple[Tree, MomentumState]:
        t, velocity = state
        eta, mu = self.learning_rate(_count_in_dtype_of(t, params)), self.momentum
        velocity = tree_map(lambda v, g: mu * v - eta * g, velocity, grads)
        # ``subtract`` subtracts, so it is given the negated step.
        if self.nesterov:
            down = tree_map(lambda g, v: eta * g - mu * v, grads, velocity)
        else:
            down = tree_map(lambda v: -v, velocity)
        new = tree_map(lambda p, d: subtract(p, d, inplace), params, down)
        return new, MomentumState(t + 1, velocity)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba) with bias correction."""

    learning_rate: Schedule
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    State = AdamState

    def __post_init__(self) -> None:
        _checked(self, learning_rate=_schedule("Adam", self.learning_rate),
                 beta1=scalars.real("Adam", "beta1", self.beta1, low=0.0, high=1.0,
                                    high_open=True),
                 beta2=scalars.real("Adam", "beta2", self.beta2, low=0.0, high=1.0,
                                    high_open=True),
                 eps=scalars.positive("Adam", "eps", self.eps))

    def init(self, params: Tree) -> AdamState:
        return AdamState(0, _zeros_like(params), _zeros_like(params))

    def update(self, grads: Tree, state: AdamState, params: Tree, inplace: bool = False
               ) -> tuple[Tree, AdamState]:
        t, first, second = state
        b1, b2, eps = self.beta1, self.beta2, self.eps
        # Fold both bias corrections into the step size: η·sqrt(1−β2^t)/(1−β1^t).
        step = _count_in_dtype_of(t, params) + 1
        eta = self.learning_rate(step - 1) * (1 - b2**step) ** 0.5 / (1 - b1**step)
        first = tree_map(lambda m, g: b1 * m + (1 - b1) * g, first, grads)
        second = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), second, grads)

        def adam_step(p: Array, m: Array, v: Array) -> Array:
            return subtract(p, eta * m / (namespace(v).sqrt(v) + eps), inplace)

        new = tree_map(adam_step, params, first, second)
        return new, AdamState(t + 1, first, second)


# --- the registry --------------------------------------------------------------------------------
OPTIMIZERS: dict[str, type[SGD] | type[Momentum] | type[Adam]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Momentum, "adam": Adam}
# VelocityMomentum has no name here: polynn.sklearn builds it for solver="sgd" and passes the
# object to MLP.fit(optimizer=...). Every optimizer polynn ships, by class name (files store it):
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in (SGD, Momentum, VelocityMomentum, Adam)}
# The state fields that hold no negative value (Adam's second moments: averages of g * g); a
# file's are checked against it.
NONNEGATIVE_STATE_FIELDS = frozenset({"second"})
# Every schedule polynn ships, by class name (files store it); EpochInverseScaling is what
# polynn.sklearn builds for learning_rate="invscaling".
SCHEDULE_CLASSES = {cls.__name__: cls for cls in (*SCHEDULES.values(), EpochInverseScaling)}
# The learning rate an optimizer name gets when none is given.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001}


def make_optimizer(name: str = "sgd", learning_rate: float | Schedule | None = None,
                   **options: Any) -> SGD | Momentum | Adam:
    """Build an optimizer by name: "sgd", "momentum", "nesterov" (momentum with Nesterov), "adam".
    ``learning_rate`` is a float, a schedule or None (``DEFAULT_LEARNING_RATES[name]``);
    ``options`` are the optimizer's own fields."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    if name == "nesterov":
        options.setdefault("nesterov", True)
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[name]
    return OPTIMIZERS[name](as_schedule(learning_rate), **options)
