"""Studies end to end: real worker processes training tiny digits runs, resumed, failing, interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentprobe import grid as grid_mod
from latentprobe import kinds, rundir, study
from latentprobe.errors import UserError
from latentprobe.executors import RunResult, RunStarted
from latentprobe.executors.local import LocalExecutor
from latentprobe.models import MODELS
from tests.conftest import REPO, tiny_config, write_config

KINDS = ", ".join(kinds.names())  # the built-in kinds and any installed plug-in's


def small(tmp_path: Path, **sections) -> dict:
    """A tiny config on 500 digits: a run trains in a second or two."""
    raw = tiny_config(tmp_path, data={"limit": 500}, **sections)
    raw["model"]["latent"] = 2
    return raw


def expand(raw: dict) -> grid_mod.Grid:
    return grid_mod.expand_grid(raw, {}, "study.yaml", MODELS)


def study_dir(raw: dict) -> Path:
    return Path(raw["output"]["dir"]) / raw["name"]


def read_test_metrics(run_dir: Path) -> dict:
    return rundir.read_json(run_dir / rundir.SUMMARY)["metrics"]["test"]


@pytest.fixture(scope="module")
def one_worker():
    """One long-lived worker with one TensorFlow thread, shared by the tests (TF is imported once)."""
    with LocalExecutor(jobs=1, threads=1) as executor:
        yield executor


def test_two_workers_give_the_metrics_of_one(tmp_path, one_worker):
    raw = small(tmp_path / "a", seed=[0, 1])
    one = study.run_study(expand(raw), study_dir(raw), one_worker)
    raw2 = small(tmp_path / "b", seed=[0, 1])
    with LocalExecutor(jobs=2, threads=1) as two_workers:
        events = []
        two = study.run_study(expand(raw2), study_dir(raw2), two_workers, lambda c, e: events.append(e))
    assert [r.status for r in one.runs] == [r.status for r in two.runs] == ["completed"] * 2
    for a, b in zip(one.runs, two.runs, strict=True):
        assert read_test_metrics(a.run_dir) == read_test_metrics(b.run_dir)
    # Both workers trained: two different processes reported a start.
    assert len({e.worker for e in events if isinstance(e, RunStarted)}) == 2
    recorded = json.loads((study_dir(raw2) / rundir.STUDY).read_text())
    assert recorded["schema_version"] == 1
    assert recorded["grid"] == {"seed": [0, 1]}
    assert [(r["name"], r["status"], r["values"]) for r in recorded["runs"]] == [
        ("ae-z2-s0", "completed", {"seed": 0}),
        ("ae-z2-s1", "completed", {"seed": 1}),
    ]


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, one_worker):
    raw = small(tmp_path, grid={"train.learning_rate": [1e30, 0.003]})
    result = study.run_study(expand(raw), study_dir(raw), one_worker)
    assert [(r.name, r.status) for r in result.runs] == [
        ("ae-z2-s0-lr1e+30", "failed"),
        ("ae-z2-s0-lr0.003", "completed"),
    ]
    assert [r.name for r in result.failed] == ["ae-z2-s0-lr1e+30"]
    assert "non-finite" in result.failed[0].reason.lower() or "nan" in result.failed[0].reason.lower()
    recorded = json.loads((study_dir(raw) / rundir.STUDY).read_text())
    assert recorded["runs"][0]["status"] == "failed"
    assert recorded["runs"][0]["reason"] == result.failed[0].reason
    assert rundir.read_json(result.runs[0].run_dir / rundir.SUMMARY)["status"] == "failed"


def test_train_study_prints_one_line_per_failed_run_and_exits_1(tmp_path):
    raw = small(tmp_path, grid={"train.learning_rate": [1e30]})
    path = write_config(tmp_path, raw)
    lines = []
    code = study.train_study(path, jobs=1, threads=1, out=lambda text, err=False: lines.append((err, text)))
    assert code == 1
    errors = [text for err, text in lines if err and text.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {study_dir(raw) / 'ae-z2-s0'}: ")
    assert errors[0].endswith("(status: failed)")


def test_train_study_reports_bad_input_in_one_line_with_exit_2(tmp_path):
    raw = small(tmp_path, grid={"model.kind": ["ae", "vea"]})
    path = write_config(tmp_path, raw)
    lines = []
    code = study.train_study(path, out=lambda text, err=False: lines.append((err, text)))
    assert code == 2
    line = path.read_text().splitlines().index("  - vea") + 1
    assert lines == [
        (
            True,
            f"error: {path}:{line}: grid.model.kind[1]: unknown value 'vea'; did you mean 'vae'? "
            f"(expected one of: {KINDS}, or an import path package.module:ClassName)",
        )
    ]
    assert not study_dir(raw).exists()  # nothing was created


def test_a_run_of_another_config_in_the_study_dir_is_an_error(tmp_path, one_worker):
    raw = small(tmp_path)
    study.run_study(expand(raw), study_dir(raw), one_worker)
    raw["train"]["epochs"] = 3
    with pytest.raises(Exception, match=r"ae-z2-s0: holds a run of another config \(train.epochs differs\)"):
        study.run_study(expand(raw), study_dir(raw), one_worker)


def _driver(config: Path, jobs: int) -> subprocess.Popen:
    code = (
        "import sys; from latentprobe import study; "
        f"sys.exit(study.train_study({str(config)!r}, jobs={jobs}, threads=1))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals below reach the driver alone, as from another terminal
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize(
    "terminal",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["signal-to-the-driver", "ctrl-c-in-a-terminal"],
)
def test_interrupt_then_continue(tmp_path, one_worker, terminal):
    """SIGINT while the second run trains: exit 130, the run resumable; re-run continues it, leaving the
    completed run untouched. Sent to the driver alone, or to its process group as Ctrl-C in a terminal
    does (the workers get it too)."""
    raw = small(tmp_path, grid={"train.epochs": [2, 20]})
    path = write_config(tmp_path, raw)
    first, second = study_dir(raw) / "ae-z2-s0-ep2", study_dir(raw) / "ae-z2-s0-ep20"
    driver = _driver(path, jobs=1)
    try:
        _wait_for(lambda: (second / "checkpoints" / "state.json").exists(), 240, "a checkpoint of run 2")
        if terminal:
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr
    assert "interrupted:" in stderr
    recorded = {r["name"]: r for r in json.loads((study_dir(raw) / rundir.STUDY).read_text())["runs"]}
    assert recorded["ae-z2-s0-ep2"]["status"] == "completed"
    assert recorded["ae-z2-s0-ep20"]["status"] == "interrupted"
    assert rundir.read_json(second / rundir.SUMMARY)["status"] == "interrupted"
    before = (first / rundir.SUMMARY).stat().st_mtime_ns, (first / rundir.SUMMARY).read_text()

    result = study.run_study(expand(raw), study_dir(raw), one_worker)

    assert [r.status for r in result.runs] == ["completed", "completed"]
    assert result.runs[0].result is None  # not run again
    assert ((first / rundir.SUMMARY).stat().st_mtime_ns, (first / rundir.SUMMARY).read_text()) == before
    summary = rundir.read_json(second / rundir.SUMMARY)
    assert summary["status"] == "completed"
    assert len(summary["resumed_at_epochs"]) == 1 and summary["resumed_at_epochs"][0] >= 1


def test_resuming_an_interrupted_run_by_hand_updates_its_study(tmp_path):
    """``train --resume RUN_DIR`` of a study's interrupted run: study.json follows it to completed."""
    from typer.testing import CliRunner

    from latentprobe.cli import app

    raw = small(tmp_path, grid={"train.epochs": [20]})
    path = write_config(tmp_path, raw)
    run_dir = study_dir(raw) / "ae-z2-s0"
    driver = _driver(path, jobs=1)
    try:
        _wait_for(lambda: (run_dir / "checkpoints" / "state.json").exists(), 240, "a checkpoint")
        driver.send_signal(signal.SIGINT)
        driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    statuses = lambda: [r["status"] for r in json.loads((study_dir(raw) / rundir.STUDY).read_text())["runs"]]  # noqa: E731
    assert statuses() == ["interrupted"]

    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert rundir.read_json(run_dir / rundir.SUMMARY)["status"] == "completed"
    assert statuses() == ["completed"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_of_the_driver_stops_its_workers_and_the_study_continues(tmp_path):
    raw = small(tmp_path, seed=[0, 1, 2, 3], train={"epochs": 6})
    path = write_config(tmp_path, raw)
    runs = [study_dir(raw) / f"ae-z2-s{s}" for s in range(4)]

    def completed() -> list[Path]:
        return [
            r
            for r in runs
            if (r / rundir.SUMMARY).exists()
            and rundir.read_json(r / rundir.SUMMARY).get("status") == rundir.STATUS_COMPLETED
        ]

    driver = _driver(path, jobs=2)
    try:
        _wait_for(lambda: len(completed()) >= 1, 300, "a completed run")
        workers = _children(driver.pid)
        assert len(workers) >= 2
        driver.kill()
        driver.wait(timeout=10)
        _wait_for(lambda: not any(_alive(w) for w in workers), 15, "the workers to stop")
    finally:
        if driver.poll() is None:
            driver.kill()
    done_before = {r: ((r / rundir.SUMMARY).stat().st_mtime_ns) for r in completed()}
    assert len(done_before) < 4  # the kill came mid-study

    again = _driver(path, jobs=2)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert completed() == runs
    for run, mtime in done_before.items():
        assert (run / rundir.SUMMARY).stat().st_mtime_ns == mtime  # not retrained


def test_render_status():
    counts = study.Counts(total=12, done=7, running=2, failed=1, left=2, elapsed=41.2, eta=12.4)
    assert study.render_status(counts) == "7/12 done  2 running  1 failed  2 left  0:41 elapsed  ETA 0:12"
    start = study.Counts(total=3, done=0, running=0, failed=0, left=3, elapsed=0.0, eta=None)
    assert study.render_status(start) == "0/3 done  0 running  3 left  0:00 elapsed  ETA ?"
    end = study.Counts(total=3, done=3, running=0, failed=0, left=0, elapsed=3725, eta=0.0)
    assert study.render_status(end) == "3/3 done  0 running  0 left  1:02:05 elapsed"


def test_render_event():
    ok = RunResult("ae-z2-s0", "completed", seconds=3.21, test={"probe_accuracy": 0.91234})
    assert study.render_event(ok) == "ae-z2-s0: completed  test/probe_accuracy 0.9123  (3.2s)"
    bad = RunResult("ae-z2-s1", "failed", "non-finite loss in epoch 1")
    assert study.render_event(bad) == "ae-z2-s1: failed: non-finite loss in epoch 1"
    assert study.render_event(RunStarted("ae-z2-s2")) == "ae-z2-s2: started"


def test_two_drivers_cannot_run_one_study(tmp_path, one_worker):
    import fcntl

    raw = small(tmp_path)
    study_dir(raw).mkdir(parents=True)
    with open(study_dir(raw) / study.LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserError, match=r"tiny: another latentprobe is running this study$"):
            study.run_study(expand(raw), study_dir(raw), one_worker)
    assert not (study_dir(raw) / "ae-z2-s0").exists()


def test_a_worker_that_dies_fails_its_run_only(tmp_path, one_worker):
    """SIGKILL the worker as it takes the first run: that run is failed, a new worker trains the next."""
    raw = small(tmp_path, seed=[0, 1])
    killed = []

    def kill_first(counts, event):
        if isinstance(event, RunStarted) and not killed:
            pid = int(event.worker.split()[-1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = study.run_study(expand(raw), study_dir(raw), one_worker, kill_first)
    assert [(r.name, r.status) for r in result.runs] == [("ae-z2-s0", "failed"), ("ae-z2-s1", "completed")]
    assert result.runs[0].reason == "the worker process died (exit code -9)"
    # The killed run resumes like any other when the study runs again.
    again = study.run_study(expand(raw), study_dir(raw), one_worker)
    assert [r.status for r in again.runs] == ["completed", "completed"]
    assert again.runs[1].result is None
