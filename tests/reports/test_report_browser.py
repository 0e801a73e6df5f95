"""Open the report in a real headless Chromium, offline, and check every figure was drawn.

Why a browser: string checks prove plotly.js is in the file, not that it runs from a
``file://`` URL with no network. ``--dump-dom`` serialises the DOM after scripts ran, so a
figure that plotly.js drew contains ``<svg class="main-svg">`` and one that failed is an
empty div. The hostile names also show plotly renders our escaped text as plain text.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from report_data import FACTS, RUN_INFO, make_row, synthetic_results

from reports.html import write_report
from reports.sections.base import RESULT_COLUMNS, ReportContext

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
    # Latency: 2 devices x 2 models + the evil board's one model; energy: the jetson's 2
    # models (the Pi has no power sensor) + the evil board's one, with a throttled ring.
    assert expected == 8

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
