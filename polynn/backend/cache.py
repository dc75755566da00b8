"""JAX's persistent compilation cache: compile once per machine, not once per process.

polynn turns it on when it first loads JAX (:func:`polynn.backend.namespaces.load_namespace`),
in the user's cache directory: ``$XDG_CACHE_HOME/polynn/jax``, else ``~/.cache/polynn/jax``.
The environment variable ``POLYNN_JAX_CACHE`` decides, for the library and the command line
alike: ``0`` (or ``off``, ``false``, ``no``) turns it off, a path puts it there, anything else
(or nothing) uses the default directory. A cache directory the user configured in JAX itself
(``jax_compilation_cache_dir``) is left as it is.

JAX's own default caches only compilations that took at least a second; polynn's training
loops compile in 0.1 to 1 s each, and a second process should find them all, so every
compilation of at least ``MIN_COMPILE_SECONDS`` is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from polynn.backend.switches import switched_off

CACHE_ENV = "POLYNN_JAX_CACHE"
MIN_COMPILE_SECONDS = 0.0


def jax_cache_dir(environ=None) -> Path | None:
    """The persistent compilation cache's directory, or None when ``POLYNN_JAX_CACHE`` turns it
    off.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default: ``os.environ``).

    Returns
    -------
    pathlib.Path or None
        ``$POLYNN_JAX_CACHE`` when it names a directory, else ``$XDG_CACHE_HOME/polynn/jax``
        (``~/.cache/polynn/jax`` when that is unset or empty); None when turned off.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(CACHE_ENV, "").strip()
    if switched_off(value):
        return None
    if value and value.lower() not in ("1", "on", "true", "yes"):
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "polynn" / "jax"


def configure_jax_cache(jax, environ=None) -> Path | None:
    """Point JAX's persistent compilation cache at :func:`jax_cache_dir` (created if needed).

    Parameters
    ----------
    jax : module
        The imported ``jax`` package.
    environ : mapping, optional
        The environment to read (default: ``os.environ``).

    Returns
    -------
    pathlib.Path or None
        The directory in use: the user's own ``jax_compilation_cache_dir`` if set, polynn's
        directory, or None (turned off, or the directory cannot be created: JAX then compiles
        in every process, as without a cache).
    """
    own = jax.config.jax_compilation_cache_dir
    if own:
        return Path(own)
    path = jax_cache_dir(environ)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home, say: no cache rather than no JAX
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
