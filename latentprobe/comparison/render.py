"""Rendering a comparison :class:`~latentprobe.comparison.table.Table` in each of ``FORMATS``.

A comparison holds up to three tables (``TABLES``): ``runs`` (each run's config and metrics, and, for
single runs of different experiments, each later run's difference to the first), ``groups`` (mean ±
95% CI per metric of each group of runs differing only by seed) and ``comparisons`` (each later group
against the first, paired by seed: mean difference ± 95% CI, paired t-test). The last two exist when
some group holds several seeds.

``table`` (aligned text, at most ``width`` characters a line: wider tables are split into panels of
columns) and ``markdown`` print every table for reading, each metric with fixed decimals
(:mod:`.numbers`); the paired comparisons leave out the metrics that are equal in every pair and name
them below. ``json`` (:mod:`.export`) holds every table in full precision; ``csv`` is one table, the runs
by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from latentprobe.comparison import export
from latentprobe.comparison.groups import Comparison, Group
from latentprobe.comparison.numbers import MISSING, format_p
from latentprobe.comparison.statistics import ALPHA, CONFIDENCE
from latentprobe.comparison.table import Table
from latentprobe.errors import UserError
from latentprobe.text_table import align_columns, wrap

FORMATS = ("table", "markdown", "json", "csv")
TABLES = export.TABLES

#: The default line width of the ``table`` format.
WIDTH = 100


@dataclass
class Section:
    """One table as the text and Markdown renderers lay it out.

    Attributes:
        header: the header row; its first cell is empty in text (Markdown names the blocks there).
        blocks: ``(name, rows)``: rows between rules in text; a Markdown table each, ``name`` in the
            header's first cell.
        before, after: lines of prose above and below the table.
        spans: columns after the first that stay together when the text is split into panels.
    """

    header: list[str]
    blocks: list[tuple[str, list[list[str]]]]
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    spans: list[int] | None = None


def show_config(value: Any) -> str:
    """A config value as a cell: lists joined by commas, an absent key as ``n/a``."""
    if value is None:
        return MISSING
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


# ---- the runs ----


def _runs_section(table: Table) -> Section:
    """Each run's config and metrics; each later run's difference to the first where it means
    something (see ``Table.shows_differences``)."""
    diffs = table.shows_differences
    header = [""]
    for i, label in enumerate(table.labels):
        header += [label, "diff"] if diffs and i else [label]
    spans = [1] + [2] * (len(table.records) - 1) if diffs else None
    before = []
    fields = table.config_fields
    if len(table.records) > 1:
        values = {k: {show_config(r.get_config(k)) for r in table.records} for k in fields}
        same = [k for k in fields if len(values[k]) == 1]
        if same:
            before.append("same in every run: " + ", ".join(f"{k}={values[k].pop()}" for k in same))
        fields = [k for k in fields if k not in same]
    if diffs:
        before.append(f"diff: the run to its left minus the first run, {table.labels[0]}")
    config_rows = []
    for key in fields:
        cells = [show_config(table.records[0].get_config(key))]
        for record in table.records[1:]:
            cells += [show_config(record.get_config(key))] + ([""] if diffs else [])
        config_rows.append([key, *cells])
    metric_rows = []
    for name in table.metrics:
        fmt = table.format(name)
        cells = [fmt.value(table.value(name, 0))]
        for run in range(1, len(table.records)):
            cells.append(fmt.value(table.value(name, run)))
            if diffs:
                cells.append(fmt.value(table.diff_to_first(name, run), signed=True))
        metric_rows.append([name, *cells])
    blocks = [("config", config_rows)] if config_rows else []
    return Section(header, [*blocks, ("metric", metric_rows)], before, spans=spans)


# ---- the groups ----


def _interval(table: Table, group: Group, metric: str) -> str:
    """``mean ± half-width``, the mean alone for one run, ``(n=k)`` where fewer runs than the group
    has seeds hold the metric."""
    interval = group.interval(metric)
    if interval is None:
        return MISSING
    fmt = table.format(metric)
    text = fmt.stat(interval.mean)
    if interval.half_width is not None:
        text += f" ± {fmt.stat(interval.half_width)}"
    if interval.n != len(group.runs):
        text += f" (n={interval.n})"
    return text


def _groups_section(table: Table) -> Section:
    groups = table.groups
    config_rows = [
        [key, *(show_config(g.config.get(key)) for g in groups)] for key in export.group_keys(groups)
    ] + [["seeds", *(",".join(str(s) for s in g.seeds) for g in groups)]]
    metric_rows = [[name, *(_interval(table, g, name) for g in groups)] for name in table.metrics]
    title = f"groups of runs differing only by seed: mean ± {CONFIDENCE:.0%} CI over seeds (t-distribution)"
    header = ["", *(f"{g.name} (n={len(g.runs)})" for g in groups)]
    return Section(header, [("group", config_rows), ("metric", metric_rows)], [title])


# ---- the paired comparisons ----


def _unchanged(test: Any) -> bool:
    """Every paired difference is zero (a control that does not depend on what the groups vary)."""
    d = test.difference
    return d.mean == 0 and not d.half_width


def shown_diff(c: Comparison) -> dict[str, tuple[Any, Any]]:
    """The config keys in which a comparison's groups differ, leaving out a variant's own block that
    only one of them has (``model.kind`` already says so); all of them if that leaves none."""
    both = {k: ab for k, ab in c.config_diff.items() if None not in ab}
    return both or c.config_diff


def _comparison_section(table: Table, c: Comparison) -> Section:
    seeds = ",".join(str(s) for s in c.seeds) or "none"
    diff = ", ".join(f"{k} {show_config(a)} -> {show_config(b)}" for k, (a, b) in shown_diff(c).items())
    before = [
        f"{c.b.name} - {c.a.name}, paired by seed ({seeds}): mean difference ± {CONFIDENCE:.0%} CI, "
        f"paired t-test (significant: p < {ALPHA})",
        f"config diff {c.a.name} -> {c.b.name}: {diff or 'none'}",
    ]
    rows, unchanged = [], []
    for name in table.metrics:
        test = c.tests.get(name)
        if test is None:
            continue
        if _unchanged(test):
            unchanged.append(name)
            continue
        fmt, d = table.format(name), test.difference
        diff = fmt.stat(d.mean, signed=True)
        if d.half_width is not None:
            diff += f" ± {fmt.stat(d.half_width)}"
        rows.append([name, str(test.n), diff, format_p(test.p_value), "yes" if test.significant else "no"])
    after = [f"equal in every pair (not shown): {', '.join(unchanged)}"] if unchanged else []
    if not c.tests:
        after = ["no seed in common: nothing to pair"]
    header = ["metric", "pairs", f"difference ± {CONFIDENCE:.0%} CI", "p-value", "significant"]
    return Section(header, [("metric", rows)] if rows else [], before, after)


def sections(table: Table, which: str | None = None) -> list[Section]:
    """The sections of ``table``: every one, or only ``which`` of ``TABLES``."""
    out = []
    if which in (None, "runs"):
        out.append(_runs_section(table))
    if table.has_seed_groups and which in (None, "groups"):
        out.append(_groups_section(table))
    if table.has_seed_groups and which in (None, "comparisons"):
        out += [_comparison_section(table, c) for c in table.comparisons]
    return out


# ---- text and Markdown ----


def render_text(table: Table, which: str | None = None, width: int | None = WIDTH) -> str:
    """Aligned plain text for a terminal, no line longer than ``width`` (None or 0: no limit) where the
    row names and one column fit."""
    if not table.records:
        return "no runs to compare\n"
    lines: list[str] = []
    for section in sections(table, which):
        if lines:
            lines.append("")
        for line in section.before:
            lines += wrap(line, width)
        if section.header[0]:  # the header names the one block's column: no rule under it
            blocks = [[section.header, *rows] for _, rows in section.blocks]
        else:
            blocks = [[section.header]] + [rows for _, rows in section.blocks]
        if section.blocks:
            lines += align_columns(blocks, width, section.spans)
        for line in section.after:
            lines += wrap(line, width)
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(table: Table, which: str | None = None) -> str:
    """GitHub-flavoured Markdown: per section its prose, then a table per block (numbers right-aligned)."""
    if not table.records:
        return "_no runs to compare_\n"
    parts: list[str] = []
    for section in sections(table, which):
        if parts:
            parts.append("")
        for i, line in enumerate(section.before):
            parts += [f"**{line}**" if i == 0 else line, ""]  # the first line titles the section
        for i, (name, rows) in enumerate(section.blocks):
            if i:
                parts.append("")
            header = [name if section.header[0] == "" else section.header[0], *section.header[1:]]
            right = "---:" if name == "metric" else "---"
            parts += [_md_row(header), _md_row(["---"] + [right] * (len(header) - 1))]
            parts += [_md_row(row) for row in rows]
        for line in section.after:
            parts += ["", line]
    return "\n".join(parts) + "\n"


# ---- every format ----


def check_table_option(table: Table, which: str | None, fmt: str) -> str | None:
    """The table ``--table`` picks for format ``fmt`` (csv: ``runs`` unless given).

    Raises:
        UserError: naming ``--table``: an unknown table, json (it holds every table), or groups or
            comparisons where no group holds several seeds.
    """
    if which is None:
        return "runs" if fmt == "csv" else None
    if which not in TABLES:
        raise UserError(f"--table: unknown table {which!r} (expected one of: {', '.join(TABLES)})")
    if fmt == "json":
        raise UserError("--table: json holds every table; pick one with --format table, markdown or csv")
    if which != "runs" and not table.has_seed_groups:
        raise UserError(
            f"--table {which}: no group of these runs holds more than one seed (runs that differ only by "
            "seed form a group); only the runs table exists"
        )
    return which


def render(table: Table, fmt: str, which: str | None = None, width: int | None = WIDTH) -> str:
    """Render ``table`` as one of ``FORMATS``.

    Args:
        which: one of ``TABLES``, or None for every table (csv: the runs); see :func:`check_table_option`.
        width: the longest line of the ``table`` format (None or 0: no limit).

    Raises:
        ValueError: for an unknown format, listing the valid ones.
    """
    if fmt == "table":
        return render_text(table, which, width)
    if fmt == "markdown":
        return render_markdown(table, which)
    if fmt == "json":
        return export.render_json(table)
    if fmt == "csv":
        return export.render_csv(table, which or "runs")
    raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
