"""The optimizer registry and named states (polynn.nn.optim), and the layout module's state
conversion (polynn.nn.layout)."""

from __future__ import annotations

import numpy as np
import pytest

from polynn.nn import layout, optim


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.normal(size=(3, 4)), rng.normal(size=4)),
            (rng.normal(size=(4, 2)), rng.normal(size=2)))


@pytest.mark.parametrize("optimizer, fields", [
    (optim.SGD(optim.Constant(0.1)), ()),
    (optim.Momentum(optim.Constant(0.1)), ("velocity",)),
    (optim.VelocityMomentum(optim.Constant(0.1)), ("velocity",)),
    (optim.Adam(optim.Constant(0.1)), ("first", "second")),
])
def test_states_are_named_tuples_with_the_registry_fields(optimizer, fields):
    params = _params()
    state = optimizer.init(params)
    assert isinstance(state, optimizer.State) and state.count == 0
    assert optim.state_fields(optimizer) == optim.state_fields(state) == fields
    grads = _params(1)
    _, new_state = optimizer.update(grads, state, params)
    assert type(new_state) is type(state) and new_state.count == 1
    assert optim.OPTIMIZER_CLASSES[type(optimizer).__name__] is type(optimizer)


def test_layout_round_trip_keeps_the_state_type_and_count():
    params = _params()
    state = optim.Adam(optim.Constant(0.1)).update(_params(1), optim.Adam(
        optim.Constant(0.1)).init(params), params)[1]
    columns = layout.state_to_columns(state)
    assert type(columns) is optim.AdamState and columns.count == 1
    assert columns.first[0].shape == (4, 4) and columns.first[1].shape == (2, 5)
    back = layout.state_to_rows(columns)
    assert type(back) is optim.AdamState
    for (W, b), (W2, b2) in zip(state.second, back.second):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_params_layout_round_trip():
    params = _params()
    Wb = layout.params_to_columns(params)
    assert [A.shape for A in Wb] == [(4, 4), (2, 5)]
    for (W, b), (W2, b2) in zip(params, layout.params_to_rows(Wb)):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_default_learning_rates_come_from_one_table(name):
    assert optim.make_optimizer(name).learning_rate == optim.Constant(
        optim.DEFAULT_LEARNING_RATES[name])
