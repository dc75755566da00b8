"""The delegated primitives (polynn.nn.kernels) and the allocator thresholds
(polynn.backend.allocator): a library's faster form computes what the default computes."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import polynn as pn
from polynn.backend import allocator
from polynn.nn import kernels
from polynn.nn.namespace import namespace

BACKENDS = ["numpy", "torch", "jax", "array_api_strict"]


def _backend(name):
    try:
        return pn.get_backend(name)
    except pn.BackendUnavailableError as e:
        pytest.skip(str(e))


def _arrays(backend, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [backend.asarray(rng.standard_normal(s), "float64") for s in shapes]


@pytest.mark.parametrize("name", BACKENDS)
def test_sum_of_squares_equals_the_default_on_a_strided_view(name):
    backend = _backend(name)
    (Wb,) = _arrays(backend, (37, 21))
    view = Wb[:, :-1]
    host = np.asarray(backend.to_host(Wb))
    want = np.sum(host[:, :-1].astype(np.float64) ** 2)
    rel = 1e-13 if host.dtype == np.float64 else 1e-5  # JAX without x64 computes in float32
    assert float(kernels.sum_of_squares(view)) == pytest.approx(want, rel=rel)


@pytest.mark.parametrize("name", BACKENDS)
def test_plus_product_is_g_plus_d_times_w(name):
    backend = _backend(name)
    G, D, W = _arrays(backend, (6, 5), (1, 5), (6, 5))
    host = [np.array(backend.to_host(a), dtype=np.float64) for a in (G, D, W)]  # copies
    got = backend.to_host(kernels.plus_product(G, D, W))  # G may be overwritten
    rtol = 1e-14 if got.dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got, host[0] + host[1] * host[2], rtol=rtol)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("eta", [0.1, "array"])
def test_descend_pure_leaves_p_and_inplace_overwrites_where_it_can(name, eta):
    backend = _backend(name)
    p, g = _arrays(backend, (4, 3), (4, 3))
    step = backend.asarray(np.asarray(0.1), "float64") if eta == "array" else eta
    before = np.array(backend.to_host(p))
    want = before - 0.1 * np.array(backend.to_host(g))
    rtol = 1e-14 if before.dtype == np.float64 else 1e-6
    np.testing.assert_allclose(backend.to_host(kernels.descend(p, g, step, False)), want,
                               rtol=rtol)
    np.testing.assert_array_equal(backend.to_host(p), before)  # pure: p untouched
    got = kernels.descend(p, g, step, True)
    np.testing.assert_allclose(backend.to_host(got), want, rtol=rtol)
    if name in ("numpy", "torch"):  # mutable arrays: updated in place, no new array
        assert got is p


def test_numpy_registers_its_faster_forms_and_unknown_names_are_refused():
    pn.get_backend("numpy")
    xp = namespace(np.zeros(1))
    assert {"sum_of_squares", "plus_product"} <= set(kernels._FASTER[xp])
    with pytest.raises(ValueError, match="unknown kernels \\['matmul'\\]"):
        kernels.register(xp, matmul=lambda a, b: a @ b)


def test_allocator_thresholds_follow_the_environment():
    wanted = allocator.wanted_thresholds
    if not sys.platform.startswith("linux"):
        assert wanted({}) == {}
        return
    assert wanted({}) == {allocator.M_MMAP_THRESHOLD: allocator.MMAP_THRESHOLD,
                          allocator.M_TRIM_THRESHOLD: allocator.TRIM_THRESHOLD}
    for off in ("0", "off", "False", " no "):
        assert wanted({allocator.MALLOC_ENV: off}) == {}
    # a threshold the user gave glibc is kept
    assert wanted({"MALLOC_MMAP_THRESHOLD_": "65536"}) == {
        allocator.M_TRIM_THRESHOLD: allocator.TRIM_THRESHOLD}


def test_allocator_is_tuned_once_when_a_library_loads():
    pn.get_backend("numpy")
    done = allocator.tune_allocator()
    if allocator._glibc_mallopt() is None or not allocator.wanted_thresholds():
        assert done == {}
    else:
        assert done == allocator.wanted_thresholds()


@pytest.mark.parametrize("name", BACKENDS)
def test_relu_backward_passes_the_gradient_where_the_output_is_positive(name):
    backend = _backend(name)
    Z, dA = _arrays(backend, (7, 9), (7, 9))
    A = backend.xp.maximum(Z, 0.0)
    host_A, host_dA = np.asarray(backend.to_host(A)), np.asarray(backend.to_host(dA))
    got = np.asarray(backend.to_host(kernels.relu_backward(A, dA)))
    np.testing.assert_array_equal(got, np.where(host_A > 0, host_dA, 0.0))


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("n_in", [6, 1100])  # a narrow layer, and one wide enough for JAX's split
def test_backward_products_equal_the_folded_ones(name, n_in):
    backend = _backend(name)
    dZ, A, Wb = _arrays(backend, (4, 3), (n_in, 3), (4, n_in + 1))
    A_aug = pn.nn.augment(A.T)  # the kernels' contract: ones in the last row
    hdZ, hA, hW = (np.array(backend.to_host(a), dtype=np.float64) for a in (dZ, A_aug, Wb))
    tol = 1e-12 if np.asarray(backend.to_host(dZ)).dtype == np.float64 else 1e-4
    np.testing.assert_allclose(backend.to_host(kernels.weight_gradient(dZ, A_aug)), hdZ @ hA.T,
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_host(kernels.input_gradient(Wb, dZ)),
                               hW[:, :-1].T @ hdZ, rtol=tol, atol=tol)
