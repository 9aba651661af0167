"""Benchmark: batch scoring throughput (clients per second) with and without reasons, and peak memory.

    python benchmarks/bench_scoring.py                          # 199,000-client synthetic county, trains a model
    python benchmarks/bench_scoring.py --data out/county --model models:/high_use@champion --tracking-uri sqlite:///mlruns/mlflow.db
    python benchmarks/bench_scoring.py --data out/county --scale 1 5 --runs 0 5 5:0.2   # 199k and ~1M rows

What is timed is the scoring step of ``sote score``: the registered pyfunc
scores a feature table in chunks, adds the need x resources segment and,
optionally, the top-5 plain-language reasons in fi/sv/en (SHAP contributions
from LightGBM plus sentence formatting), and validates the risk list. The
feature table is built once (feature building has its own benchmark,
``bench_features.py``). ``--scale 5`` tiles the county's feature table five
times under fresh client ids, which gives a million-row table with the same
distribution; scoring cost depends on rows and trees, not on who the rows are.

Each measurement runs in a fresh child process: wall time of the scoring call
and peak resident memory of the whole child (VmHWM; it includes the
feature table the child read, reported separately as ``rss_before_mb``).
Results are appended to ``benchmarks/results/scoring.csv``. Not part of the
test suite.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from measure import append_results, peak_rss_mb  # benchmarks/ is sys.path[0] when a benchmark runs as a script



def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(model: str, tracking_uri: str, features: str, reasons: int, share: float, chunk_size: int, queue) -> None:
    from models.scoring import load_model, score_features
    from segmentation.grid import NeedResourceGrid

    ref = load_model(model, tracking_uri)
    X = pd.read_parquet(features)
    before = _rss_mb()
    t0 = time.perf_counter()
    grid = NeedResourceGrid().fit(X)
    names = grid.segment_names("fi")
    segments = pd.Series([names[c] for c in grid.labels_], index=X["client_id"].astype(str).to_numpy())
    risk = score_features(ref, X, "2025-01-01", segments=segments, chunk_size=chunk_size, reasons=reasons,
                          explain_share=share)
    seconds = time.perf_counter() - t0
    queue.put({"rows": len(risk), "reasons": reasons, "explain_share": share,
               "explained": int(risk["reasons_en"].notna().sum()), "chunk_size": chunk_size, "seconds": round(seconds, 2),
               "clients_per_s": round(len(risk) / seconds), "rss_before_mb": round(before),
               "peak_rss_mb": round(peak_rss_mb()),
               "checksum": round(float(risk["probability"].sum()), 6)})


def run_child(model: str, tracking_uri: str, features: Path, reasons: int, share: float, chunk_size: int) -> dict:
    """Score a feature table in a fresh process; return wall time and peak RSS."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_run, args=(model, tracking_uri, str(features), reasons, share, chunk_size, q))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"scoring run failed with exit code {proc.exitcode}")
    return q.get()


def tiled(features: pd.DataFrame, times: int) -> pd.DataFrame:
    """The feature table repeated ``times`` times under fresh client ids."""
    if times == 1:
        return features
    parts = []
    for k in range(times):
        part = features.copy()
        part["client_id"] = part["client_id"].astype(str) + f"-{k}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="canonical data folder; a synthetic county is generated when omitted")
    ap.add_argument("--clients", type=int, default=199_000, help="county size when --data is omitted")
    ap.add_argument("--model", help="model URI; a high_use model is trained (not registered) when omitted")
    ap.add_argument("--tracking-uri", help="MLflow tracking URI of --model")
    ap.add_argument("--as-of", default="2025-01-01", help="scoring date")
    ap.add_argument("--scale", type=int, nargs="+", default=[1, 5], help="tile the feature table this many times")
    ap.add_argument("--runs", nargs="+", default=["0", "5", "5:0.2"],
                    help="REASONS[:EXPLAIN_SHARE] per run (default: none, all clients, top 20%% of each unit)")
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "scoring.csv")
    args = ap.parse_args(argv)

    from features.histories.build import build_features
    from features.contract.load import load_tables

    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            from features.synth import SynthConfig, generate_county

            data = tmp / "county"
            t0 = time.perf_counter()
            generate_county(data, SynthConfig(clients=args.clients, seed=7, truth_reps=4))
            print(f"generated {args.clients:,} residents in {time.perf_counter() - t0:.0f} s", flush=True)
        tables = load_tables(data)
        model, tracking_uri = args.model, args.tracking_uri
        if model is None:
            from models.train import TrainConfig, train

            tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
            t0 = time.perf_counter()
            result = train(tables, TrainConfig(target="high_use", train_as_of="2023-01-01",
                                               valid_as_of="2024-01-01"), tracking_uri=tracking_uri,
                           experiment="bench-scoring", truth=data / "truth.parquet")
            model = result.model_uri
            print(f"trained high_use in {time.perf_counter() - t0:.0f} s -> {model}", flush=True)
        t0 = time.perf_counter()
        features = build_features(tables, args.as_of)
        print(f"features of {len(features):,} clients as of {args.as_of} in {time.perf_counter() - t0:.0f} s",
              flush=True)
        del tables
        rows = []
        for times in args.scale:
            path = tmp / f"features_x{times}.parquet"
            tiled(features, times).to_parquet(path, index=False)
            for run in args.runs:
                reasons, _, share = run.partition(":")
                row = run_child(model, tracking_uri, path, int(reasons), float(share or 1), args.chunk_size)
                rows.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    append_results(frame, args.results, features=features.shape[1] - 1)
    print(frame.drop(columns=["date", "machine"]).to_string(index=False))


if __name__ == "__main__":
    main()
