"""console/charts.py: SVG out of numbers. Each chart is parsed as XML and measured."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from console import charts
from console.charts import Series

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)        # well-formed, or this raises


def bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//s:rect[@class='bar']", NS)


def test_nice_steps_and_axis_tops():
    assert [charts.nice_step(x) for x in (4, 10, 37, 0.03, 900)] == [1, 2.5, 10, 0.01, 250]
    assert charts.scale_top(7) == (8, 2)
    assert charts.scale_top(10) == (10, 2.5)
    assert charts.scale_top(0.011) == pytest.approx((0.015, 0.005))
    # counts: whole steps, never 0.25 of a question
    assert [charts.scale_top(x, whole=True) for x in (1, 3, 7, 10, 23)] == [(1, 1), (3, 1), (8, 2), (10, 5), (30, 10)]


def test_stacked_bars_stack_each_day_in_proportion():
    svg = charts.stacked_bars(["2024-05-01", "2024-05-02"],
                              [Series("answered", [3, 6], "#2f9e63"), Series("refused", [1, 0], "#d64545")],
                              title="Questions per day")
    root = parse(svg)
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
    assert root.find("s:title", NS).text == "Questions per day"
    drawn = bars(root)
    assert [(b.get("data-series"), b.get("data-value")) for b in drawn] == [
        ("answered", "3"), ("refused", "1"), ("answered", "6")]       # a zero draws nothing
    heights = [float(b.get("height")) for b in drawn]
    assert heights[0] == pytest.approx(3 * heights[1], rel=0.02)
    assert heights[2] == pytest.approx(2 * heights[0], rel=0.02)
    # the day's segments sit on each other: refused starts where answered ends
    assert float(drawn[1].get("y")) + heights[1] == pytest.approx(float(drawn[0].get("y")), abs=0.11)
    # the tallest bar reaches the top of the axis (6, in steps of 2)
    plot_h = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert heights[2] == pytest.approx(6 / charts.scale_top(6)[0] * plot_h, abs=0.11)
    tooltips = [b.find("s:title", NS).text for b in drawn]
    assert tooltips[0] == "2024-05-01 · answered: 3"
    labels = [t.text for t in root.findall("s:text", NS)]
    assert "05-01" in labels and "answered" in labels and "refused" in labels


def test_labels_and_names_are_escaped():
    svg = charts.stacked_bars(['<script>alert("x")</script>'], [Series('a"&<b>', [1], '"red')], title="<t>")
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    assert root.find("s:title", NS).text == "<t>"
    assert bars(root)[0].get("fill") == '"red'
    assert bars(root)[0].find("s:title", NS).text == '<script>alert("x")</script> · a"&<b>: 1'


def test_no_data_is_a_message_not_an_empty_axis():
    for svg in (charts.stacked_bars([], [], title="t"), charts.stacked_bars(["d"], [Series("x", [0], "#000")], title="t"),
                charts.lines(["d"], [Series("x", [None], "#000")], title="t"),
                charts.diverging_bars(["d"], Series("u", [0], "#0f0"), Series("d", [0], "#f00"), title="t"),
                charts.range_bars([], title="t")):
        root = parse(svg)
        assert not bars(root)
        assert [t.text for t in root.findall("s:text", NS)] == ["No data in this period"]


def test_diverging_bars_put_helpful_up_and_not_helpful_down():
    root = parse(charts.diverging_bars(["2024-05-01", "2024-05-02"], Series("helpful", [4, 2], "#0a0"),
                                       Series("not helpful", [1, 0], "#a00"), title="votes"))
    drawn = {(b.get("data-series"), b.get("data-value")): b for b in bars(root)}
    mid = charts.TOP + (charts.HEIGHT - charts.TOP - charts.BOTTOM) / 2
    up, down = drawn[("helpful", "4")], drawn[("not helpful", "1")]
    assert float(up.get("y")) + float(up.get("height")) == pytest.approx(mid, abs=0.11)
    assert float(down.get("y")) == pytest.approx(mid, abs=0.11)
    assert float(up.get("height")) == pytest.approx(4 * float(down.get("height")), rel=0.03)
    assert ("not helpful", "0") not in drawn


def test_lines_break_at_missing_values():
    root = parse(charts.lines(["a", "b", "c", "d", "e"], [Series("rate", [0.1, 0.2, None, 0.4, 0.5], "#b70")],
                              title="share", fmt=charts.percent, top=1.0))
    polylines = root.findall("s:polyline", NS)
    assert [len(p.get("points").split()) for p in polylines] == [2, 2]
    points = root.findall("s:circle", NS)
    assert [p.get("data-value") for p in points] == ["0.1", "0.2", "0.4", "0.5"]
    ys = [float(p.get("cy")) for p in points]
    assert ys == sorted(ys, reverse=True)                                  # higher values, higher up
    assert points[0].find("s:title", NS).text == "a · rate: 10%"
    assert "100%" in [t.text for t in root.findall("s:text", NS)]          # the fixed top of a rate


def test_range_bars_show_p50_inside_p95_per_stage():
    root = parse(charts.range_bars([("retrieval", 80.0, 120.0), ("generation", 900.0, 2400.0), ("slack_post", None, None)],
                                   title="latency"))
    drawn = bars(root)
    by = {(b.find("s:title", NS).text.split(" · ")[0], b.get("data-series")): float(b.get("width")) for b in drawn}
    assert set(by) == {("retrieval", "p95"), ("retrieval", "p50"), ("generation", "p95"), ("generation", "p50")}
    assert by[("generation", "p50")] < by[("generation", "p95")]
    assert by[("generation", "p95")] == pytest.approx(20 * by[("retrieval", "p95")], rel=0.01)
    texts = [t.text for t in root.findall("s:text", NS)]
    assert "900 ms / 2.40 s" in texts and "slack_post" not in texts


def test_numbers_read_well():
    assert [charts.number(v) for v in (0, 3, 1500, 2.5, 0.0125)] == ["0", "3", "1\u202f500", "2.5", "0.0125"]
    assert charts.milliseconds(950) == "950 ms" and charts.milliseconds(1500) == "1.50 s"
    assert charts.money(0.00123) == "0.0012" and charts.percent(0.25) == "25%"


def test_charts_use_presentation_attributes_only():
    """The console's CSP allows no inline styles: no style attribute and no <style> element."""
    svg = charts.stacked_bars(["d"], [Series("x", [1], "#000")], title="t") + charts.range_bars([("s", 1, 2)], title="t")
    assert not re.search(r"\bstyle\s*=|<style", svg)
