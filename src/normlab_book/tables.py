"""normlab_book.tables: small tables of measured values, rendered in a chapter's page."""

from __future__ import annotations

import html
from typing import Sequence


def table_html(header: Sequence, rows: Sequence[Sequence]) -> str:
    """The HTML of a table: ``header`` and ``rows`` of cells (any values, shown with ``str``
    and escaped). Every row needs as many cells as the header."""
    width = len(header)
    if any(len(r) != width for r in rows):
        raise ValueError(f"every row needs {width} cells (the header's), got rows of "
                         f"{sorted({len(r) for r in rows})} cells")

    def row(tag, cells):
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    return ("<table class='table'><thead>" + row("th", header) + "</thead><tbody>"
            + "".join(row("td", r) for r in rows) + "</tbody></table>")


def html_table(header: Sequence, rows: Sequence[Sequence]) -> None:
    """Display :func:`table_html` in the notebook's output."""
    from IPython.display import HTML, display

    display(HTML(table_html(header, rows)))


def interval_text(iv, fmt: str = ".3f") -> str:
    """``"mean [low, high]"`` of a :class:`normlab_book.claims.Interval`, for a table cell."""
    return f"{iv.mean:{fmt}} [{iv.low:{fmt}}, {iv.high:{fmt}}]"
