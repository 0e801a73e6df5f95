"""The section contract: what a section gets (``ReportContext``) and returns (``SectionOutput``).

Why this shape (after asv's ``OutputPublisher``): a section is a small class with a name,
a title and an ``order``, and one ``render`` method. It gets read-only data that was
already loaded from the store, so sections never open databases and a report can be
rendered from a DataFrame built in a test. The history dashboard adds a ``HistoryData``
(the tag's runs, results and gate verdicts) and the recommendation budget to the context;
sections that need neither ignore them.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import pandas as pd
import plotly.graph_objects as go

from reports import fidelity, marks
from reports.axes import add_derived
from reports.budget import Budget, resolve_budget
from reports.errors import ReportError
from reports.canary import without_canary

if TYPE_CHECKING:
    from reports.history import HistoryData

__all__ = [
    "IDENTITY_COLUMNS",
    "NUMERIC_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REPEAT_COLUMNS",
    "RESULT_COLUMNS",
    "VERDICT_COLUMNS",
    "Block",
    "ReportContext",
    "ReportError",
    "ReportSection",
    "SectionOutput",
    "throttled_mask",
]

#: Columns of the results frame, one row per job, as the store returns them.
RESULT_COLUMNS: tuple[str, ...] = (
    "run", "tag", "model", "variant", "device", "runtime", "status", "error",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "cv", "throughput",
    "n_iters", "peak_rss_mb", "accuracy", "energy_mj", "avg_power_w", "throttled",
    "size_bytes", "params", "macs", "precision", "threads", "load_s", "first_infer_ms",
)  # fmt: skip

#: Columns coerced to float64 (None -> NaN) once, so sections never repeat the coercion.
NUMERIC_COLUMNS: tuple[str, ...] = (
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "cv", "throughput",
    "n_iters", "peak_rss_mb", "accuracy", "energy_mj", "avg_power_w", "size_bytes",
    "params", "macs", "threads", "load_s", "first_infer_ms",
)  # fmt: skip

#: Columns newer stores add (schema v4) and older runs or hand-made frames may lack: added as
#: missing when absent, so every section can read them. ``noisy``/``unstable`` hold the
#: reason of the mark (None: no mark); ``repeats`` how many timed windows the headline
#: aggregates (missing or 1: one); ``started`` the job's start (epoch seconds).
#: Schema v5 adds ``degraded`` (the reason of the mark: the variant's outputs are past the
#: suite's fidelity limit) and the variant's worst-output ``cosine`` and ``snr_db``; v6
#: ``synthetic`` (the variant learnt from seeded synthetic inputs: how); v8 ``power_mode`` (the
#: name of the power mode the job was measured in; None: the board as it was); v9 the operating
#: point: ``point`` (the job's, as ``records.point_label`` reads it: scenario, power mode, axes'
#: values; "" for a default job), ``scenario``, ``batch``, ``inflight``, ``resolution``, and a paced
#: result's ``kept_up``.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "noisy", "unstable", "repeats", "p50_ci_lo_ms", "p50_ci_hi_ms", "engine_build_s", "started", "board",
    "degraded", "cosine", "snr_db", "synthetic", "power_mode", "point", "scenario", "batch", "inflight",
    "resolution", "kept_up",
)  # fmt: skip
_OPTIONAL_NUMERIC: tuple[str, ...] = ("repeats", "p50_ci_lo_ms", "p50_ci_hi_ms", "engine_build_s", "started",
                                      "cosine", "snr_db", "batch", "inflight")
#: Columns of the gate's verdicts (``Store.verdicts``) the page reads; absent ones are added as missing.
VERDICT_COLUMNS: tuple[str, ...] = (
    "gate_id", "created", "candidate", "model", "variant", "device", "runtime", "metric", "verdict", "threshold",
    "ratio", "ci_lo", "ci_hi", "p", "q", "note",
)  # fmt: skip
#: Columns of the per-repeat frame (``Store.repeats``) the page reads.
REPEAT_COLUMNS: tuple[str, ...] = ("model", "variant", "device", "runtime", "repeat", "p50_ms")

#: Columns that name a job; a missing value becomes this placeholder so grouping keeps it.
IDENTITY_COLUMNS: tuple[str, ...] = ("model", "variant", "device", "runtime")
UNKNOWN = "(unknown)"


def _freeze(value: Any) -> Any:
    """Deep-copy and wrap mappings read-only, so a section cannot edit shared metadata."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    return copy.deepcopy(value)


@dataclass(frozen=True)
class ReportContext:
    """Everything a section may read. Build it once per report; sections must not mutate it.

    The constructor takes a private copy of ``results`` (so the caller's frame is never
    touched), checks the columns, and normalises dtypes: numeric columns become float64
    with NaN, ``status`` is lower-case text, identity columns never hold None, and
    ``throttled`` is pandas' nullable boolean (NA = unknown), as the store returns it.

    Attributes:
        results: one row per job with :data:`RESULT_COLUMNS` (extra columns are kept).
        run_info: id, tag, suite, started, finished, host, project_version, git_commit.
        facts: device name -> facts mapping (python, platform, runtime versions, ...).
        budget: limits for the recommendation table; None: the run's suite ``report:``
            settings (see ``reports.budget.resolve_budget``).
        history: a tag's runs for the trend and comparison sections; None on a run page.
        verdicts: the latest gate's verdicts of this run (``Store.verdicts(run=...)``); None:
            not loaded (a dashboard then takes its latest run's verdicts from ``history``).
        repeats: one row per timed window of this run's jobs (``Store.repeats(run=...)``),
            with at least :data:`REPEAT_COLUMNS`; None: not loaded.
    """

    results: pd.DataFrame
    run_info: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    budget: Budget | None = None
    history: HistoryData | None = None
    verdicts: pd.DataFrame | None = None
    repeats: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.results, pd.DataFrame):
            raise ReportError(f"results must be a pandas DataFrame, got {type(self.results)!r}")
        missing = [c for c in RESULT_COLUMNS if c not in self.results.columns]
        if missing:
            raise ReportError(
                f"results are missing columns {missing}; build the frame from the store's "
                "results query, or add the columns filled with None"
            )
        df = self.results.copy(deep=True)
        for col in OPTIONAL_COLUMNS:
            if col not in df.columns:
                df[col] = None
        for col in (*NUMERIC_COLUMNS, *_OPTIONAL_NUMERIC):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        for col in IDENTITY_COLUMNS:
            df[col] = [UNKNOWN if _blank(v) else str(v) for v in df[col]]
        df["status"] = ["failed" if _blank(v) else str(v).strip().lower() for v in df["status"]]
        df["point"] = ["" if _blank(v) else str(v) for v in df["point"]]  # "": the default operating point
        df["throttled"] = pd.array([_tristate(v) for v in df["throttled"]], dtype="boolean")
        for mark in marks.MARKS:
            df[mark.column] = marks.normalise(df[mark.column])
        object.__setattr__(self, "results", add_derived(df))
        object.__setattr__(self, "verdicts", _optional_frame(self.verdicts, VERDICT_COLUMNS, "verdicts"))
        object.__setattr__(self, "repeats", _optional_frame(self.repeats, (), "repeats"))
        if self.repeats is not None and len(self.repeats):
            missing = [c for c in REPEAT_COLUMNS if c not in self.repeats.columns]
            if missing:
                raise ReportError(f"repeats are missing columns {missing}; build them with the store's repeats query")
        if self.budget is None:
            object.__setattr__(self, "budget", resolve_budget(dict(self.run_info or {})))
        object.__setattr__(self, "run_info", _freeze(dict(self.run_info or {})))
        object.__setattr__(self, "facts", _freeze(dict(self.facts or {})))

    @property
    def ok(self) -> pd.DataFrame:
        """Rows whose job finished; only these carry metrics worth plotting."""
        return self.results[self.results["status"] == "ok"]

    @property
    def failed(self) -> pd.DataFrame:
        """Rows whose job did not finish (status other than ``ok``)."""
        return self.results[self.results["status"] != "ok"]

    @property
    def measured(self) -> pd.DataFrame:
        """Every row but the board canary's (``reports.canary``): the models under test."""
        return without_canary(self.results)

    @property
    def measured_ok(self) -> pd.DataFrame:
        """Ok rows of the models under test."""
        return without_canary(self.ok)

    @property
    def candidates(self) -> pd.DataFrame:
        """What fronts and recommendations compare: ``measured_ok`` less the degraded results
        whose accuracy does not vouch for them (``reports.fidelity``)."""
        return fidelity.split(self.measured_ok, self.run_info)[0]

    @property
    def left_out(self) -> pd.DataFrame:
        """The degraded ok results fronts and recommendations leave out (``reports.fidelity``)."""
        return fidelity.split(self.measured_ok, self.run_info)[1]


def _optional_frame(df: pd.DataFrame | None, columns: tuple[str, ...], what: str) -> pd.DataFrame | None:
    """A private copy of an optional frame with ``columns`` present (added as missing), or None."""
    if df is None:
        return None
    if not isinstance(df, pd.DataFrame):
        raise ReportError(f"{what} must be a pandas DataFrame, got {type(df)!r}")
    out = df.copy(deep=True)
    for col in columns:
        if col not in out.columns:
            out[col] = None
    return out


def throttled_mask(df: pd.DataFrame) -> pd.Series:
    """True where the board throttled in the timed window; unknown counts as not throttled."""
    return df["throttled"].fillna(False).astype(bool)


_TRUE_TEXT = frozenset({"1", "true", "yes"})
_FALSE_TEXT = frozenset({"0", "false", "no"})


def _tristate(value: Any) -> bool | None:
    """A stored flag as True/False/None; SQLite hands back 0/1, hand-made frames may hold text."""
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE_TEXT else False if text in _FALSE_TEXT else None
    try:
        return bool(value)
    except (TypeError, ValueError):
        return None


def _blank(value: Any) -> bool:
    if value is None:
        return True
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        return False
    return isinstance(value, str) and not value.strip()


#: A block of section output: a trusted, already-escaped HTML fragment, or a figure.
Block: TypeAlias = str | go.Figure


@dataclass(frozen=True)
class SectionOutput:
    """What a section renders: HTML fragments and figures, in page order.

    Keeping figures as objects (not HTML) lets the page inline plotly.js once and give
    each figure a stable id, and lets the dashboard reuse or export them.
    Strings are emitted verbatim, so sections escape user data (``reports.fmt.esc``).
    """

    blocks: tuple[Block, ...] = ()

    @property
    def html(self) -> str:
        """The HTML fragments joined, without figures."""
        return "".join(b for b in self.blocks if isinstance(b, str))

    @property
    def figures(self) -> list[go.Figure]:
        """The figures, in order."""
        return [b for b in self.blocks if isinstance(b, go.Figure)]

    @property
    def empty(self) -> bool:
        """True when there is nothing to show; the page then omits the section."""
        return not any(b.strip() if isinstance(b, str) else True for b in self.blocks)


class ReportSection(ABC):
    """One part of the report. Subclass, set the three class attributes, register it.

    Attributes:
        name: stable identifier, used for the anchor, figure ids and selection.
        title: the heading shown on the page.
        order: position on the page; lower comes first.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    order: ClassVar[int]

    @abstractmethod
    def render(self, ctx: ReportContext) -> SectionOutput:
        """Render this section from ``ctx``; return ``SectionOutput()`` to be omitted."""
