"""Class names: read from each source, checked in an npz, and shown in summary.json, eval.json, eval's
terminal report, the projector's metadata and compare, including for runs made before names existed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from latentprobe import config, data, evaluation, rundir, train
from latentprobe.cli import app
from latentprobe.errors import DataError

from .conftest import tiny_config, write_config
from .test_data import make_cfg, write_npz
from .test_input_errors import train_fails_cleanly

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def test_digits_are_named_by_their_numbers():
    assert data.load(make_cfg(labels=100), seed=0).class_names == tuple("0123456789")


def test_fashion_mnist_and_mnist_defaults():
    assert data.read_class_names("fashion_mnist", None, 10)[:3] == ("T-shirt/top", "Trouser", "Pullover")
    assert data.read_class_names("fashion_mnist", None, 10)[9] == "Ankle boot"
    assert data.read_class_names("mnist", None, 10) == tuple("0123456789")


def test_an_npz_without_names_gets_numbers(tmp_path):
    splits = data.load(make_cfg("npz", write_npz(tmp_path), validation=6), seed=0)
    assert splits.class_names == ("0", "1", "2")


@pytest.mark.parametrize("dtype", ["U", "S"])  # str, and bytes (decoded as UTF-8)
def test_an_npz_carries_its_class_names(tmp_path, dtype):
    names = np.array(["cat", "dog", "bird"]).astype(dtype)
    splits = data.load(make_cfg("npz", write_npz(tmp_path, class_names=names), validation=6), seed=0)
    assert splits.class_names == ("cat", "dog", "bird")


@pytest.mark.parametrize(
    ("names", "words"),
    [
        (np.array(["cat", "dog"]), "class_names has 2 names but the labels have 3 classes (0..2)"),
        (np.array(["cat", "dog", "cat"]), "class_names: classes 0 and 2 have the same name 'cat'"),
        (np.array(["cat", " ", "bird"]), "class_names: the name of class 1 is empty"),
        (np.array([0, 1, 2]), "class_names must be a 1-d array of strings; got dtype int64"),
        (np.array([["cat", "dog", "bird"]]), "class_names must be a 1-d array of strings"),
        (np.array(["cat", "dog", "bird"], dtype=object), "class_names must be an array of strings"),
    ],
)
def test_a_bad_class_names_array_is_one_error_naming_the_file_and_key(tmp_path, names, words):
    path = write_npz(tmp_path, class_names=names)
    with pytest.raises(DataError) as caught:
        data.load(make_cfg("npz", path, validation=6), seed=0)
    message = str(caught.value)
    assert "\n" not in message and f"data.path: {path}: class_names" in message and words in message


def test_a_bad_class_names_array_stops_train_with_exit_2(tmp_path):
    path = write_npz(tmp_path, class_names=np.array(["a", "b"]))
    raw = tiny_config(tmp_path, data={"name": "npz", "path": path, "validation": 6, "labels": "all"})
    error = train_fails_cleanly(tmp_path, raw)
    assert error.startswith(f"error: {tmp_path / 'config.yaml'}:")
    assert f"data.path: {path}: class_names has 2 names but the labels have 3 classes" in error


def test_class_names_do_not_change_the_data_hash(tmp_path):
    """Naming the classes of a dataset does not make it other data: old runs on it still eval."""
    plain = data.load(make_cfg("npz", write_npz(tmp_path, "a.npz"), validation=6), seed=0)
    named = write_npz(tmp_path, "b.npz", class_names=np.array(["x", "y", "z"]))
    assert data.load(make_cfg("npz", named, validation=6), seed=0).sha256 == plain.sha256


# --- through train, eval and compare -------------------------------------------------------------------


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    """A tiny run on the digits written as an npz with a class name per digit, evaluated."""
    tmp = tmp_path_factory.mktemp("names")
    digits = load_digits()
    x, y = digits.images.astype(np.uint8), digits.target
    npz = tmp / "digits.npz"
    np.savez(
        npz,
        x_train=x[:1200],
        y_train=y[:1200],
        x_test=x[1200:1500],
        y_test=y[1200:1500],
        class_names=np.array(DIGIT_NAMES),
    )
    raw = tiny_config(
        tmp,
        data={"name": "npz", "path": str(npz), "labels": "all", "validation": 0.1},
        model={"latent": 2},
        train={"epochs": 1, "jit_compile": False},
    )
    run_dir = Path(train.run(config.load(write_config(tmp, raw)))[0]["run_dir"])
    options = evaluation.EvalOptions(budgets=("all",), probes=("linear",), controls=False)
    report = evaluation.evaluate(run_dir, options)
    return {"run_dir": run_dir, "report": report, "options": options}


def test_summary_json_holds_the_class_names(named_run):
    summary = rundir.read_summary(named_run["run_dir"])
    assert summary["data"]["class_names"] == list(DIGIT_NAMES)


def test_eval_json_labels_its_per_class_figures(named_run):
    report = json.loads((named_run["run_dir"] / "eval.json").read_text())
    assert report["class_names"] == list(DIGIT_NAMES)
    assert len(report["per_class_accuracy"]) == len(report["confusion_matrix"]) == 10
    text = evaluation.render_report(report)
    per_class = report_part(text, "test accuracy per class")
    assert per_class.startswith("test accuracy per class (linear@all)  zero ")
    assert "  nine " in per_class
    area = report_part(text, "latent area share per class")
    assert "  zero " in area and "  nine " in area  # a 2-d latent
    assert max(len(line) for line in text.splitlines()[-4:]) <= 100  # wrapped, names kept whole


def report_part(text: str, title: str) -> str:
    """The terminal report's part that starts with ``title``, its wrapped lines joined."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "  ".join(line.strip() if i else line for i, line in enumerate(lines[start:end]))


def test_projector_metadata_names_each_test_point(named_run):
    metadata = (named_run["run_dir"] / "tb" / "eval" / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "class\tlabel"
    rows = [line.split("\t") for line in metadata[1:]]
    y_test = load_digits().target[1200:1500]
    assert rows == [[DIGIT_NAMES[k], str(k)] for k in y_test]


def test_a_run_without_class_names_in_its_summary_still_evals_and_compares(named_run, tmp_path):
    """A run directory written before summary.json held class names."""
    old = tmp_path / "old"
    shutil.copytree(named_run["run_dir"], old, ignore=shutil.ignore_patterns("eval*", "plots", "tb"))
    summary = rundir.read_summary(named_run["run_dir"])
    del summary["data"]["class_names"]
    (old / "summary.json").write_text(json.dumps(summary))
    report = evaluation.evaluate(old, named_run["options"])
    assert report["class_names"] == list(DIGIT_NAMES)  # from the data, which eval reads again
    result = CliRunner().invoke(app, ["compare", str(old), str(named_run["run_dir"]), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["runs"]) == 2


def test_an_eval_json_without_class_names_renders_with_numbers(named_run):
    report = json.loads((named_run["run_dir"] / "eval.json").read_text())
    del report["class_names"]
    per_class = report_part(evaluation.render_report(report), "test accuracy per class")
    assert per_class.startswith("test accuracy per class (linear@all)  0 ") and "  9 " in per_class


def test_names_with_tabs_stay_one_cell_of_the_projector_metadata(tmp_path):
    from latentprobe.evaluation import projector

    z = np.zeros((3, 2), np.float32)
    projector.write_projector(tmp_path, z, np.array([0, 1, 1]), None, ["a\tb", "c\nd"])
    assert (tmp_path / "metadata.tsv").read_text() == "class\tlabel\na b\t0\nc d\t1\nc d\t1\n"
