"""The backend fixture (SciPy's ``xp`` fixture is the model) and one assertion helper.

``backend`` is parametrised over the backends named by ``--backend`` / ``$POLYNN_BACKEND``
(comma-separated), or over every known backend; one that is not installed or not usable here is
skipped with the reason. Tests that use it are marked ``backend`` automatically, so a nox
session for a single backend can run just those (``-m backend``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from polynn.backend import BACKENDS, ENV_VAR, BackendUnavailableError, get_backend, to_host


def pytest_addoption(parser):
    parser.addoption("--backend", action="store", default=None,
                     help=f"comma-separated backends to test (default: ${ENV_VAR} or all)")


def _selected(config) -> list[str]:
    chosen = config.getoption("--backend") or os.environ.get(ENV_VAR)
    return [name.strip() for name in chosen.split(",")] if chosen else list(BACKENDS)


def pytest_generate_tests(metafunc):
    explicit = any("backend_name" in m.args[0]
                   for m in metafunc.definition.iter_markers("parametrize"))
    if "backend_name" in metafunc.fixturenames and not explicit:
        metafunc.parametrize("backend_name", _selected(metafunc.config))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.backend)


def pytest_configure(config):
    config.addinivalue_line("markers", "backend: uses the backend fixture")
    # array-api-strict is the referee: pin the standard version we write against.
    try:
        import array_api_strict

        array_api_strict.set_array_api_strict_flags(api_version="2024.12")
    except ImportError:
        pass


@pytest.fixture
def backend(request, backend_name):
    if backend_name not in _selected(request.config):
        pytest.skip(f"backend {backend_name!r} not selected (--backend / ${ENV_VAR})")
    try:
        return get_backend(backend_name)
    except BackendUnavailableError as e:
        pytest.skip(str(e))


@pytest.fixture(autouse=True)
def _quiet_x64_notice():
    # The once-per-process "enabled jax_enable_x64" notice is tested on its own.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dtype='float64' on JAX")
        yield


TOLERANCES = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}


def assert_close(actual, expected, dtype="float64", **override):
    """Compare a backend array (or nested tuples of them) with NumPy values at the tolerance
    of ``dtype``."""
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e, dtype, **override)
        return
    tol = {**TOLERANCES[dtype], **override}
    np.testing.assert_allclose(np.asarray(to_host(actual), dtype=np.float64), expected, **tol)
