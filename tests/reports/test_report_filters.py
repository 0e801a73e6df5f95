"""The filter UI's markup: escaped data attributes on every filterable element, the bar, the script."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pandas as pd
from report_data import FACTS, RUN_INFO, make_row, synthetic_results

from reports.filters import FILTER_SCRIPT, data_attrs, filter_bar
from reports.html import render_report
from reports.sections.base import RESULT_COLUMNS, ReportContext
from reports.sections.pareto import ParetoSection

EVIL_DEVICE = "<script>alert('d')</script>"
EVIL_RUNTIME = 'ort" onmouseover="alert(1)'
EVIL_MODEL = "m & <b>'x'</b>"


class Attrs(HTMLParser):
    """Every element's decoded attributes, as a browser's DOM would hand them to the script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def evil_ctx() -> ReportContext:
    evil = pd.DataFrame([
        make_row(device=EVIL_DEVICE, model=EVIL_MODEL, variant="fp32", runtime=EVIL_RUNTIME),
        make_row(device=EVIL_DEVICE, model=EVIL_MODEL, variant="int8", runtime="ort", p50_ms=4.0, accuracy=0.7),
        make_row(device=EVIL_DEVICE, model=EVIL_MODEL, variant="bad", runtime="ort", status="failed", error="e"),
    ], columns=list(RESULT_COLUMNS))  # fmt: skip
    return ReportContext(pd.concat([synthetic_results(), evil], ignore_index=True), RUN_INFO, FACTS)


def test_data_attrs_escape_and_round_trip() -> None:
    text = data_attrs(device=EVIL_DEVICE, model=EVIL_MODEL, runtimes=[EVIL_RUNTIME, "ort", "ort"])
    for raw in (EVIL_DEVICE, EVIL_RUNTIME, EVIL_MODEL, "<", "'x'"):
        assert raw not in text
    scan = Attrs()
    scan.feed(f"<div{text}></div>")
    (_, attrs), = scan.elements
    assert attrs["data-device"] == EVIL_DEVICE and attrs["data-model"] == EVIL_MODEL
    assert json.loads(attrs["data-runtimes"]) == sorted([EVIL_RUNTIME, "ort"])  # what the script parses
    assert data_attrs() == ""


def test_filter_bar_lists_only_real_choices_escaped() -> None:
    bar = filter_bar({"device": [EVIL_DEVICE, "pi", "pi"], "runtime": ["ort"], "model": []})
    assert 'data-dim="device"' in bar and 'data-dim="runtime"' not in bar and 'data-dim="model"' not in bar
    assert EVIL_DEVICE not in bar and f'value="{html.escape(EVIL_DEVICE)}"' in bar
    assert bar.count('type="checkbox"') == 2 and bar.count(" checked>") == 2
    assert filter_bar({"device": ["only"]}) == ""


def test_every_chart_and_row_is_filterable_and_every_name_escaped() -> None:
    page = render_report(evil_ctx())
    for raw in (EVIL_DEVICE, EVIL_RUNTIME, EVIL_MODEL):
        assert raw not in page
    scan = Attrs()
    scan.feed(page)
    charts = [a for tag, a in scan.elements if tag == "div" and "chart" in (a.get("class") or "").split()]
    assert len(charts) == page.count('class="plotly-graph-div"') > 0
    assert all(a.get("data-device") and a.get("data-model") and a.get("data-runtimes") for a in charts)
    evil_charts = [a for a in charts if a["data-device"] == EVIL_DEVICE]
    assert evil_charts and all(a["data-model"] == EVIL_MODEL for a in evil_charts)
    assert {r for a in evil_charts for r in json.loads(a["data-runtimes"])} == {EVIL_RUNTIME, "ort"}
    rows = [a for tag, a in scan.elements if tag == "tr" and a.get("data-runtime") is not None]
    assert sum(a["data-runtime"] == EVIL_RUNTIME for a in rows) == 1  # its results row
    boxes = {(a["data-dim"], a["value"]) for tag, a in scan.elements if tag == "input" and a.get("data-dim")}
    assert {("device", EVIL_DEVICE), ("runtime", EVIL_RUNTIME), ("model", EVIL_MODEL)} <= boxes
    # One filter script, after the figures; no script elements beyond plotly's and the figures'.
    assert page.count(FILTER_SCRIPT) == 1 and page.index(FILTER_SCRIPT) > page.rindex("Plotly.newPlot")
    assert len(re.findall(r"<script\b", page)) == 2 + page.count('class="plotly-graph-div"')


def test_traces_carry_their_runtime_for_the_filter() -> None:
    for fig in ParetoSection().render(evil_ctx()).figures:
        roles = [(t.meta or {}).get("role") for t in fig.data]
        assert roles[-1] == "front-all" and roles.count("front-all") == 1
        runtimes = {t.meta["runtime"] for t in fig.data if t.meta.get("role") == "points"}
        fronts = [t for t in fig.data if t.meta.get("role") == "front"]
        # A front per runtime when the chart has several, hidden until asked for.
        assert {t.meta["runtime"] for t in fronts} == (runtimes if len(runtimes) > 1 else set())
        assert all(t.visible == "legendonly" for t in fronts)
        rings = [t for t in fig.data if t.meta.get("role") == "ring"]
        assert sum(bool(t.showlegend) for t in rings) == (1 if rings else 0)


def test_no_filter_bar_without_filterable_content() -> None:
    page = render_report(ReportContext(synthetic_results(), RUN_INFO, FACTS), sections=["facts"])
    assert 'id="eh-filters"' not in page and "<script" not in page
