"""The ``polynn`` command, called in-process through ``main([...])`` (and once as a process)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import polynn as pn
from polynn.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = ["--epochs", "200", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def needs_io():
    try:
        import polynn.io  # noqa: F401
    except ImportError:
        pytest.skip("polynn.io is not there yet")


def test_train_spiral_prints_final_loss_and_accuracy(capsys):
    code, out, err = run(capsys, "train", "--epochs", "500", "--print-every", "250",
                         "--lr", "1.0")
    assert code == 0, err
    assert "MLP([2, 25, 3]" in out and "dtype='float64'" in out
    assert "300 training examples" in out and "3 classes" in out
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["0", "250", "500"]
    final = [line for line in out.splitlines() if line.startswith("final loss")]
    assert len(final) == 1
    words = final[0].split()
    loss, accuracy = float(words[2]), float(words[5].rstrip("%"))
    assert 0 < loss < 1.0 and 50 < accuracy <= 100
    assert "500 epochs" in final[0]


def test_train_options_and_validation(capsys, tmp_path):
    history_path = tmp_path / "h.json"
    code, out, err = run(capsys, "train", "--dataset", "moons", "--layers", "8", "8",
                         "--activation", "tanh", "--output", "sigmoid", "--optimizer", "adam",
                         "--lr", "0.01", "--batch-size", "32", "--epochs", "20", "--dtype",
                         "float32", "--validation-split", "0.25", "--patience", "50",
                         "--history", str(history_path), "--quiet", "--seed", "3")
    assert code == 0, err
    assert "MLP([2, 8, 8, 1]" in out and "150 training examples, 50 validation" in out
    assert "validation accuracy" in out and "adam, lr 0.01" in out
    history = json.loads(history_path.read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == 20


def test_plot_writes_png(capsys, tmp_path):
    path, curves = tmp_path / "boundary.png", tmp_path / "curves.png"
    code, out, err = run(capsys, "train", *QUICK, "--plot", str(path), "--plot-history",
                         str(curves))
    assert code == 0, err
    for p in (path, curves):
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert "decision boundary" in out


def test_save_then_predict_round_trip(capsys, tmp_path):
    needs_io()
    model_path = tmp_path / "model.safetensors"
    code, out, err = run(capsys, "train", *QUICK, "--save", str(model_path))
    assert code == 0, err
    model = pn.load(model_path)
    X, y = pn.datasets.spiral()

    code, out, err = run(capsys, "predict", str(model_path), "spiral")
    assert code == 0, err
    pred = np.array([int(v) for v in out.split()])
    np.testing.assert_array_equal(pred, model.predict(X))
    assert "accuracy" in err and "300 labelled" in err

    csv_path, out_path = tmp_path / "points.csv", tmp_path / "pred.txt"
    np.savetxt(csv_path, np.c_[X[:10], y[:10]], delimiter=",", header="x1,x2,label",
               comments="")
    code, out, err = run(capsys, "predict", str(model_path), str(csv_path), "--out",
                         str(out_path))
    assert code == 0, err
    assert out_path.read_text().split() == [str(v) for v in model.predict(X[:10])]

    np.savetxt(csv_path, X[:4], delimiter=",")  # features only, no header
    code, out, err = run(capsys, "predict", str(model_path), str(csv_path), "--proba")
    assert code == 0, err
    proba = np.array([[float(v) for v in line.split(",")] for line in out.split()])
    np.testing.assert_allclose(proba, model.predict_proba(X[:4]), rtol=1e-5)


def test_gradcheck_exit_codes(capsys):
    code, out, err = run(capsys, "gradcheck", "--method", "fd")
    assert code == 0, err
    assert "W1" in out and "OK" in out
    code, out, err = run(capsys, "gradcheck", "--method", "fd", "--tol", "0")
    assert code == 1 and "FAILED" in out


def test_gradcheck_against_jax(capsys):
    pytest.importorskip("jax")
    code, out, err = run(capsys, "gradcheck", "--activation", "tanh", "--output", "identity",
                         "--layers", "4", "4")
    assert code == 0, err
    assert "vs jax" in out and "vs fd" in out


def test_backends_lists_numpy_as_usable(capsys):
    code, out, err = run(capsys, "backends")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "usable" in lines["numpy"] and "not usable" not in lines["numpy"]
    assert set(lines) == set(pn.backends.BACKENDS)


@pytest.mark.parametrize("argv,message", [
    (["train", "--backend", "tensorflow"], "invalid choice: 'tensorflow'"),
    (["train", "--activation", "swish"], "invalid choice: 'swish'"),
    (["train", "--dataset", "csv:/no/such/file.csv"], "not found"),
    (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["train", "--lr", "-1"], "must be"),
    (["train", "--patience", "3", "--epochs", "2"], "validation"),
    (["train", "--output", "sigmoid"], "needs 2 classes"),
    (["predict", "/no/such/model.safetensors", "spiral"], "No such file"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_input_exits_2_with_one_clear_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polynn: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err


def test_unusable_backend_from_environment(capsys, monkeypatch):
    monkeypatch.setenv("POLYNN_BACKEND", "nonesuch")
    code, out, err = run(capsys, "train", *QUICK)
    assert code == 2 and err.startswith("polynn: error: unknown backend 'nonesuch'")


def test_divergence_exits_1(capsys):
    code, out, err = run(capsys, "train", "--quiet", "--epochs", "200", "--lr", "1e6")
    assert code == 1
    assert err.startswith("polynn: error: training diverged") and len(err.splitlines()) == 1


def test_ctrl_c_keeps_and_saves_what_was_trained(capsys, tmp_path):
    needs_io()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    default = signal.getsignal(signal.SIGINT)

    def interrupt_once_training_runs():
        deadline = time.monotonic() + 30
        while signal.getsignal(signal.SIGINT) is default and time.monotonic() < deadline:
            time.sleep(0.005)  # wait for fit's Ctrl-C handler
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_training_runs, daemon=True).start()
    path = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "train", "--epochs", "10000000", "--quiet", "--save",
                         str(path))
    assert code == 130, err  # scripts can tell an interrupted run from a finished one
    assert "interrupted after" in out and "final loss" in out
    assert pn.load(path).layer_sizes == [2, 25, 3]


def test_help_and_python_dash_m():
    assert main(["train", "--help"]) == 0
    proc = subprocess.run([sys.executable, "-m", "polynn", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("polynn ")
    proc = subprocess.run([sys.executable, "-m", "polynn", "train", "--layers", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("polynn: error: ")


# --------------------------------------------------------------------------- predict's CSV


@pytest.fixture(scope="module")
def spiral_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "spiral.safetensors"
    model = pn.MLP([2, 8, 3], seed=0)
    model.fit(*pn.datasets.spiral(), epochs=20)
    model.save(path)
    return model, path


@pytest.mark.parametrize("text,rows", [
    ("x1,x2,label\n0.1,0.2,0\n0.3,-0.4,1\n", 2),   # header: no cell is a number
    ("0.1,0.2,0\n0.3,-0.4,1\n0.5,0.5,2\n", 3),      # no header
    ("0.1,0.2\n\n0.3,-0.4\n", 2),                   # blank lines are not rows
    ('"0.1","0.2"\n0.3,-0.4\n', 2),                 # quoted numbers are numbers
])
def test_predict_prints_one_line_per_data_row(capsys, tmp_path, spiral_model, text, rows):
    model, path = spiral_model
    data = tmp_path / "points.csv"
    data.write_text(text)
    code, out, err = run(capsys, "predict", str(path), str(data))
    assert code == 0, err
    assert len(out.splitlines()) == rows
    X = np.array([[float(v.strip('"')) for v in line.split(",")[:2]]
                  for line in text.splitlines() if line and line[0] in '"0123456789'])
    assert out.split() == [str(v) for v in model.predict(X)]


@pytest.mark.parametrize("text,message", [
    ("1,2x\n3,4\n", r"line 1, column 2: '2x' is not a number"),  # a typo is not a header
    ("x,0.2\n3,4\n", r"line 1, column 1: 'x' is not a number"),
    ("0.1,0.2\n3,nan\n", r"line 2, column 2: 'nan' is not a number"),
    ("a,b\n1,2\n3\n", "line 3 has 1 fields, expected 2"),
    ("a,b\n1,2,3,4\n", "has 4 columns; the model takes 2 features"),
    ("a,b\n", "no data rows"),
    ('1,2\n3,"4\n', "line 2: unexpected end of data"),
])
def test_predict_bad_csv_is_one_line_naming_file_and_line(capsys, tmp_path, spiral_model,
                                                          text, message):
    _, path = spiral_model
    data = tmp_path / "bad.csv"
    data.write_text(text)
    code, out, err = run(capsys, "predict", str(path), str(data))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"polynn: error: {data}"), err
    assert re.search(message, lines[0]), lines[0]


def test_predict_csv_limits_and_encoding(capsys, tmp_path, spiral_model):
    import csv

    _, path = spiral_model
    data = tmp_path / "long.csv"
    data.write_text("1,2\n3," + "4" * (csv.field_size_limit() + 10) + "\n")
    code, out, err = run(capsys, "predict", str(path), str(data))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip() == (f"polynn: error: {data}: line 2: a field is longer than 131072 "
                           "characters (Python's csv limit)")
    data = tmp_path / "latin1.csv"
    data.write_bytes("x\u00e9,y\n1,2\n".encode("latin-1"))
    code, out, err = run(capsys, "predict", str(path), str(data))
    assert code == 2 and out == ""
    assert err.strip() == (f"polynn: error: {data}: line 1, column 1: byte 0xe9 is not UTF-8 "
                           "text; save the file as UTF-8")


def test_predict_corrupt_model_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    code, out, err = run(capsys, "predict", str(bad), "spiral")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"polynn: error: '{bad}' is truncated or corrupted")


# --------------------------------------------------------------------------- failures


def test_unexpected_error_is_one_line_and_traceback_on_request(capsys, monkeypatch):
    from polynn.cli import info

    def broken(args, out, err):
        raise RuntimeError("something\ninternal broke")

    monkeypatch.setattr(info, "cmd_backends", broken)
    monkeypatch.delenv("POLYNN_TRACEBACK", raising=False)
    code, out, err = run(capsys, "backends")
    assert code == 1
    assert err == "polynn: error: RuntimeError: something internal broke\n"
    monkeypatch.setenv("POLYNN_TRACEBACK", "1")
    code, out, err = run(capsys, "backends")
    assert code == 1 and err.startswith("Traceback (most recent call last)")
    assert "in broken" in err
    assert err.splitlines()[-1] == "polynn: error: RuntimeError: something internal broke"


@pytest.mark.parametrize("option,setup,message", [
    ("--save", lambda d: d / "missing" / "m.safetensors", "does not exist"),
    ("--save", lambda d: d, "is a directory"),
    ("--history", lambda d: d / "missing" / "h.json", "does not exist"),
    ("--plot", lambda d: d / "missing" / "p.png", "does not exist"),
    ("--plot", lambda d: d / "p.xyz", "matplotlib cannot write .xyz images"),
    ("--plot-history", lambda d: d, "is a directory"),
])
def test_output_paths_are_checked_before_training(capsys, tmp_path, option, setup, message):
    if "plot" in option:
        pytest.importorskip("matplotlib")
    target = setup(tmp_path)
    code, out, err = run(capsys, "train", "--epochs", "100000000", "--quiet", option,
                         str(target))
    assert code == 2 and out == ""  # refused before the model is even built
    assert err.startswith(f"polynn: error: {option} {target}") and message in err, err


def test_unwritable_output_is_refused_before_training(capsys, tmp_path, monkeypatch):
    """(Monkeypatched: tests may run as root, which may write anywhere.)"""
    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    (tmp_path / "ro.json").write_text("{}")

    def access(path, mode, **kw):
        if os.fspath(path) in (str(locked), str(tmp_path / "ro.json")) and mode & os.W_OK:
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    code, out, err = run(capsys, "train", *QUICK, "--save", str(locked / "m.safetensors"))
    assert code == 2 and out == "" and f"directory {locked} is not writable" in err
    code, out, err = run(capsys, "train", *QUICK, "--history", str(tmp_path / "ro.json"))
    assert code == 2 and out == "" and "the file exists and is not writable" in err
    code, out, err = run(capsys, "predict", "any.safetensors", "spiral", "--out",
                         str(locked / "p.txt"))
    assert code == 2 and "is not writable" in err


def test_broken_pipe_is_not_a_traceback(tmp_path, spiral_model):
    """``polynn predict ... | head`` that closes the pipe early: no traceback, no 'Exception
    ignored' from the interpreter's last flush."""
    _, path = spiral_model
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered
    proc = subprocess.Popen([sys.executable, "-m", "polynn", "predict", str(path), "spiral"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the command writes: its write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode != 0


@pytest.mark.parametrize("output,units", [("sigmoid", 3), ("poisson", 1), ("identity", 2)])
def test_predict_multilabel_and_regression_one_line_per_row(capsys, tmp_path, output, units):
    model = pn.MLP([2, 4, units], output=output, seed=1)
    model.save(tmp_path / "m.safetensors")
    data = tmp_path / "points.csv"
    data.write_text("a,b\n0.1,0.2\n-0.3,0.4\n0.5,-0.6\n")
    code, out, err = run(capsys, "predict", str(tmp_path / "m.safetensors"), str(data))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(len(line.split(",")) == units for line in lines)
    expected = model.predict(np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]]))
    got = np.array([[float(v) for v in line.split(",")] for line in lines])
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-9)
