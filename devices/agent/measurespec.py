"""The spec's ``measure`` section: how long to warm up and measure, the target, the quiet board.

Its defaults, and where they come from, are in ``spec.py``'s docstring; ``parse_measure``
reads the section strictly, every fault a ProtocolError naming the key.

The operating point (protocol 5, ``scenarios/``): ``scenario`` (single-stream, the default;
offline, multi-stream, paced) and what the scenario reads: ``inflight`` (requests in flight;
null: the runtime's own number), ``samples_per_query`` (multi-stream), ``rate_hz`` and
``arrivals`` (paced), ``p99_bound_ms`` (offline: search the most throughput under this p99).
Keys added after the first typed spec are ``LATER_KEYS``: a spec leaves each out while it
has its default, so a single-stream job's JSON is what older agents read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Optional

from .errors import ProtocolError
from .specfields import get, number, section


@dataclass(frozen=True)
class TargetSettings:
    """``measure.target``: stop once the percentile's interval at ``confidence`` lies within
    ``rel_error`` of its estimate on both sides (``earlystop.py``)."""

    percentile: float = 99.0  # in (0, 100)
    rel_error: float = 0.02  # > 0
    confidence: float = 0.95  # in (0, 1)


@dataclass(frozen=True)
class QuietSettings:
    """``measure.quiet``: what counts as a quiet board, and how long to wait for one."""

    max_other_cpu_pct: float = 25.0  # other processes' CPU use, % of all CPUs
    max_load_per_cpu: float = 1.0  # 1-minute load average / CPUs
    min_free_mb: float = 100.0  # MemAvailable
    wait_s: float = 30.0


@dataclass(frozen=True)
class MeasureSettings:
    """How long to warm up and measure; the loop stops when BOTH minimums are met (and,
    with a ``target``, once the percentile is known too)."""

    warmup_iters: int = 10
    warmup_s: float = 1.0
    min_iters: int = 200
    min_s: float = 3.0
    max_iters: Optional[int] = None
    timeout_s: float = 600.0
    threads: Optional[int] = None
    seed: int = 0
    target: Optional[TargetSettings] = None
    quiet: Optional[QuietSettings] = QuietSettings()
    scenario: str = "single-stream"
    inflight: Optional[int] = None
    samples_per_query: int = 8  # MLPerf's multi-stream query
    rate_hz: Optional[float] = None
    arrivals: str = "uniform"  # or "poisson" (seeded by ``seed``)
    p99_bound_ms: Optional[float] = None


_MEASURE_KEYS = tuple(f.name for f in fields(MeasureSettings))
_SECONDS = ("warmup_s", "min_s", "timeout_s")  # the measure keys that take any number
_TEXT = ("scenario", "arrivals")
_NUMBERS = ("rate_hz", "p99_bound_ms")  # a number or null
SCENARIO_PROTOCOL = 5
# Measure keys added after the first typed spec -> the protocol that reads them (a power or
# other axis that becomes a measure key joins here).
LATER_KEYS = {name: SCENARIO_PROTOCOL for name in
              ("scenario", "inflight", "samples_per_query", "rate_hz", "arrivals", "p99_bound_ms")}
_DEFAULTS = {f.name: f.default for f in fields(MeasureSettings)}


def measure_to_json(ms: MeasureSettings) -> Dict[str, Any]:
    """The section as the spec carries it: ``LATER_KEYS`` at their default left out."""
    return {k: v for k, v in asdict(ms).items() if k not in LATER_KEYS or v != _DEFAULTS[k]}


def measure_protocol(ms: MeasureSettings) -> int:
    """The lowest protocol that reads ``ms`` (1 when every later key has its default)."""
    return max([p for k, p in LATER_KEYS.items() if getattr(ms, k) != _DEFAULTS[k]] or [1])


def single_stream(ms: MeasureSettings) -> MeasureSettings:
    """``ms`` with every later key at its default: how the board canary is measured beside any scenario."""
    return replace(ms, **{k: _DEFAULTS[k] for k in LATER_KEYS})


def _subsection(given: Dict[str, Any], key: str, cls: Any) -> Optional[Dict[str, float]]:
    """``measure.<key>``: null (off) or an object of numbers; missing sub-keys take ``cls``'s defaults."""
    value = given[key]
    if value is None:
        return None
    where = "measure.%s." % key
    if not isinstance(value, dict):
        raise ProtocolError("spec key measure.%s must be an object or null, got %r" % (key, value))
    defaults = asdict(cls())
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ProtocolError("unknown spec key %s%s (allowed: %s)" % (where, unknown[0], ", ".join(defaults)))
    return {k: (number(value, k, where) if k in value else float(defaults[k])) for k in defaults}


def _parse_target(given: Dict[str, Any]) -> Optional[TargetSettings]:
    t = _subsection(given, "target", TargetSettings)
    if t is None:
        return None
    if not 0 < t["percentile"] < 100:
        raise ProtocolError("spec key measure.target.percentile must be in (0, 100), got %r" % t["percentile"])
    if not t["rel_error"] > 0:
        raise ProtocolError("spec key measure.target.rel_error must be > 0, got %r" % t["rel_error"])
    if not 0 < t["confidence"] < 1:
        raise ProtocolError("spec key measure.target.confidence must be in (0, 1), got %r" % t["confidence"])
    return TargetSettings(**t)


def _parse_quiet(given: Dict[str, Any]) -> Optional[QuietSettings]:
    q = _subsection(given, "quiet", QuietSettings)
    if q is None:
        return None
    for key, value in q.items():
        if value < 0:
            raise ProtocolError("spec key measure.quiet.%s must be >= 0, got %r" % (key, value))
    return QuietSettings(**q)


def parse_measure(raw: Dict[str, Any]) -> MeasureSettings:
    """``measure``: every key optional (absent: the default; a whole absent section: all defaults)."""
    if raw.get("measure") is None:
        return MeasureSettings()
    given = section(raw, "measure", _MEASURE_KEYS)
    values: Dict[str, Any] = {}
    for f in fields(MeasureSettings):
        if f.name not in given:
            continue
        if f.name == "target":
            values["target"] = _parse_target(given)
        elif f.name == "quiet":
            values["quiet"] = _parse_quiet(given)
        elif f.name in _SECONDS:
            values[f.name] = number(given, f.name, "measure.")
        elif f.name in _TEXT:
            values[f.name] = get(given, f.name, "measure.", (str,))
        elif f.name in _NUMBERS:
            values[f.name] = None if given[f.name] is None else number(given, f.name, "measure.")
        else:
            values[f.name] = get(given, f.name, "measure.", (int,), nullable=f.default is None)
    ms = MeasureSettings(**values)
    for key in ("warmup_iters", "warmup_s", "min_iters", "min_s"):
        _positive(getattr(ms, key), key)
    for key in ("max_iters", "timeout_s", "threads"):
        _positive(getattr(ms, key), key, allow_zero=False)
    if not 0 <= ms.seed < 2**32:
        raise ProtocolError("spec key measure.seed must be in [0, 2**32), got %r" % ms.seed)
    from .scenarios import check_scenario  # the scenarios' module imports the loops, which import the spec

    problem = check_scenario(ms)
    if problem:
        raise ProtocolError("spec key measure.%s" % problem)
    return ms


def _positive(value: Optional[float], name: str, allow_zero: bool = True) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ProtocolError("spec key measure.%s must be %s, got %r" % (name, ">= 0" if allow_zero else "> 0", value))
