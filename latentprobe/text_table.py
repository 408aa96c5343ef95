"""Plain-text tables for the terminal: the first column left-aligned, the others right-aligned.

A table wider than the width asked for is split into panels of columns that fit, one under the other,
each repeating the first column (the row names), as pandas prints a wide frame.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

GAP = "  "


def align_columns(
    blocks: list[list[list[str]]], width: int | None = None, spans: Sequence[int] | None = None
) -> list[str]:
    """Lines of the rows of every block, aligned to shared column widths, a rule between blocks.

    Args:
        blocks: groups of rows (lists of cells); every row has the same number of cells.
        width: the most characters a line may take; a wider table is split into panels of columns,
            separated by a blank line, each starting with the first column. None or 0: no limit.
        spans: how many columns (after the first) stay together in one panel, in order, e.g. a run's
            value and its difference; the default keeps every column on its own.

    Returns:
        One string per row and per rule (and a blank line between panels), trailing spaces removed.
    """
    rows = [row for block in blocks for row in block]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines: list[str] = []
    for panel in _panels(widths, width, spans):
        if lines:
            lines.append("")
        lines += _render([[[row[0], *(row[i] for i in panel)] for row in block] for block in blocks])
    return lines


def _panels(widths: list[int], width: int | None, spans: Sequence[int] | None) -> list[list[int]]:
    """The column indices (after the first) of each panel: as many whole spans as fit in ``width``."""
    columns = list(range(1, len(widths)))
    spans = list(spans) if spans is not None else [1] * len(columns)
    if sum(spans) != len(columns):
        raise ValueError(f"spans {spans} do not cover the {len(columns)} columns after the first")
    units, start = [], 1
    for size in spans:
        units.append(list(range(start, start + size)))
        start += size
    if not width:
        return [columns] if columns else [[]]
    panels: list[list[int]] = []
    used = widths[0]
    for unit in units:
        need = sum(len(GAP) + widths[i] for i in unit)
        if panels and used + need <= width:
            panels[-1] += unit
            used += need
        else:
            panels.append(list(unit))
            used = widths[0] + need
    return panels or [[]]


def _render(blocks: list[list[list[str]]]) -> list[str]:
    rows = [row for block in blocks for row in block]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = GAP.join("-" * w for w in widths)
    lines: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            lines.append(rule)
        for row in block:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
            lines.append(GAP.join(cells).rstrip())
    return lines


def wrap(text: str, width: int | None, indent: str = "  ") -> list[str]:
    """``text`` as lines of at most ``width`` characters (None or 0: one line), later lines indented."""
    if not width:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
