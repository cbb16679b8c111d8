"""The one plain-text table formatter (results printed by ``lgrad test``, ``baselines`` ...)."""

from __future__ import annotations


def percent(value) -> str:
    """A fraction as a percentage with two decimals; ``-`` for a missing value (``None``)."""
    return "-" if value is None else f"{100 * value:.2f}"


def text_table(header, rows, *, rule: bool = True) -> str:
    """Columns aligned by padding each cell to its column's width, two spaces apart.

    Args:
        header: the column names.
        rows: lists of cells (converted with ``str``).
        rule: a line of dashes under the header.
    """
    lines = [[str(cell) for cell in line] for line in [list(header), *rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    if rule:
        text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)
