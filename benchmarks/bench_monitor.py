"""Benchmark: ``sote monitor`` on a county-sized feature table (seconds and peak memory).

    python benchmarks/bench_monitor.py --features features.parquet --rows 214045
    python benchmarks/bench_monitor.py --data out/county --as-of 2024-01-01 --rows 214045

A feature table (given, or built from ``--data`` at ``--as-of``) is tiled to
``--rows`` rows under fresh client ids, each copy's numbers jittered by a
seeded ±5 % so the copies are not identical: that is the reference. The
current table is another such tiling (another seed) with three kinds of
drift injected: ages +5 years, 10 % of costs missing, 2 % of clients in a new
unit. Both are written as Parquet, and ``models.monitor.monitor`` compares
the files, as ``sote monitor --reference --current --out`` does: reading
both, summarising the reference, comparing, drawing the report, writing the
HTML and CSV and logging an MLflow run to a fresh SQLite store.

Each run is a fresh child process; reported: wall time of the call and the
child's peak resident memory (VmHWM, includes the two tables in memory).
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measure import peak_rss_mb  # noqa: E402 - benchmarks/ is sys.path[0] when a benchmark runs as a script


def tiled(base: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``base`` repeated to ``rows`` rows under fresh ids, numbers jittered by a seeded ±5 %."""
    rng = np.random.default_rng(seed)
    reps = int(np.ceil(rows / len(base)))
    out = pd.concat([base] * reps, ignore_index=True).iloc[:rows].copy()
    out["client_id"] = [f"{v:012x}" for v in rng.choice(16**12, rows, replace=False)]
    numbers = [c for c in out.columns if c != "client_id" and pd.api.types.is_float_dtype(out[c])]
    jitter = rng.uniform(0.95, 1.05, (rows, len(numbers)))
    out[numbers] = out[numbers].to_numpy() * jitter
    return out


def drifted(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["age"] = out["age"] + 5
    if "cost_total_365d" in out:
        out["cost_total_365d"] = out["cost_total_365d"].where(rng.random(len(out)) >= 0.10)
    out["unit"] = out["unit"].astype(object)
    out.loc[rng.random(len(out)) < 0.02, "unit"] = "uusi_yksikko"
    return out


def _child(reference: str, current: str, out: str, uri: str, queue) -> None:
    from models.monitor import monitor

    t0 = time.perf_counter()
    result = monitor(reference, current, out=out, tracking_uri=uri, log=True)
    seconds = time.perf_counter() - t0
    queue.put({"seconds": round(seconds, 2), "peak_mb": round(peak_rss_mb()), "verdict": result.verdict,
               **{f"features_{k}": v for k, v in result.counts().items()}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, help="A feature table (.parquet) to tile.")
    parser.add_argument("--data", type=Path, help="Or a county folder to build the features from.")
    parser.add_argument("--as-of", default="2024-01-01")
    parser.add_argument("--rows", type=int, default=214_045)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if args.features is not None:
        base = pd.read_parquet(args.features)
    elif args.data is not None:
        from features.histories.build import build_features
        from features.contract.load import load_tables

        base = build_features(load_tables(args.data), args.as_of)
    else:
        parser.error("give --features or --data")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reference, current = tiled(base, args.rows, 1), drifted(tiled(base, args.rows, 2), 3)
        reference.to_parquet(tmp / "reference.parquet")
        current.to_parquet(tmp / "current.parquet")
        shape = reference.shape
        del reference, current
        results = []
        ctx = mp.get_context("spawn")
        for i in range(args.runs):
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(str(tmp / "reference.parquet"), str(tmp / "current.parquet"),
                                                    str(tmp / f"drift{i}"), f"sqlite:///{tmp / 'mlflow.db'}", queue))
            proc.start()
            found = queue.get()
            proc.join()
            results.append(found)
            print(json.dumps({"rows": shape[0], "features": shape[1] - 1, **found}), flush=True)
    record = {"rows": shape[0], "features": shape[1] - 1, "runs": results, "cpus": os.cpu_count(),
              "machine": platform.machine(), "python": platform.python_version()}
    out = ROOT / "benchmarks" / "results" / "monitor.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
