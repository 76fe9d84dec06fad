"""normlab_book.tables: the HTML parsed back with the standard library's parser."""

from html.parser import HTMLParser

import pytest

from normlab_book.claims import mean_interval
from normlab_book.tables import interval_text, table_html


class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.rows[-1].append("")
            self.tags.append(tag)

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_table_html_round_trips_and_escapes():
    p = Cells()
    p.feed(table_html(["a", "b<c>"], [[1, "x & y"], [0.5, "<script>"]]))
    assert p.rows == [["a", "b<c>"], ["1", "x & y"], ["0.5", "<script>"]]
    assert p.tags[:2] == ["th", "th"] and set(p.tags[2:]) == {"td"}
    assert "<script>" not in table_html(["h"], [["<script>"]])


def test_table_html_refuses_ragged_rows():
    with pytest.raises(ValueError, match="2 cells"):
        table_html(["a", "b"], [[1, 2], [3]])


def test_interval_text():
    iv = mean_interval([0.5, 0.7])   # t interval with 1 degree of freedom: 0.6 +- 12.706 * 0.1
    assert interval_text(iv) == f"0.600 [{0.6 - 12.706205 * 0.1:.3f}, {0.6 + 12.706205 * 0.1:.3f}]"
    assert interval_text(iv, ".1f") == "0.6 [-0.7, 1.9]"
