"""polynn.placement: where data lives is decided by one function, from the backend's
capabilities (never its name), and rows are taken from it in the model's dtype."""

import numpy as np
import pytest

import polynn as pn
from polynn.placement import place, row_chunks, take_columns, take_rows, target_dtype


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3))


def test_training_data_follows_the_backend_capabilities(backend, data):
    dtype = backend.dtype_record("float64")
    full = place(backend, dtype, data, n_features=3)
    mini = place(backend, dtype, data, n_features=3, batch_size=4)
    for placed in (full, mini):
        assert not placed.resident and not placed.stream and not placed.split
        if backend.host_memory:  # batches gathered from the host data itself: no copy
            assert placed.host and placed.X is data
        else:  # one device copy in the model's dtype
            assert not placed.host and backend.owns(placed.X)
            assert placed.X.dtype == dtype.native
    assert full.m == mini.m == 20


def test_inference_keeps_host_data_on_the_host(backend, data):
    placed = place(backend, backend.dtype_record("float32"), data, n_features=3,
                   purpose="infer")
    assert placed.host and placed.X is data


def test_resident_data_is_used_in_place(backend, data):
    if not backend.owns(backend.asarray(data)):
        pytest.skip(f"{backend.name} arrays are host data")
    X = backend.asarray(data)
    placed = place(backend, backend.dtype_record("float32"), X, n_features=3)
    assert placed.resident and not placed.host and placed.X is X
    with pytest.raises(ValueError, match="stream=True streams host data"):
        place(backend, backend.dtype_record("float32"), X, n_features=3, batch_size=4,
              stream=True)


def test_streaming_needs_mini_batches_and_streams_only_where_compiled(backend, data):
    dtype = backend.dtype_record("float32")
    with pytest.raises(ValueError, match="stream=True streams mini-batches"):
        place(backend, dtype, data, n_features=3, stream=True)
    with pytest.raises(ValueError, match="stream=True streams mini-batches"):
        place(backend, dtype, data, n_features=3, batch_size=15, validation_split=0.5,
              stream=True)  # 10 training rows
    placed = place(backend, dtype, data, n_features=3, batch_size=4, stream=True)
    assert placed.host and placed.X is data and placed.stream == backend.jit


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "bfloat16"])
def test_rows_and_columns_are_taken_in_the_model_dtype(backend, data, dtype_name):
    try:
        dtype = backend.dtype_record(dtype_name)
    except ValueError as err:
        pytest.skip(str(err))
    T = np.arange(40.0).reshape(2, 20).astype(target_dtype(dtype))
    for source in (data, backend.asarray(data)):
        rows = take_rows(backend, source, np.array([3, 1]), dtype)
        assert rows.dtype == dtype.native and rows.shape == (2, 3)
    for source in (T, backend.asarray(T)):  # host targets too (the bfloat16 full-batch bug)
        columns = take_columns(backend, source, slice(2, 5), dtype)
        assert columns.dtype == dtype.native and columns.shape == (2, 3)
        np.testing.assert_array_equal(pn.backends.to_host(columns), T[:, 2:5])


def test_row_chunks():
    dtype = pn.get_backend("numpy").dtype_record("float64")
    assert row_chunks(10, 4, [3, 2], dtype) == [(0, 4), (4, 8), (8, 10)]
    assert row_chunks(10, None, [3, 2], dtype) == [(0, 10)]
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        row_chunks(10, 0, [3, 2], dtype)
