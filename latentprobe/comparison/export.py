"""The comparison for programs: JSON (every table) and CSV (one table), numbers in full precision.

JSON numbers are Python floats as read (NaN and infinities as null); CSV cells are Python's shortest
round-tripping repr, empty where a value is missing.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from latentprobe.comparison.groups import Comparison, Group
from latentprobe.comparison.statistics import CONFIDENCE
from latentprobe.comparison.table import Table, differing_keys

#: The tables of a comparison, as ``--table`` names them.
TABLES = ("runs", "groups", "comparisons")


def _json_number(value: float | None) -> float | None:
    # NaN/inf are not valid JSON; a diverged run's NaN loss shows as null.
    return value if value is not None and math.isfinite(value) else None


def table_to_dict(table: Table) -> dict[str, Any]:
    """Return the table as plain data (full precision), as ``render(table, "json")`` writes it.

    ``diff_to_first`` is there where the text shows differences (``Table.shows_differences``); ``groups``
    and ``comparisons`` where some group holds several seeds.
    """
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
    out: dict[str, Any] = {
        "runs": runs,
        "metrics": list(table.metrics),
        "baseline": table.labels[0] if table.labels else None,
    }
    if table.shows_differences:
        out["diff_to_first"] = {
            table.labels[run]: {name: _json_number(table.diff_to_first(name, run)) for name in table.metrics}
            for run in range(1, len(table.records))
        }
    out["problems"] = [{"path": str(p.path), "reason": p.reason} for p in table.problems]
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
        "name": group.name,
        "runs": [table.labels[i] for i in group.runs],
        "seeds": group.seeds,
        "confidence": CONFIDENCE,
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
    """JSON with full-precision numbers; see :func:`table_to_dict`."""
    return json.dumps(table_to_dict(table), indent=2, allow_nan=False) + "\n"


# ---- CSV ----


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def _config_cell(value: Any) -> str:
    """A config value in a CSV cell: lists joined by commas (the cell is quoted), absent empty."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _seeds(seeds: list[Any]) -> str:
    return " ".join(str(s) for s in seeds)


def _runs_rows(table: Table) -> list[list[str]]:
    """One row per run: its label, path and group, every config field, every metric."""
    group_of = {run: g.label for g in table.groups for run in g.runs}
    rows = [["run", "path", "group", *table.config_fields, *table.metrics]]
    for i, record in enumerate(table.records):
        rows.append(
            [
                table.labels[i],
                str(record.path),
                group_of.get(i, ""),
                *(_config_cell(record.get_config(k)) for k in table.config_fields),
                *(_cell(record.metrics.get(m)) for m in table.metrics),
            ]
        )
    return rows


def group_keys(groups: list[Group]) -> list[str]:
    """The config keys that tell ``groups`` apart (see :func:`~.table.differing_keys`)."""
    return differing_keys([g.config for g in groups])


def _groups_rows(table: Table) -> list[list[str]]:
    """One row per group and metric: the config keys that tell the groups apart, mean and CI."""
    keys = group_keys(table.groups)
    rows = [["group", *keys, "metric", "n", "mean", "half_width", "low", "high", "seeds"]]
    for g in table.groups:
        config = [_config_cell(g.config.get(k)) for k in keys]
        for name in table.metrics:
            iv = g.interval(name)
            if iv is not None:
                numbers = [_cell(_json_number(v)) for v in (iv.mean, iv.half_width, iv.low, iv.high)]
                rows.append([g.label, *config, name, str(iv.n), *numbers, _seeds(g.seeds_by_metric[name])])
    return rows


def _comparisons_rows(table: Table) -> list[list[str]]:
    """One row per comparison and metric: the paired t-test, with the config keys that differ."""
    rows = [
        [
            "a",
            "b",
            "config_diff",
            "metric",
            "pairs",
            "mean_difference",
            "half_width",
            "low",
            "high",
            "t",
            "p_value",
            "significant",
        ]
    ]
    for c in table.comparisons:
        diff = "; ".join(
            f"{k}: {_config_cell(a)} -> {_config_cell(b)}" for k, (a, b) in c.config_diff.items()
        )
        for name in table.metrics:
            t = c.tests.get(name)
            if t is None:
                continue
            d = t.difference
            numbers = [d.mean, d.half_width, d.low, d.high, t.t, t.p_value]
            significant = "yes" if t.significant else "no"
            rows.append(
                [
                    c.a.label,
                    c.b.label,
                    diff,
                    name,
                    str(t.n),
                    *(_cell(_json_number(v)) for v in numbers),
                    significant,
                ]
            )
    return rows


_CSV_TABLES = {"runs": _runs_rows, "groups": _groups_rows, "comparisons": _comparisons_rows}


def render_csv(table: Table, which: str = "runs") -> str:
    """One CSV table (``which`` of ``TABLES``), a header row then one row per item, full precision:

    - ``runs``: a row per run: ``run`` (its label), ``path``, ``group``, every config field shown
      (``model.kind`` ...), every metric;
    - ``groups``: a row per group and metric: ``group``, the config keys that tell the groups apart,
      ``metric``, ``n``, ``mean``, ``half_width``, ``low``, ``high`` (95% CI), ``seeds``;
    - ``comparisons``: a row per later group and metric against the first: ``a``, ``b``,
      ``config_diff``, ``metric``, ``pairs``, ``mean_difference``, its CI, ``t``, ``p_value``,
      ``significant``.
    """
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(_CSV_TABLES[which](table))
    return out.getvalue()
