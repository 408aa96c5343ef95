"""``eval DIR --jobs N``: every run found under a directory is evaluated, in spawned worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from latentprobe import config, rundir, train
from latentprobe.evaluation.batch import threads_per_worker

from .conftest import REPO, tiny_config, write_config


def test_eval_jobs_2_evaluates_every_run_and_reports_the_one_that_fails(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, seed=[0, 1], model={"latent": 2}, train={"epochs": 1, "jit_compile": False})
    cfg = config.load(write_config(tmp_path, raw))
    runs = [Path(s["run_dir"]) for s in train.run(cfg)]
    broken = tmp_path / "runs" / "broken"  # killed before it finished: config.yaml only
    broken.mkdir()
    (broken / "config.yaml").write_bytes((runs[0] / "config.yaml").read_bytes())

    command = [sys.executable, "-m", "latentprobe.cli", "eval", tmp_path / "runs", "--jobs", "2"]
    command += ["--probes", "linear", "--budgets", "all", "--no-controls"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )

    assert result.returncode == 1, result.stdout + result.stderr
    lines = sorted(result.stdout.splitlines())
    assert [line.split()[0] for line in lines] == [str(r) for r in runs]
    for run, line in zip(runs, lines, strict=True):
        report = rundir.read_json(run / rundir.EVAL)
        summary = rundir.read_summary(run)
        # the eval reproduced the run's own test metrics, and its line shows the main probe's accuracy
        assert (
            abs(report["metrics"]["test"]["probe_accuracy"] - summary["metrics"]["test"]["probe_accuracy"])
            < 1e-6
        )
        assert f"eval/linear@all {report['metrics']['eval']['linear@all']:.4f}" in line
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"error: {broken}: incomplete run: missing summary.json",
        errors[-1],
    ]
    assert errors[-1].startswith("evaluated 2 of 3 runs in ") and errors[-1].endswith("; 1 failed")


def test_threads_are_shared_among_the_workers() -> None:
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores
    assert threads_per_worker(cores) == 1
    assert threads_per_worker(cores * 4) == 1
