"""What a user without the sklearn extra, or without ``SCIPY_ARRAY_API=1``, is told (issue 16
§5): ``import polynn.sklearn`` names the extra to install; ``array_api_dispatch`` names the
environment variable. Each in a fresh process, the missing module simulated with
``sys.modules[name] = None`` (an import of it then fails as if it were not installed)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _run(script, *, unset=(), **extra_env):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(extra_env, POLYNN_BACKEND="numpy",
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("missing,project", [("sklearn", "scikit-learn"), ("scipy", "scipy"),
                                             ("scipy.sparse", "scipy")])
def test_import_without_the_extra_names_it(missing, project):
    out = _run(f"""
        import sys
        sys.modules[{missing!r}] = None
        import polynn  # polynn itself needs neither
        try:
            import polynn.sklearn
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
    """)
    name, _, message = out.strip().partition(" | ")
    assert name.partition(".")[0] == missing.partition(".")[0]
    assert message == (f"polynn.sklearn needs {project}, which is not installed: "
                       'pip install "polynn[sklearn]"')


def test_other_missing_modules_are_not_blamed_on_the_extra():
    """A module outside the extra that fails to import is reported as itself."""
    out = _run("""
        import sys
        sys.modules["polynn.sklearn.lbfgs"] = None
        try:
            import polynn.sklearn
        except ImportError as e:
            print(type(e).__name__, e)
    """)
    assert "polynn[sklearn]" not in out and "polynn.sklearn.lbfgs" in out


def test_dispatch_without_scipy_array_api_says_what_to_set():
    """scikit-learn refuses ``array_api_dispatch=True`` without SCIPY_ARRAY_API=1, before
    polynn sees any array, with a message that names the variable; with it set, a JAX input
    trains on JAX."""
    pytest.importorskip("sklearn")
    pytest.importorskip("jax")
    script = """
        import numpy as np, sklearn, jax.numpy as jnp
        from polynn.sklearn import MLPClassifier
        X = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
        try:
            with sklearn.config_context(array_api_dispatch=True):
                clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(
                    jnp.asarray(X), jnp.asarray(y))
                print("trained on", clf.model_.backend.name)
        except RuntimeError as e:
            print(e)
    """
    refused = _run(script, unset=("SCIPY_ARRAY_API",))
    assert "SCIPY_ARRAY_API=1" in refused
    assert _run(script, SCIPY_ARRAY_API="1").strip().endswith("trained on jax")
