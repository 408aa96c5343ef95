"""The command line end to end with Typer's CliRunner: train -> eval -> compare, and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from latentprobe import rundir
from latentprobe.cli import app

from .conftest import tiny_config, write_config

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    path = write_config(tmp, tiny_config(tmp))
    first = invoke("train", path)
    second = invoke("train", path, "--set", "model.latent=6", "--set", "probe.head=mlp")
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    runs = sorted(p for p in (tmp / "runs" / "tiny").iterdir() if p.is_dir())
    return tmp, runs


def test_train_prints_the_run_and_its_test_accuracy(two_runs):
    _, runs = two_runs
    assert [r.name for r in runs] == ["ae-z4-s0", "ae-z6-s0"]
    config = yaml.safe_load((runs[1] / "config.yaml").read_text())
    assert config["model"]["latent"] == 6 and config["probe"]["head"] == "mlp"


def test_eval_reproduces_the_summary_and_leaves_it_untouched(two_runs):
    _, runs = two_runs
    summary_bytes = (runs[0] / "summary.json").read_bytes()
    result = invoke("eval", runs[0])
    assert result.exit_code == 0, result.output
    report = rundir.read_json(runs[0] / "eval.json")
    summary = rundir.read_json(runs[0] / "summary.json")
    for name in ("probe_accuracy", "reconstruction_loss", "probe_loss", "chance_accuracy"):
        assert report["metrics"]["test"][name] == pytest.approx(summary["metrics"]["test"][name], abs=1e-6)
    assert (runs[0] / "summary.json").read_bytes() == summary_bytes


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "csv"])
def test_compare_shows_both_runs_and_the_difference(two_runs, fmt):
    _, runs = two_runs
    result = invoke("compare", *runs, "--format", fmt)
    assert result.exit_code == 0, result.output
    a = rundir.read_json(runs[0] / "summary.json")["metrics"]["test"]["probe_accuracy"]
    b = rundir.read_json(runs[1] / "summary.json")["metrics"]["test"]["probe_accuracy"]
    if fmt == "json":
        table = json.loads(result.stdout)
        assert [r["label"] for r in table["runs"]] == ["ae-z4-s0", "ae-z6-s0"]
        diffs = json.dumps(table["diff_to_first"])
        assert repr(b - a)[:8] in diffs
    else:
        assert "ae-z4-s0" in result.stdout and "ae-z6-s0" in result.stdout
        assert "test/probe_accuracy" in result.stdout
        assert f"{b - a:+.4f}"[:6] in result.stdout or fmt == "csv"


def test_compare_names_a_missing_run_and_still_shows_the_rest(two_runs, tmp_path):
    _, runs = two_runs
    result = invoke("compare", runs[0], tmp_path / "nothing-here")
    assert result.exit_code == 0
    assert "ae-z4-s0" in result.stdout
    assert "nothing-here" in result.stderr


def test_validate_accepts_a_good_config(tiny):
    path, _ = tiny
    result = invoke("validate", path)
    assert result.exit_code == 0
    assert "ok (1 run(s))" in result.stdout


def test_validate_counts_the_runs_train_seeds_would_make(tiny):
    path, _ = tiny
    result = invoke("validate", path, "--seeds", "3")
    assert result.exit_code == 0
    assert "ok (3 run(s), varying seed)" in result.stdout
    bad = invoke("validate", path, "--seeds", "0")
    assert bad.exit_code == 2 and "--seeds" in bad.stderr


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train": {"epochz": 3}}, "train.epochz: unknown key; did you mean 'train.epochs'?"),
        ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer, got 'ten'"),
        ({"model": {"latent": []}}, "model.latent: the list of values is empty"),
        ({"model": {"kind": "nope"}}, "model.kind: unknown value 'nope'"),
    ],
)
def test_config_errors_are_one_line_exit_2_no_traceback(tmp_path, change, message):
    raw = tiny_config(tmp_path, **change)
    path = write_config(tmp_path, raw)
    for command in ("train", "validate"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {path}:") and message in lines[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing was started


@pytest.mark.parametrize("command", ["train", "validate"])
def test_bad_override_names_the_set_option(tiny, command):
    path, _ = tiny
    result = invoke(command, path, "--set", "train.epochs=-1")
    assert result.exit_code == 2
    assert result.stderr == "error: --set train.epochs=-1: train.epochs: expected a value > 0, got -1\n"


def test_a_config_that_is_not_utf8_text_is_one_line_exit_2(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes([0x00, 0x01, 0x02, 0xFF, 0xFE]))
    for command in ("validate", "train"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {path}: not a UTF-8 text file (byte 0xff at offset 3)\n"


def test_version_is_the_packaged_one():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE).group(1)
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"latentprobe {version}\n"


def test_data_error_is_one_line_exit_2(tmp_path):
    raw = tiny_config(tmp_path, data={"name": "npz", "path": str(tmp_path / "missing.npz")})
    result = invoke("train", write_config(tmp_path, raw))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "missing.npz" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_of_a_directory_that_is_not_a_run(tmp_path):
    result = invoke("eval", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path}: incomplete run: missing config.yaml" or (
        "not a latentprobe run" in result.stderr or "missing" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_of_an_incomplete_run_names_the_missing_file(two_runs, tmp_path):
    _, runs = two_runs
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.yaml", "summary.json", "encoder.keras"):
        (partial / name).write_bytes((runs[0] / name).read_bytes())
    result = invoke("eval", partial)
    assert result.exit_code == 2
    assert "missing decoder.keras" in result.stderr


def test_compare_rejects_an_unknown_format(two_runs):
    _, runs = two_runs
    result = invoke("compare", runs[0], "--format", "xml")
    assert result.exit_code == 2
    assert "--format: unknown format 'xml'" in result.stderr


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "eval", "compare", "validate"):
        assert command in result.stdout
    assert Path(__file__)  # keeps the import list honest for ruff


def test_a_real_command_line_shows_no_tensorflow_start_up_lines(tmp_path):
    """TensorFlow logs its start-up (absl, oneDNN, CUDA, CPU features) on stderr, twice per import; the
    commands hide it: their stderr holds only latentprobe's own lines."""
    import subprocess
    import sys

    raw = tiny_config(tmp_path, data={"limit": 300}, train={"epochs": 1})
    path = write_config(tmp_path, raw)
    command = [sys.executable, "-c", "from latentprobe.cli import app; app()"]
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    trained = subprocess.run([*command, "train", str(path)], capture_output=True, text=True, env=env)
    assert trained.returncode == 0, trained.stderr
    evaluated = subprocess.run(
        [*command, "eval", str(tmp_path / "runs"), "--probes", "linear", "--no-controls"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    # The driver of a pretrained encoder's study loads it to check it before any worker trains.
    (encoder,) = (tmp_path / "runs").rglob("encoder.keras")
    pretrained = subprocess.run(
        [*command, "train", str(path), "--set", "name=mine", "--set", "model.kind=pretrained"]
        + ["--set", f"model.encoder={encoder}", "--set", "model.output=z", "--set", "probe.strategy=frozen"]
        + ["--set", "probe.epochs=1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert pretrained.returncode == 0, pretrained.stderr
    for stderr in (trained.stderr, evaluated.stderr, pretrained.stderr):
        chatter = [
            line
            for line in stderr.splitlines()
            if re.match(r"^(WARNING: All log messages|[IWE]\d{4} |To enable the following)", line)
            or "oneDNN" in line
            or "cuda" in line.lower()
        ]
        assert chatter == [], chatter


def test_eval_of_a_search_leaves_its_pruned_trials_out(two_runs, tmp_path):
    """A pruned trial saved no models: eval of the search evaluates the others and says how many it left."""
    import json
    import shutil

    _, runs = two_runs
    search = tmp_path / "search"
    kept, pruned = search / "trial-0", search / "trial-1"
    shutil.copytree(runs[0], kept)
    pruned.mkdir(parents=True)
    shutil.copy(runs[1] / "config.yaml", pruned / "config.yaml")
    summary = json.loads((runs[1] / "summary.json").read_text())
    (pruned / "summary.json").write_text(json.dumps({**summary, "status": "pruned", "epoch": 1}))

    result = invoke("eval", search, "--probes", "linear", "--no-controls", "--budgets", "all")

    assert result.exit_code == 0, result.output
    assert "note: 1 pruned trial(s) left out" in result.stderr
    assert (kept / "eval.json").is_file() and not (pruned / "eval.json").exists()
    alone = invoke("eval", pruned)
    assert alone.exit_code == 2 and "a pruned trial of a search" in alone.stderr
