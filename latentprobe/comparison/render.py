"""Rendering a comparison :class:`~latentprobe.comparison.table.Table` in each of ``FORMATS``.

All formats carry the same numbers: ``table`` (aligned text) and ``markdown`` round them for reading,
``json`` and ``csv`` keep full precision. When some group of runs holds several seeds, each format adds
the groups' mean +- 95% CI per metric and each later group's paired comparison with the first.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from typing import Any

from latentprobe.comparison.groups import Comparison, Group
from latentprobe.comparison.statistics import ALPHA
from latentprobe.comparison.table import Table
from latentprobe.text_table import align_columns

FORMATS = ("table", "markdown", "json", "csv")

MISSING = "n/a"


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


def _comparison_rows(comparison: Comparison, metrics: list[str]) -> list[list[str]]:
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


def _diff_rows(comparison: Comparison) -> list[list[str]]:
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


def _group_to_dict(table: Table, group: Group) -> dict[str, Any]:
    return {
        "label": group.label,
        "runs": [table.labels[i] for i in group.runs],
        "seeds": group.seeds,
        "confidence": 0.95,
        "metrics": {
            name: _interval_to_dict(group.interval(name)) for name in table.metrics if name in group.metrics
        },
    }


def _comparison_to_dict(table: Table, c: Comparison) -> dict[str, Any]:
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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    _csv_metrics(writer, table)
    if table.has_seed_groups:
        _csv_groups(writer, table)
        for comparison in table.comparisons:
            _csv_comparison(writer, comparison, table.metrics)
            _csv_config_diff(writer, comparison)
    return out.getvalue()


def _csv_cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def _csv_metrics(writer: Any, table: Table) -> None:
    """The metrics table: one row per metric, each run's value and each later run's difference."""
    writer.writerow(["metric", *_header(table)])
    for name in table.metrics:
        row = [name, _csv_cell(table.value(name, 0))]
        for run in range(1, len(table.records)):
            row += [_csv_cell(table.value(name, run)), _csv_cell(table.diff_to_first(name, run))]
        writer.writerow(row)


def _csv_groups(writer: Any, table: Table) -> None:
    """After a blank line: each group's mean and CI per metric, with the seeds it is over."""
    writer.writerow([])
    writer.writerow(["group", "metric", "n", "mean", "half_width", "low", "high", "seeds"])
    for g in table.groups:
        for name in table.metrics:
            iv = g.interval(name)
            if iv is not None:
                seeds = " ".join(str(s) for s in g.seeds_by_metric[name])
                cells = [iv.mean, iv.half_width, iv.low, iv.high]
                writer.writerow([g.label, name, iv.n, *map(_csv_cell, cells), seeds])


def _csv_comparison(writer: Any, c: Comparison, metrics: list[str]) -> None:
    """After a blank line: a comparison's paired t-test per metric."""
    writer.writerow([])
    writer.writerow(
        ["comparison", "metric", "pairs", "mean_difference", "half_width", "t", "p_value", "significant"]
    )
    for name in metrics:
        t = c.tests.get(name)
        if t is not None:
            cells = [t.difference.mean, t.difference.half_width, t.t, t.p_value]
            significant = "yes" if t.significant else "no"
            writer.writerow([f"{c.b.label} - {c.a.label}", name, t.n, *map(_csv_cell, cells), significant])


def _csv_config_diff(writer: Any, c: Comparison) -> None:
    """After a blank line: the config keys in which a comparison's two groups differ."""
    writer.writerow([])
    writer.writerow(["config_diff", "key", c.a.label, c.b.label])
    for key, (a, b) in c.config_diff.items():
        writer.writerow([f"{c.a.label} -> {c.b.label}", key, _format_config(a), _format_config(b)])


_RENDERERS: dict[str, Callable[[Table], str]] = {
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
