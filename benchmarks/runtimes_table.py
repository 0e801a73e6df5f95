"""Markdown table of one sweep across runtimes: per model, variant and runtime, p50, p99,
file size and accuracy (device-measured; top-1 agreement with fp32 for models without labels).

    harness sweep suites/litert.yaml --tag litert --store results/harness.db
    python benchmarks/runtimes_table.py --store results/harness.db --tag litert
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants_table import print_table  # noqa: E402  (a sibling script, not a package)


def table(df: pd.DataFrame) -> str:
    ok = df[df.status == "ok"].sort_values(["model", "runtime", "variant"], kind="stable")
    base = {(r.model, r.runtime): r.p50_ms for r in ok.itertuples() if r.variant in ("fp32", "tflite-fp32")}
    lines = ["| model | runtime | variant | weights | p50 ms (x fp32) | p99 ms | CV | size KiB | accuracy | agreement |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in ok.itertuples():
        ref = base.get((r.model, r.runtime))
        speed = f" ({r.p50_ms / ref:.2f}x)" if ref else ""
        acc = "-" if pd.isna(r.accuracy) else f"{r.accuracy:.2%}"
        agree = "-" if pd.isna(r.agreement) else f"{r.agreement:.0%}"
        lines.append(f"| {r.model} | {r.runtime} | {r.variant} | {r.weights_precision} | {r.p50_ms:.4g}{speed} "
                     f"| {r.p99_ms:.4g} | {r.cv:.1%} | {r.size_bytes / 1024:.1f} | {acc} | {agree} |")
    failed = df[df.status != "ok"]
    lines += [f"\nfailed: {r.model} {r.variant} {r.runtime}: {r.error}" for r in failed.itertuples()]
    return "\n".join(lines)


def main() -> None:
    print_table(table, __doc__)


if __name__ == "__main__":
    main()
