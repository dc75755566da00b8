"""Compiled execution: ``compile`` (``jax.jit`` on JAX), ``repeat`` (a loop of steps, one
compiled ``fori_loop`` on JAX), ``call`` (compiled per function on a mesh) and ``sync``.

Mixed into :class:`polynn.backend.Backend` (which supplies ``name``, ``xp``, ``device`` and
``mesh``).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=256)
def _compiled_call(fn, static):
    import jax

    return jax.jit(functools.partial(fn, **dict(static)))


def _stack(xp, outs):
    """Stack a list of tuples of 0-d arrays into a tuple of 1-d arrays."""
    if not outs:
        return ()
    return tuple(xp.stack(column) for column in zip(*outs))


def _repeat_jax(xp, body, max_steps: int):
    import jax
    from jax import lax

    def run_jax(carry, start, n, *args):
        shapes = jax.eval_shape(body, carry, start, *args)[1]
        buffers = tuple(xp.zeros((max_steps,), dtype=s.dtype) for s in shapes)

        def one(i, state):
            carry, buffers = state
            carry, out = body(carry, start + i, *args)
            return carry, tuple(b.at[i].set(o) for b, o in zip(buffers, out))

        return lax.fori_loop(0, n, one, (carry, buffers))

    compiled = jax.jit(run_jax)

    def run(carry, start, n, *args, stop=None):
        carry, outs = compiled(carry, start, n, *args)
        return carry, outs, n

    run.compiled = compiled  # type: ignore[attr-defined]  # the jitted loop, for inspecting its HLO (tests)
    return run


def _repeat_eager(xp, body):
    def run_eager(carry, start, n, *args, stop=None):
        outs = []
        for index in range(start, start + n):
            carry, out = body(carry, index, *args)
            outs.append(out)
            if stop is not None and stop():
                break
        return carry, _stack(xp, outs), len(outs)

    return run_eager


class Compiled:
    """Compiled execution, mixed into :class:`~polynn.backend.Backend`."""

    # Provided by Backend, which this mixin is part of (declared for the type checker).
    name: str
    xp: Any


    @property
    def jit(self) -> bool:
        """True where training steps are traced and compiled (JAX): arrays are immutable there
        and whole loops run as one compiled call."""
        return self.name == "jax"

    def compile(self, fn, **jit_options):
        """``jax.jit(fn)`` on JAX; ``fn`` itself on eager backends."""
        if self.jit:
            import jax

            return jax.jit(fn, **jit_options)
        return fn

    def repeat(self, body, max_steps: int):
        """Build ``run(carry, start, n, *args, stop=None) -> (carry, outs, n_done)`` applying
        ``carry, out = body(carry, index, *args)`` for ``index = start .. start + n - 1``
        (``n <= max_steps``).

        ``out`` is a tuple of 0-d arrays; ``outs`` stacks them (length ``max_steps`` on JAX, of
        which the first ``n_done`` are valid; ``n_done`` elsewhere). On JAX the whole loop is one
        compiled ``lax.fori_loop`` with a dynamic start and trip count, so changing them never
        recompiles. Eager loops check ``stop()`` after every step and end early when it returns
        True; a compiled chunk cannot be stopped, so callers bound ``n`` by time."""
        if self.jit:
            return _repeat_jax(self.xp, body, max_steps)
        return _repeat_eager(self.xp, body)

    def call(self, fn, *args, static=None, **kwargs):
        """``fn(*args, **kwargs, **static)``; on JAX compiled (and cached per ``fn`` and hashable
        ``static`` options): one compilation (kept by the persistent cache) instead of one per
        eager operation, each of them a cache lookup in a new process; with a mesh, eager array
        creation next to sharded arrays would also ask for a sharded ``device`` that a small
        shape cannot take, and a compiled call lets XLA split the work. Elsewhere a plain
        call."""
        static = static or {}
        if not self.jit:
            return fn(*args, **kwargs, **static)
        return _compiled_call(fn, tuple(sorted(static.items())))(*args, **kwargs)

    def sync(self, x):
        """Block until the device work producing ``x`` is done (for timing); returns x."""
        if self.name == "jax":
            import jax

            jax.block_until_ready(x)
        elif self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()
        elif self.name == "torch" and getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return x
