"""Plain-text tables for the terminal: the first column left-aligned, the others right-aligned."""

from __future__ import annotations


def align_columns(blocks: list[list[list[str]]]) -> list[str]:
    """Lines of the rows of every block, aligned to shared column widths, a rule between blocks.

    Args:
        blocks: groups of rows (lists of cells); every row has the same number of cells.

    Returns:
        One string per row and per rule, trailing spaces removed.
    """
    rows = [row for block in blocks for row in block]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = "  ".join("-" * w for w in widths)
    lines: list[str] = []
    for i, block in enumerate(blocks):
        if i:
            lines.append(rule)
        for row in block:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
    return lines
