"""A gate's verdicts for people (terminal, Markdown for a CI step summary) and for CI tools (JUnit XML)."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from devices.agent import metrics
from harness.gate.evaluate import GateResult, Verdict

_STYLE = {"regression": "red", "board-drift": "cyan", "improvement": "green", "inconclusive": "yellow",
          "missing": "magenta", "pass": ""}
_ORDER = {v: i for i, v in enumerate(("regression", "missing", "board-drift", "inconclusive", "improvement", "pass"))}


def change_text(v: Verdict) -> str:
    return _change(v.metric, v.ratio)


def interval_text(v: Verdict) -> str:
    return "" if v.ci is None else f"[{_change(v.metric, v.ci[0])}, {_change(v.metric, v.ci[1])}]"


def limit_text(v: Verdict) -> str:
    return metrics.limit_text(v.threshold, metrics.BY_GATE[v.metric].points)


def _change(metric: str, ratio: float | None) -> str:
    """A verdict's ratio (candidate / baseline; a difference in points for accuracy) as its change."""
    points = metrics.BY_GATE[metric].points
    return "" if ratio is None else metrics.change_text(ratio if points else ratio - 1, points)


def ordered(result: GateResult) -> list[Verdict]:
    return sorted(result.verdicts, key=lambda v: (_ORDER[v.verdict], v.label, v.metric))


def headline(result: GateResult) -> str:
    counts = ", ".join(f"{result.count(k)} {k}" for k in _ORDER if result.count(k))
    return f"gate {result.candidate} vs {', '.join(result.baselines)}: {counts or 'nothing to compare'}"


def terminal_table(result: GateResult, show_pass: bool = False) -> Table:
    table = Table("verdict", "configuration", "metric", "change", "95% CI", "limit", "q", "note",
                  title=escape(headline(result)))
    for v in ordered(result):
        if v.verdict == "pass" and not show_pass:
            continue
        style = _STYLE[v.verdict]
        table.add_row(f"[{style}]{v.verdict}[/]" if style else v.verdict, escape(v.label), v.metric, change_text(v),
                      interval_text(v), limit_text(v), "" if v.q is None else f"{v.q:.3g}", escape(v.note))
    return table


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown(result: GateResult) -> str:
    lines = [f"### {_md(headline(result))}", "", "| verdict | configuration | metric | change | 95% CI | limit | note |",
             "|---|---|---|---|---|---|---|"]
    for v in ordered(result):
        icon = {"regression": "❌", "missing": "⚠️", "board-drift": "🌡️", "inconclusive": "❔", "improvement": "✅",
                "pass": "✔️"}[v.verdict]
        lines.append(f"| {icon} {v.verdict} | {_md(v.label)} | {v.metric} | {change_text(v)} | {interval_text(v)} | "
                     f"{limit_text(v)} | {_md(v.note)} |")
    return "\n".join(lines) + "\n"


def junit_xml(result: GateResult, strict: bool = False) -> bytes:
    """One testcase per configuration and metric; regressions (and, with --strict, missing and
    inconclusive) fail."""
    suite = ET.Element("testsuite", name=f"harness gate {result.candidate}", tests=str(len(result.verdicts)))
    failures = skipped = 0
    for v in ordered(result):
        case = ET.SubElement(suite, "testcase", classname=v.label, name=v.metric)
        detail = f"{v.verdict}: change {change_text(v)} {interval_text(v)}, limit {limit_text(v)} {v.note}".strip()
        if v.verdict == "regression" or (strict and v.verdict in ("missing", "inconclusive")):
            ET.SubElement(case, "failure", message=detail, type=v.verdict).text = detail
            failures += 1
        elif v.verdict in ("missing", "inconclusive", "board-drift"):
            ET.SubElement(case, "skipped", message=detail)
            skipped += 1
        else:
            ET.SubElement(case, "system-out").text = detail
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)


def write(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole or not at all: a fresh, unpredictable temp file beside it (created
    exclusively, so a planted symlink is never followed), then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
