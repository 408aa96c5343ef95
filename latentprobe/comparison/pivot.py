"""The pivot table: one metric, runs split into rows by one config key and into columns by another.

Each cell is the mean ± 95% CI (n runs) of the metric over the runs in it: over seeds and over any other
key that varies inside a cell, which the footnote names (``pooled over``). Row and column keys are dotted
config keys read from each run's config (``model.kind``, ``data.labels`` ...); numeric values are sorted,
others keep the order in which the runs show them (a study's grid order). Imports no TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from latentprobe.comparison.groups import IGNORED_KEYS, flatten_config
from latentprobe.comparison.numbers import MISSING, NumberFormat, number_format
from latentprobe.comparison.reading import RunRecord
from latentprobe.comparison.statistics import CONFIDENCE, Interval, mean_ci
from latentprobe.errors import UserError
from latentprobe.text_table import align_columns, wrap

DEFAULT_METRIC = "test/probe_accuracy"


@dataclass(frozen=True)
class Cell:
    """The runs at one row value and one column value, and the metric's interval over them.

    Attributes:
        runs: indices into the records, every run in the cell (with the metric or not).
        interval: mean and CI over the runs that have the metric; None if none has it.
    """

    runs: list[int]
    interval: Interval | None


@dataclass(frozen=True)
class Pivot:
    """One metric over runs split by ``rows`` and ``cols`` (either may be None: one row or column).

    Attributes:
        row_values, col_values: the keys' values, in display order (``[None]`` for an absent key).
        cells: ``(row value, column value) -> Cell`` for every pair that holds a run.
        pooled: dotted keys that take several values inside some cell (``seed`` first).
        labels: each record's short name, as the comparison table shows it.
    """

    metric: str
    rows: str | None
    cols: str | None
    row_values: list[Any]
    col_values: list[Any]
    cells: dict[tuple[Any, Any], Cell]
    pooled: list[str]
    labels: list[str]

    def cell(self, row: Any, col: Any) -> Cell | None:
        return self.cells.get((row, col))


def build_pivot(
    records: Sequence[RunRecord], labels: Sequence[str], metric: str, rows: str | None, cols: str | None
) -> Pivot:
    """Split ``records`` by the config keys ``rows`` and ``cols`` and summarise ``metric`` per cell.

    Raises:
        UserError: naming the option (``--metric``, ``--rows``, ``--cols``) and the names available,
            for a metric no run has, a key no run has, a key that is a whole config section, or the
            same key as rows and columns.
    """
    check_metric(records, metric)
    for option, key in (("--rows", rows), ("--cols", cols)):
        if key is not None:
            check_key(records, key, option)
    if rows is not None and rows == cols:
        raise UserError(f"--rows and --cols both name {rows!r}: give two different keys")
    row_of = [hashable(r.get_config(rows)) if rows else None for r in records]
    col_of = [hashable(r.get_config(cols)) if cols else None for r in records]
    members: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(zip(row_of, col_of, strict=True)):
        members.setdefault(key, []).append(i)
    cells = {}
    for key, runs in members.items():
        values = [records[i].metrics[metric] for i in runs if metric in records[i].metrics]
        cells[key] = Cell(runs, mean_ci(values) if values else None)
    shown = {k for k in (rows, cols) if k}
    return Pivot(
        metric=metric,
        rows=rows,
        cols=cols,
        row_values=_display_order(row_of),
        col_values=_display_order(col_of),
        cells=cells,
        pooled=_pooled_keys(records, members.values(), shown),
        labels=list(labels),
    )


def check_metric(records: Sequence[RunRecord], metric: str) -> None:
    """Raise UserError naming ``--metric`` and the metrics the runs have, if none has ``metric``."""
    available = sorted({name for r in records for name in r.metrics})
    if metric not in available:
        raise UserError(f"--metric: no run has {metric!r}; available: {', '.join(available)}")


def check_key(records: Sequence[RunRecord], key: str, option: str) -> None:
    """Raise UserError naming ``option`` if no run's config has ``key`` or it is a whole section."""
    values = [r.get_config(key) for r in records]
    if all(v is None for v in values):
        varying = varying_keys(records)
        hint = f"keys that vary across these runs: {', '.join(varying)}" if varying else "no key varies"
        raise UserError(f"{option}: no run has config key {key!r}; {hint} (any dotted config key works)")
    section = next((v for v in values if isinstance(v, dict)), None)
    if section is not None:
        example = f" (e.g. {key}.{next(iter(section))})" if section else ""
        raise UserError(f"{option}: {key!r} is a section of the config, not a key{example}")


def varying_keys(records: Sequence[RunRecord]) -> list[str]:
    """Dotted config keys whose value differs between some of ``records`` (``seed`` first)."""
    return _keys_varying_within([_flat(r) for r in records])


def _flat(record: RunRecord) -> dict[str, str]:
    """The run's config as dotted key -> comparable text, without where it is written."""
    return {
        k: json.dumps(v, sort_keys=True, default=str)
        for k, v in flatten_config(record.config).items()
        if not any(k == ig or k.startswith(f"{ig}.") for ig in IGNORED_KEYS if ig != "seed")
    }


def _keys_varying_within(configs: Sequence[dict[str, str]]) -> list[str]:
    keys = {k for c in configs for k in c}
    varying = {k for k in keys if len({c.get(k) for c in configs}) > 1}
    return sorted(varying, key=lambda k: (k != "seed", k))


def _pooled_keys(records: Sequence[RunRecord], cells: Any, shown: set[str]) -> list[str]:
    flat = [_flat(r) for r in records]
    pooled: set[str] = set()
    for runs in cells:
        pooled.update(_keys_varying_within([flat[i] for i in runs]))
    pooled = {k for k in pooled if not any(k == s or k.startswith(f"{s}.") for s in shown)}
    return sorted(pooled, key=lambda k: (k != "seed", k))


def hashable(value: Any) -> Any:
    """A config value usable as a dict key: a list becomes a tuple."""
    return tuple(value) if isinstance(value, list) else value


def is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _display_order(values: Sequence[Any]) -> list[Any]:
    """Distinct values: numbers ascending; otherwise in order of first appearance; absent (None) last."""
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if distinct and all(is_number(v) for v in distinct):
        distinct.sort()
    return distinct + ([None] if None in values else [])


# ---- rendering ----


def show_value(value: Any) -> str:
    """A row or column value as a cell: lists joined by commas, an absent key as ``n/a``."""
    if value is None:
        return MISSING
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def format_cell(cell: Cell | None, fmt: NumberFormat) -> str:
    """``0.9123 ± 0.0040 (3)``; ``0.9123 (1)`` for one run; ``n/a`` for no run or no value."""
    if cell is None or cell.interval is None:
        return MISSING
    iv = cell.interval
    if iv.half_width is None:
        return f"{fmt.stat(iv.mean)} ({iv.n})"
    return f"{fmt.stat(iv.mean)} ± {fmt.stat(iv.half_width)} ({iv.n})"


def cell_format(pivot: Pivot) -> NumberFormat:
    """The decimals of the pivot's metric (see :mod:`.numbers`), from its cells' means."""
    return number_format(pivot.metric, [c.interval.mean for c in pivot.cells.values() if c.interval])


def footnote(pivot: Pivot) -> str:
    """What the cells hold, and over which keys they pool runs."""
    pooled = f"pooled over {', '.join(pivot.pooled)}" if pivot.pooled else "no other key varies within a cell"
    return f"cells: {pivot.metric}, mean ± {CONFIDENCE:.0%} CI (n runs); {pooled}"


def _grid(pivot: Pivot) -> list[list[str]]:
    """Header and body rows: the corner names the keys; a missing key gives one row or column."""
    if pivot.cols is None:
        header = [pivot.rows or "", pivot.metric]
    else:
        corner = f"{pivot.rows} \\ {pivot.cols}" if pivot.rows else pivot.cols
        header = [corner, *(show_value(c) for c in pivot.col_values)]
    fmt = cell_format(pivot)
    body = []
    for row in pivot.row_values:
        name = show_value(row) if pivot.rows else pivot.metric
        body.append([name, *(format_cell(pivot.cell(row, col), fmt) for col in pivot.col_values)])
    return [header, *body]


def render_pivot_text(pivot: Pivot, width: int | None = None) -> str:
    """Aligned text: the pivot (split into panels of columns wider than ``width``), then its footnote."""
    header, *body = _grid(pivot)
    return "\n".join([*align_columns([[header], body], width), "", *wrap(footnote(pivot), width)]) + "\n"


def render_pivot_markdown(pivot: Pivot) -> str:
    """A GitHub-flavoured Markdown table (values right-aligned), then the footnote in italics."""
    header, *body = _grid(pivot)
    sep = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in [header, sep, *body]]
    return "\n".join([*lines, "", f"_{footnote(pivot)}_"]) + "\n"


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def pivot_to_dict(pivot: Pivot) -> dict[str, Any]:
    """The pivot as plain data, full precision: one entry per cell that holds runs."""
    cells = []
    for row in pivot.row_values:
        for col in pivot.col_values:
            cell = pivot.cell(row, col)
            if cell is None:
                continue
            iv = cell.interval
            cells.append(
                {
                    "row": _json_value(row),
                    "col": _json_value(col),
                    "runs": [pivot.labels[i] for i in cell.runs],
                    "n": iv.n if iv else 0,
                    "mean": _number(iv.mean) if iv else None,
                    "half_width": _number(iv.half_width) if iv else None,
                    "low": _number(iv.low) if iv else None,
                    "high": _number(iv.high) if iv else None,
                }
            )
    return {
        "metric": pivot.metric,
        "rows": pivot.rows,
        "cols": pivot.cols,
        "row_values": [_json_value(v) for v in pivot.row_values],
        "col_values": [_json_value(v) for v in pivot.col_values],
        "confidence": CONFIDENCE,
        "pooled": pivot.pooled,
        "cells": cells,
    }


def render_pivot_json(pivot: Pivot) -> str:
    """JSON with full-precision numbers; see :func:`pivot_to_dict`."""
    return json.dumps(pivot_to_dict(pivot), indent=2, allow_nan=False) + "\n"


def render_pivot_csv(pivot: Pivot) -> str:
    """One CSV table, one line per cell: the row and column values, then the metric's n, mean,
    CI half-width and bounds (full precision; empty where missing) and the keys pooled over."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [k for k in (pivot.rows, pivot.cols) if k]
    writer.writerow([*keys, "metric", "n", "mean", "half_width", "low", "high", "pooled_over"])
    pooled = " ".join(pivot.pooled)
    for cell in pivot_to_dict(pivot)["cells"]:
        where = ([show_value(hashable(cell["row"]))] if pivot.rows else []) + (
            [show_value(hashable(cell["col"]))] if pivot.cols else []
        )
        numbers = [cell[k] for k in ("mean", "half_width", "low", "high")]
        writer.writerow(
            [*where, pivot.metric, cell["n"], *("" if v is None else repr(v) for v in numbers), pooled]
        )
    return out.getvalue()


_RENDERERS: dict[str, Callable[[Pivot], str]] = {
    "markdown": render_pivot_markdown,
    "json": render_pivot_json,
    "csv": render_pivot_csv,
}


def render_pivot(pivot: Pivot, fmt: str, width: int | None = None) -> str:
    """Render ``pivot`` as one of the comparison's formats (table, markdown, json, csv); ``width``
    limits the lines of the table format (None or 0: no limit)."""
    if fmt == "table":
        return render_pivot_text(pivot, width)
    try:
        return _RENDERERS[fmt](pivot)
    except KeyError:
        choices = ", ".join(["table", *_RENDERERS])
        raise ValueError(f"unknown format {fmt!r}; choose one of: {choices}") from None
