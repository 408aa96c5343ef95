"""Compare finished runs: read their summaries, build a metrics table, render it.

Rows are metrics (``<split>/<name>``, as in TensorBoard and summary.json), columns are runs; every
run after the first also gets its difference to the first. Imports no TensorFlow so it is fast.

A ``RunRecord`` keeps the whole config and every numeric metric, so grouping (say by seed, with
confidence intervals and paired tests) can be built on ``load_runs`` without changing it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentprobe.errors import RunDirError
from latentprobe.rundir import STATUS_COMPLETED, describe_incomplete, expand_runs, read_summary

FORMATS = ("table", "markdown", "json", "csv")

# Config fields that identify a run, shown above the metrics (dotted keys into summary["config"]).
KEY_CONFIG_FIELDS = (
    "model.kind",
    "model.latent",
    "probe.strategy",
    "probe.head",
    "seed",
    "data.name",
    "data.labels",
)

# Shown first, in this order; other metrics follow sorted by name, then TIMING_METRICS.
CORE_METRICS = (
    "test/probe_accuracy",
    "test/reconstruction_loss",
    "test/chance_accuracy",
    "val/probe_accuracy",
    "val/reconstruction_loss",
)
TIMING_METRICS = ("timing/train_seconds", "timing/train_samples_per_second")

MISSING = "n/a"


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
    """

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, float]

    def get_config(self, dotted: str) -> Any:
        """Return the config value at a dotted key (``model.latent``), or None if absent."""
        return read_dotted(self.config, dotted)


@dataclass
class Table:
    """Runs side by side: the data every format renders.

    Attributes:
        records: the runs, first one is the baseline for the differences.
        labels: a short unique name per run, same order as ``records``.
        metrics: metric names (rows), in display order.
        config_fields: dotted config keys shown above the metrics.
        problems: paths that could not be read, carried into the JSON output.
    """

    records: list[RunRecord]
    labels: list[str]
    metrics: list[str]
    config_fields: list[str] = field(default_factory=lambda: list(KEY_CONFIG_FIELDS))
    problems: list[Problem] = field(default_factory=list)

    def value(self, metric: str, run: int) -> float | None:
        """Return ``metric`` of run number ``run``; None where the run lacks it."""
        return self.records[run].metrics.get(metric)

    def diff_to_first(self, metric: str, run: int) -> float | None:
        """Return ``value(run) - value(first run)``; None where either is missing."""
        first, this = self.value(metric, 0), self.value(metric, run)
        if first is None or this is None:
            return None
        return this - first


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


def _sort_key(name: str) -> tuple[int, int, str]:
    if name in CORE_METRICS:
        return (0, CORE_METRICS.index(name), "")
    if name in TIMING_METRICS:
        return (2, TIMING_METRICS.index(name), "")
    return (1, 0, name)


def order_metrics(names: Iterable[str]) -> list[str]:
    """Core metrics first (in ``CORE_METRICS`` order), then the rest sorted, then timing."""
    return sorted(set(names), key=_sort_key)


def read_run(path: Path) -> RunRecord:
    """Read one completed run.

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
        metrics=extract_metrics(summary),
    )


def load_runs(paths: Iterable[str | Path]) -> tuple[list[RunRecord], list[Problem]]:
    """Read the runs at ``paths``, expanding sweep directories, in order.

    A path that cannot be read (no summary, bad JSON, status not completed, bad sweep.json) becomes
    a ``Problem`` instead of an exception, so the other runs still show.
    """
    records: list[RunRecord] = []
    problems: list[Problem] = []
    for given in map(Path, paths):
        try:
            run_paths = expand_runs([given])
        except RunDirError as e:
            problems.append(Problem(given, str(e)))
            continue
        for path in run_paths:
            try:
                records.append(read_run(path))
            except RunDirError as e:
                problems.append(Problem(path, str(e)))
    return records, problems


def make_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique column names: the directory name, ``parent/name`` where names clash.

    Paths that are still alike (the same run given twice) get ``#2``, ``#3`` ...
    """
    names = [p.name or str(p) for p in paths]
    labels = []
    for p, name in zip(paths, names, strict=True):
        clashes = names.count(name) > 1 and p.parent.name
        labels.append(f"{p.parent.name}/{name}" if clashes else name)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return unique


def build_table(records: Sequence[RunRecord], problems: Sequence[Problem] = ()) -> Table:
    """Lay the runs side by side; the first run is the baseline for differences.

    Args:
        records: runs from ``load_runs``.
        problems: carried through so the JSON output can list them.
    """
    names = order_metrics(name for r in records for name in r.metrics)
    return Table(
        records=list(records),
        labels=make_labels([r.path for r in records]),
        metrics=names,
        problems=list(problems),
    )


# ---- rendering ----


def format_number(value: float | None, signed: bool = False) -> str:
    """Four decimals for ordinary magnitudes, four significant digits for tiny or huge ones."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.4g}"


def _format_config(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _header(table: Table) -> list[str]:
    """Column headers after the first: each run, and after every later run its difference."""
    header = [table.labels[0]] if table.labels else []
    for label in table.labels[1:]:
        header += [label, f"diff {label}"]
    return header


def _config_rows(table: Table) -> list[list[str]]:
    rows = []
    for key in table.config_fields:
        cells = [_format_config(table.records[0].get_config(key))]
        for record in table.records[1:]:
            cells += [_format_config(record.get_config(key)), ""]
        rows.append([key, *cells])
    return rows


def _metric_rows(table: Table) -> list[list[str]]:
    rows = []
    for name in table.metrics:
        cells = [format_number(table.value(name, 0))]
        for run in range(1, len(table.records)):
            cells += [
                format_number(table.value(name, run)),
                format_number(table.diff_to_first(name, run), signed=True),
            ]
        rows.append([name, *cells])
    return rows


def render_text(table: Table) -> str:
    """Aligned plain text for a terminal: config fields, a rule, then the metrics."""
    if not table.records:
        return "no runs to compare\n"
    header = ["", *_header(table)]
    config, metrics = _config_rows(table), _metric_rows(table)
    widths = [max(len(row[i]) for row in [header, *config, *metrics]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule, *map(line, config), rule, *map(line, metrics)]
    return "\n".join(lines) + "\n"


def render_markdown(table: Table) -> str:
    """Two GitHub-flavoured Markdown tables: the identifying config, then the metrics."""
    if not table.records:
        return "_no runs to compare_\n"

    def md_table(first: str, rows: list[list[str]], align_right: bool) -> list[str]:
        header = [first, *_header(table)]
        sep = ["---"] + [("---:" if align_right else "---")] * (len(header) - 1)
        out = [header, sep, *rows]
        return ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in out]

    parts = md_table("config", _config_rows(table), align_right=False)
    parts += [""] + md_table("metric", _metric_rows(table), align_right=True)
    return "\n".join(parts) + "\n"


def _json_number(value: float | None) -> float | None:
    # NaN/inf are not valid JSON; a diverged run's NaN loss shows as null.
    return value if value is not None and math.isfinite(value) else None


def table_to_dict(table: Table) -> dict[str, Any]:
    """Return the table as plain data (full precision), as ``render(table, "json")`` writes it."""
    runs = [
        {
            "path": str(record.path),
            "label": label,
            "config": {key: record.get_config(key) for key in table.config_fields},
            "metrics": {
                name: _json_number(record.metrics[name]) for name in table.metrics if name in record.metrics
            },
        }
        for record, label in zip(table.records, table.labels, strict=True)
    ]
    diff = {
        table.labels[run]: {name: _json_number(table.diff_to_first(name, run)) for name in table.metrics}
        for run in range(1, len(table.records))
    }
    return {
        "runs": runs,
        "metrics": list(table.metrics),
        "baseline": table.labels[0] if table.labels else None,
        "diff_to_first": diff,
        "problems": [{"path": str(p.path), "reason": p.reason} for p in table.problems],
    }


def render_json(table: Table) -> str:
    """JSON with full-precision numbers; see ``table_to_dict``."""
    return json.dumps(table_to_dict(table), indent=2, allow_nan=False) + "\n"


def render_csv(table: Table) -> str:
    """One row per metric; columns: metric, each run, and ``diff <label>`` after every later run.

    Numbers are written with full precision (Python's shortest round-tripping repr); missing is empty.
    """

    def cell(value: float | None) -> str:
        return "" if value is None else repr(value)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", *_header(table)])
    for name in table.metrics:
        row = [name, cell(table.value(name, 0))]
        for run in range(1, len(table.records)):
            row += [cell(table.value(name, run)), cell(table.diff_to_first(name, run))]
        writer.writerow(row)
    return out.getvalue()


_RENDERERS = {
    "table": render_text,
    "markdown": render_markdown,
    "json": render_json,
    "csv": render_csv,
}


def render(table: Table, fmt: str) -> str:
    """Render ``table`` as one of ``FORMATS``; all carry the same numbers.

    Raises:
        ValueError: for an unknown format, listing the valid ones.
    """
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}") from None
    return renderer(table)


def compare(paths: Iterable[str | Path], fmt: str = "table") -> tuple[str, list[Problem]]:
    """Load the runs at ``paths`` (sweeps expanded) and render their comparison.

    Returns:
        The rendered text and the paths that could not be read, with reasons.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    records, problems = load_runs(paths)
    return render(build_table(records, problems), fmt), problems
