"""Many devices and processes on JAX's SPMD engine (``MLP(mesh=...)``, ``polynn.distributed``).

The in-process tests need 4 devices: JAX's CPU platform gives them when ``JAX_NUM_CPU_DEVICES=4``
is set before JAX starts (the jax nox session does). In a process with fewer devices they are
skipped and ``test_module_with_4_forced_cpu_devices`` runs this file again in a subprocess with
the variable set, so that a plain ``pytest`` still exercises them. Equality with one device is
not enough (a step that XLA replicates on every device also matches): the compiled HLO must hold
the gradient all-reduce, and the FLOPs per device must drop to about 1/N.
"""

from __future__ import annotations

import os
import pickle
import re
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import polynn as pn  # noqa: E402
from polynn.backend import get_backend, resolve_mesh  # noqa: E402
from polynn.datasets.labels import encode_targets  # noqa: E402
from polynn.nn.activations import get_activation  # noqa: E402
from polynn.nn.layout import params_to_columns, state_to_columns  # noqa: E402
from polynn.nn.mlp import augment  # noqa: E402
from polynn.nn.optim import make_optimizer  # noqa: E402
from polynn.placement import place  # noqa: E402
from polynn.train import runners  # noqa: E402

N = 4
ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = "POLYNN_TEST_DISTRIBUTED_CHILD"
needs_devices = pytest.mark.skipif(
    jax.device_count() < N,
    reason=f"needs {N} JAX devices: run with JAX_NUM_CPU_DEVICES={N} (the jax nox session "
           f"does; test_module_with_4_forced_cpu_devices runs this file so)")
RTOL = 1e-12


@pytest.mark.skipif(jax.device_count() >= N or os.environ.get(CHILD_ENV) == "1",
                    reason=f"this process already has {N} devices: the tests ran here")
def test_module_with_4_forced_cpu_devices():
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(N), CHILD_ENV: "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           __file__], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout, done.stdout[-2000:]


def data(m, n=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y % k


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


def assert_same_model(a, b, rtol=RTOL):
    for (Wa, ba), (Wb, bb) in zip(a.host_params(), b.host_params()):
        assert rel(Wa, Wb) <= rtol and rel(ba, bb) <= rtol


def fit_pair(mesh, m, *, sizes=(12, 16, 3), **fit):
    X, y = data(m, sizes[0], sizes[-1])
    models, histories = [], []
    for mesh_ in (None, mesh):
        model = pn.MLP(list(sizes), backend="jax", dtype="float64", mesh=mesh_, seed=1)
        histories.append(model.fit(X, y, **fit))
        models.append(model)
    return models, histories, (X, y)


# --- meshes -------------------------------------------------------------------------------------
@needs_devices
def test_resolve_mesh_forms_give_auto_axes():
    from jax.sharding import AxisType

    assert resolve_mesh(None) is None
    for spec, shape in [(N, {"data": N}), ("all", {"data": jax.device_count()}),
                        ((2, 2), {"data": 2, "model": 2}), ("2x2", {"data": 2, "model": 2}),
                        ({"data": 2}, {"data": 2}), (2, {"data": 2})]:
        mesh = resolve_mesh(spec)
        assert dict(mesh.shape) == shape
        assert all(t == AxisType.Auto for t in mesh.axis_types)
    # jax.make_mesh defaults to Explicit axes; polynn keeps the devices and makes them Auto.
    explicit = jax.make_mesh((2, 2), ("data", "model"))
    mesh = resolve_mesh(explicit)
    assert all(t == AxisType.Auto for t in mesh.axis_types)
    assert (mesh.devices == explicit.devices).all()


@needs_devices
@pytest.mark.parametrize("bad, match", [(0, "positive"), (99, "needs 99 devices"),
                                        ("many", "mesh must be"), (True, "mesh must be"),
                                        ((2, 0), "positive")])
def test_bad_mesh_is_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_mesh(bad)


@needs_devices
def test_mesh_needs_jax_and_no_device():
    with pytest.raises(ValueError, match="needs backend='jax'"):
        get_backend("numpy", mesh=2)
    with pytest.raises(ValueError, match="not both"):
        get_backend("jax", device="cpu:0", mesh=2)
    with pytest.raises(ValueError, match="axis named 'data'"):
        resolve_mesh(jax.make_mesh((N,), ("batch",)))


@needs_devices
def test_backend_with_mesh_hashes_and_pickles():
    a, b = get_backend("jax", mesh=N), get_backend("jax", mesh=N)
    assert a == b and hash(a) == hash(b) and a != get_backend("jax", mesh=2)
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.device_name == f"mesh(data={N})"


@needs_devices
def test_place_rows_splits_divisible_and_replicates_the_rest():
    backend = get_backend("jax", mesh=N)
    split = backend.place_rows(np.zeros((8, 3)))
    assert split.sharding.spec[0] == "data"
    assert {s.data.shape for s in split.addressable_shards} == {(2, 3)}
    columns = backend.place_rows(np.zeros((3, 8)), axis=1)
    assert {s.data.shape for s in columns.addressable_shards} == {(3, 2)}
    rest = backend.place_rows(np.zeros((10, 3)))  # JAX refuses to split 10 rows 4 ways
    assert rest.sharding.is_fully_replicated
    assert get_backend("jax").place_rows(np.zeros(3)).shape == (3,)


# --- equality with one device -------------------------------------------------------------------
@needs_devices
@pytest.mark.parametrize("m, batch_size, optimizer", [
    (64, None, "sgd"), (10, None, "adam"),         # full batch; 10 rows do not divide by 4
    (103, 16, "momentum"), (64, 7, "adam"),        # mini-batches with a ragged last batch
])
def test_fit_equals_one_device(m, batch_size, optimizer):
    (one, many), (h1, hn), (X, y) = fit_pair(N, m, epochs=6, batch_size=batch_size,
                                             optimizer=optimizer, lr=0.05, l2=1e-3)
    assert rel(h1.loss, hn.loss) <= RTOL and rel(h1.accuracy, hn.accuracy) <= RTOL
    assert_same_model(one, many)
    assert (one.predict(X) == many.predict(X)).all()
    assert one.score(X, y) == many.score(X, y)
    assert rel(one.predict_proba(X), many.predict_proba(X)) <= RTOL
    l1, g1 = one.value_and_grad(X, y, l2=1e-3)
    ln, gn = many.value_and_grad(X, y, l2=1e-3)
    assert abs(l1 - ln) <= RTOL * abs(l1)
    for (a, b), (c, d) in zip(g1, gn):
        assert rel(a, c) <= 1e-10 and rel(b, d) <= 1e-10


@needs_devices
def test_sample_weights_and_early_stopping_equal_one_device():
    w = np.random.default_rng(3).uniform(0.1, 2.0, size=90)
    (one, many), (h1, hn), _ = fit_pair(N, 90, epochs=30, batch_size=20, lr=0.2,
                                        sample_weight=w, validation_split=0.2, patience=2)
    assert rel(h1.loss, hn.loss) <= RTOL and rel(h1.val_loss, hn.val_loss) <= RTOL
    assert (h1.best_epoch, h1.stopped) == (hn.best_epoch, hn.stopped)
    assert_same_model(one, many)


@needs_devices
@pytest.mark.parametrize("mesh", [N, (2, 2)])
def test_full_batch_weights_and_l2_equal_one_device(mesh):
    w = np.random.default_rng(4).uniform(0.1, 2.0, size=30)
    (one, many), (h1, hn), (X, y) = fit_pair(mesh, 30, sizes=(12, 16, 8, 3), epochs=5,
                                             sample_weight=w, l2=1e-2, optimizer="momentum",
                                             l2_per_weight=True)
    assert rel(h1.loss, hn.loss) <= RTOL
    assert_same_model(one, many)
    assert abs(one.loss(X, y, l2=1e-2, sample_weight=w) - many.loss(
        X, y, l2=1e-2, sample_weight=w)) <= RTOL


@needs_devices
def test_model_parallel_mesh_equals_one_device():
    (one, many), (h1, hn), _ = fit_pair((2, 2), 64, sizes=(12, 32, 16, 3), epochs=4,
                                        batch_size=16, optimizer="adam", lr=0.01)
    assert rel(h1.loss, hn.loss) <= RTOL
    assert_same_model(one, many)
    carry = many.backend.place_training((params_to_columns(many.params), (0,)))
    specs = [tuple(Wb.sharding.spec) for Wb in carry[0]]
    assert specs[0][:1] == ("model",) and specs[1][:1] == ("model",)  # hidden layers split
    assert carry[0][2].sharding.is_fully_replicated                    # output layer whole


@needs_devices
def test_checkpoint_resumes_on_a_mesh(tmp_path):
    X, y = data(64)
    reference = pn.MLP([12, 16, 3], backend="jax", dtype="float64", seed=2)
    reference.fit(X, y, epochs=6, batch_size=16, optimizer="adam")
    model = pn.MLP([12, 16, 3], backend="jax", dtype="float64", seed=2, mesh=N)
    model.fit(X, y, epochs=3, batch_size=16, optimizer="adam")
    model.save_checkpoint(tmp_path / "half.safetensors")
    resumed = pn.load_checkpoint(tmp_path / "half.safetensors", backend="jax", mesh=N)
    assert resumed.backend.mesh is not None
    resumed.fit(X, y, epochs=3, batch_size=16, optimizer="adam")
    assert_same_model(reference, resumed)
    resumed.save(tmp_path / "done.safetensors")
    assert_same_model(reference, pn.load(tmp_path / "done.safetensors", backend="numpy"))


@needs_devices
def test_to_and_load_with_a_mesh_keep_jax(tmp_path, monkeypatch):
    """Symptom 8: ``to(mesh=...)`` keeps the model's backend and ``load(..., mesh=...)`` takes
    JAX (a mesh is a JAX concept), whatever the default backend is."""
    monkeypatch.setenv("POLYNN_BACKEND", "numpy")
    X, y = data(64)
    model = pn.MLP([12, 16, 3], backend="jax", dtype="float64", seed=2)
    model.fit(X, y, epochs=3, optimizer="adam")
    many = model.to(mesh=N)
    assert many.backend.name == "jax" and many.backend.data_size == N
    assert_same_model(model, many)
    assert model.to(dtype="float32").backend == model.backend
    model.save(tmp_path / "model.safetensors")
    loaded = pn.model.load(tmp_path / "model.safetensors", mesh=N)
    assert loaded.backend.name == "jax" and loaded.backend.data_size == N
    assert_same_model(model, loaded)


# --- the compiled step is really parallel -------------------------------------------------------
def columns_data(model, X, y, batch_size=None):
    """``(Xa, T)``: X placed for training (rows split over the mesh in full batch) and its
    targets as columns, as the training loop receives them."""
    data = place(model.backend, model.dtype_record, X, n_features=model.n_features,
                 batch_size=batch_size)
    T = encode_targets(y, model.output, model.n_outputs, X.shape[0]).T
    data = data.with_targets(np.ascontiguousarray(T, dtype=model.dtype))
    return data.X, data.T


def compiled_step(mesh, m, batch_size, sizes=(64, 128, 10), replicate_data=False):
    """The compiled training loop (one step) for a fresh model: (flops per device, HLO text)."""
    model = pn.MLP(list(sizes), backend="jax", dtype="float64", mesh=mesh)
    backend = model.backend
    X, y = data(m, sizes[0], sizes[-1])
    opt = make_optimizer("sgd", 0.1)
    full, batches, _ = runners(backend, get_activation("relu"), "softmax", opt,
                               model.dtype_record)
    state_t = state_to_columns(opt.init(model.params))
    carry = backend.place_training((params_to_columns(model.params), state_t))
    Xd, T = columns_data(model, X, y)
    if batch_size is None:
        Xa = backend.call(augment, backend.asarray(X, "float64") if replicate_data else Xd)
        lowered = full.compiled.lower(carry, 0, 1, Xa, T, None, None)
    else:
        order = backend.asarray(np.arange(m - m % batch_size).reshape(-1, batch_size))
        lowered = batches.compiled.lower(carry, 0, 1, backend.asarray(X, "float64"),
                                         backend.replicate(T), order, None, None)
    compiled = lowered.compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"], compiled.as_text()


def collectives(hlo: str) -> dict:
    return {op: len(re.findall(rf"= [^=]*\b{op}(?:-start)?\(", hlo))
            for op in ("all-reduce", "all-gather", "reduce-scatter", "all-to-all")}


@needs_devices
@pytest.mark.parametrize("m, batch_size", [(1024, None), (1022, None), (2048, 256), (2048, 250)])
def test_compiled_step_splits_the_work(m, batch_size):
    flops_one, _ = compiled_step(None, m, batch_size)
    flops_many, hlo = compiled_step(N, m, batch_size)
    # Ideal 1/N; the small replicated update and the all-reduce's adds come on top.
    assert flops_many / flops_one < 1.2 / N, (flops_one, flops_many)
    found = collectives(hlo)
    # XLA merges every gradient (and the loss) into one all-reduce; nothing else travels.
    assert found["all-reduce"] == 1 and found["all-gather"] == 0, found


@needs_devices
def test_the_flops_check_catches_a_replicated_step():
    """A mesh step whose batch is not constrained runs on every device in full: the check that
    the test above makes must fail for it (otherwise that test proves nothing)."""
    backend = get_backend("jax", mesh=N)
    X, y = data(1024, 64, 10)
    model = pn.MLP([64, 128, 10], backend="jax", dtype="float64", mesh=N)

    def loss(params, Xa, T):  # no constrain_batch: XLA keeps everything replicated
        from polynn.nn.mlp import value_and_grad_columns

        return value_and_grad_columns(params, Xa, T, get_activation("relu"), "softmax")[0]

    Xa = backend.call(augment, backend.asarray(X, "float64"))
    _, T = columns_data(model, X, y)
    params_t = backend.replicate(params_to_columns(model.params))
    many = jax.jit(loss).lower(params_t, Xa, backend.replicate(T)).compile().cost_analysis()
    one_model = pn.MLP([64, 128, 10], backend="jax", dtype="float64")
    one_X, one_T = columns_data(one_model, X, y)
    one = jax.jit(loss).lower(params_to_columns(one_model.params), augment(one_X),
                              one_T).compile()
    ratio = many["flops"] / one.cost_analysis()["flops"]
    assert ratio > 0.9  # replicated: every device does all the work, and the check sees it


@needs_devices
def test_model_axis_splits_a_wide_layer():
    flops_one, _ = compiled_step(None, 256, None, sizes=(64, 1024, 10))
    flops_many, hlo = compiled_step((1, N), 256, None, sizes=(64, 1024, 10))
    assert flops_many / flops_one < 1.5 / N, (flops_one, flops_many)
    assert sum(collectives(hlo).values()) >= 1


# --- several processes --------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, numpy as np, warnings
    warnings.simplefilter("ignore")
    import polynn as pn
    port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pn.distributed.initialize(f"127.0.0.1:{port}", 2, pid, cpu_devices=2,
                              initialization_timeout=60)
    assert pn.distributed.process_count() == 2 and pn.distributed.process_index() == pid
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 12)); y = ((X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)) % 3
    model = pn.MLP([12, 16, 3], backend="jax", dtype="float64", seed=1, mesh="all")
    # Each process passes only its own half of the rows.
    Xg = pn.distributed.global_rows(X[32 * pid: 32 * (pid + 1)], model)
    yg = pn.distributed.global_rows(y[32 * pid: 32 * (pid + 1)], model, dtype="int64")
    full = model.fit(Xg, yg, epochs=5, lr=0.1)
    mini = model.fit(X, y, epochs=3, batch_size=10, optimizer="adam")  # everyone: all rows
    pred = model.predict(Xg)
    model.save(out + "/model.safetensors")  # written by process 0 only
    if pn.distributed.is_main_process():
        flat = np.concatenate([a.ravel() for W, b in model.host_params() for a in (W, b)])
        np.savez(out + "/result.npz", full=full.loss, mini=mini.loss, pred=pred, params=flat)
    print("child", pid, "ok")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.environ.get(CHILD_ENV) == "1", reason="the parent process runs it")
def test_two_processes_on_localhost_equal_one_device(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    children = [subprocess.Popen([sys.executable, str(script), str(port), str(pid),
                                  str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for pid in (0, 1)]
    outputs = []
    try:
        for child in children:
            outputs.append(child.communicate(timeout=240)[0])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for pid, (child, output) in enumerate(zip(children, outputs)):
        assert child.returncode == 0, f"process {pid}:\n{output[-3000:]}"
    result = np.load(tmp_path / "result.npz")

    X = np.random.default_rng(0).normal(size=(64, 12))
    y = ((X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pn.MLP([12, 16, 3], backend="jax", dtype="float64", seed=1)
    full = model.fit(X, y, epochs=5, lr=0.1)
    mini = model.fit(X, y, epochs=3, batch_size=10, optimizer="adam")
    assert rel(full.loss, result["full"]) <= RTOL and rel(mini.loss, result["mini"]) <= RTOL
    assert (model.predict(X) == result["pred"]).all()
    flat = np.concatenate([a.ravel() for W, b in model.host_params() for a in (W, b)])
    assert rel(flat, result["params"]) <= RTOL
    assert_same_model(model, pn.load(tmp_path / "model.safetensors"))


@pytest.mark.skipif(os.environ.get(CHILD_ENV) == "1", reason="the parent process runs it")
def test_cli_mesh_on_forced_cpu_devices_equals_one_device(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    common = [sys.executable, "-m", "polynn", "train", "--backend", "jax", "--epochs", "30",
              "--batch-size", "64", "--quiet"]
    for name, extra in (("one", []), ("many", ["--cpu-devices", "4", "--mesh", "4"])):
        done = subprocess.run([*common, *extra, "--save", str(tmp_path / f"{name}.safetensors")],
                              env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
    assert "mesh(data=4)" in done.stdout
    assert_same_model(pn.load(tmp_path / "one.safetensors"),
                      pn.load(tmp_path / "many.safetensors"))


def test_forcing_cpu_devices_after_jax_started_is_refused():
    jax.devices()  # JAX has started
    with pytest.raises(RuntimeError, match="already started"):
        pn.distributed.force_cpu_devices(jax.device_count() + 3)
    with pytest.raises(ValueError, match="positive"):
        pn.distributed.force_cpu_devices(0)
    with pytest.raises(ValueError, match="process_id must be in"):
        pn.distributed.initialize("127.0.0.1:1", 2, 5)
    assert pn.distributed.process_count() == 1 and pn.distributed.is_main_process()


@needs_devices
def test_global_rows_refuses_rows_that_do_not_divide():
    model = pn.MLP([3, 4, 2], backend="jax", dtype="float64", mesh=N)
    placed = pn.distributed.global_rows(np.ones((8, 3)), model)
    assert placed.shape == (8, 3) and placed.sharding.spec[0] == "data"
    assert placed.dtype == np.float64
    with pytest.raises(ValueError, match="do not divide"):
        pn.distributed.global_rows(np.ones((6, 3)), model)
    assert (pn.distributed.gather(placed) == 1).all()
