"""eval's bad input: a run's files are checked before any work; a directory search skips what is not
latentprobe's (no TensorFlow work is needed to say either)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from latentprobe import config, rundir
from latentprobe.cli import app

from .conftest import tiny_config

runner = CliRunner()


def fake_run(path, summary, config_text=None):
    """A directory with every file a run has; the models are empty files (never reached)."""
    path.mkdir(parents=True)
    text = config_text if config_text is not None else config.dump(config.from_dict(tiny_config(path)))
    (path / rundir.CONFIG).write_text(text)
    (path / rundir.SUMMARY).write_text(json.dumps(summary))
    for name in (rundir.ENCODER, rundir.DECODER, rundir.PROBE):
        (path / name).write_bytes(b"")
    return path


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_summary_without_metrics_fails_in_one_line(tmp_path):
    run = fake_run(tmp_path / "run", {"schema_version": 2, "status": "completed", "config": {}})
    line = one_error_line(runner.invoke(app, ["eval", str(run)]))
    assert f"{run / rundir.SUMMARY}: malformed: no 'metrics.test' object" in line
    assert not (run / rundir.EVAL).exists()


def test_a_malformed_config_fails_in_one_line(tmp_path):
    summary = {"schema_version": 2, "status": "completed", "config": {}, "metrics": {"test": {}}}
    run = fake_run(tmp_path / "run", summary, "model:\n  kind: nope\n")
    line = one_error_line(runner.invoke(app, ["eval", str(run)]))
    assert f"{run / rundir.CONFIG}:2: model.kind: unknown value 'nope'" in line


def test_a_directory_search_skips_what_is_not_latentprobes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / rundir.STUDY).write_text("[]")  # JSON, but no study of ours
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "b" / rundir.SWEEP).write_text("{")
    run = fake_run(tmp_path / "b" / "deeper" / "run", {"schema_version": 2, "status": "completed"})
    skipped: list[str] = []
    assert rundir.find_runs([tmp_path], on_skip=skipped.append) == [run]
    assert skipped == [
        f"skipped: {tmp_path / 'a' / rundir.STUDY}: expected a JSON object, got list",
        f"skipped: {tmp_path / 'b' / rundir.SWEEP}: invalid JSON (line 1, column 2: "
        "Expecting property name enclosed in double quotes)",
    ]


def test_eval_of_a_model_file_says_how_to_probe_it(tmp_path):
    path = tmp_path / "my_encoder.keras"
    path.write_bytes(b"PK")
    line = one_error_line(runner.invoke(app, ["eval", str(path)]))
    assert "not a directory (a saved model: to probe an encoder, name it under model.kind: pretrained" in line


def test_a_directory_search_skips_folders_of_other_tools(tmp_path):
    other = tmp_path / "other-tool"
    other.mkdir()
    (other / rundir.CONFIG).write_text("learning_rate: 0.1\nlayers: 3\n")  # not ours, and no summary
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / rundir.CONFIG).write_text(config.dump(config.from_dict(tiny_config(tmp_path))))
    foreign = tmp_path / "foreign-summary"
    foreign.mkdir()
    (foreign / rundir.SUMMARY).write_text('{"accuracy": 0.9}')
    skipped: list[str] = []
    assert rundir.find_runs([tmp_path], on_skip=skipped.append) == [killed]  # reported by eval as killed
    assert len(skipped) == 2
    assert skipped[0].startswith(f"skipped: {foreign}: not a latentprobe run (no schema_version")
    assert skipped[1].startswith(f"skipped: {other}: not a latentprobe run (config.yaml: ")
    assert "learning_rate: unknown key" in skipped[1]
    assert rundir.find_runs([tmp_path]) == [foreign, killed, other]  # compare's search, as before
