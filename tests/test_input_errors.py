"""Bad input through the real CLI: one line ``error: ...``, exit code 2, no traceback, nothing trained.

Each case checks that no run directory was made: every problem is found before training starts.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from latentprobe import config
from latentprobe.cli import app
from latentprobe.errors import ConfigError

from .conftest import tiny_config, write_config
from .test_data import make_arrays, write_npz

runner = CliRunner()


def train_fails_cleanly(tmp_path, raw, *args) -> str:
    """Run ``latentprobe train``; assert exit 2, one line, no traceback, no run; return the line."""
    result = runner.invoke(app, ["train", str(write_config(tmp_path, raw)), *args])
    assert result.exit_code == 2, result.output
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "runs").exists()  # no run directory: nothing started
    return lines[0]


# --- settings that contradict each other, or that the data cannot satisfy ------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"data": {"path": "x.npz"}}, "data.path: data.name 'digits' is bundled with scikit-learn"),
        ({"data": {"labels": 500, "limit": 300}}, "data.labels: 500 labels but data.limit keeps only 300"),
        (
            {"data": {"validation": 300, "limit": 300}},
            "data.validation: holds out 300 of the 300 examples",
        ),
        ({"model": {"activation": "Relu"}}, "model.activation: unknown activation 'Relu'"),
        ({"seed": 2**32}, "seed: expected seeds <= 4294967295"),
        (
            {"probe": {"strategy": "frozen", "every": "epoch"}},
            "probe.every: only applies to probe.strategy",
        ),
    ],
)
def test_contradicting_settings_are_config_errors(tmp_path, change, words):
    raw = tiny_config(tmp_path, **change)
    error = train_fails_cleanly(tmp_path, raw)
    path = tmp_path / "config.yaml"
    key = words.split(":")[0]
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if f"{key.split('.')[-1]}:" in text
    )
    assert error.startswith(f"error: {path}:{line}: {words}")


def test_more_labels_than_the_train_split_holds_names_file_key_and_line(tmp_path):
    raw = tiny_config(tmp_path, data={"labels": 5000})
    path = tmp_path / "config.yaml"
    error = train_fails_cleanly(tmp_path, raw)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "labels:" in text)
    assert (
        error == f"error: {path}:{line}: data.labels: 5000 is larger than the 1293 examples of the train part"
    )


def test_too_few_labels_for_the_classes(tmp_path):
    error = train_fails_cleanly(tmp_path, tiny_config(tmp_path, data={"labels": 7}))
    assert "data.labels: 7 is smaller than the number of classes (10)" in error


def test_a_missing_gpu_is_found_before_any_run_directory(tmp_path):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    error = train_fails_cleanly(tmp_path, tiny_config(tmp_path, train={"device": "gpu"}))
    assert "train.device: 'gpu' requested, but this machine shows no GPU" in error


def test_exponent_floats_are_numbers_not_strings():
    # PyYAML alone reads 1e-3 as the string '1e-3'; a learning rate written so must not be a type error.
    cfg = config.load_text("train: {learning_rate: 1e-3}\nprobe: {learning_rate: 5E+1}")
    assert cfg.train.learning_rate == 0.001 and cfg.probe.learning_rate == 50.0
    assert config.load_text("", ["train.learning_rate=2e-4"]).train.learning_rate == 0.0002


def test_a_key_with_a_newline_stays_on_one_line():
    with pytest.raises(ConfigError) as caught:
        config.load_text('"a\\nb": 1\n', source="c.yaml")
    assert (
        str(caught.value)
        == "c.yaml:1: 'a\\nb': unknown key (valid keys here: name, seed, data, model, probe, train, output)"
    )


# --- data that cannot be trained on -------------------------------------------------------------------


def _bad_data(tmp_path, case: str) -> str:
    arrays = make_arrays()
    if case == "missing file":
        return str(tmp_path / "absent.npz")
    if case == "wrong keys":
        return write_npz(tmp_path, y_test=None)
    if case == "lengths differ":
        return write_npz(tmp_path, y_train=arrays["y_train"][:-5])
    if case == "labels not 0..K-1":
        return write_npz(tmp_path, y_train=arrays["y_train"] * 2)
    if case == "NaN inputs":
        x = arrays["x_train"].astype("float32") / 255
        x[3, 1, 1] = np.nan
        return write_npz(tmp_path, x_train=x, x_test=arrays["x_test"].astype("float32") / 255)
    if case == "inf inputs":
        x = arrays["x_test"].astype("float32")
        x[0, 0, 0] = np.inf
        return write_npz(tmp_path, x_train=arrays["x_train"].astype("float32"), x_test=x)
    if case == "single class":
        return write_npz(tmp_path, y_train=np.zeros(60, int), y_test=np.zeros(15, int))
    if case == "empty split":
        return write_npz(tmp_path, x_test=arrays["x_test"][:0], y_test=arrays["y_test"][:0])
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing file", "absent.npz: no such file"),
        ("wrong keys", "missing key(s) y_test"),
        ("lengths differ", "x_train has 60 examples but y_train has 55"),
        ("labels not 0..K-1", "labels must be the integers 0..K-1"),
        ("NaN inputs", "x_train (train split) contains NaN or inf"),
        ("inf inputs", "x_test (test split) contains NaN or inf"),
        ("single class", "y_train has a single class (0)"),
        ("empty split", "the test split is empty"),
    ],
)
def test_data_errors_stop_before_training(tmp_path, case, words):
    path = _bad_data(tmp_path, case)
    raw = tiny_config(tmp_path, data={"name": "npz", "path": path, "validation": 6, "labels": "all"})
    error = train_fails_cleanly(tmp_path, raw)
    # The config file and the key's line, then the data file and what is wrong with it.
    config_file = tmp_path / "config.yaml"
    assert error.startswith(f"error: {config_file}:") and f"data.path: {path}" in error and words in error
