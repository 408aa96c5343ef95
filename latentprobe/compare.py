"""Compare finished runs: read their summaries (and eval.json), build a metrics table, render it.

Rows are metrics (``<split>/<name>``, as in TensorBoard and summary.json; ``eval/<name>`` from eval.json),
columns are runs; every run after the first also gets its difference to the first. Imports no TensorFlow
so it is fast.

Runs that differ only by seed form a group (:mod:`latentprobe.seed_groups`). When some group holds
several seeds, every format adds each group's mean +- 95% CI per metric, and each later group's paired
comparison with the first (over matching seeds: mean difference, CI, t-test p-value) with the config
keys that differ. For a sweep over latent sizes, :func:`write_capacity_plot` draws metric against size.
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

from latentprobe import seed_groups
from latentprobe.errors import RunDirError
from latentprobe.rundir import (
    EVAL,
    STATUS_COMPLETED,
    describe_incomplete,
    expand_runs,
    read_json,
    read_summary,
)
from latentprobe.statistics import ALPHA
from latentprobe.text_table import align_columns

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

#: Drawn against the latent size in the capacity plot, where the runs have them.
CAPACITY_METRICS = (
    "test/probe_accuracy",
    "test/reconstruction_loss",
    "eval/linear@all",
    "eval/knn@all",
    "eval/linear@10",
    "eval/kmeans_accuracy",
    "eval/active_units",
)


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
    groups: list[seed_groups.Group] = field(default_factory=list)
    comparisons: list[seed_groups.Comparison] = field(default_factory=list)

    @property
    def has_seed_groups(self) -> bool:
        """Whether some group holds more than one seed (then the group sections are shown)."""
        return any(len(set(map(str, g.seeds))) > 1 for g in self.groups)

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
        metrics={**extract_metrics(summary), **read_eval_metrics(Path(path))},
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
    groups = seed_groups.group_runs([r.config for r in records], [r.metrics for r in records])
    return Table(
        records=list(records),
        labels=make_labels([r.path for r in records]),
        metrics=names,
        problems=list(problems),
        groups=groups,
        comparisons=seed_groups.compare_groups(groups),
    )


def write_capacity_plot(table: Table, path: Path) -> Path:
    """Draw each of ``CAPACITY_METRICS`` against the latent size (mean and 95% CI over seeds) as PNG.

    Raises:
        UserError: the runs are not a sweep over latent sizes (another config key differs too).
    """
    from latentprobe import plots
    from latentprobe.errors import UserError

    found = seed_groups.capacity_series(table.groups, [m for m in CAPACITY_METRICS if m in table.metrics])
    if found is None:
        keys = sorted(
            {k for g in table.groups for k in seed_groups.config_diff(table.groups[0].config, g.config)}
        )
        raise UserError(
            "--plot: a capacity plot needs runs that differ only in model.latent (and seed); "
            f"these differ in: {', '.join(keys) or 'nothing'}"
        )
    latents, series = found
    return plots.plot_capacity(latents, series, path)


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


def _format_interval(interval: Any) -> str:
    if interval is None:
        return MISSING
    if interval.half_width is None:
        return f"{format_number(interval.mean)} (n=1)"
    return f"{format_number(interval.mean)} ± {format_number(interval.half_width)} (n={interval.n})"


def _format_p(p: float | None) -> str:
    return MISSING if p is None else f"{p:.4g}"


def _group_rows(table: Table) -> list[list[str]]:
    """One row per metric: each group's mean ± 95% CI half-width (n seeds)."""
    return [[name, *(_format_interval(g.interval(name)) for g in table.groups)] for name in table.metrics]


def _comparison_rows(comparison: seed_groups.Comparison, metrics: list[str]) -> list[list[str]]:
    rows = []
    for name in metrics:
        test = comparison.tests.get(name)
        if test is None:
            continue
        d = test.difference
        diff = format_number(d.mean, signed=True)
        if d.half_width is not None:
            diff += f" ± {format_number(d.half_width)}"
        significant = "yes" if test.significant else "no"
        rows.append([name, str(test.n), diff, _format_p(test.p_value), significant])
    return rows


def _diff_rows(comparison: seed_groups.Comparison) -> list[list[str]]:
    return [[key, _format_config(a), _format_config(b)] for key, (a, b) in comparison.config_diff.items()]


def _group_sections(table: Table) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every group section, shared by the text and Markdown renderers."""
    if not table.has_seed_groups:
        return []
    runs = "; ".join(f"{g.label}: seeds {','.join(str(s) for s in g.seeds)}" for g in table.groups)
    sections = [
        (
            f"groups of runs differing only by seed: mean ± 95% CI (t-distribution) [{runs}]",
            ["metric", *(g.label for g in table.groups)],
            _group_rows(table),
        )
    ]
    for c in table.comparisons:
        seeds = ",".join(str(s) for s in c.seeds) or "none"
        sections.append(
            (
                f"paired comparison {c.b.label} - {c.a.label} over matching seeds ({seeds}); "
                f"paired t-test, significant at p < {ALPHA}",
                ["metric", "pairs", "mean difference ± 95% CI", "p-value", "significant"],
                _comparison_rows(c, table.metrics),
            )
        )
        sections.append(
            (f"config diff {c.a.label} -> {c.b.label}", ["key", c.a.label, c.b.label], _diff_rows(c))
        )
    return sections


def render_text(table: Table) -> str:
    """Aligned plain text for a terminal: config fields, a rule, then the metrics."""
    if not table.records:
        return "no runs to compare\n"
    header = ["", *_header(table)]
    lines = align_columns([[header], _config_rows(table), _metric_rows(table)])
    for title, head, rows in _group_sections(table):
        lines += ["", title, *align_columns([[head, *rows]])] if rows else ["", title, "(none)"]
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
    for title, head, rows in _group_sections(table):
        parts += ["", f"**{title}**", ""]
        out = [head, ["---"] + ["---:"] * (len(head) - 1), *rows]
        parts += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in out]
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
    out = {
        "runs": runs,
        "metrics": list(table.metrics),
        "baseline": table.labels[0] if table.labels else None,
        "diff_to_first": diff,
        "problems": [{"path": str(p.path), "reason": p.reason} for p in table.problems],
    }
    if table.has_seed_groups:
        out["groups"] = [_group_to_dict(table, g) for g in table.groups]
        out["comparisons"] = [_comparison_to_dict(table, c) for c in table.comparisons]
    return out


def _interval_to_dict(interval: Any) -> dict[str, Any]:
    return {
        "n": interval.n,
        "mean": _json_number(interval.mean),
        "half_width": _json_number(interval.half_width),
        "low": _json_number(interval.low),
        "high": _json_number(interval.high),
    }


def _group_to_dict(table: Table, group: seed_groups.Group) -> dict[str, Any]:
    return {
        "label": group.label,
        "runs": [table.labels[i] for i in group.runs],
        "seeds": group.seeds,
        "confidence": 0.95,
        "metrics": {
            name: _interval_to_dict(group.interval(name)) for name in table.metrics if name in group.metrics
        },
    }


def _comparison_to_dict(table: Table, c: seed_groups.Comparison) -> dict[str, Any]:
    return {
        "a": c.a.label,
        "b": c.b.label,
        "seeds": c.seeds,
        "config_diff": {key: {"a": a, "b": b} for key, (a, b) in c.config_diff.items()},
        "metrics": {
            name: {
                "pairs": t.n,
                "mean_difference": _json_number(t.difference.mean),
                "half_width": _json_number(t.difference.half_width),
                "t": _json_number(t.t),
                "p_value": _json_number(t.p_value),
                "significant": t.significant,
            }
            for name in table.metrics
            if (t := c.tests.get(name)) is not None
        },
    }


def render_json(table: Table) -> str:
    """JSON with full-precision numbers; see ``table_to_dict``."""
    return json.dumps(table_to_dict(table), indent=2, allow_nan=False) + "\n"


def render_csv(table: Table) -> str:
    """One row per metric; columns: metric, each run, and ``diff <label>`` after every later run.

    When runs form seed groups, further tables follow, each after a blank line and with its own header:
    ``group,...`` (mean, CI half-width, bounds per group and metric), then per comparison
    ``comparison,...`` (paired t-test) and ``config_diff,...``. Numbers are written with full precision
    (Python's shortest round-tripping repr); missing is empty.
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
    if table.has_seed_groups:
        # Further tables after a blank line, each with its own header row naming its section.
        writer.writerow([])
        writer.writerow(["group", "metric", "n", "mean", "half_width", "low", "high", "seeds"])
        for g in table.groups:
            for name in table.metrics:
                iv = g.interval(name)
                if iv is not None:
                    seeds = " ".join(str(s) for s in g.seeds_by_metric[name])
                    writer.writerow(
                        [
                            g.label,
                            name,
                            iv.n,
                            cell(iv.mean),
                            cell(iv.half_width),
                            cell(iv.low),
                            cell(iv.high),
                            seeds,
                        ]
                    )
        for c in table.comparisons:
            writer.writerow([])
            writer.writerow(
                [
                    "comparison",
                    "metric",
                    "pairs",
                    "mean_difference",
                    "half_width",
                    "t",
                    "p_value",
                    "significant",
                ]
            )
            for name in table.metrics:
                t = c.tests.get(name)
                if t is not None:
                    writer.writerow(
                        [
                            f"{c.b.label} - {c.a.label}",
                            name,
                            t.n,
                            cell(t.difference.mean),
                            cell(t.difference.half_width),
                            cell(t.t),
                            cell(t.p_value),
                            "yes" if t.significant else "no",
                        ]
                    )
            writer.writerow([])
            writer.writerow(["config_diff", "key", c.a.label, c.b.label])
            for key, (a, b) in c.config_diff.items():
                writer.writerow([f"{c.a.label} -> {c.b.label}", key, _format_config(a), _format_config(b)])
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
