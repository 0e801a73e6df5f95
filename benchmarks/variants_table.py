"""Markdown table of a compression sweep: per model and variant, size, MACs, sparsity,
accuracy and p50 on each runtime, read from a results store.

    harness sweep suites/compression.yaml --tag compression --store results/harness.db
    python benchmarks/variants_table.py --store results/harness.db --tag compression
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd

import harness.store


def table(df: pd.DataFrame) -> str:
    ok = df[df.status == "ok"]
    lat = {(r.model, r.variant, r.runtime): r.p50_ms for r in ok.itertuples()}
    dev_acc = ok.dropna(subset=["accuracy"]).groupby(["model", "variant"]).accuracy.agg(lambda a: sorted(set(a)))
    first = ok.groupby(["model", "variant"], sort=False).first()
    lines = ["| model | variant | size KiB | params | MMACs | sparsity | host acc / agree | device acc | p50 ORT ms | p50 OV ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (model, variant), r in first.iterrows():
        fp32 = first.loc[(model, "fp32")] if (model, "fp32") in first.index else r
        quality = f"{r.host_accuracy:.1%}" if pd.notna(r.host_accuracy) else f"agree {r.agreement:.0%}"
        dev = dev_acc.get((model, variant), [])

        def cell(rt: str, model: str = model, variant: str = variant) -> str:
            p50, base = lat.get((model, variant, rt)), lat.get((model, "fp32", rt))
            return "-" if p50 is None else f"{p50:.3f} ({p50 / base:.2f}x)" if base else f"{p50:.3f}"

        lines.append(
            f"| {model} | {variant} | {r.size_bytes / 1024:.1f} ({r.size_bytes / fp32.size_bytes:.2f}x) | {int(r.params):,} "
            f"| {r.macs / 1e6:.1f} ({r.macs / fp32.macs:.2f}x) | {r.sparsity:.2f} | {quality} "
            f"| {'/'.join(f'{a:.1%}' for a in dev) or '-'} | {cell('onnxruntime')} | {cell('openvino')} |"
        )
    return "\n".join(lines)


def print_table(make: Callable[[pd.DataFrame], str], doc: str) -> None:
    """The command line of a table script: one run of a store (by id, or the latest of a tag)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--store", default="results/harness.db")
    p.add_argument("--run", help="run id (default: the latest, of --tag if given)")
    p.add_argument("--tag")
    args = p.parse_args()
    with harness.store.open(args.store) as st:
        run = st.resolve_run(args.run, tag=args.tag)
        print(f"run {run}\n")
        print(make(st.results(run=run)))


def main() -> None:
    print_table(table, __doc__)


if __name__ == "__main__":
    main()
