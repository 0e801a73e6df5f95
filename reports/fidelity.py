"""Which results the fronts and the recommendations compare: degraded ones are left out.

A result is marked ``degraded`` by the sweep when its variant's outputs are past the suite's
fidelity limit against its reference model's (``harness.variants.quality``; the reason is
the mark). Plotted at its latency, such a variant looks like a bargain it is not: PP-OCRv4
detection in fp16 had an output cosine of 0.013 and would have topped the front. So the
Pareto fronts and the recommendation table leave it out, and say so in a note naming each
such variant with its reason.

Unless its task metric says it is fine: a degraded result whose quality, measured on the
eval set (its task metric, ``quality``, else top-1 ``accuracy``), is within the gate's
accuracy rule (the suite's ``gate.accuracy``: ``max_drop`` points and/or ``min_relative``, or
the accuracy of the first of its ``gate.overrides`` whose match fits the result, as ``harness
gate`` picks it; without a ``gate``, the default policy's 0.5 points) of its reference variant's on the same
device (same runtime, else the median over its runtimes) stays: the y axis then shows what
it costs. Re-trained variants
(pruning with fine-tuning, distillation) are different functions by design, and their
outputs often fall below the limit while their accuracy holds. ``harness gate`` applies the
same rule to ``degraded: fail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from reports import fmt

__all__ = ["DEFAULT_MAX_DROP", "REFERENCE_CHAINS", "Rule", "accuracy_rule", "left_out_note", "split"]

#: The chains a variant's fidelity is scored against (``harness.coordinator.builds.reference_chains``).
REFERENCE_CHAINS = ("fp32", "as-is", "tflite-fp32", "tflite-as-is")
#: The default policy's accuracy rule in points (``harness.config.gate.DEFAULT``; the reports
#: import nothing from the harness, a test checks the two agree).
DEFAULT_MAX_DROP = 0.5
_KEYS = ["device", "model", "runtime"]


#: The gate's accuracy rule: (max_drop in points, min_relative fraction of the reference), each optional.
Rule = tuple[float | None, float | None]


_MATCH_KEYS = ("model", "variant", "device", "runtime")  # ``harness.config.gate.Match``


def accuracy_rule(run_info: Mapping[str, Any], result: Mapping[str, Any] | None = None) -> Rule | None:
    """The quality drop the run's release policy allows for ``result`` (its model, variant,
    device and runtime): the first of the suite's ``gate.overrides`` that matches it and names
    an accuracy rule, else ``gate.accuracy`` (the default policy's without a ``gate``); None
    when no accuracy rule applies. Without ``result``, the policy's own rule."""
    config = run_info.get("config") or {}
    suite = config.get("suite") if isinstance(config, Mapping) else None
    gate = suite.get("gate") if isinstance(suite, Mapping) else None
    if not isinstance(gate, Mapping):
        return (DEFAULT_MAX_DROP, None)
    rule = gate.get("accuracy")
    for override in (gate.get("overrides") or ()) if result is not None else ():
        match = override.get("match") if isinstance(override, Mapping) else None
        if isinstance(match, Mapping) and all(fnmatchcase(str(result.get(k, "")), str(match.get(k) or "*"))
                                              for k in _MATCH_KEYS):
            rule = override.get("accuracy") or rule  # the first match decides; what it leaves out stays
            break
    if not isinstance(rule, Mapping) or (rule.get("max_drop") is None and rule.get("min_relative") is None):
        return None
    drop, relative = rule.get("max_drop"), rule.get("min_relative")
    return (None if drop is None else float(drop), None if relative is None else float(relative))


def _quality(df: pd.DataFrame) -> pd.Series:
    """A result's quality: its task metric where it has one, else top-1 accuracy (as the gate)."""
    acc = pd.to_numeric(df["accuracy"], errors="coerce").astype("float64")
    if "quality" not in df.columns:
        return acc
    return pd.to_numeric(df["quality"], errors="coerce").astype("float64").fillna(acc)


def _reference_quality(ok: pd.DataFrame) -> pd.Series:
    """Per row, its reference variant's quality on the same device and runtime, else the
    median over the device's runtimes; NaN when the run did not measure it."""
    refs = ok[ok["variant"].isin(REFERENCE_CHAINS) & ok["degraded"].isna()].assign(_q=_quality(ok))
    same = refs.groupby(_KEYS)["_q"].median()
    anywhere = refs.groupby(["device", "model"])["_q"].median()
    by_runtime = pd.Series([same.get(tuple(k), np.nan) for k in ok[_KEYS].itertuples(index=False)], index=ok.index)
    by_device = pd.Series([anywhere.get(tuple(k), np.nan) for k in ok[["device", "model"]].itertuples(index=False)],
                          index=ok.index)
    return by_runtime.fillna(by_device).astype("float64")


def split(ok: pd.DataFrame, run_info: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ok`` as (kept, left out): degraded results left out unless their quality is within
    the accuracy rule that applies to them (``accuracy_rule``) of their reference's (no rule:
    out)."""
    degraded = ok["degraded"].notna() if "degraded" in ok.columns else pd.Series(False, index=ok.index)
    if not degraded.any():
        return ok, ok.iloc[0:0]
    value, ref = _quality(ok), _reference_quality(ok)
    vouched = pd.Series(False, index=ok.index)
    for idx in ok.index[degraded]:
        rule = accuracy_rule(run_info, ok.loc[idx])
        if rule is None or pd.isna(value[idx]) or pd.isna(ref[idx]):
            continue
        max_drop, min_relative = rule
        vouched[idx] = ((max_drop is None or (ref[idx] - value[idx]) * 100 <= max_drop + 1e-9)
                        and (min_relative is None or value[idx] >= min_relative * ref[idx] - 1e-12))
    out = degraded & ~vouched
    return ok[~out], ok[out]


def left_out_note(left_out: pd.DataFrame, where: str = "") -> str:
    """A note naming each left-out variant (with its jobs' runtimes) and its reason, escaped;
    "" when nothing was left out."""
    if left_out.empty:
        return ""
    items = []
    for (model, variant), group in left_out.groupby(["model", "variant"], sort=True):
        runtimes = ", ".join(sorted(set(group["runtime"])))
        reason = str(group["degraded"].iloc[0])
        items.append(f"{fmt.esc(model)} [{fmt.esc(variant)}] on {fmt.esc(runtimes)}: {fmt.esc(reason)}")
    head = f"Left out{fmt.esc(where)} as degraded (outputs past the suite's fidelity limit against the reference " \
           "model's, and no measured quality within the gate's accuracy rule of the reference's)"
    return f'<p class="note degraded-note">{head}: {"; ".join(items)}.</p>'
