"""Reading runs back for ``compare``: each completed run's config and every numeric metric of its
summary.json (``<split>/<name>``, ``timing/...``) and eval.json (``eval/<name>``), and for a run of a
study its grid values (from the study.json beside it).

A path that cannot be read becomes a :class:`Problem` rather than an exception, so the other runs still
show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprobe.errors import RunDirError
from latentprobe.rundir import (
    EVAL,
    STATUS_COMPLETED,
    STUDY,
    describe_incomplete,
    discover_runs,
    read_json,
    read_study_runs,
    read_summary,
)

#: Read from summary.json's ``timing``; shown after every other metric.
TIMING_METRICS = ("timing/train_seconds", "timing/train_samples_per_second")


@dataclass(frozen=True)
class Problem:
    """A path given to compare that could not be read as a completed run."""

    path: Path
    reason: str


@dataclass(frozen=True)
class RunRecord:
    """One completed run as read back from its summary.json.

    Attributes:
        path: the run directory.
        summary: the whole summary.json.
        config: the resolved config (``summary["config"]``), complete.
        metrics: every numeric metric as ``<split>/<name>`` -> float, plus ``timing/...``.
        study_values: for a run of a study, its value of each key the grid varies (seed included);
            None for a run of no study.
    """

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, float]
    study_values: dict[str, Any] | None = None

    def get_config(self, dotted: str) -> Any:
        """Return the config value at a dotted key (``model.latent``), or None if absent."""
        return read_dotted(self.config, dotted)


def read_dotted(tree: dict[str, Any], dotted: str) -> Any:
    """Return ``tree["a"]["b"]`` for ``"a.b"``; None if any level is missing."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flatten_numbers(tree: dict[str, Any], prefix: str) -> dict[str, float]:
    """Numeric leaves of a nested dict as ``prefix/key[/subkey]`` -> float."""
    flat: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            flat.update(_flatten_numbers(value, name))
        elif _is_number(value):
            flat[name] = float(value)
    return flat


def extract_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """All numeric metrics of a summary: every split under ``metrics`` and the training timing."""
    metrics: dict[str, float] = {}
    for split, values in (summary.get("metrics") or {}).items():
        if isinstance(values, dict):
            metrics.update(_flatten_numbers(values, split))
    timing = summary.get("timing") or {}
    for name in TIMING_METRICS:
        value = timing.get(name.split("/", 1)[1]) if isinstance(timing, dict) else None
        if _is_number(value):
            metrics[name] = float(value)
    return metrics


def read_run(path: Path, study_values: dict[str, Any] | None = None) -> RunRecord:
    """Read one completed run (``study_values``: its grid values, if it belongs to a study).

    Raises:
        RunDirError: if it is no run, its summary is bad, it did not complete or has no metrics.
    """
    summary = read_summary(path)
    status = summary.get("status")
    if status != STATUS_COMPLETED:
        raise RunDirError(f"{path}: {describe_incomplete(summary)}")
    if not isinstance(summary.get("metrics"), dict):
        raise RunDirError(f"{path}: summary.json has no metrics")
    config = summary.get("config")
    return RunRecord(
        path=Path(path),
        summary=summary,
        config=config if isinstance(config, dict) else {},
        metrics={**extract_metrics(summary), **read_eval_metrics(Path(path))},
        study_values=study_values,
    )


def read_eval_metrics(path: Path) -> dict[str, float]:
    """``eval/<name>`` for every headline number of the run's eval.json; empty if it has none.

    An unreadable eval.json is skipped: the summary's metrics still compare.
    """
    if not (path / EVAL).exists():
        return {}
    try:
        report = read_json(path / EVAL)
    except RunDirError:
        return {}
    values = (report.get("metrics") or {}).get("eval")
    return _flatten_numbers(values, "eval") if isinstance(values, dict) else {}


def load_runs(paths: Iterable[str | Path]) -> tuple[list[RunRecord], list[Problem]]:
    """Read every run at or under ``paths`` (:func:`latentprobe.rundir.discover_runs`), in order, each once.

    A path that cannot be read (no run under it, no summary, bad JSON, status not completed, a bad
    sweep.json or study.json) becomes a ``Problem`` instead of an exception, so the other runs still show.
    """
    records: list[RunRecord] = []
    problems: list[Problem] = []
    values = _StudyValues()
    seen: set[Path] = set()
    for given in map(Path, paths):
        try:
            found = discover_runs(given)
        except RunDirError as e:
            problems.append(Problem(given, str(e)))
            continue
        for path in found:
            if path.resolve() in seen:  # given twice, or both on its own and in its study
                continue
            seen.add(path.resolve())
            try:
                records.append(read_run(path, values.of(path)))
            except RunDirError as e:
                problems.append(Problem(path, str(e)))
    return records, problems


class _StudyValues:
    """Each run's grid values, read from the study.json of the directory holding it (read once each)."""

    def __init__(self) -> None:
        self._by_study: dict[Path, dict[Path, dict[str, Any]]] = {}

    def of(self, run: Path) -> dict[str, Any] | None:
        study_dir = run.parent.resolve()
        if study_dir not in self._by_study:
            self._by_study[study_dir] = self._read(study_dir)
        return self._by_study[study_dir].get(run.resolve())

    @staticmethod
    def _read(study_dir: Path) -> dict[Path, dict[str, Any]]:
        if not (study_dir / STUDY).is_file():
            return {}
        try:
            return {path.resolve(): values for path, values in read_study_runs(study_dir)}
        except RunDirError:
            # A study.json beside a run that was given on its own: without it the run still compares.
            return {}
