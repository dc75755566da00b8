"""The command line's conventions (issue 16 §4) and a short ``repr(History)`` (§5): a bar only
on a terminal, moving during an epoch; loss lines printed as training goes (with validation);
Ctrl-C exits 130 after saving, the steps recorded; no x64 warning for the CLI's own float64;
dataset-sized defaults and --test-split; errors in the command line's words."""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import polynn as pn
from polynn.cli import main
from polynn.cli.train import DEFAULT_STEPS, plan
from polynn.train.progress import Progress, is_terminal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered, as in a pipe to a log
    return env


def polynn_process(*argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "polynn", *argv], env=child_env(), **kw)


def read_line(stream, deadline):
    """The next line of a child's stdout, or None after ``deadline``."""
    ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
    return stream.readline().decode() if ready else None


def wait_for(stream, prefix, seconds=120):
    """Lines of ``stream`` up to the first starting with ``prefix`` (asserts it comes)."""
    deadline, lines = time.monotonic() + seconds, []
    while True:
        line = read_line(stream, deadline)
        assert line, f"no line starting with {prefix!r} within {seconds} s: {lines}"
        lines.append(line)
        if line.startswith(prefix):
            return lines


def big_csv(path, rows=30_000):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3))
    y = (X[:, 0] > 0).astype(int) + 1
    np.savetxt(path, np.c_[X, y], delimiter=",", fmt=["%.6f"] * 3 + ["%d"])
    return path


# --- Ctrl-C --------------------------------------------------------------------------------------
def test_sigint_mid_epoch_exits_130_after_saving_with_the_steps_recorded(tmp_path):
    """SIGINT to a child process just after its first epoch of mini-batches ended (its line
    was printed), so in the middle of the second: status 130, the model saved, the history
    holds every step done (the cut epoch as a partial entry, not dropped)."""
    data = big_csv(tmp_path / "big.csv")
    model, history = tmp_path / "m.safetensors", tmp_path / "h.json"
    proc = polynn_process("train", "--dataset", f"csv:{data}", "--batch-size", "1",
                          "--epochs", "1000", "--save", str(model), "--history", str(history),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(proc.stdout, "epoch      0")
        time.sleep(0.1)  # (not before the next epoch starts: an epoch takes longer than this)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"interrupted after" in out and b"saved model" in out
    assert err == b""  # no bar (not a terminal), no traceback
    saved = json.loads(history.read_text())
    assert saved["stopped"] == "interrupted" and saved["epochs"] >= 1
    assert saved["steps"] == 30_000 * saved["epochs"] + saved["partial_steps"]
    # An epoch is 30,000 steps in chunks of at most 4,096: the interrupt lands inside one.
    assert len(saved["loss"]) == saved["epochs"] + (saved["partial_steps"] > 0)
    assert saved["partial_steps"] > 0 and b"steps of the next" in out
    assert pn.load(model).classes.tolist() == [1, 2]


def test_loss_lines_are_printed_live_then_ctrl_c(tmp_path):
    """The loss lines reach a pipe while training runs (not at the end)."""
    proc = polynn_process("train", "--epochs", "100000000", "--print-every", "200",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = wait_for(proc.stdout, "epoch ")
        lines += wait_for(proc.stdout, "epoch ")
        assert proc.poll() is None  # still training: the lines came live
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    assert [line.split()[1] for line in lines if line.startswith("epoch")][:2] == ["0", "200"]
    assert b"interrupted after" in out and b"final loss" in out


# --- the bar -------------------------------------------------------------------------------------
def test_bar_decision_follows_the_terminal():
    assert not Progress("auto", stream=io.StringIO()).want_bar
    assert Progress(True, stream=io.StringIO()).want_bar
    assert not Progress(False).want_bar
    assert not is_terminal(io.StringIO()) and not is_terminal(object())
    with pytest.raises(ValueError, match="bar"):
        Progress("yes")


def test_no_bar_in_a_pipe_and_a_bar_on_a_terminal():
    proc = subprocess.run([sys.executable, "-m", "polynn", "train", "--epochs", "300"],
                          capture_output=True, env=child_env(), timeout=120)
    assert proc.returncode == 0 and proc.stderr == b""  # nothing for a log file
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = polynn_process("train", "--epochs", "300", stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    proc.communicate(timeout=120)
    seen = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"300/300" in seen and b"epoch/s" in seen, seen[-300:]


class Recorder:
    """A Progress that records what the loop tells it."""

    def __init__(self):
        self.calls = []

    def start(self, epochs, per_epoch):
        self.calls.append(("start", epochs, per_epoch))

    def steps(self, n):
        self.calls.append(("steps", n))

    def epochs(self, history):
        self.calls.append(("epochs", history.epochs))

    def close(self):
        self.calls.append(("close",))


@pytest.mark.backend
def test_progress_moves_during_an_epoch(backend):
    X, y = pn.datasets.spiral(n_per_class=200, seed=0)
    model = pn.MLP([2, 8, 3], backend=backend.name)
    recorder = Recorder()
    history = model.fit(X, y, batch_size=1, epochs=2, progress=recorder)
    calls = recorder.calls
    assert calls[0] == ("start", 2, 600) and calls[-1] == ("close",)
    first_epoch = calls.index(("epochs", 1))
    ticks = [c[1] for c in calls[1:first_epoch] if c[0] == "steps"]
    assert len(ticks) >= 2 and sum(ticks) == 600  # chunks of the epoch, reported as they end
    assert sum(c[1] for c in calls if c[0] == "steps") == history.steps == 1200


def test_validation_metrics_in_the_lines(capsys):
    code = main(["train", "--dataset", "moons", "--validation-split", "0.25", "--epochs", "5",
                 "--print-every", "2", "--batch-size", "50", "--optimizer", "adam"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["0", "2", "4"]
    assert all("val_loss" in line and "val_accuracy" in line for line in lines)


# --- JAX's x64 -----------------------------------------------------------------------------------
def test_no_x64_warning_for_the_cli_default():
    pytest.importorskip("jax")
    quiet = subprocess.run([sys.executable, "-m", "polynn", "train", "--backend", "jax",
                            "--epochs", "3", "--quiet"], capture_output=True, text=True,
                           env=child_env(), timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "jax_enable_x64" not in quiet.stderr and "dtype='float64'" in quiet.stdout
    chosen = subprocess.run([sys.executable, "-m", "polynn", "train", "--backend", "jax",
                             "--epochs", "3", "--quiet", "--dtype", "float64"],
                            capture_output=True, text=True, env=child_env(), timeout=300)
    assert chosen.returncode == 0 and "jax_enable_x64" in chosen.stderr  # the user's choice


# --- defaults and --test-split -------------------------------------------------------------------
def _args(**kw):
    base = dict(batch_size=None, epochs=None, print_every=None, stream=False)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("m,batch,expected", [
    (300, None, (None, 10_000, 2500)),          # the reference program
    (1797, 32, (32, 176, 44)),                   # the README's digits example: 10,000 steps
    (60_000, None, (128, 22, 5)),                # MNIST-sized: mini-batches by default
])
def test_defaults_are_sized_to_the_data(m, batch, expected):
    batch_size, epochs, every = plan(_args(batch_size=batch), m)
    assert (batch_size, epochs, every) == expected
    per_epoch = 1 if batch_size is None else -(-m // batch_size)
    assert DEFAULT_STEPS <= epochs * per_epoch < DEFAULT_STEPS + per_epoch
    assert plan(_args(batch_size=batch, epochs=7, print_every=3), m)[1:] == (7, 3)


def test_test_split_reports_held_out_accuracy(capsys):
    code = main(["train", "--dataset", "moons", "--test-split", "0.2", "--validation-split",
                 "0.25", "--epochs", "50", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "120 training examples, 40 validation, 40 test" in out
    line = next(line for line in out.splitlines() if line.startswith("test loss"))
    assert "test accuracy" in line and "on 40 held-out examples" in line


# --- messages in the command line's words --------------------------------------------------------
@pytest.mark.parametrize("argv,says", [
    (["train", "--lr", "abc"], "argument --lr: expected a number, got 'abc'"),
    (["train", "--epochs", "2.5"], "argument --epochs: expected a whole number, got '2.5'"),
    (["train", "--test-split", "x"], "expected a fraction between 0 and 1"),
    (["train", "--validation-split", "1.5"], "--validation-split: must be in (0, 1)"),
    (["train", "--patience", "3"], "--patience (early stopping) needs --validation-split"),
    (["train", "--stream"], "--stream moves mini-batches to the device: it needs --batch-size"),
    (["train", "--stream", "--batch-size", "500"], "smaller than the 300 training rows"),
    (["train", "--stream", "--batch-size", "8", "--mesh", "2"], "--stream and --mesh"),
    (["train", "--test-split", "0.999"], "--test-split 0.999 of 300 rows leaves no row"),
    (["train", "--output", "sigmoid"], "--output sigmoid needs 2 classes; the data has 3"),
])
def test_errors_in_the_command_lines_words(capsys, argv, says):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and says in err, err
    assert len(err.splitlines()) == 1
    for python in ("_positive", "_float", "_int value", "invalid fraction", "=True", "patience=",
                   "stream=", "test_size"):
        assert python not in err, err


def test_regression_on_names_is_refused_in_words(capsys, tmp_path):
    (tmp_path / "n.csv").write_text("1,2,cat\n3,4,dog\n")
    code = main(["train", "--dataset", f"csv:{tmp_path / 'n.csv'}", "--output", "identity"])
    assert code == 2 and "--output identity regresses on numbers" in capsys.readouterr().err


# --- repr(History) -------------------------------------------------------------------------------
def test_history_repr_is_short_however_long_the_run():
    X, y = pn.datasets.spiral(n_per_class=20, seed=0)
    model = pn.MLP([2, 4, 3], dtype="float64")
    history = model.fit(X, y, lr=0.1, epochs=10_000)
    text = repr(history)
    assert len(text.splitlines()) <= 3 and len(text) < 200, text
    assert text.startswith("History(10000 epochs, 10000 steps)") and "last loss" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(X, y, lr=0.1, epochs=30, validation_split=0.25, patience=3)
    text = repr(history)
    assert "best val_loss" in text and len(text.splitlines()) <= 3 and len(text) < 250, text
