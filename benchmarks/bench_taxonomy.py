#!/usr/bin/env python
"""Precision and recall of the facility taxonomy per type, on the labelled set.

The labelled set is ``tests/data/taxonomy_eval.csv``: every candidate facility
of the real Beijing OSM extract plus rows written to resemble Amap exports,
each labelled by hand with what a planner would call it (see the file header).
A row serving several types counts once for each.

The target is precision and recall >= 0.95 for every type that a shipped
standard (``src/lifecircle/data/standards/*.yaml``) scores; the run exits with
status 1 when a required type misses it, and lists the misclassified rows.
It also times the classification of the set replicated to ``--rows`` rows.

Run ``python benchmarks/bench_taxonomy.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from lifecircle.standards import list_standards, load_standard
from lifecircle.taxonomy import default_taxonomy, evaluate, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
EVAL_SET = ROOT / "tests" / "data" / "taxonomy_eval.csv"
TARGET = 0.95


def required_types() -> set[str]:
    """Type ids scored by any shipped standard."""
    required: set[str] = set()
    for entry in list_standards():
        required |= set(load_standard(entry["id"]).scored_types())
    return required


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=Path, default=EVAL_SET, help="labelled CSV")
    parser.add_argument("--taxonomy", type=Path, default=None, help="taxonomy file to extend with")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the timing run")
    args = parser.parse_args()
    tax = load_taxonomy(args.taxonomy) if args.taxonomy else default_taxonomy()
    per_type, rows = evaluate(args.labelled, taxonomy=tax)
    required = required_types()
    per_type["required"] = per_type["type"].isin(required)
    missing = sorted(required - set(per_type.loc[per_type["support"] > 0, "type"]))
    per_type["meets_target"] = (per_type["precision"].fillna(0) >= TARGET) & (
        per_type["recall"].fillna(0) >= TARGET
    )
    sources = rows["source"].value_counts().to_dict()
    print(f"labelled rows: {len(rows)} {sources}; target {TARGET} for required types")
    print(per_type.round(3).to_string(index=False))
    wrong = rows[rows["label"].map(_types) != rows["predicted"].map(_types)]
    if len(wrong):
        print(f"\n{len(wrong)} rows typed differently from their label:")
        columns = ["source", "name", "tags", "typecode", "label", "predicted", "matched_by"]
        print(wrong[columns].to_string(index=False))
    flagged = rows[rows["flags"] != ""]
    if len(flagged):
        print(f"\n{len(flagged)} rows flagged:")
        print(flagged[["name", "tags", "label", "predicted", "flags"]].to_string(index=False))
    _time_classification(rows, args.rows)
    failing = per_type[per_type["required"] & ~per_type["meets_target"]]
    if missing or len(failing):
        print(f"\nFAILED: no labelled rows for {missing}; below target: {list(failing['type'])}")
        return 1
    print(f"\nall {len(required)} required types meet the target")
    return 0


def _types(text: str) -> frozenset[str]:
    return frozenset(t for t in str(text).split(";") if t and t != "none")


def _time_classification(rows: pd.DataFrame, size: int) -> None:
    from lifecircle.taxonomy import _tag_columns

    view = _tag_columns(rows.drop(columns=["predicted", "matched_by", "flags"]))
    repeats = max(1, size // len(view))
    big = pd.concat([view] * repeats, ignore_index=True)
    tax = default_taxonomy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        tax.audit(big)
        best = min(best, time.perf_counter() - start)
    print(f"\naudit of {len(big):,} rows: {best:.2f} s (best of 3), {len(big) / best:,.0f} rows/s")


if __name__ == "__main__":
    sys.exit(main())
