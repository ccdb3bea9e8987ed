"""Server-drawn SVG charts and the console's formats (numident.web.console.charts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from numident.operator.console_figures import answer_buckets, hidden
from numident.web.console.charts import bar_chart, duration, row_chart, when


def heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', svg)]


def test_bars_are_drawn_to_scale_on_an_axis_with_a_round_top() -> None:
    """5 and 10 on an axis to 10: the second bar is twice the first, the top label 10."""
    svg = str(bar_chart([("a", 5), ("b", 10), ("c", 0)], label="Requests"))
    first, second, third = heights(svg)
    assert (second / first, third) == (2.0, 0.0)
    assert '<svg class="chart" viewBox="0 0 640 180" role="img" aria-label="Requests"' in svg
    labels = re.findall(r'<text class="axis"[^>]*text-anchor="end">([^<]+)</text>', svg)
    assert labels == ["0", "5", "10"]
    assert "<title>b: 10</title>" in svg


def test_an_axis_of_7_ends_at_10_and_an_empty_chart_at_1() -> None:
    seven = str(bar_chart([("a", 7)], label="x"))
    assert heights(seven) == [round(124 * 0.7, 1)]
    assert heights(str(bar_chart([("a", 0)], label="x"))) == [0.0]


def test_rows_are_drawn_to_scale_with_their_names_and_figures() -> None:
    svg = str(row_chart([("identified", 4), ("reidentification_required", 1)],
                        label="Accounts by state", unit=" accounts"))
    widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]* width="([\d.]+)"', svg)]
    assert widths[0] / widths[1] == 4.0
    assert "<title>reidentification_required: 1 accounts</title>" in svg
    assert re.findall(r'text-anchor="end">([^<]+)</text>', svg) == [
        "identified", "reidentification_required"]


def test_names_and_labels_are_escaped() -> None:
    svg = str(bar_chart([("<b>", 1)], label='"x" & <y>', unit=" <u>"))
    assert "<b>" not in svg
    assert "&lt;b&gt;: 1 &lt;u&gt;</title>" in svg
    assert 'aria-label="&quot;x&quot; &amp; &lt;y&gt;"' in svg


def test_the_answer_time_histogram_ends_at_the_deadline() -> None:
    assert answer_buckets(1200) == (
        [1, 10, 60, 300, 900, 1200],
        ["< 1 s", "1 s-10 s", "10 s-1 min", "1 min-5 min", "5 min-15 min", "15 min-20 min",
         "late (> 20 min)"])
    assert answer_buckets(5) == ([1, 5], ["< 1 s", "1 s-5 s", "late (> 5 s)"])


def test_formats() -> None:
    assert when(datetime(2026, 12, 1, 12, 5, 9, 900, tzinfo=UTC)) == "2026-12-01 12:05:09 UTC"
    assert when(None) == ""
    assert [duration(s) for s in (0.25, 12.34, 245, -70)] == [
        "250 ms", "12.3 s", "4 min 05 s", "-1 min 10 s"]
    assert duration(timedelta(minutes=14)) == "14 min 00 s"
    assert hidden("+79161234567") == "+7916•••4567"
