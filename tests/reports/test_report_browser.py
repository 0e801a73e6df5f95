"""Open the report in a real headless Chromium, offline, and check every figure was drawn.

Why a browser: string checks prove plotly.js is in the file, not that it runs from a
``file://`` URL with no network. ``--dump-dom`` serialises the DOM after scripts ran, so a
figure that plotly.js drew contains ``<svg class="main-svg">`` and one that failed is an
empty div. The hostile names also show plotly renders our escaped text as plain text.

The dashboard tests drive the page over the DevTools protocol (``cdp.Browser``): they hear
the page's own console (no Chromium start-up noise), tick the filters the way a reader
does, read back which charts, rows and plotly traces are hidden, and save a full-page
screenshot into ``$EH_TEST_ARTIFACTS`` (default: the test's tmp dir); the path is printed
and recorded as the test's ``screenshot`` property (JUnit XML).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import pytest
from cdp import Browser
from history_data import CONFIGS, EVIL_DEVICE, TAG, fill_store
from report_data import FACTS, RUN_INFO, make_row, synthetic_results
from v4_data import BOARDS, EVIL_NOTE, NOISY_REASON, UNSTABLE_REASON, fill_v4_store

from harness.cli import main as harness_main
from harness.store import open as open_store
from reports import load_context
from reports.budget import Budget
from reports.html import write_report
from reports.sections.base import RESULT_COLUMNS, ReportContext
from reports.sections.trends import CANARY_TITLE

CHROMIUM = "/usr/bin/chromium"
EVIL_MODEL = "<script>alert(1)</script>"
EVIL_VARIANT = "int8 \"fast\" & 'tiny'"
# HTML void elements never get an end tag; every SVG element does in Chromium's dump.
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


class FigureScan(HTMLParser):
    """Record, for every plotly graph div, whether an ``svg.main-svg`` was drawn inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.drawn: dict[str, bool] = {}
        self._stack: list[str | None] = []  # figure id owning each open element, or None
        self.svg_text: list[str] = []
        self._in_svg_text = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        owner = self._stack[-1] if self._stack else None
        div_id = a.get("id")
        if tag == "div" and "plotly-graph-div" in classes and div_id:
            owner = div_id
            self.drawn.setdefault(div_id, False)
        if tag == "svg" and "main-svg" in classes and owner:
            self.drawn[owner] = True
        if tag in ("text", "tspan") and owner:
            self._in_svg_text += 1
        if tag not in VOID:
            self._stack.append(owner)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("text", "tspan") and self._in_svg_text:
            self._in_svg_text -= 1
        if self._stack and tag not in VOID:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_svg_text:
            self.svg_text.append(data)


def dump_dom(report: Path, profile: Path) -> str:
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
        "--dump-dom", report.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_figures_render_offline_in_chromium(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        msg = f"chromium not installed: {CHROMIUM} is missing (apt-get install chromium)"
        print(msg)
        pytest.skip(msg)
    evil = pd.DataFrame(
        [
            make_row(model=EVIL_MODEL, variant=EVIL_VARIANT, device="evil-board", runtime="ort"),
            make_row(model=EVIL_MODEL, variant="fp32", device="evil-board", runtime="ort",
                     p50_ms=20.0, accuracy=0.8, energy_mj=12.0, throttled=True),
        ],
        columns=list(RESULT_COLUMNS),
    )  # fmt: skip
    ctx = ReportContext(pd.concat([synthetic_results(), evil], ignore_index=True), RUN_INFO, FACTS)
    report = write_report(ctx, tmp_path / "report.html")
    expected = report.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    # Per (device, model): p50, p99, memory, cold start, and size where accuracy is known
    # (resnet18, the evil model); energy on the jetson and the evil board (the Pi has no
    # power sensor). jetson 6 + 5, Pi 5 + 4, evil board 6 (with a throttled ring).
    assert expected == 26

    dom = dump_dom(report, tmp_path / "profile")
    scan = FigureScan()
    scan.feed(dom)
    assert len(scan.drawn) == expected
    assert all(scan.drawn.values()), (
        f"figures not drawn: {[k for k, v in scan.drawn.items() if not v]}"
    )
    assert dom.count('class="main-svg"') >= expected
    # plotly drew our escaped strings as literal text, decoded back to the original...
    text = "".join(scan.svg_text)
    assert EVIL_MODEL in text and EVIL_VARIANT in text
    # ...and no script element was created from them.
    assert EVIL_MODEL not in dom


# -- the dashboard, driven over the DevTools protocol ---------------------------------

#: Everything the tests read back from the page, in one round trip.
STATE_JS = """(() => {
  const meta = (t) => t.meta || {};
  const charts = [...document.querySelectorAll("div.chart")].map((c) => {
    const gd = c.querySelector(".js-plotly-plot");
    return {device: c.dataset.device, model: c.dataset.model, hidden: c.hidden,
            runtimes: JSON.parse(c.dataset.runtimes), section: c.closest("section").id,
            drawn: !!(gd && gd.querySelector("svg.main-svg")),
            traces: gd ? gd.data.map((t) => ({runtime: meta(t).runtime ?? null, role: meta(t).role ?? null,
                                              visible: t.visible === undefined ? true : t.visible})) : []};
  });
  const rows = [...document.querySelectorAll("tr[data-runtime]")].map((r) =>
    ({runtime: r.dataset.runtime, device: r.dataset.device, hidden: r.hidden,
      section: r.closest("section").id}));
  const status = document.getElementById("eh-filter-status");
  return {charts, rows, hash: decodeURIComponent(location.hash), status: status && status.textContent,
          scripts: document.querySelectorAll("script").length,
          figures: document.querySelectorAll(".plotly-graph-div").length};
})()"""
ALL_DRAWN_JS = (
    "[...document.querySelectorAll('.plotly-graph-div')].every((d) => d.querySelector('svg.main-svg'))"
)


def click_js(dim: str, name: str) -> str:
    """Tick or untick one filter box, found by comparing values (never by building a selector)."""
    return (f"(() => {{ const b = [...document.querySelectorAll('input[data-dim={json.dumps(dim)}]')]"
            f".find((i) => i.value === {json.dumps(name)}); b.click(); return b.checked; }})()")  # fmt: skip


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        msg = f"chromium not installed: {CHROMIUM} is missing (apt-get install chromium)"
        print(msg)
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture
def save_screenshot(tmp_path: Path, record_property: Callable[[str, object], None]) -> Callable[[Browser, str], Path]:
    """Save a full-page PNG under $EH_TEST_ARTIFACTS (default: the tmp dir), print its path."""
    root = Path(os.environ.get("EH_TEST_ARTIFACTS") or tmp_path / "artifacts")

    def save(browser: Browser, name: str) -> Path:
        path = browser.screenshot(root / name)
        assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        print(f"screenshot: {path}")
        record_property("screenshot", str(path))
        return path

    return save


def open_page(browser: Browser, url: str) -> dict[str, Any]:
    """Load ``url``, wait until plotly drew every figure, return the page state."""
    browser.navigate(url)
    browser.wait_for(ALL_DRAWN_JS, timeout=120)
    return browser.evaluate(STATE_JS)


def evil_run_ctx() -> ReportContext:
    evil = pd.DataFrame([
        make_row(model=EVIL_MODEL, variant=EVIL_VARIANT, device=EVIL_DEVICE, runtime="ort"),
        make_row(model=EVIL_MODEL, variant="fp32", device=EVIL_DEVICE, runtime="ort",
                 p50_ms=20.0, accuracy=0.8, energy_mj=12.0, throttled=True),
    ], columns=list(RESULT_COLUMNS))  # fmt: skip
    return ReportContext(pd.concat([synthetic_results(), evil], ignore_index=True), RUN_INFO, FACTS,
                         budget=Budget(latency_ms=12.0))  # fmt: skip


def visible_traces(chart: dict[str, Any], runtime: str) -> list[Any]:
    return [t["visible"] for t in chart["traces"] if t["runtime"] == runtime]


def test_run_page_filters_in_chromium(chromium: str, tmp_path: Path, save_screenshot) -> None:  # noqa: ANN001
    page = write_report(evil_run_ctx(), tmp_path / "run.html")
    n_figures = page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    with Browser(chromium, tmp_path / "profile") as browser:
        # A link that selects the hostile device: only its charts and rows stay.
        linked = open_page(browser, f"{page.as_uri()}#{urlencode({'device': EVIL_DEVICE})}")
        shown = [c for c in linked["charts"] if not c["hidden"]]
        assert shown and {c["device"] for c in shown} == {EVIL_DEVICE}
        # p50, p99, energy, memory, cold start, size
        assert len(shown) == sum(c["device"] == EVIL_DEVICE for c in linked["charts"]) == 6
        assert linked["status"] == f"6 of {len(linked['charts'])} charts shown"
        assert all(r["hidden"] == (r["device"] != EVIL_DEVICE) for r in linked["rows"])

        browser.navigate("about:blank")
        state = open_page(browser, page.as_uri())
        assert browser.console_errors() == []
        assert state["figures"] == n_figures and all(c["drawn"] for c in state["charts"])
        assert state["scripts"] == 2 + n_figures  # plotly.js, one per figure, the filters: none injected
        assert not any(c["hidden"] for c in state["charts"]) and state["hash"] == ""

        assert browser.evaluate(click_js("runtime", "openvino")) is False
        state = browser.evaluate(STATE_JS)
        assert state["hash"] == "#runtime=onnxruntime&runtime=ort"
        for chart in state["charts"]:
            assert chart["hidden"] == (chart["runtimes"] == ["openvino"])
            assert all(v is False for v in visible_traces(chart, "openvino"))
            if "openvino" in chart["runtimes"] and len(chart["runtimes"]) > 1:
                roles = {t["role"]: t["visible"] for t in chart["traces"] if t["runtime"] != "openvino"}
                front_all = next(t["visible"] for t in chart["traces"] if t["role"] == "front-all")
                assert front_all is False and roles["front"] is True and roles["points"] is True
        assert all(r["hidden"] == (r["runtime"] == "openvino") for r in state["rows"])
        assert any(r["runtime"] == "openvino" for r in state["rows"])

        browser.evaluate("document.getElementById('eh-filters-reset').click()")
        state = browser.evaluate(STATE_JS)
        assert not any(c["hidden"] for c in state["charts"]) and state["hash"] == ""
        assert all(t["visible"] is True for c in state["charts"] for t in c["traces"] if t["role"] == "front-all")
        assert browser.console_errors() == []
        save_screenshot(browser, "run-page.png")


def test_history_dashboard_in_chromium(chromium: str, tmp_path: Path, save_screenshot) -> None:  # noqa: ANN001
    db, out = tmp_path / "h.db", tmp_path / "dashboard.html"
    fill_store(db, 6, slow_from=4, fail=(5, 0))
    assert harness_main(["report", "--history", "--tag", TAG, "--store", str(db), "-o", str(out),
                         "--budget-ms", "25"]) == 0  # fmt: skip
    with Browser(chromium, tmp_path / "profile") as browser:
        state = open_page(browser, out.as_uri())
        assert browser.console_errors() == []
        assert state["figures"] == len(state["charts"]) and all(c["drawn"] for c in state["charts"])
        trends = [c for c in state["charts"] if c["section"] == "sec-trends"]
        assert sorted((c["device"], c["model"]) for c in trends) == [(EVIL_DEVICE, "resnet18"), ("orin", "resnet18")]
        # The gate's regressions (night 4, configuration 1: p50, p90 and p99) were drawn as markers.
        marks = browser.evaluate("""(() => [...document.querySelectorAll('#sec-trends .js-plotly-plot')]
            .flatMap((gd) => gd.calcdata.filter((cd) => (cd[0].trace.meta || {}).role === 'regression')
            .map((cd) => [cd[0].trace.yaxis, cd.length, Number.isFinite(cd[0].y),
                          gd.querySelector('.legend').textContent.includes('gate regression')])))()""")
        assert marks == [["y", 1, True, True], ["y2", 1, True, True], ["y3", 1, True, True]]

        assert browser.evaluate(click_js("runtime", "openvino")) is False
        state = browser.evaluate(STATE_JS)
        orin = next(c for c in state["charts"] if c["section"] == "sec-trends" and c["device"] == "orin")
        assert set(visible_traces(orin, "openvino")) == {False}
        assert set(visible_traces(orin, "onnxruntime")) == {True}
        changes = [r for r in state["rows"] if r["section"] == "sec-changes"]
        assert len(changes) == len(CONFIGS) and all(r["hidden"] == (r["runtime"] == "openvino") for r in changes)
        browser.evaluate(click_js("runtime", "openvino"))
        assert browser.console_errors() == []
        save_screenshot(browser, "history-page.png")


# -- schema v4: marks, cold start, repeats, the canary and the gate on the page ------------

#: Every figure as [section id, title, drawn].
FIGURES_JS = """[...document.querySelectorAll('.js-plotly-plot')].map((gd) =>
  [gd.closest('section').id, gd.layout.title.text, !!gd.querySelector('svg.main-svg')])"""


def hover_js(title: str, variant: str, runtime: str) -> str:
    """Hover one Pareto point (found by title, variant and runtime) and return the hover box's text.
    plotly ignores a hover within 50 ms of the previous one, hence the pause first."""
    return f"""(async () => {{
  await new Promise((done) => setTimeout(done, 120));
  const gd = [...document.querySelectorAll('#sec-pareto .js-plotly-plot')]
    .find((g) => g.layout.title.text === {json.dumps(title)});
  const curve = gd.data.findIndex((t) => (t.meta || {{}}).role === 'points'
    && t.meta.runtime === {json.dumps(runtime)});
  const point = gd.data[curve].customdata.findIndex((row) => row[0] === {json.dumps(variant)});
  Plotly.Fx.hover(gd, [{{curveNumber: curve, pointNumber: point}}]);
  const box = gd.querySelector('.hoverlayer');
  return box ? box.textContent : null;
}})()"""


def test_v4_pages_in_chromium(chromium: str, tmp_path: Path, save_screenshot) -> None:  # noqa: ANN001
    db = tmp_path / "v4.db"
    runs = fill_v4_store(db, 4, slow_from=3)
    with open_store(db) as store:
        run_page = write_report(load_context(store, runs[-1], budget_ms=100.0), tmp_path / "run.html")
        dash = write_report(load_context(store, runs[-1], history_tag=TAG), tmp_path / "dash.html")
    with Browser(chromium, tmp_path / "profile") as browser:
        state = open_page(browser, run_page.as_uri())
        assert browser.console_errors() == []
        n_figures = run_page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
        assert state["figures"] == n_figures and state["scripts"] == 2 + n_figures
        figures = browser.evaluate(FIGURES_JS)
        assert all(drawn for _, _, drawn in figures)
        assert ["sec-pareto", "resnet18 on orin: cold start (load + first inference)", True] in figures
        assert ["sec-repeats", "resnet18 on orin: p50 of each repeat", True] in figures
        # The hover of a marked point shows the board's reason as text; no markup came of it.
        text = browser.evaluate(hover_js("resnet18 on orin", "fp32", "onnxruntime"))
        assert f"UNSTABLE: {UNSTABLE_REASON}" in text and "cold start: 0.945 s" in text
        text = browser.evaluate(hover_js("resnet18 on orin", "fp32", "openvino"))
        assert f"NOISY: {NOISY_REASON}" in text and "engine build: 31.5 s" in text and "[95% CI" in text
        text = browser.evaluate(hover_js("resnet18 on orin", "int8", "onnxruntime"))
        assert "(median of 5 repeats)" in text
        assert browser.evaluate("document.querySelectorAll('script').length") == 2 + n_figures
        badges = browser.evaluate("[...document.querySelectorAll('#sec-results .badge')].map((b) => b.title)")
        assert badges == [f"unstable: {UNSTABLE_REASON}", f"noisy: {NOISY_REASON}"]
        gate = browser.evaluate("[...document.querySelectorAll('#sec-gate tbody tr')]"
                                ".map((r) => r.cells[0].textContent)")
        assert gate[:3] == ["regression"] * 3 and gate.count("pass") == 11
        assert browser.evaluate("document.querySelector('#sec-gate tbody tr').cells[10].textContent") == EVIL_NOTE
        canary = browser.evaluate("[...document.querySelectorAll('#sec-canary tbody tr')].map((r) => r.hidden)")
        assert canary == [False] * len(BOARDS)
        assert browser.evaluate(click_js("model", "canary")) is False  # the canary's rows follow the model filter
        canary = browser.evaluate("[...document.querySelectorAll('#sec-canary tbody tr')].map((r) => r.hidden)")
        assert canary == [True] * len(BOARDS)
        browser.evaluate("document.getElementById('eh-filters-reset').click()")
        assert browser.console_errors() == []
        save_screenshot(browser, "v4-run-page.png")

        browser.navigate("about:blank")
        state = open_page(browser, dash.as_uri())
        assert browser.console_errors() == []
        assert state["figures"] == len(browser.evaluate(FIGURES_JS))
        assert all(drawn for _, _, drawn in browser.evaluate(FIGURES_JS))
        lines = browser.evaluate(f"""(() => {{
          const gd = [...document.querySelectorAll('#sec-trends .js-plotly-plot')]
            .find((g) => g.layout.title.text === {json.dumps(CANARY_TITLE)});
          return gd.calcdata.map((cd) => [cd[0].trace.yaxis, cd.length,
                                          cd.filter((p) => Number.isFinite(p.y)).length]);
        }})()""")
        assert lines == [["y", 4, 4], ["y2", 4, 4]] * len(BOARDS)  # p50 and drift rows, a line per board
        chart = next(c for c in state["charts"] if c["model"] == "canary")
        assert chart["section"] == "sec-trends" and chart["drawn"] and not chart["hidden"]
        browser.evaluate(click_js("model", "canary"))
        chart = next(c for c in browser.evaluate(STATE_JS)["charts"] if c["model"] == "canary")
        assert chart["hidden"]
        browser.evaluate(click_js("model", "canary"))
        assert browser.console_errors() == []
        save_screenshot(browser, "v4-dashboard.png")
