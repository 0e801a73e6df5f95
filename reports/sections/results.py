"""Results: every job of the run as one table row, numbers with their units.

Why every row and every metric: the charts show a chosen projection (latency vs accuracy);
this table is the complete record a reader can check a chart against. A failed job keeps
its row, and its error goes on a full-width row underneath, so it is not lost in a column.
A throttled job's row is tinted and badged: its latency and energy describe a slowed
board, which a reader comparing variants must see without scanning to a yes/no column.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports import fmt
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["COLUMNS", "THROTTLED_BADGE", "Column", "ResultsSection"]

THROTTLED_BADGE = '<span class="badge throttled">throttled</span>'


def _throttled_cell(value: object) -> str:
    """The badge when throttled, else yes/no/unknown as everywhere else."""
    return THROTTLED_BADGE if value is True else fmt.yes_no(value)


@dataclass(frozen=True)
class Column:
    """One table column: header text, source column, formatter, alignment."""

    header: str
    source: str
    format: fmt.Formatter
    numeric: bool = True


#: Column order of the table; identity first, then latency, then resources and cost.
COLUMNS: tuple[Column, ...] = (
    Column("Device", "device", fmt.plain, False),
    Column("Model", "model", fmt.plain, False),
    Column("Variant", "variant", fmt.plain, False),
    Column("Runtime", "runtime", fmt.plain, False),
    Column("Precision", "precision", fmt.plain, False),
    Column("Threads", "threads", fmt.integer),
    Column("Status", "status", fmt.plain, False),
    Column("p50", "p50_ms", fmt.ms),
    Column("p90", "p90_ms", fmt.ms),
    Column("p95", "p95_ms", fmt.ms),
    Column("p99", "p99_ms", fmt.ms),
    Column("Mean", "mean_ms", fmt.ms),
    Column("Std", "std_ms", fmt.ms),
    Column("CV", "cv", fmt.pct),
    Column("Throughput", "throughput", fmt.per_s),
    Column("Iters", "n_iters", fmt.integer),
    Column("Accuracy", "accuracy", fmt.pct),
    Column("Peak RSS", "peak_rss_mb", fmt.mb),
    Column("Energy/inf", "energy_mj", fmt.mj),
    Column("Avg power", "avg_power_w", fmt.watts),
    Column("Throttled", "throttled", _throttled_cell, False),
    Column("Size", "size_bytes", fmt.mib),
    Column("Params", "params", fmt.si),
    Column("MACs", "macs", fmt.si),
    Column("Load", "load_s", fmt.seconds),
    Column("First infer", "first_infer_ms", fmt.ms),
)

_SORT = ["device", "model", "variant", "runtime"]


class ResultsSection(ReportSection):
    """The full results table."""

    name = "results"
    title = "All results"
    order = 30

    def render(self, ctx: ReportContext) -> SectionOutput:
        """One row per job, sorted by device, model, variant, runtime."""
        df = ctx.results
        if df.empty:
            return SectionOutput()
        df = df.sort_values(_SORT, kind="stable")
        rows: list[Row] = []
        for rec in df.to_dict("records"):
            failed = rec["status"] != "ok"
            cells = tuple(
                Cell(
                    c.format(rec[c.source]),
                    numeric=c.numeric,
                    css="status-failed" if failed and c.source == "status" else "",
                )
                for c in COLUMNS
            )
            attrs = data_attrs(device=rec["device"], model=rec["model"], runtime=rec["runtime"])
            rows.append(Row(cells, css=_row_css(failed, rec["throttled"] is True), attrs=attrs))
            if failed:
                error = rec["error"]
                text = fmt.esc(error) if not fmt.is_missing(error) else "no error recorded"
                rows.append(Row(css="error-row", note=f"<pre>{text}</pre>", attrs=attrs))
        headers = [(fmt.esc(c.header), c.numeric) for c in COLUMNS]
        return SectionOutput((html_table(headers, rows, css="results"),))


def _row_css(failed: bool, throttled: bool) -> str:
    return "failed" if failed else "throttled" if throttled else ""
