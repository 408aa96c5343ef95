"""A study: the runs of a grid, handed to an executor, kept in ``output.dir/<name>/study.json``.

``study.json`` (written atomically whenever a run starts or ends) holds the grid and each run's name,
values, directory and status: ``pending``, ``running``, ``completed``, ``failed`` or ``interrupted``,
with the reason. Running the same study again continues it: completed runs are left untouched, runs
with a directory but no completed summary resume from their checkpoints, runs never started start. A
failing run is recorded and the others go on. The run directories, not study.json, are the truth:
study.json is rebuilt from them each time.

Imports no TensorFlow: the runs train in the executor's workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from latentprobe import config as config_mod
from latentprobe import executors, kinds, rundir, tracking
from latentprobe import grid as grid_mod
from latentprobe.errors import ConfigError, RunDirError, UserError, error_lines
from latentprobe.executors import RunResult, RunStarted, Task

LOCK = ".study.lock"
PENDING, RUNNING = "pending", "running"
COMPLETED, FAILED, INTERRUPTED = executors.COMPLETED, executors.FAILED, executors.INTERRUPTED


@dataclasses.dataclass
class StudyRun:
    """One run of the study and where it stands."""

    name: str
    values: dict[str, Any]
    config: config_mod.RunConfig
    run_dir: Path
    status: str = PENDING
    reason: str | None = None
    resume: bool = False  # its directory holds an unfinished run to continue
    result: RunResult | None = None  # how it ended in this session, if it ran


@dataclasses.dataclass
class StudyResult:
    """The study's runs after this session (in grid order)."""

    study_dir: Path
    runs: list[StudyRun]
    interrupted: bool = False

    @property
    def failed(self) -> list[StudyRun]:
        return [r for r in self.runs if r.status == FAILED]

    @property
    def completed(self) -> list[StudyRun]:
        return [r for r in self.runs if r.status == COMPLETED]


@dataclasses.dataclass(frozen=True)
class Counts:
    """What the live display shows."""

    total: int
    done: int
    running: int
    failed: int
    left: int
    elapsed: float
    eta: float | None  # seconds, once a run has finished in this session


Progress = Callable[[Counts, "RunStarted | RunResult | None"], None]


def run_study(
    grid: grid_mod.Grid,
    study_dir: Path,
    executor: executors.Executor,
    progress: Progress | None = None,
) -> StudyResult:
    """Train the grid's runs that are not completed yet into ``study_dir``; keep study.json current.

    Raises:
        RunDirError: a run directory holds a run of another config.
        KeyboardInterrupt: after the running runs were interrupted and study.json says so.
    """
    study_dir = Path(study_dir)
    with _lock(study_dir):
        return _run_locked(grid, study_dir, executor, progress)


@contextlib.contextmanager
def _lock(study_dir: Path) -> Iterator[None]:
    """Hold the study's lock file: two drivers must not train the same runs (released when killed)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(study_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # an empty file: only its lock counts
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{study_dir}: another latentprobe is running this study") from None
        yield
    finally:
        os.close(fd)


def _run_locked(
    grid: grid_mod.Grid, study_dir: Path, executor: executors.Executor, progress: Progress | None
) -> StudyResult:
    runs = plan(grid, study_dir)
    result = StudyResult(study_dir, runs)
    by_name = {r.name: r for r in runs}
    todo = [r for r in runs if r.status != COMPLETED]
    tasks = [
        Task(r.name, config_mod.to_dict(r.config), str(r.run_dir), r.resume, executor.threads) for r in todo
    ]
    write_study(study_dir, grid, runs)
    clock = _Clock(len(runs), sum(r.status == COMPLETED for r in runs))
    if progress is not None:
        progress(clock.counts(runs), None)
    try:
        for event in executor.run(tasks):
            run = by_name[event.name]
            if isinstance(event, RunStarted):
                run.status, run.reason = RUNNING, None
            else:
                run.status, run.reason, run.result = event.status, event.reason, event
                clock.finished += 1
            write_study(study_dir, grid, runs)
            if progress is not None:
                progress(clock.counts(runs), event)
    except KeyboardInterrupt:
        for run in runs:
            if run.status == RUNNING:
                run.status, run.reason = INTERRUPTED, "interrupted"
        result.interrupted = True
        write_study(study_dir, grid, runs)
        raise
    return result


def record_run_status(run_dir: Path) -> bool:
    """After ``train --resume RUN_DIR``: set the run's status in its study's study.json from its summary.

    Does nothing (returns False) when the run belongs to no study, the study does not list it, or
    another latentprobe is running the study (its driver keeps study.json itself).
    """
    run_dir = Path(run_dir)
    study_dir = run_dir.parent
    path = study_dir / rundir.STUDY
    if not path.is_file():
        return False
    summary = _read_summary(run_dir)
    status = summary.get("status")
    if status not in (COMPLETED, FAILED, INTERRUPTED):
        return False
    try:
        with _lock(study_dir):
            record = rundir.read_json(path)
            entries = [
                r for r in record.get("runs", []) if isinstance(r, dict) and r.get("dir") == run_dir.name
            ]
            if not entries:
                return False
            for entry in entries:
                entry["status"] = status
                entry["reason"] = summary.get("reason") if status != COMPLETED else None
            rundir.write_json(path, record)
    except (UserError, OSError):  # the study is running, or study.json is unreadable: leave it be
        return False
    return True


def plan(grid: grid_mod.Grid, study_dir: Path) -> list[StudyRun]:
    """Each run of the grid with its directory and what is to be done with it.

    Raises:
        RunDirError: a run's directory holds a run of another config (a changed config file).
    """
    runs = []
    for grid_run in grid.runs:
        run_dir = study_dir / grid_run.name
        run = StudyRun(grid_run.name, grid_run.values, grid_run.config, run_dir)
        if (run_dir / rundir.CONFIG).is_file():
            _check_same_config(run_dir, grid_run.config)
            summary = _read_summary(run_dir)
            if summary.get("status") == rundir.STATUS_COMPLETED:
                run.status = COMPLETED
            else:
                run.resume = True  # killed, interrupted or failed: it continues from its checkpoint
        runs.append(run)
    return runs


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        return rundir.read_json(run_dir / rundir.SUMMARY)
    except RunDirError:  # none yet (killed) or half-written by an old version: resume decides
        return {}


def _check_same_config(run_dir: Path, cfg: config_mod.RunConfig) -> None:
    try:
        written = yaml.safe_load((run_dir / rundir.CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirError(f"{run_dir / rundir.CONFIG}: cannot read: {exc}") from None
    expected = json.loads(json.dumps(config_mod.to_dict(cfg)))
    difference = _first_difference(written, expected)
    if difference is not None:
        raise RunDirError(
            f"{run_dir}: holds a run of another config ({difference} differs); "
            "give the study another name or output.dir, or move the old runs away"
        )


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(b) + [k for k in a if k not in b]:
            found = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found is not None:
                return found
        return None
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-12))
    return None if same else (prefix or "the config")


def write_study(study_dir: Path, grid: grid_mod.Grid, runs: Sequence[StudyRun]) -> Path:
    """Write ``study_dir/study.json`` atomically: the grid and each run's values, directory and status."""
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / rundir.STUDY
    rundir.write_json(
        path,
        {
            "schema_version": rundir.STUDY_SCHEMA_VERSION,
            "name": runs[0].config.name if runs else study_dir.name,
            "grid": grid.to_json(),
            "keys": list(grid.keys),
            "runs": [
                {
                    "name": r.name,
                    "values": r.values,
                    "dir": r.run_dir.name,  # relative to the study directory
                    "status": r.status,
                    "reason": r.reason,
                }
                for r in runs
            ],
        },
    )
    return path


# --------------------------------------------------------------------------------------------------
# Progress


class _Clock:
    def __init__(self, total: int, done_before: int):
        self.total = total
        self.done_before = done_before
        self.finished = 0  # runs finished in this session
        self.started = time.monotonic()

    def counts(self, runs: Sequence[StudyRun]) -> Counts:
        done = sum(r.status == COMPLETED for r in runs)
        failed = sum(r.status == FAILED for r in runs)
        running = sum(r.status == RUNNING for r in runs)
        left = self.total - done - failed - running
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.finished * (left + running) if self.finished else None
        return Counts(self.total, done, running, failed, left, elapsed, eta)


def render_status(counts: Counts) -> str:
    """The study's one status line: ``7/12 done  2 running  1 failed  2 left  0:41 elapsed  ETA 0:12``."""
    parts = [f"{counts.done}/{counts.total} done", f"{counts.running} running"]
    if counts.failed:
        parts.append(f"{counts.failed} failed")
    parts.append(f"{counts.left} left")
    parts.append(f"{_clock(counts.elapsed)} elapsed")
    if counts.running or counts.left:
        parts.append(f"ETA {_clock(counts.eta)}" if counts.eta is not None else "ETA ?")
    return "  ".join(parts)


def render_event(event: RunStarted | RunResult) -> str:
    """One line for a run that started or ended."""
    if isinstance(event, RunStarted):
        return f"{event.name}: started"
    if event.status == COMPLETED:
        probe = (event.test or {}).get("probe_accuracy")
        shown = f"  test/probe_accuracy {probe:.4f}" if probe is not None else ""
        return f"{event.name}: completed{shown}  ({event.seconds:.1f}s)"
    return f"{event.name}: {event.status}: {event.reason}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveDisplay:
    """On a terminal: one status line redrawn in place (every second), ended runs printed above it."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.counts: Counts | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def __call__(self, counts: Counts, event: RunStarted | RunResult | None) -> None:
        with self._lock:
            self.counts = counts
            self._started_at = time.monotonic() - counts.elapsed
            if isinstance(event, RunResult):
                self.stream.write("\r\x1b[K" + render_event(event) + "\n")
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self.counts is not None and (self.counts.running or self.counts.left):
                    elapsed = time.monotonic() - self._started_at
                    eta = self.counts.eta
                    if eta is not None:
                        eta = max(0.0, eta - (elapsed - self.counts.elapsed))
                    self.counts = dataclasses.replace(self.counts, elapsed=elapsed, eta=eta)
                    self._draw()

    def _draw(self) -> None:
        if self.counts is not None:
            self.stream.write("\r\x1b[K" + render_status(self.counts))
            self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self.counts is not None:
                self.stream.write("\n")
                self.stream.flush()


class LineDisplay:
    """Not on a terminal: one line per run that starts or ends, with the study's counts."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, counts: Counts, event: RunStarted | RunResult | None) -> None:
        if event is None:
            line = f"study: {counts.total} runs, {counts.done} completed before"
        else:
            line = f"[{counts.done + counts.failed}/{counts.total}] {render_event(event)}"
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# The command


def load_grid(config_path: Path, overrides: Sequence[str] = (), seeds: int | None = None) -> grid_mod.Grid:
    """The study a config file (with ``--set`` overrides and ``--seeds N``) describes, validated."""
    return grid_mod.load(config_path, overrides, seeds)


def check_data(grid: grid_mod.Grid, config_path: Path, overrides: Sequence[str] = ()) -> None:
    """Load each distinct data setting once, so a data problem stops the study before any run starts.

    Raises:
        UserError: the data cannot be read or does not fit its settings (a ConfigError names the file).
    """
    from latentprobe import data

    _each_data_setting(grid, config_path, overrides, lambda cfg: data.load(cfg.data, cfg.seed))


def check_layouts(grid: grid_mod.Grid, config_path: Path, overrides: Sequence[str] = ()) -> None:
    """``validate``: check each distinct image folder's layout from its names (no decoding, no TensorFlow).

    Raises:
        ConfigError: naming the config file, ``data.path`` or ``data.unlabeled``, and the file at fault.
    """
    from latentprobe import data

    _each_data_setting(grid, config_path, overrides, lambda cfg: data.check_layout(cfg.data))


def _each_data_setting(
    grid: grid_mod.Grid, config_path: Path, overrides: Sequence[str], check: Callable[[Any], Any]
) -> None:
    """Call ``check(run config)`` once per distinct ``data`` block; its ConfigError names the file."""
    seen = set()
    for run in grid.runs:
        key = json.dumps(config_mod.to_dict(run.config)["data"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            try:
                check(run.config)
            except ConfigError as exc:
                raise config_mod.locate(exc, config_path, overrides) from None


def check_encoder_files(grid: grid_mod.Grid, config_path: Path, overrides: Sequence[str] = ()) -> None:
    """``validate``'s look at the pretrained kind's files, without TensorFlow: each ``model.encoder`` and
    ``model.decoder`` exists (and a .keras file is a zip archive). Whether Keras reads it, and what it
    outputs, only ``train`` finds out (:func:`check_encoders`).

    Raises:
        ConfigError: naming the key, its line in the config file (or the ``--set`` option) and the file.
    """
    for run in grid.runs:
        model_cfg = run.config.model
        if model_cfg.kind != config_mod.PRETRAINED:
            continue
        for key in ("encoder", "decoder"):
            path = getattr(model_cfg, key)
            problem = None if path is None else kinds.saved_model_problem(path)
            if problem is not None:
                raise config_mod.locate(ConfigError(f"model.{key}", problem), config_path, overrides)


def check_encoders(
    grid: grid_mod.Grid,
    config_path: Path,
    overrides: Sequence[str] = (),
    note: Callable[[str], None] | None = None,
) -> None:
    """Load each pretrained encoder once (kind ``pretrained``), so that a file Keras cannot read, an
    output it lacks or an input shape that fits no data stops the study before anything is written.
    Imports TensorFlow, in this process, only when the study has such runs.

    Args:
        note: told once per encoder that is fed flattened inputs.

    Raises:
        UserError: naming the file, the key (``model.encoder``, ``model.output``, ...) and the problem.
    """
    runs = [run for run in grid.runs if run.config.model.kind == config_mod.PRETRAINED]
    if not runs:
        return
    from latentprobe.runtime import import_tensorflow

    import_tensorflow()  # first: latentprobe.models imports Keras, which would start TensorFlow loudly
    from latentprobe import data
    from latentprobe.models import pretrained

    seen = set()
    for run in runs:
        model_cfg = run.config.model
        key = (json.dumps(config_mod.to_dict(run.config)["data"], sort_keys=True), model_cfg)
        if key in seen:
            continue
        seen.add(key)
        try:
            input_shape = data.load(run.config.data, run.config.seed).input_shape
            model = pretrained.load(model_cfg, input_shape)
        except ConfigError as exc:
            raise config_mod.locate(exc, config_path, overrides) from None
        if model.mapping.flatten and note is not None:
            note(
                f"note: {model_cfg.encoder} reads inputs of shape ({int(math.prod(input_shape))},): "
                f"latentprobe feeds it the {tuple(input_shape)} inputs flattened"
            )


def check_devices(grid: grid_mod.Grid, config_path: Path, overrides: Sequence[str] = ()) -> None:
    """A run that asks for a GPU on a machine without one stops the study before anything is written.

    Raises:
        ConfigError: ``train.device: gpu`` and no GPU visible (checked without importing TensorFlow),
            naming the config file and the key's line (or the ``--set`` option).
    """
    if any(run.config.train.device == "gpu" for run in grid.runs) and not executors.visible_gpus():
        problem = "'gpu' requested, but this machine shows no GPU (use 'auto' or 'cpu')"
        raise config_mod.locate(ConfigError("train.device", problem), config_path, overrides)


def train_study(
    config_path: Path,
    overrides: Sequence[str] = (),
    seeds: int | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    executor: str = "local",
    address: str | None = None,
    out: Callable[..., None] | None = None,
) -> int:
    """``latentprobe train CONFIG [--jobs N] [--threads K] [--executor local|ray] [--address A]``.

    Prints the runs' results on stdout, progress and errors on stderr (``out(text, err=True)``).

    Returns:
        The exit code: 0 every run completed, 1 a run failed (one ``error:`` line each), 2 bad input,
        130 interrupted (every run stays resumable: the same command continues the study).
    """
    out = out or _echo
    from latentprobe import search

    if search.has_search(config_path, overrides):  # Optuna's trials instead of a grid's runs
        if seeds is not None:
            out("error: --seeds: a search samples its trials; give seed in search.space instead", err=True)
            return 2
        return search.train_search(config_path, overrides, jobs, threads, executor, address, out)
    with contextlib.ExitStack() as stack:
        try:
            grid = load_grid(config_path, overrides, seeds)
            first = grid.runs[0].config
            study_dir = Path(first.output.dir) / first.name
            # A run directory of another config stops us before anything trains.
            left = [r for r in plan(grid, study_dir) if r.status != COMPLETED]
            check_devices(grid, config_path, overrides)
            chosen = stack.enter_context(executors.create(executor, jobs, threads, address))
            # The workers start (and import TensorFlow) while the driver reads the data once to check it.
            chosen.warm_up(len(left), any(r.config.train.device != "cpu" for r in left))
            check_data(grid, config_path, overrides)
            check_encoders(grid, config_path, overrides, lambda line: out(line, err=True))
            tracking.prepare(first.output.mlflow, first.name)  # the store's tables, once, not per worker
        except UserError as exc:
            for line in error_lines(exc):
                out(line, err=True)
            return 2
        except KeyboardInterrupt:
            out("interrupted: nothing was trained", err=True)
            return 130
        return _train_planned(grid, study_dir, chosen, out)


def _train_planned(
    grid: grid_mod.Grid, study_dir: Path, chosen: executors.Executor, out: Callable[..., None]
) -> int:
    """Run the checked study on ``chosen``; print the results; the exit code."""
    display = LiveDisplay(sys.stderr) if sys.stderr.isatty() else LineDisplay(sys.stderr)
    try:
        result = run_study(grid, study_dir, chosen, display)
    except KeyboardInterrupt:
        display.close()
        out(f"interrupted: {study_dir}: the same command continues the study", err=True)
        return 130
    except UserError as exc:
        display.close()
        for line in error_lines(exc):
            out(line, err=True)
        return 2
    display.close()
    for run in result.completed:
        out(_result_line(run))
    for run in result.failed:
        out(f"error: {run.run_dir}: training failed: {run.reason} (status: failed)", err=True)
    return 1 if result.failed else 0


def _result_line(run: StudyRun) -> str:
    try:
        return summary_line(rundir.read_json(run.run_dir / rundir.SUMMARY))
    except RunDirError as exc:
        return f"{run.run_dir}  ({exc})"


def summary_line(summary: dict[str, Any]) -> str:
    """One finished run: its directory, test probe accuracy against chance, and training time."""
    test = summary["metrics"]["test"]
    # A variant may have no reconstruction (supervised) or its own classifier (aae): show what exists.
    shown = [name for name in ("classifier_accuracy", "reconstruction_loss") if name in test]
    extra = "".join(f"  test/{name} {test[name]:.4f}" for name in shown)
    if any("monitor" in phase for phase in summary.get("phases", {}).values()):  # early stopping chose
        stopped = " (stopped early)" if summary.get("stopped") == "early_stopping" else ""
        extra += f"  best epoch {summary['best_epoch']}{stopped}"
    return (
        f"{summary['run_dir']}  test/probe_accuracy {test['probe_accuracy']:.4f}"
        f"  (chance {test['chance_accuracy']:.4f}){extra}  train {summary['timing']['train_seconds']:.1f}s"
    )


def _echo(text: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()
