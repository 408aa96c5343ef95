"""The CLI end to end for seeds: train --seeds N -> eval -> compare with groups, and their errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from latentprobe import rundir
from latentprobe.cli import app

from .conftest import tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeds")
    path = write_config(tmp, tiny_config(tmp, seed=3, train={"epochs": 1, "jit_compile": False}))
    result = invoke("train", path, "--seeds", "2")
    assert result.exit_code == 0, result.output
    return tmp, path


def test_train_seeds_counts_up_from_the_config_seed(seeded):
    tmp, _ = seeded
    parent = tmp / "runs" / "tiny"
    assert sorted(p.name for p in parent.iterdir() if p.is_dir()) == ["ae-z4-s3", "ae-z4-s4"]
    assert json.loads((parent / "study.json").read_text())["grid"]["seed"] == [3, 4]
    assert rundir.read_json(parent / "ae-z4-s4" / "summary.json")["config"]["seed"] == 4


def test_eval_options_then_compare_shows_seed_groups(seeded):
    tmp, _ = seeded
    parent = tmp / "runs" / "tiny"
    for run in ("ae-z4-s3", "ae-z4-s4"):
        result = invoke("eval", parent / run, "--budgets", "5,all", "--probes", "linear,knn", "--no-controls")
        assert result.exit_code == 0, result.output
        assert "linear@5" in result.stdout and "knn@all" in result.stdout
    report = rundir.read_json(parent / "ae-z4-s3" / "eval.json")
    assert {r["budget"] for r in report["probes"]} == {"5", "all"}
    assert {r["features"] for r in report["probes"]} == {"encoder"}
    result = invoke("compare", parent, "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "groups of runs differing only by seed" in result.stdout
    assert "| eval/linear@all |" in result.stdout and "(n=2)" in result.stdout


def test_compare_plot_needs_a_latent_sweep(seeded):
    tmp, _ = seeded
    result = invoke("compare", tmp / "runs" / "tiny", "--plot", tmp / "capacity.png")
    assert result.exit_code == 2
    assert "--plot: a capacity plot needs runs that differ only in model.latent" in result.stderr
    assert not (tmp / "capacity.png").exists()


def test_seeds_with_a_list_of_seeds_in_the_config_is_an_error(tmp_path):
    path = write_config(tmp_path, tiny_config(tmp_path, seed=[0, 1]))
    result = invoke("train", path, "--seeds", "3")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: --seeds: seed: expected a single seed in the config to count up from, got [0, 1]"
    )
    assert not (tmp_path / "runs").exists()


def test_eval_with_bad_budgets_is_one_line(tmp_path):
    result = invoke("eval", tmp_path, "--budgets", "10,ten")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: --budgets: 'ten' is not a positive number of labels per class or 'all'"
    )
