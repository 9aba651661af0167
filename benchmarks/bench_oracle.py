"""Benchmark: does the oracle's AUROC converge as the truth's replicate futures are added?

Usage: python benchmarks/bench_oracle.py [--clients 20000] [--seed 2024] [--as-of 2024-01-01]
       [--reps 32 64 128 256 512] [--tolerance 0.003] [--targets high_use young_adult_mhsu ...]

For each number of futures R (doubling), a county is generated with R futures
at the evaluated index date (``evaluated_reps_factor=R``, one future at the
other dates, which are not read here); the recorded data do not depend on R,
so the labels are the same in every run. The oracle's AUROC is the AUROC of
the truth's probabilities against the labels of the date. Noise in the
estimated probabilities biases that AUROC downwards, so it rises with R and
levels off; the run stops once every target moves by less than the tolerance
from one R to the next (or after the last R). As that bias falls like 1 / R,
2 A(R) - A(R/2) of the last two rows also estimates the AUROC of the exact
probabilities; the table shows it in its last row. Prints a Markdown table and writes it, with one row
per R and target, to benchmarks/results/oracle_<clients>.csv.
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import pandas as pd

from features.config.defaults import COUNTY_SEED, VALID_AS_OF
from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county
from features.targets.labels import build_labels
from models.metrics import oracle_auroc

DEFAULT_TARGETS = ("high_use", "diabetes_high_use", "elderly_low_function", "young_adult_mhsu", "rising_high_use")


def oracle_rows(truth: pd.DataFrame, labels: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> list[dict]:
    """Oracle AUROC, cohort size and standard errors of the truth at ``as_of``, per target."""
    rows = []
    day = truth[pd.to_datetime(truth["as_of"]) == as_of]
    for target, lab in labels.items():
        t = day[day["target"] == target].set_index("client_id")
        joined = lab.set_index("client_id")[["label"]].join(
            t[["probability", "probability_se", "probability_half"]], how="inner")
        both = oracle_auroc(joined["label"], joined["probability"], joined["probability_half"])
        rows.append({"target": target, "cohort": len(lab), "matched": len(joined),
                     "positives": int(joined["label"].sum()),
                     "oracle_auroc": both["auroc"], "oracle_auroc_limit": both["auroc_limit"],
                     "mean_se": float(joined["probability_se"].mean()),
                     "max_se": float(joined["probability_se"].max())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=COUNTY_SEED)
    parser.add_argument("--as-of", default=VALID_AS_OF)
    parser.add_argument("--reps", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--tolerance", type=float, default=0.003)
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    as_of = pd.Timestamp(args.as_of)
    out_csv = Path(__file__).parent / "results" / f"oracle_{args.clients}.csv"
    out_csv.parent.mkdir(exist_ok=True)
    rows: list[dict] = []
    labels: dict[str, pd.DataFrame] = {}
    events_digest = None
    previous: dict[str, float] = {}
    for reps in args.reps:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "county"
            t0 = time.perf_counter()
            generate_county(folder, SynthConfig(clients=args.clients, seed=args.seed, truth_reps=1,
                                                evaluated_dates=(args.as_of,), evaluated_reps_factor=reps,
                                                workers=args.workers))
            seconds = time.perf_counter() - t0
            digest = hashlib.sha256((folder / "events.parquet").read_bytes()).hexdigest()
            if events_digest is None:
                events_digest = digest
                tables = load_tables(folder).tables
                labels = {t: build_labels(tables, as_of, t, validate=False) for t in args.targets}
            elif digest != events_digest:
                raise RuntimeError("the recorded data changed with the number of futures")
            truth = pd.read_parquet(folder / "truth.parquet")
        found = oracle_rows(truth, labels, as_of)
        for r in found:
            r.update(reps=reps, seconds=round(seconds, 1),
                     change=r["oracle_auroc"] - previous[r["target"]] if r["target"] in previous else float("nan"))
        rows.extend(found)
        print(f"R={reps}: " + ", ".join(f"{r['target']} {r['oracle_auroc']:.4f} ({r['change']:+.4f}; "
                                        f"corrected {r['oracle_auroc_limit']:.4f})"
                                        for r in found) + f"  [{seconds:.0f} s]", flush=True)
        pd.DataFrame(rows).to_csv(out_csv, index=False)
        moved = [abs(r["change"]) for r in found]
        if previous and max(moved) < args.tolerance:
            break
        previous = {r["target"]: r["oracle_auroc"] for r in found}
    table = pd.DataFrame(rows)
    wide = table.pivot(index="reps", columns="target", values="oracle_auroc")
    print()
    print(f"Oracle AUROC at {args.as_of}, county of {args.clients:,} residents (seed {args.seed}); "
          f"cohort / positives: " + ", ".join(f"{r['target']} {r['matched']:,} / {r['positives']:,}"
                                               for r in rows[:len(args.targets)]))
    print("Cells: oracle AUROC (change from the previous row) / bias-corrected 2 A(full) - A(half)")
    print("| futures | " + " | ".join(wide.columns) + " |")
    print("|---|" + "---|" * len(wide.columns))
    for reps, row in wide.iterrows():
        ch = table[table["reps"] == reps].set_index("target")["change"]
        se = table[table["reps"] == reps].set_index("target")["mean_se"]
        lim = table[table["reps"] == reps].set_index("target")["oracle_auroc_limit"]
        cells = [f"{row[t]:.4f} ({ch[t]:+.4f}) / {lim[t]:.4f}" if pd.notna(ch[t]) else f"{row[t]:.4f} / {lim[t]:.4f}"
                 for t in wide.columns]
        print(f"| {reps} | " + " | ".join(cells) + " |")
    if len(wide) > 1:
        limit = 2 * wide.iloc[-1] - wide.iloc[-2]
        print("| 2 A(R) - A(R/2), last two rows | " + " | ".join(f"{limit[t]:.4f}" for t in wide.columns) + " |")


if __name__ == "__main__":
    main()
