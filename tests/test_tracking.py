"""output.mlflow: a study's runs, read back through MLflow's own client from a SQLite store; eval's
headline metrics join them; a store that is down costs a warning, never the run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from latentprobe import config, rundir, tracking
from latentprobe.cli import app

from .conftest import tiny_config, write_config


def test_a_study_is_an_experiment_of_its_runs(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    raw = tiny_config(tmp_path, name="tracked", seed=[0, 1], data={"limit": 300}, output={"mlflow": uri})
    raw["model"]["latent"] = 2
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(write_config(tmp_path, raw))])
    assert result.exit_code == 0, result.output
    study_dir = tmp_path / "runs" / "tracked"
    evaluated = runner.invoke(
        app, ["eval", str(study_dir / "ae-z2-s0"), "--budgets", "all", "--probes", "linear", "--no-controls"]
    )
    assert evaluated.exit_code == 0, evaluated.output

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["ae-z2-s0", "ae-z2-s1"]
    for name, run in runs.items():
        summary = json.loads((study_dir / name / rundir.SUMMARY).read_text())
        assert run.info.status == "FINISHED"
        assert run.data.tags[tracking.RUN_DIR_TAG] == str((study_dir / name).resolve())
        assert run.data.params["model.kind"] == "ae"
        assert run.data.params["seed"] == str(summary["config"]["seed"])
        assert run.data.params["output.mlflow"] == uri
        test = summary["metrics"]["test"]["probe_accuracy"]
        assert run.data.metrics["test/probe_accuracy"] == pytest.approx(test)
        steps = client.get_metric_history(run.info.run_id, "val/probe_accuracy")
        assert [m.step for m in steps] == [1, 2]
        assert [m.value for m in steps] == pytest.approx(summary["history"]["val/probe_accuracy"])
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert rundir.SUMMARY in artifacts
    report = json.loads((study_dir / "ae-z2-s0" / rundir.EVAL).read_text())
    evaluated_run = runs["ae-z2-s0"].info.run_id
    metrics = client.get_run(evaluated_run).data.metrics
    from latentprobe.evaluation.report import headline_metrics

    assert metrics["eval/linear:all"] == pytest.approx(headline_metrics(report)["linear@all"])
    assert rundir.EVAL in {a.path for a in client.list_artifacts(evaluated_run)}
    assert "eval/linear:all" not in client.get_run(runs["ae-z2-s1"].info.run_id).data.metrics


def test_a_tracking_server_that_is_down_costs_a_warning(tmp_path, capfd):
    pytest.importorskip("mlflow")
    from latentprobe import train

    raw = tiny_config(tmp_path, data={"limit": 300}, output={"mlflow": "http://127.0.0.1:9"})
    raw["train"]["epochs"] = 1
    cfg = config.from_dict(raw)
    (tmp_path / "run").mkdir()
    summary = train.run_one(cfg, tmp_path / "run")
    assert summary["status"] == "completed"
    err = capfd.readouterr().err
    assert "warning: mlflow: http://127.0.0.1:9: cannot log" in err
