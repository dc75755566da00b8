"""Issue 18's machinery, tested for correctness (never for time): JAX's persistent compilation
cache, bucketed row counts (padded rows weigh nothing; nearby row counts reuse one compiled
function), and the chunk sizing that bounds how long Ctrl-C waits (with a fake clock)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polynn as pn
from polynn.backend.cache import CACHE_ENV, configure_jax_cache, jax_cache_dir
from polynn.placement import bucket, bucketed, place
from polynn.train.chunks import GROWTH, MAX_CHUNK_STEPS, Chunker
from polynn.train.epochs import batch_plan, padded_plan

ROOT = Path(__file__).resolve().parent.parent


# --- the persistent compilation cache -------------------------------------------------------------
def test_cache_dir_default_xdg_path_and_off(tmp_path):
    assert jax_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "polynn" / "jax"
    assert jax_cache_dir({}) == Path.home() / ".cache" / "polynn" / "jax"
    assert jax_cache_dir({"XDG_CACHE_HOME": ""}) == Path.home() / ".cache" / "polynn" / "jax"
    assert jax_cache_dir({CACHE_ENV: str(tmp_path / "here")}) == tmp_path / "here"
    assert jax_cache_dir({CACHE_ENV: "1", "XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "polynn" / "jax")
    for off in ("0", "off", "False", " no "):
        assert jax_cache_dir({CACHE_ENV: off}) is None


class _FakeConfig:
    def __init__(self, cache_dir=None):
        self.jax_compilation_cache_dir = cache_dir
        self.updates = {}

    def update(self, name, value):
        self.updates[name] = value


def test_configure_keeps_the_users_own_directory_and_sets_ours(tmp_path):
    own = SimpleNamespace(config=_FakeConfig("/their/cache"))
    assert configure_jax_cache(own, {}) == Path("/their/cache")
    assert own.config.updates == {}
    jax = SimpleNamespace(config=_FakeConfig())
    path = configure_jax_cache(jax, {"XDG_CACHE_HOME": str(tmp_path)})
    assert path == tmp_path / "polynn" / "jax" and path.is_dir()
    assert jax.config.updates["jax_compilation_cache_dir"] == str(path)
    assert jax.config.updates["jax_persistent_cache_min_compile_time_secs"] == 0.0
    off = SimpleNamespace(config=_FakeConfig())
    assert configure_jax_cache(off, {CACHE_ENV: "0"}) is None and off.config.updates == {}


_HITS = textwrap.dedent("""
    import jax, numpy as np, polynn as pn
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    model = pn.MLP([3, 4, 2], backend="jax", seed=0)
    model.fit(X, y, lr=0.1, epochs=3, batch_size=16, progress=False)
    model.predict(X)
    print(jax.config.jax_compilation_cache_dir, len(hits))
""")


def _run(env) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", **env}
    out = subprocess.run([sys.executable, "-c", _HITS], env=env, capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    return out.stdout.split()


def test_second_process_hits_the_persistent_cache(tmp_path):
    pytest.importorskip("jax")
    env = {"XDG_CACHE_HOME": str(tmp_path), CACHE_ENV: ""}
    where, first = _run(env)
    assert where == str(tmp_path / "polynn" / "jax") and int(first) == 0
    assert any((tmp_path / "polynn" / "jax").iterdir())
    _, second = _run(env)
    assert int(second) > 0  # the second process compiles nothing it compiled before
    where, hits = _run({**env, CACHE_ENV: "0"})
    assert where == "None" and int(hits) == 0


# --- bucketed row counts ------------------------------------------------------------------------
def test_bucket_values():
    assert [bucket(n) for n in range(1, 14)] == [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]
    assert bucket(1437) == bucket(1438) == 1536


@given(st.integers(1, 10**9))
def test_bucket_bounds_the_padding(n):
    b = bucket(n)
    assert n <= b < 1.5 * n + 1 and bucket(b) == b and bucket(n + 1) >= b


def test_padded_plan_masks_the_remainder():
    plan = batch_plan(10, 4, np.random.default_rng(0), True)
    [(order, n, mask)] = padded_plan(plan, 4)
    assert n == 3 and order.shape == (3, 4) and mask.shape == (3, 4)
    assert mask.sum(axis=1).tolist() == [4, 4, 2]
    assert sorted(order[mask == 1].tolist()) == list(range(10))
    [(order, n, mask)] = padded_plan(batch_plan(21, 4, np.random.default_rng(0), False), 4)
    assert n == 6 and order.shape == (6, 4) and mask[:n].sum() == 21 and mask[n:].sum() == 0


def test_bucketing_leaves_eager_backends_alone():
    model = pn.MLP([3, 2], backend="numpy")
    data = place(model.backend, model.dtype_record, np.zeros((5, 3)), n_features=3, batch_size=2)
    assert bucketed(data) is data


def _count_compiles(caplog, name: str) -> int:
    return sum(f"jit({name})" in r.getMessage() and "Compiling" in r.getMessage()
               for r in caplog.records)  # fmt: skip


@pytest.fixture
def log_compiles(caplog):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_log_compiles", True)
    caplog.set_level(logging.WARNING)
    yield caplog
    jax.config.update("jax_log_compiles", False)


def _digits_like(m, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, 8)), rng.integers(0, 3, m)


@pytest.mark.parametrize("weighted", [False, True])
def test_bucketed_epochs_equal_unpadded_and_compile_once(monkeypatch, log_compiles, weighted):
    import polynn.placement as placement

    results = {}
    for bucketing in (True, False):
        monkeypatch.setattr(placement, "BUCKET_BYTES", (64 << 20) if bucketing else 0)
        for m in (37, 38):  # folds of nearby sizes, each with a remainder batch
            X, y = _digits_like(m)
            w = np.linspace(0.5, 2.0, m) if weighted else None
            model = pn.MLP([8, 5, 3], backend="jax", dtype="float64", seed=1)
            history = model.fit(X, y, lr=0.1, l2=1e-3, epochs=3, batch_size=8, seed=2,
                                sample_weight=w, l2_per_weight=weighted, progress=False)
            results[bucketing, m] = (history.loss, history.accuracy, model.host_params())
    for m in (37, 38):
        (loss_b, acc_b, params_b), (loss_u, acc_u, params_u) = results[True, m], results[False, m]
        np.testing.assert_allclose(loss_b, loss_u, rtol=1e-12)
        # The remainder batch's padding (repeats of one row) is not counted as correct.
        np.testing.assert_allclose(acc_b, acc_u, rtol=1e-12)
        for (Wb, bb), (Wu, bu) in zip(params_b, params_u):
            np.testing.assert_allclose(Wb, Wu, rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(bb, bu, rtol=1e-10, atol=1e-13)


def test_bucketed_with_a_validation_split_equals_unpadded(monkeypatch):
    pytest.importorskip("jax")
    import polynn.placement as placement

    X, y = _digits_like(45)
    got = []
    for limit in (64 << 20, 0):
        monkeypatch.setattr(placement, "BUCKET_BYTES", limit)
        model = pn.MLP([8, 5, 3], backend="jax", dtype="float64", seed=1)
        history = model.fit(X, y, lr=0.1, epochs=2, batch_size=8, validation_split=0.2, seed=3,
                            progress=False)  # fmt: skip
        got.append((history.loss, history.val_loss, model.host_params()))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-12)
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12)
    for (Wa, ba), (Wb, bb) in zip(got[0][2], got[1][2]):
        np.testing.assert_allclose(Wa, Wb, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(ba, bb, rtol=1e-10, atol=1e-13)


def test_nearby_row_counts_compile_one_epoch(log_compiles):
    compiled = []
    for m in (37, 38, 40):
        X, y = _digits_like(m)
        model = pn.MLP([8, 5, 3], backend="jax", dtype="float32", seed=1)
        model.fit(X, y, lr=0.1, epochs=2, batch_size=8, progress=False, optimizer="momentum")
        compiled.append(_count_compiles(log_compiles, "run_jax"))
    assert compiled[1] == compiled[0] and compiled[2] == compiled[0]


def test_predict_sizes_in_one_bucket_compile_once_and_match(log_compiles):
    X, y = _digits_like(300)
    model = pn.MLP([8, 5, 3], backend="jax", dtype="float64", seed=1)
    reference = pn.MLP([8, 5, 3], backend="numpy", dtype="float64", seed=1)
    model.predict_proba(X[:257])  # probabilities and labels: two functions, compiled once each
    model.predict(X[:257])
    before = _count_compiles(log_compiles, "infer")
    for m in (260, 300, 384):  # one bucket: 384
        np.testing.assert_allclose(model.predict_proba(X[:m]), reference.predict_proba(X[:m]),
                                   rtol=1e-12)  # fmt: skip
        np.testing.assert_array_equal(model.predict(X[:m]), reference.predict(X[:m]))
    assert _count_compiles(log_compiles, "infer") == before


def test_resident_rows_padded_on_the_device():
    pytest.importorskip("jax")
    jax_backend = pn.get_backend("jax")
    model = pn.MLP([8, 3], backend="jax", dtype="float32", seed=1)
    X = _digits_like(50)[0].astype(np.float32)
    Xd = jax_backend.asarray(X, "float32")
    np.testing.assert_allclose(model.forward(Xd[:45]), model.forward(X[:45]), rtol=1e-6)


# --- chunks: sized from the measured step time (a fake clock) -------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _chunk(chunker, clock, per_step, remaining=10**9):
    n = chunker.take(remaining)
    chunker.start()
    clock.now += n * per_step
    chunker.measured(n)
    return n


def test_chunks_start_at_one_and_grow_at_most_fourfold():
    clock = FakeClock()
    chunker = Chunker(seconds=0.1, clock=clock)
    sizes = [_chunk(chunker, clock, 1e-6) for _ in range(9)]
    assert sizes[:3] == [1, 1, 4]
    assert all(b <= GROWTH * a for a, b in zip(sizes, sizes[1:]))
    assert sizes[-1] == MAX_CHUNK_STEPS


def test_chunks_aim_at_their_time_and_shrink_at_once_when_steps_slow_down():
    clock = FakeClock()
    chunker = Chunker(seconds=0.1, clock=clock)
    for _ in range(10):
        n = _chunk(chunker, clock, 1e-3)
    assert n == 100  # 0.1 s of 1 ms steps
    n = _chunk(chunker, clock, 5e-3)  # the machine got 5x busier: this chunk took 0.5 s
    assert chunker.take(10**9) == 20  # the next one is back to 0.1 s at once
    sizes = [_chunk(chunker, clock, 1e-3) for _ in range(10)]  # faster again: regrown gradually
    assert sizes[0] == 20 and sizes[1] < 50 and sizes[-1] >= 95
    assert all(n * 1e-3 <= 0.1 + 1e-12 for n in sizes)


def test_compilation_in_the_first_chunk_does_not_stall_the_ramp():
    clock = FakeClock()
    chunker = Chunker(seconds=0.1, clock=clock)
    chunker.start()
    clock.now += 2.0  # the first step compiles for 2 s
    chunker.measured(1)
    assert chunker.take(10**9) == 1  # the second chunk measures one step
    sizes = [_chunk(chunker, clock, 1e-5) for _ in range(8)]
    assert sizes[:3] == [1, 4, 16]
    assert sizes[-1] == MAX_CHUNK_STEPS and max(n * 1e-5 for n in sizes) <= 0.1


def test_chunk_never_exceeds_the_remaining_steps_and_survives_empty_chunks():
    chunker = Chunker(seconds=0.1, clock=FakeClock())
    chunker.size = 50
    assert chunker.take(7) == 7 and chunker.take(0) == 1
    chunker.measured(0, 0.0)  # an interrupted chunk that ran nothing
    assert chunker.take(10**9) == 50
    chunker.measured(3, 0.0)  # a clock too coarse to see the steps
    assert 1 <= chunker.take(10**9) <= GROWTH * 3


# --- in-order batches are views on eager backends -------------------------------------------------
def test_in_order_slices_are_the_plans_rows():
    from polynn.train.epochs import in_order

    plan = batch_plan(21, 4, np.random.default_rng(0), False)
    for (rows, n), (slices, n2) in zip(plan, in_order(plan), strict=True):
        assert n == n2 and slices.shape == rows.shape
        for i in range(n):
            np.testing.assert_array_equal(np.arange(21)[slices[i, ...]], rows[i])


@pytest.mark.parametrize("weighted", [False, True])
def test_in_order_epochs_equal_gathered_ones(monkeypatch, weighted):
    """shuffle=False on an eager backend slices its batches; gathering them gives the same."""
    import polynn.train.epochs as epochs

    X, y = _digits_like(37)
    w = np.linspace(0.5, 2.0, 37) if weighted else None
    got = []
    for slicing in (True, False):
        if not slicing:
            monkeypatch.setattr(epochs, "in_order", lambda plan: plan)
        model = pn.MLP([8, 5, 3], backend="numpy", dtype="float64", seed=1)
        history = model.fit(X, y, lr=0.1, l2=1e-3, epochs=3, batch_size=8, shuffle=False,
                            sample_weight=w, progress=False)
        got.append((history.loss, history.accuracy, model.host_params()))
    assert got[0][:2] == got[1][:2]
    for (Wa, ba), (Wb, bb) in zip(got[0][2], got[1][2]):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
