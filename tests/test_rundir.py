"""Tests for latentprobe.rundir: its names, atomic JSON and npz writes, run dirs, reading runs back."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from latentprobe import rundir
from latentprobe.errors import RunDirError, UserError
from latentprobe.rundir import (
    check_complete,
    create_run_dir,
    find_runs,
    read_json,
    read_summary,
    write_json,
    write_npz,
)

REPO = Path(__file__).resolve().parents[1]


def make_run(
    path: Path,
    status: str = "completed",
    files: tuple[str, ...] = rundir.REQUIRED_FILES,
) -> Path:
    """Make a run directory holding ``files`` (summary.json with ``status``, the others empty)."""
    path.mkdir(parents=True)
    for name in files:
        if name == rundir.SUMMARY:
            write_json(path / name, {"schema_version": 1, "status": status, "metrics": {"test": {}}})
        else:
            (path / name).write_bytes(b"")
    return path


# ---- write_json / read_json ----


def test_write_json_round_trips_and_converts_numpy(tmp_path: Path) -> None:
    obj = {
        "b": np.float32(0.5),
        "a": np.int64(3),
        "arr": np.arange(3),
        "nested": {"m": np.array([[1.5, 2.5]])},
        "flag": np.bool_(True),
        "where": tmp_path,
    }
    write_json(tmp_path / "x.json", obj)
    back = json.loads((tmp_path / "x.json").read_text())
    assert back == {
        "b": 0.5,
        "a": 3,
        "arr": [0, 1, 2],
        "nested": {"m": [[1.5, 2.5]]},
        "flag": True,
        "where": str(tmp_path),
    }
    assert type(back["a"]) is int
    assert list(back) == [
        "b",
        "a",
        "arr",
        "nested",
        "flag",
        "where",
    ]  # insertion order kept
    assert (tmp_path / "x.json").read_text().startswith('{\n  "b": 0.5')  # indent=2


def test_write_json_replaces_existing_file_and_leaves_no_temp_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "summary.json"
    target.write_text('{"old": true, "padding": "' + "x" * 1000 + '"}')
    write_json(target, {"new": 1})
    assert read_json(target) == {"new": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_write_json_new_file_is_readable_by_others(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX permissions")
    write_json(tmp_path / "a.json", {})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_write_json_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json(target, {"keep": 1})
    with pytest.raises(TypeError, match="object"):
        write_json(target, {"bad": object()})
    assert read_json(target) == {"keep": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_write_json_failure_during_replace_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "eval.json"
    write_json(target, {"keep": 1})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_json(target, {"new": 2})
    monkeypatch.undo()
    assert read_json(target) == {"keep": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_write_npz_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "budgets.npz"
    write_npz(target, sha256=np.array("ab"), budget_10=np.arange(5))
    write_npz(target, path=np.array([1.5]))  # ``path`` is an array name like any other
    with np.load(target) as npz:
        assert npz.files == ["path"] and npz["path"].tolist() == [1.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budgets.npz"]
    if sys.platform != "win32":
        assert target.stat().st_mode & 0o777 == 0o644


def test_write_npz_failure_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "budgets.npz"
    write_npz(target, keep=np.arange(3))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_npz(target, new=np.arange(4))
    monkeypatch.undo()
    with np.load(target) as npz:
        assert npz.files == ["keep"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budgets.npz"]


def test_every_npz_is_written_through_rundir() -> None:
    # np.savez straight to a path leaves half a file when the process is killed mid-write.
    # train.py is switched to rundir.write_npz (labeled_subset.npz) when it is rewritten.
    pending: set[str] = set()
    # Caches outside any run directory (decoded image folders, eval's data-only controls) write to a
    # temporary file and rename it over the entry.
    atomic_elsewhere = {"image_cache.py", "controls.py"}
    offenders = [
        f"{path.relative_to(REPO)}:{i}"
        for path in (REPO / "latentprobe").rglob("*.py")
        if path.name not in {"rundir.py", *pending, *atomic_elsewhere}
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if "np.savez" in line or "np.save(" in line
    ]
    assert offenders == []


def test_run_dir_names_match_tensorboards_own() -> None:
    from tensorboard.plugins.projector import metadata

    assert rundir.PROJECTOR_CONFIG == metadata.PROJECTOR_FILENAME
    assert rundir.checkpoint_weights(3) == "epoch-0003.npz"
    assert Path(rundir.checkpoint_weights(12)).match(rundir.CHECKPOINT_WEIGHTS_GLOB)


def test_run_dir_names_are_defined_only_in_rundir() -> None:
    # Each name of the layout is spelled once, in rundir.py; other modules use the constants.
    names = [
        rundir.SUMMARY,
        rundir.EVAL,
        rundir.SWEEP,
        rundir.CONFIG,
        rundir.BUDGETS,
        rundir.CHECKPOINT_STATE,
    ]
    names += [rundir.ENCODER, rundir.DECODER, rundir.PROBE, rundir.PROJECTOR_TENSORS, rundir.PROJECTOR_SPRITE]
    names += [rundir.TB, rundir.CHECKPOINTS, rundir.LABELED_SUBSET, rundir.PROJECTOR_METADATA]
    # Switched to these names at merge: train.py and probes.py (rewritten), cli.py's train command.
    pending: set[str] = set()
    offenders = [
        f"{path.relative_to(REPO)}:{i}: {name}"
        for path in (REPO / "latentprobe").rglob("*.py")
        if path.name not in {"rundir.py", *pending}
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("#")
        for name in names
        if f'"{name}"' in line or f"'{name}'" in line
    ]
    assert offenders == []


def test_read_json_missing_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(RunDirError, match=r"nope\.json: file not found") as info:
        read_json(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, UserError)


def test_read_json_invalid_names_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(RunDirError) as info:
        read_json(path)
    assert str(path) in str(info.value)
    assert "invalid JSON (line 3" in str(info.value)


def test_read_json_rejects_non_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(RunDirError, match="expected a JSON object, got list"):
        read_json(path)


# ---- create_run_dir ----


def test_create_run_dir_never_overwrites(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path / "runs", "quick")
    (first / "marker").write_text("first")
    second = create_run_dir(tmp_path / "runs", "quick")
    third = create_run_dir(tmp_path / "runs", "quick")
    assert [first.name, second.name, third.name] == ["quick", "quick-1", "quick-2"]
    assert all(p.is_dir() for p in (first, second, third))
    assert (first / "marker").read_text() == "first"
    assert list(second.iterdir()) == [] and list(third.iterdir()) == []


def test_create_run_dir_skips_existing_file_and_gap(tmp_path: Path) -> None:
    (tmp_path / "quick").write_text("a file, not a dir")
    (tmp_path / "quick-1").mkdir()
    assert create_run_dir(tmp_path, "quick") == tmp_path / "quick-2"
    assert (tmp_path / "quick").read_text() == "a file, not a dir"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_create_run_dir_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(RunDirError, match="invalid run name"):
        create_run_dir(tmp_path, name)


# ---- read_summary / check_complete ----


def test_read_summary_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError) as info:
        read_summary(tmp_path / "empty")
    assert str(info.value) == f"{tmp_path / 'empty'}: not a latentprobe run (no summary.json)"


def test_read_summary_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="ghost: no such directory"):
        read_summary(tmp_path / "ghost")


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ({"status": "completed"}, "no schema_version"),
        ({"schema_version": 3, "status": "completed"}, "unsupported schema_version 3"),
        ({"schema_version": True}, "unsupported schema_version True"),
    ],
)
def test_read_summary_checks_schema_version(tmp_path: Path, summary: dict, message: str) -> None:
    write_json(tmp_path / "summary.json", summary)
    with pytest.raises(RunDirError, match=message) as info:
        read_summary(tmp_path)
    assert str(tmp_path / "summary.json") in str(info.value)


def test_read_summary_returns_content(tmp_path: Path) -> None:
    write_json(tmp_path / "summary.json", {"schema_version": 1, "status": "failed"})
    assert read_summary(tmp_path) == {"schema_version": 1, "status": "failed"}


def test_check_complete_accepts_complete_run(tmp_path: Path) -> None:
    check_complete(make_run(tmp_path / "run"))


@pytest.mark.parametrize("missing", rundir.REQUIRED_FILES)
def test_check_complete_names_first_missing_file(tmp_path: Path, missing: str) -> None:
    files = tuple(f for f in rundir.REQUIRED_FILES if f != missing)
    run = make_run(tmp_path / "run", files=files)
    with pytest.raises(RunDirError) as info:
        check_complete(run)
    assert str(info.value) == f"{run}: incomplete run: missing {missing}"


def test_check_complete_reports_first_of_several_missing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", files=("config.yaml", "summary.json"))
    with pytest.raises(RunDirError, match=r"missing encoder\.keras$"):
        check_complete(run)


def test_check_complete_rejects_failed_run(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", status="failed")
    with pytest.raises(RunDirError, match=r"run did not complete \(status: failed\)"):
        check_complete(run)


# ---- find_runs over sweeps ----


def test_find_runs_keeps_a_sweeps_order_and_resolves_relative(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    absolute = tmp_path / "elsewhere" / "abs-run"
    write_json(
        sweep / "sweep.json",
        {"schema_version": 1, "name": "s", "runs": ["b", str(absolute), "a"]},
    )
    plain_before, plain_after = make_run(tmp_path / "first"), make_run(tmp_path / "last")
    got = find_runs([plain_before, sweep, plain_after])
    assert got == [plain_before, sweep / "b", absolute, sweep / "a", plain_after]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"schema_version": 1, "name": "s"}, "'runs' must be a list"),
        ({"schema_version": 1, "runs": [1]}, "'runs' must be a list"),
        ({"runs": []}, "unsupported schema_version None"),
    ],
)
def test_find_runs_bad_sweep(tmp_path: Path, sweep: dict, message: str) -> None:
    write_json(tmp_path / "sweep.json", sweep)
    with pytest.raises(RunDirError, match=message) as info:
        find_runs([tmp_path])
    assert str(tmp_path / "sweep.json") in str(info.value)
