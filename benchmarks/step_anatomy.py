"""Where the reference step's time goes on XLA:CPU (a check behind FINDINGS.md):

1. the fixed cost of a compiled kernel: a chain of K tiny dependent 4x4 products in a compiled
   ``fori_loop`` (each its own ``dot`` kernel in the optimised HLO), timed for several K: the
   time per extra kernel is the most a kernel costs by itself;
2. the reference step (spiral 300x2, 2-25-3, native JAX ``value_and_grad``, row layout) against
   its five matrix products alone, chained in the same kind of loop.

    python -m benchmarks.step_anatomy            # float64 and float32, ~30 s

Best of 5 runs per figure; the 1-minute load average is printed with it (the machine is shared).
"""

from __future__ import annotations

import re

import numpy as np

from .helpers import best_s, cli, he_init, load1, spiral


def _best_us(f, a, n: int) -> float:
    """µs per iteration of ``f(a, n)``, best of 5 after a warm-up."""
    return 1e6 * best_s(lambda: __import__("jax").block_until_ready(f(a, n)), 5) / n


def _count(f, a, op: str) -> int:
    return len(re.findall(rf" {op}\(", f.lower(a, 10).compile().as_text()))


def kernel_chain(dtype: str, ks=(4, 16, 64)) -> list[tuple[int, int, float]]:
    """(K, dot kernels in the module, µs per loop iteration) for chains of K 4x4 products."""
    import jax
    import jax.numpy as jnp

    out = []
    for k in ks:
        Ms = jnp.asarray(np.random.default_rng(0).standard_normal((k, 4, 4)) * 0.3, dtype)

        def body(i, x, Ms=Ms, k=k):
            for j in range(k):
                x = x @ Ms[j]
            return x

        f = jax.jit(lambda x, n, body=body: jax.lax.fori_loop(0, n, body, x))
        x = jnp.ones((4, 4), dtype)
        out.append((k, _count(f, x, "dot"), _best_us(f, x, 20_000)))
    return out


def step_vs_matmuls(dtype: str) -> dict:
    import jax
    import jax.numpy as jnp

    from .contestants.jax_native import make_loss

    X, y = spiral(1)
    X, y = jnp.asarray(X, dtype), jnp.asarray(y, jnp.int32)
    params = tuple((jnp.asarray(W, dtype), jnp.asarray(b, dtype)) for W, b in he_init([2, 25, 3]))
    loss_fn = make_loss(jnp, jax, 1e-3)

    def step(i, p):
        g = jax.grad(loss_fn)(p, X, y)
        return jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g)

    full = jax.jit(lambda p, n: jax.lax.fori_loop(0, n, step, p))
    W1, W2 = params[0][0], params[1][0]
    tiny = 1e-30  # keeps each product's result live without changing the next one's work

    def products(i, c):  # the same five products: forward 2, backward 3 (dW2, dA1, dW1)
        A, Z = c
        A1 = (X @ W1) * tiny + A  # (300, 25)
        Z2 = (A1 @ W2) * tiny + Z  # (300, 3)
        dW2 = A1.T @ Z2  # (25, 3)
        dA1 = Z2 @ W2.T  # (300, 25)
        dW1 = X.T @ dA1  # (2, 25)
        return A1 + dW1[0] * tiny, Z2 + dW2[0] * tiny

    only = jax.jit(lambda c, n: jax.lax.fori_loop(0, n, products, c))
    c0 = (jnp.zeros((300, 25), dtype), jnp.zeros((300, 3), dtype))
    kernels = lambda f, a: f"{_count(f, a, 'fusion')} fusions, {_count(f, a, 'dot')} dots"  # noqa: E731
    return {"step_us": _best_us(full, params, 5000), "step_kernels": kernels(full, params),
            "products_us": _best_us(only, c0, 5000), "products_kernels": kernels(only, c0)}


def main(argv=None) -> None:
    cli("python -m benchmarks.step_anatomy", __doc__).parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    for dtype in ("float64", "float32"):
        chain = kernel_chain(dtype)
        (_, n0, t0), (_, n1, t1) = chain[0], chain[-1]
        print(f"{dtype}: chains of 4x4 products: "
              + ", ".join(f"K={k} ({n} dots) {1e3 * t:.0f} ns/iter" for k, n, t in chain)
              + f" -> {1e3 * (t1 - t0) / max(n1 - n0, 1):.0f} ns per extra dot kernel; "
              f"load {load1():.2f}")  # fmt: skip
        s = step_vs_matmuls(dtype)
        print(f"{dtype}: reference step {s['step_us']:.1f} us ({s['step_kernels']}); its five "
              f"products alone {s['products_us']:.1f} us ({s['products_kernels']}); "
              f"load {load1():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
