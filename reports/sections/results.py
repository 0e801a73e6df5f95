"""Results: every job of the run as one table row, numbers with their units.

Why every row and every metric: the charts show a chosen projection (latency vs accuracy);
this table is the complete record a reader can check a chart against. A failed job keeps
its row, and its error goes on a full-width row underneath, so it is not lost in a column.
A throttled job's row is tinted and badged: its latency and energy describe a slowed
board, which a reader comparing variants must see without scanning to a yes/no column.
The noisy, unstable and degraded marks get the same treatment (a badge whose tooltip is the
reason, ``reports.marks``); the variant's fidelity against its reference (worst output's
cosine and SNR) has its own columns. The p50 cell says what the headline is (the median of N repeats, with
its 95% CI) in its tooltip, and the CI has its own column. Cold start (load, first
inference, their sum, and a TensorRT engine build) sits apart from the steady-state
latency columns. The board canary's rows are kept (this is the complete record) and set
in grey. A run that swept power modes gets a "Power mode" column after the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reports import fmt, marks
from reports.canary import CANARY_NAME
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["COLUMNS", "POWER_MODE_COLUMN", "THROTTLED_BADGE", "Column", "ResultsSection", "columns_for"]

THROTTLED_BADGE = '<span class="badge throttled">throttled</span>'


def _throttled_cell(value: object) -> str:
    """The badge when throttled, else yes/no/unknown as everywhere else."""
    return THROTTLED_BADGE if value is True else fmt.yes_no(value)


def _ci_cell(rec: Mapping[str, Any]) -> str:
    return fmt.interval(rec["p50_ci_lo_ms"], rec["p50_ci_hi_ms"])


def _p50_title(rec: Mapping[str, Any]) -> str:
    detail = fmt.p50_detail(rec["repeats"], rec["p50_ci_lo_ms"], rec["p50_ci_hi_ms"])
    return f"p50{detail}" if detail else ""


def _cosine(value: object) -> str:
    """A variant's worst-output cosine against its reference: four decimals (0.99 vs 0.9998 matters)."""
    return fmt.MISSING if fmt.is_missing(value) else f"{float(value):.4f}"  # type: ignore[arg-type]


def _snr(value: object) -> str:
    """Its worst-output SNR in dB; an output identical to the reference's is infinitely clean."""
    if fmt.is_missing(value):
        return fmt.MISSING
    v = float(value)  # type: ignore[arg-type]
    return "\u221e dB" if v == float("inf") else "\u2212\u221e dB" if v == float("-inf") else f"{v:.1f} dB"


def _fidelity_title(rec: Mapping[str, Any]) -> str:
    inputs = rec.get("fidelity_inputs")
    if fmt.is_missing(rec.get("cosine")):
        return ""
    fed = f" on {inputs} inputs" if not fmt.is_missing(inputs) else ""
    return f"the variant's worst output against its reference model's{fed}"


@dataclass(frozen=True)
class Column:
    """One table column: header text, source column, formatter, alignment.

    ``render`` (a whole record -> escaped HTML) replaces ``format`` for cells built from
    several columns; ``title`` (record -> raw text, escaped here) adds a tooltip.
    """

    header: str
    source: str
    format: fmt.Formatter
    numeric: bool = True
    render: Callable[[Mapping[str, Any]], str] | None = None
    title: Callable[[Mapping[str, Any]], str] | None = None

    def cell(self, rec: Mapping[str, Any], css: str = "") -> Cell:
        text = self.render(rec) if self.render is not None else self.format(rec[self.source])
        tip = self.title(rec) if self.title is not None else ""
        return Cell(text, numeric=self.numeric, css=css, attrs=f' title="{fmt.esc(tip)}"' if tip else "")


#: Column order of the table; identity first, then latency, then resources and cost.
COLUMNS: tuple[Column, ...] = (
    Column("Device", "device", fmt.plain, False),
    Column("Model", "model", fmt.plain, False),
    Column("Variant", "variant", fmt.plain, False),
    Column("Runtime", "runtime", fmt.plain, False),
    Column("Precision", "precision", fmt.plain, False),
    Column("Threads", "threads", fmt.integer),
    Column("Status", "status", fmt.plain, False),
    Column("Marks", "marks", fmt.plain, False, render=marks.badges),
    Column("p50", "p50_ms", fmt.ms, title=_p50_title),
    Column("p50 95% CI", "p50_ci", fmt.plain, render=_ci_cell),
    Column("Repeats", "repeats", fmt.integer),
    Column("p90", "p90_ms", fmt.ms),
    Column("p95", "p95_ms", fmt.ms),
    Column("p99", "p99_ms", fmt.ms),
    Column("Mean", "mean_ms", fmt.ms),
    Column("Std", "std_ms", fmt.ms),
    Column("CV", "cv", fmt.pct),
    Column("Throughput", "throughput", fmt.per_s),
    Column("Iters", "n_iters", fmt.integer),
    Column("Accuracy", "accuracy", fmt.pct),
    Column("Cosine", "cosine", _cosine, title=_fidelity_title),
    Column("SNR", "snr_db", _snr, title=_fidelity_title),
    Column("Peak RSS", "peak_rss_mb", fmt.mb),
    Column("Energy/inf", "energy_mj", fmt.mj),
    Column("Avg power", "avg_power_w", fmt.watts),
    Column("Throttled", "throttled", _throttled_cell, False),
    Column("Size", "size_bytes", fmt.mib),
    Column("Params", "params", fmt.si),
    Column("MACs", "macs", fmt.si),
    Column("Load", "load_s", fmt.seconds),
    Column("First infer", "first_infer_ms", fmt.ms),
    Column("Cold start", "cold_start_s", fmt.seconds),
    Column("Engine build", "engine_build_s", fmt.seconds),
)

#: Shown after the runtime when some job of the run was measured in a power mode.
POWER_MODE_COLUMN = Column("Power mode", "power_mode", fmt.plain, False)

#: Shown after the runtime when some job was measured at an operating point other than the default
#: (its scenario, power mode and axes' values: ``records.point_label``).
POINT_COLUMN = Column("Point", "point", fmt.plain, False)

_SORT = ["device", "model", "variant", "runtime", "power_mode", "batch", "inflight", "point"]


def columns_for(df: Any) -> tuple[Column, ...]:
    """:data:`COLUMNS`, with the power mode and the operating point after the runtime when some job has one."""
    extra = (*((POWER_MODE_COLUMN,) if any(not fmt.is_missing(v) for v in df["power_mode"]) else ()),
             *((POINT_COLUMN,) if any(isinstance(v, str) and v for v in df["point"]) else ()))
    if not extra:
        return COLUMNS
    at = next(i for i, c in enumerate(COLUMNS) if c.source == "runtime") + 1
    return (*COLUMNS[:at], *extra, *COLUMNS[at:])


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
        columns = columns_for(df)
        rows: list[Row] = []
        marked = marks.marked_mask(df).tolist()
        for rec, is_marked in zip(df.to_dict("records"), marked, strict=True):
            failed = rec["status"] != "ok"
            cells = tuple(c.cell(rec, "status-failed" if failed and c.source == "status" else "") for c in columns)
            attrs = data_attrs(device=rec["device"], model=rec["model"], runtime=rec["runtime"])
            css = _row_css(failed, rec["throttled"] is True, is_marked, rec["model"] == CANARY_NAME)
            rows.append(Row(cells, css=css, attrs=attrs))
            if failed:
                error = rec["error"]
                text = fmt.esc(error) if not fmt.is_missing(error) else "no error recorded"
                rows.append(Row(css="error-row", note=f"<pre>{text}</pre>", attrs=attrs))
        headers = [(fmt.esc(c.header), c.numeric) for c in columns]
        return SectionOutput((html_table(headers, rows, css="results"),))


def _row_css(failed: bool, throttled: bool, marked: bool, canary: bool) -> str:
    state = "failed" if failed else "throttled" if throttled else "marked" if marked else ""
    return f"{state} canary".strip() if canary else state
