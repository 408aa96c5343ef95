"""Executors: choosing one, threads and GPUs per worker, and the Ray executor on a local Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latentprobe import executors, rundir, study
from latentprobe import grid as grid_mod
from latentprobe.errors import UserError
from latentprobe.models import MODELS
from tests.conftest import REPO, tiny_config


def test_unknown_executor_and_bad_counts_are_one_line_errors():
    with pytest.raises(
        UserError, match=r"^--executor: unknown executor 'dask' \(expected one of: local, ray\)$"
    ):
        executors.create("dask", 1, 1)
    with pytest.raises(UserError, match=r"^--jobs: expected a number of workers >= 1, got 0$"):
        executors.create("local", 0, 1)
    with pytest.raises(UserError, match=r"^--threads: expected a number of threads >= 1, got 0$"):
        executors.create("local", 1, 0)
    with pytest.raises(UserError, match=r"^--address: only applies to --executor ray$"):
        executors.create("local", 1, 1, address="auto")


def test_the_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UserError) as info:
        executors.create("ray", None, None)
    assert str(info.value) == "the ray executor needs Ray: pip install 'latentprobe[ray]'"


def test_threads_default_to_the_cores_shared_out(monkeypatch):
    monkeypatch.setattr(executors, "cpu_count", lambda: 16)
    assert [executors.default_threads(n) for n in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]


@pytest.mark.parametrize(("declared", "expected"), [("0,2", ["0", "2"]), ("", []), ("-1", []), ("1", ["1"])])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, declared, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", declared)
    assert executors.visible_gpus() == expected


def test_cpu_only_runs_want_no_gpu():
    cpu = executors.Task("a", {"train": {"device": "cpu"}}, "/tmp/a")
    auto = executors.Task("b", {"train": {"device": "auto"}}, "/tmp/b")
    assert not executors.wants_gpu([cpu])
    assert executors.wants_gpu([cpu, auto])


def test_configure_sets_tensorflow_threads_and_hides_gpus_before_import():
    """In a fresh process (as a worker is): TensorFlow starts with the threads and GPUs it was given."""
    code = (
        "import json, os; from latentprobe import runtime; runtime.configure(3, '');"
        "import tensorflow as tf; t = tf.config.threading;"
        "print(json.dumps([t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads(),"
        " os.environ['CUDA_VISIBLE_DEVICES'], os.environ['OMP_NUM_THREADS'],"
        " len(tf.config.list_physical_devices('GPU'))]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [3, 3, "", "3", 0]


@pytest.mark.slow
def test_ray_runs_a_two_run_study_to_completion(tmp_path):
    ray = pytest.importorskip("ray")
    from latentprobe.executors.ray import RayExecutor

    raw = tiny_config(tmp_path, seed=[0, 1], data={"limit": 500})
    raw["model"]["latent"] = 2
    grid = grid_mod.expand_grid(raw, {}, "ray.yaml", MODELS)
    study_dir = Path(raw["output"]["dir"]) / raw["name"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayExecutor(threads=1) as executor:
            assert (executor.threads, executor.slots) == (1, 2)
            result = study.run_study(grid, study_dir, executor)
    finally:
        ray.shutdown()
    assert [(r.name, r.status) for r in result.runs] == [("ae-z2-s0", "completed"), ("ae-z2-s1", "completed")]
    for run in result.runs:
        summary = rundir.read_json(run.run_dir / rundir.SUMMARY)
        assert summary["status"] == "completed"
        assert summary["config"]["seed"] == run.config.seed
    recorded = json.loads((study_dir / rundir.STUDY).read_text())
    assert [r["status"] for r in recorded["runs"]] == ["completed", "completed"]
