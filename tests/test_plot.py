"""Decision boundary and training curves are written as valid image files."""

import json
import sys

import numpy as np
import pytest

import polynn as pn
from polynn import plot

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = open(path, "rb").read()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def trained():
    X, y = pn.datasets.spiral(30, 3, seed=0)
    model = pn.MLP([2, 16, 3], backend="numpy", dtype="float64", seed=0)
    history = model.fit(X, y, lr=0.5, l2=1e-3, epochs=30, validation_split=0.2)
    return model, X, y, history


def test_decision_boundary_writes_png(trained, tmp_path):
    model, X, y, _ = trained
    out = plot.decision_boundary(model, X, y, tmp_path / "boundary.png", resolution=40,
                                 title="spiral")
    assert out == tmp_path / "boundary.png"
    assert_png(out)


def test_decision_boundary_binary_and_regression(tmp_path):
    X, y = pn.datasets.moons(40, seed=0)
    model = pn.MLP([2, 8, 1], output="sigmoid", dtype="float64")
    model.fit(X, y, epochs=5)
    assert_png(plot.decision_boundary(model, X, y, tmp_path / "moons.png", resolution=20))
    reg = pn.MLP([2, 8, 1], output="identity", dtype="float64")
    target = X[:, 0] * X[:, 1]
    reg.fit(X, target, epochs=5, lr=0.01)
    assert_png(plot.decision_boundary(reg, X, target, tmp_path / "reg.png", resolution=20))


def test_decision_boundary_needs_2d_data(tmp_path):
    X = np.random.default_rng(0).standard_normal((10, 3))
    model = pn.MLP([3, 4, 2])
    with pytest.raises(ValueError, match="2-D data"):
        plot.decision_boundary(model, X, np.zeros(10, dtype=int), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("resolution", "error"), [(1, ValueError), (2.5, TypeError)])
def test_decision_boundary_resolution_is_checked(trained, tmp_path, resolution, error):
    model, X, y, _ = trained
    with pytest.raises(error, match="resolution must be an integer >= 2"):
        plot.decision_boundary(model, X, y, tmp_path / "r.png", resolution=resolution)
    assert not (tmp_path / "r.png").exists()


def test_history_curves_with_validation_and_accuracy(trained, tmp_path):
    *_, history = trained
    assert history.val_loss and history.accuracy
    assert_png(plot.history_curves(history, tmp_path / "history.png"))


def test_history_curves_from_json_dict_regression(tmp_path):
    history = json.loads(json.dumps({"loss": [1.0, 0.5, 0.25], "accuracy": []}))
    assert_png(plot.history_curves(history, tmp_path / "loss.png"))
    with pytest.raises(ValueError, match="no loss"):
        plot.history_curves({"loss": []}, tmp_path / "empty.png")


def test_missing_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "polynn\[plot\]"'):
        plot.history_curves({"loss": [1.0]}, tmp_path / "h.png")


def test_image_formats_names_the_suffixes_matplotlib_writes():
    formats = plot.image_formats()
    assert {"png", "svg", "pdf"} <= set(formats) and "xyz" not in formats
