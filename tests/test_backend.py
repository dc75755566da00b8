"""The backend package's own tests: the dtype record, capabilities, specs (pickling a backend
and finding the backend of an array), the compatibility of its private state, and the
regressions of issue 14 whose cause is here."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import polynn as pn
from polynn.backend import (
    DTYPES,
    BackendUnavailableError,
    DType,
    backend_of,
    device_spec,
    dtype_info,
    get_backend,
)
from polynn.backend import devices as backend_devices
from polynn.backend import dtypes as backend_dtypes
from polynn.backend import namespaces as backend_namespaces
from polynn.backend import transfer as backend_transfer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _usable(name):
    try:
        return get_backend(name)
    except BackendUnavailableError as e:
        pytest.skip(str(e))


# -- the dtype record ----------------------------------------------------------------------------
def test_dtype_info_records():
    bf16 = dtype_info("bfloat16")
    assert bf16 == DType("bfloat16", None, np.dtype(np.float32), 2, 3.3895313892515355e38)
    assert bf16.max == float(np.float32(bf16.max))  # representable: float32 exponent range
    for name, host in (("float32", np.float32), ("float64", np.float64)):
        info = dtype_info(name)
        assert (info.name, info.native, info.host) == (name, None, np.dtype(host))
        assert info.itemsize == np.dtype(host).itemsize and info.max == np.finfo(host).max
    with pytest.raises(AttributeError):
        bf16.itemsize = 4  # frozen


@pytest.mark.parametrize("name", ["float16", "int32", None, "bf16"])
def test_dtype_info_refuses_unknown_names(name):
    with pytest.raises(ValueError, match=r"unknown dtype.*float32.*float64.*bfloat16"):
        dtype_info(name)


def test_dtype_record_on_each_backend(backend):
    for name in DTYPES:
        if not backend.supports(name):
            with pytest.raises(ValueError, match=f"not supported by backend {backend.name!r}"):
                backend.dtype_record(name)
            continue
        record = backend.dtype_record(name)
        info = dtype_info(name)
        # A mixed-precision policy also names the dtype its steps compute in.
        compute = backend.dtype(info.compute_name) if info.mixed else None
        assert record == DType(name, backend.dtype(name), *(
            getattr(info, f) for f in ("host", "itemsize", "max")), compute)
        x = backend.asarray(np.array([1.5, -2.0]), name)
        assert x.dtype == record.native
        assert pn.backends.to_host(x).dtype == record.host
    assert backend.supports("bfloat16") == (backend.name in ("jax", "torch"))
    assert not backend.supports("float16")


def test_bfloat16_data_goes_through_its_float32_host_storage(backend):
    """One rounding path on every backend, whatever JAX's x64 flag: float64 -> float32 (host)
    -> bfloat16. 1 + 2**-8 + 2**-30 rounds to 1 + 2**-7 directly, to 1 through float32."""
    if not backend.supports("bfloat16"):
        pytest.skip(f"{backend.name} has no bfloat16")
    backend.dtype_record("float64")  # x64 on, where JAX has it (the case that differed)
    x = np.array([1 + 2.0**-8 + 2.0**-30, 3.0])
    assert pn.backends.to_host(backend.asarray(x, "bfloat16")).tolist() == [1.0, 3.0]


# -- capabilities --------------------------------------------------------------------------------
def test_capabilities(backend):
    expected_host = backend.name in ("numpy", "array_api_strict") or (
        backend.name == "torch" and backend.device.type == "cpu")
    assert backend.host_memory == expected_host
    assert backend.jit == (backend.name == "jax")
    x = backend.asarray(np.ones((2, 3)), "float32")
    assert backend.owns(x) == (backend.name != "numpy")
    assert not backend.owns(np.ones(3)) and not backend.owns([1.0]) and not backend.owns(1.0)
    others = [name for name in ("torch", "jax", "array_api_strict") if name != backend.name]
    for name in others:
        try:
            other = get_backend(name)
        except BackendUnavailableError:
            continue
        assert not backend.owns(other.asarray(np.ones(2)))
    assert hash(backend) == hash(get_backend(backend.name)) and backend == get_backend(
        backend.name)


def test_get_backend_with_a_mesh_means_jax():
    _usable("jax")
    backend = get_backend(None, mesh=1)
    assert backend.name == "jax" and backend.data_size == 1
    assert get_backend(*backend.spec) == backend
    with pytest.raises(ValueError, match="needs backend='jax'"):
        get_backend("numpy", mesh=1)


# -- specs: pickling a backend, the backend of an array ------------------------------------------
def _devices(backend):
    return [None, *backend_devices._devices_here(backend.name, backend.xp)]


def test_spec_round_trips_through_pickle_on_every_device(backend):
    for device in _devices(backend):
        built = get_backend(backend.name, device)
        name, spec, mesh = built.spec
        assert (name, mesh) == (backend.name, None)
        assert spec == device_spec(backend.name, built.device)
        assert pickle.loads(pickle.dumps(spec)) == spec
        assert get_backend(*built.spec) == built
        again = pickle.loads(pickle.dumps(built))
        assert again == built and again.device == built.device


def test_array_api_strict_device_spec_is_its_name():
    strict = _usable("array_api_strict")
    for info_device in strict.xp.__array_namespace_info__().devices():
        name = device_spec("array_api_strict", info_device)
        assert name in backend_devices._devices_here("array_api_strict", strict.xp)
        assert get_backend("array_api_strict", name).device == info_device


def test_backend_of_arrays_of_each_library(backend):
    for device in _devices(backend):
        built = get_backend(backend.name, device)
        x = built.asarray(np.ones((2, 2)), "float32")
        found = backend_of(x)
        assert found is not None and found[0] == backend.name
        rebuilt = get_backend(*found)  # accepted, and the same device
        assert backend_of(rebuilt.asarray(np.ones(2), "float32")) == found
        if backend.name == "numpy":
            assert found == ("numpy", None)
        elif device is not None:
            assert rebuilt.device == built.device


def test_backend_of_anything_else():
    assert backend_of([1.0, 2.0]) is None and backend_of(1.5) is None and backend_of(None) is None
    assert backend_of(np.zeros(3)) == ("numpy", None)


def test_array_api_strict_model_on_another_device_unpickles():
    """Issue 14, symptom 4: the spec of an array-api-strict device was ``str(device)``, which
    the device parser refused."""
    _usable("array_api_strict")
    for device in ("device1", "CPU_DEVICE"):
        model = pn.MLP([2, 3], backend="array_api_strict", device=device, seed=0)
        again = pickle.loads(pickle.dumps(model))
        assert again.backend == model.backend and again.backend.spec[1] == device
        X = np.random.default_rng(0).normal(size=(4, 2))
        np.testing.assert_array_equal(pn.backends.to_host(again.forward(X)),
                                      pn.backends.to_host(model.forward(X)))


# -- private state, owned here -------------------------------------------------------------------
def test_jax_transfer_casts_a_large_array_in_chunks(monkeypatch):
    backend = _usable("jax")
    X = np.random.default_rng(0).normal(size=(103, 7))  # float64
    whole = np.asarray(backend.asarray(X, "float32"))
    monkeypatch.setattr(backend_transfer, "_PUT_CHUNK_BYTES", 10 * 7 * 8)  # 10 rows a chunk
    writes = []
    writer = backend_transfer._jax_write_rows
    monkeypatch.setattr(backend_transfer, "_jax_write_rows",
                        lambda *a: writes.append(1) or writer(*a))
    chunked = backend.asarray(X, "float32")
    assert chunked.dtype == np.float32 and chunked.shape == X.shape and len(writes) == 11
    np.testing.assert_array_equal(np.asarray(chunked), whole)
    np.testing.assert_array_equal(whole, X.astype(np.float32))


def test_missing_backend_names_reason_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    monkeypatch.setitem(sys.modules, "jax.numpy", None)
    backend_namespaces.load_namespace.cache_clear()
    try:
        with pytest.raises(pn.BackendUnavailableError,
                           match=r"backend 'jax' is not available.*pip install 'polynn\[jax\]'"):
            pn.MLP([2, 3], backend="jax")
    finally:
        backend_namespaces.load_namespace.cache_clear()


def test_cupy_without_gpu_names_the_reason(monkeypatch):
    class FakeCuda:
        @staticmethod
        def is_available():
            raise RuntimeError("CUDA driver not found")

    class FakeCupy:
        cuda = FakeCuda

    monkeypatch.setitem(sys.modules, "cupy", FakeCupy)
    backend_namespaces.load_namespace.cache_clear()
    try:
        with pytest.raises(pn.BackendUnavailableError,
                           match=r"'cupy'.*no usable NVIDIA GPU.*CUDA driver not found"
                                 r".*polynn\[cupy\]"):
            pn.get_backend("cupy")
    finally:
        backend_namespaces.load_namespace.cache_clear()


def test_float64_on_jax_enables_x64_and_says_so_once(monkeypatch):
    jax = pytest.importorskip("jax")
    _usable("jax")
    previous = jax.config.jax_enable_x64
    monkeypatch.setattr(backend_dtypes, "_x64_announced", False)
    jax.config.update("jax_enable_x64", False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = get_backend("jax").dtype_record("float64")
            jax.config.update("jax_enable_x64", False)
            get_backend("jax").dtype_record("float64")
        notices = [w for w in caught if "jax_enable_x64" in str(w.message)]
        assert len(notices) == 1 and jax.config.jax_enable_x64
        assert record.native == jax.numpy.float64
    finally:
        jax.config.update("jax_enable_x64", previous or True)


# -- issue 14, symptom 9: a float32 JAX run must not depend on an earlier float64 model ----------
_SYMPTOM_9 = textwrap.dedent("""
    import hashlib, sys, warnings
    import numpy as np
    import polynn as pn
    warnings.simplefilter("ignore")
    if sys.argv[1] == "float64 first":
        pn.MLP([2, 3], backend="jax", dtype="float64")
    X, y = pn.datasets.spiral(n_per_class=40, seed=0)
    model = pn.MLP([2, 16, 3], backend="jax", dtype="float32", seed=0)
    model.fit(X, y, optimizer=sys.argv[2], lr=0.01, epochs=30, batch_size=16)
    leaves = [pn.backends.to_host(a) for W, b in model.params for a in (W, b)]
    assert all(leaf.dtype == np.float32 for leaf in leaves)
    print(hashlib.sha256(b"".join(leaf.tobytes() for leaf in leaves)).hexdigest())
""")


def _jax_run(*argv):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("JAX_ENABLE_X64", None)
    done = subprocess.run([sys.executable, "-c", _SYMPTOM_9, *argv], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_float32_jax_run_ignores_an_earlier_float64_model(optimizer):
    """Issue 14, symptom 9: the x64 flag is process-wide; one seed must fix a float32 run."""
    pytest.importorskip("jax")
    assert _jax_run("float64 first", optimizer) == _jax_run("alone", optimizer)
