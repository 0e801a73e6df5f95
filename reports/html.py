"""Assemble the sections into one self-contained HTML page and write it safely.

Why this shape:

- **Offline and small.** plotly.js is inlined exactly once in ``<head>`` and each figure is
  emitted with ``include_plotlyjs=False``; per-figure inlining costs 4.8 MB per chart
  (plotly's ``write_html(include_plotlyjs=True)`` inlines all of plotly.js). The page loads
  nothing from the network.
- **Deterministic.** Figure ids are ``fig-<section>-<n>`` instead of plotly's random UUIDs,
  and no clock is read, so the same run renders byte-identical pages (diffable, cacheable).
- **One broken section does not lose the report.** A section that raises is replaced by a
  visible error box and logged; the rest of the page still renders.
- **Atomic write.** A temp file in the target directory, fsync, then ``os.replace``: a
  reader (or a browser refresh) never sees half a report.
- **Filterable.** A bar of device/runtime/model checkboxes and one small inline script
  (``reports.filters``) hide charts and table rows by their ``data-*`` attributes; it is
  emitted once, after the figures, and only when some dimension has two or more names.
- **One page, two scopes.** Without a history the page is a run report; with one
  (``ReportContext.history``) the same sections plus the trend and comparison sections
  make the tag's dashboard, headed by the tag instead of the run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.offline

from reports import fmt
from reports.filters import DIMENSIONS, FILTER_SCRIPT, filter_bar
from reports.sections import SECTIONS, ReportContext, ReportError, ReportSection, SectionOutput

__all__ = ["PLOTLY_CONFIG", "render_report", "write_report"]

log = logging.getLogger("edge_harness.reports")

#: plotly.js options for every figure: no logo, resize with the window.
PLOTLY_CONFIG: dict[str, object] = {"displaylogo": False, "responsive": True}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1f2a44;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;opacity:.85}
nav{padding:8px 24px;background:#eef1f6;border-bottom:1px solid #d8dde6}
nav a{margin-right:16px;color:#1f4f99;text-decoration:none}
main{padding:8px 24px 32px;max-width:1400px}
section{margin-top:24px}h2{border-bottom:2px solid #1f2a44;padding-bottom:4px}
h3{margin:20px 0 4px}h4{margin:14px 0 4px;font-weight:600}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #dde;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#eef1f6;position:sticky;top:0}
td.num,th.num{text-align:right;white-space:nowrap}
table.kv th{background:#f3f5f9;font-weight:600}
.table-wrap{overflow-x:auto}
tr.failed td{background:#fdecec}tr.error-row td{background:#fff6f6}
tr.differs td{background:#fff8e1}tr.throttled td{background:#fff1e6}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600}
.badge.throttled{background:#d62728;color:#fff}span.throttled{color:#b34700;font-weight:600}
.status-failed,span.failed{color:#b00020;font-weight:600}span.ok{color:#1b7f3b;font-weight:600}
table.results td{white-space:nowrap}table.results tr.error-row td{white-space:normal}
pre{white-space:pre-wrap;margin:0;font-size:12px}
.note{color:#666;font-style:italic}
.section-error{border:1px solid #b00020;background:#fdecec;padding:8px}
.figure{background:#fff;border:1px solid #e3e6ec;margin:6px 0}
footer{color:#888;padding:12px 24px;font-size:12px}
[hidden]{display:none!important}
.chart-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:0 10px}
form.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:8px 24px;
background:#f6f8fb;border-bottom:1px solid #d8dde6}
form.filters fieldset{border:1px solid #d8dde6;border-radius:4px;padding:2px 8px;margin:0}
form.filters legend{font-weight:600;padding:0 4px}form.filters label{margin-right:10px}
form.filters output{color:#666}
td.regression{background:#fde0e0}td.improvement{background:#e3f4e6}
td.missing{background:#f6e3f6}td.drift{background:#e0f2f7}
.badge.unstable{background:#e67e22;color:#fff}.badge.noisy{background:#7b5ea7;color:#fff}
.badge.synthetic{background:#5f6b7a;color:#fff}
tr.marked td{background:#fff8ec}tr.canary td{color:#5f6b7a}span.marks{border-bottom:1px dotted #888}
tr.has-regression td:first-child{border-left:3px solid #d62728}
td small{color:#555}
"""


def _select(names: Iterable[str] | None) -> list[ReportSection]:
    if names is None:
        return [cls() for cls in SECTIONS.values()]
    wanted = list(names)
    unknown = [n for n in wanted if n not in SECTIONS]
    if unknown:
        raise ReportError(f"unknown report sections {unknown}; known: {list(SECTIONS)}")
    return [cls() for name, cls in SECTIONS.items() if name in wanted]


def _render_section(section: ReportSection, ctx: ReportContext) -> SectionOutput:
    try:
        return section.render(ctx)
    except Exception as exc:
        log.exception("report section %r failed (run %s)", section.name, ctx.run_info.get("id"))
        return SectionOutput(
            (
                f'<div class="section-error">This section could not be rendered: '
                f"{fmt.esc(type(exc).__name__)}: {fmt.esc(exc)}</div>",
            )
        )


def _figure_html(fig: go.Figure, div_id: str) -> str:
    body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG)
    return f'<div class="figure">{body}</div>'


def render_report(ctx: ReportContext, sections: Iterable[str] | None = None) -> str:
    """Render the run report as one HTML document.

    Args:
        ctx: the run's results, run info and device facts.
        sections: names from ``SECTIONS`` to include (page order is kept); all by default.

    Returns:
        The complete page, with plotly.js inlined once when any section has a figure.
    """
    parts: list[str] = []
    toc: list[str] = []
    n_figures = 0
    for section in _select(sections):
        out = _render_section(section, ctx)
        if out.empty:
            continue
        anchor = f"sec-{fmt.esc(section.name)}"
        toc.append(f'<a href="#{anchor}">{fmt.esc(section.title)}</a>')
        body: list[str] = []
        n_section_figures = 0
        for block in out.blocks:
            if isinstance(block, go.Figure):
                div_id = f"fig-{fmt.esc(section.name)}-{n_section_figures}"
                body.append(_figure_html(block, div_id))
                n_section_figures += 1
            else:
                body.append(block)
        parts.append(
            f'<section id="{anchor}"><h2>{fmt.esc(section.title)}</h2>{"".join(body)}</section>'
        )
        n_figures += n_section_figures
    heading, subtitle = _heading(ctx)
    script = (
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        if n_figures
        else ""
    )
    body_html = "".join(parts)
    # Only a page with something to filter gets the bar (escaped user text never holds a raw quote).
    filterable = any(f' data-{dim}="' in body_html for dim in (*DIMENSIONS, "runtimes"))
    filters = filter_bar(_filter_values(ctx)) if filterable else ""
    filter_js = f'<script type="text/javascript">{FILTER_SCRIPT}</script>' if filters else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}</title><style>{_CSS}</style>{script}</head>"
        f"<body><header><h1>{heading}</h1><p>{subtitle}</p></header>"
        f"<nav>{''.join(toc)}</nav>{filters}<main>{body_html}</main>"
        f"<footer>Self-contained report: {n_figures} figure(s), plotly.js "
        f"inlined by plotly {fmt.esc(plotly.__version__)}, no network needed.</footer>"
        f"{filter_js}</body></html>\n"
    )


def _heading(ctx: ReportContext) -> tuple[str, str]:
    """Escaped page heading and subtitle: the run, or the tag whose history this is."""
    info = ctx.run_info
    fields = (("tag", "tag"), ("suite", "suite"), ("host", "host"))
    if ctx.history is not None:
        fields = (("id", "latest run"), ("suite", "suite"), ("host", "host"))
    subtitle = " &middot; ".join(
        f"{label}: <b>{fmt.esc(info.get(key))}</b>"
        for key, label in fields
        if not fmt.is_missing(info.get(key))
    )
    if ctx.history is None:
        return f"Edge Harness run {fmt.esc(info.get('id'))}", subtitle
    runs = len(ctx.history.runs)
    return f"Edge Harness dashboard: tag {fmt.esc(ctx.history.tag)}, {runs} run(s)", subtitle


def _filter_values(ctx: ReportContext) -> dict[str, set[str]]:
    """Every device, runtime and model name on the page (the run's, and the history's)."""
    frames = [ctx.results] + ([ctx.history.results] if ctx.history is not None else [])
    return {dim: {str(v) for f in frames for v in f[dim].unique()} for dim in DIMENSIONS}


def write_report(ctx: ReportContext, path: Path, sections: Iterable[str] | None = None) -> Path:
    """Render and write the report atomically; parent directories are created.

    Args:
        ctx: see :func:`render_report`.
        path: destination ``.html`` file; replaced if it exists.
        sections: see :func:`render_report`.

    Returns:
        The path written.
    """
    path = Path(path)
    page = render_report(ctx, sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
