"""Benchmark: client-history features as of one date, DuckDB pipeline vs the plain pandas reference.

    python benchmarks/bench_features.py                       # makes a 200,000-client dataset itself
    python benchmarks/bench_features.py --data out/county     # any canonical folder (Parquet)
    python benchmarks/bench_features.py --clients 1000000 --skip-pandas

Each run happens in a fresh child process, so wall time and peak resident
memory (the child's VmHWM, which
sees DuckDB's native allocations too, unlike tracemalloc) belong to that run
alone; CPU seconds (all the child's threads) are the steadier figure on a shared machine. Both runs start from the same Parquet files and end with the same
feature DataFrame in memory. Results are appended to
``benchmarks/results/features.csv``. Not part of the test suite.
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

from measure import peak_rss_mb  # benchmarks/ is sys.path[0] when a benchmark runs as a script


SERVICES = ["primary_care_visit", "remote_contact", "emergency", "specialist_outpatient", "inpatient", "home_care",
            "housing_24h", "mental_health_substance", "social_work", "disability_services", "rehabilitation",
            "oral_health", "child_family"]
WEIGHTS = np.array([30, 20, 6, 8, 1.5, 12, 0.2, 5, 4, 2, 4, 6, 2.3])


def make_dataset(out: Path, clients: int, seed: int = 1, per_year: float = 15.0,
                 start: str = "2020-01-01", end: str = "2023-12-31", chunk: int = 250_000) -> dict:
    """Write a simple canonical dataset (Parquet): ``clients`` x ~``per_year`` events a year over 4 years."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    span = (t1 - t0).days + 1
    ids = np.array([f"p{i:08d}" for i in range(clients)])
    birth = pd.Timestamp("1925-01-01") + pd.to_timedelta(rng.integers(0, 36000, clients), unit="D")
    death = pd.Series(pd.NaT, index=range(clients), dtype="datetime64[s]")
    dead = rng.random(clients) < 0.03
    death[dead] = (t0 + pd.to_timedelta(rng.integers(0, span, dead.sum()), unit="D")).astype("datetime64[s]")
    pd.DataFrame({
        "client_id": ids, "birth_date": birth.astype("datetime64[s]"),
        "sex": rng.choice(["F", "M"], clients), "municipality": rng.choice(["Hyvinkää", "Tuusula", "Järvenpää"],
                                                                           clients),
        "language": rng.choice(["fi", "sv", "other"], clients, p=[0.85, 0.05, 0.1]), "death_date": death,
        "unit": rng.choice([f"u{i}" for i in range(20)], clients),
    }).to_parquet(out / "clients.parquet", index=False)
    rate = rng.gamma(0.8, per_year / 0.8, clients) * span / 365.25  # heavy-tailed use
    ev_dir = out / "events"
    ev_dir.mkdir(exist_ok=True)
    n_events = 0
    p = WEIGHTS / WEIGHTS.sum()
    for k, lo in enumerate(range(0, clients, chunk)):
        hi = min(lo + chunk, clients)
        n = rng.poisson(rate[lo:hi])
        who = np.repeat(np.arange(lo, hi), n)
        m = len(who)
        service = rng.choice(SERVICES, m, p=p)
        s = t0 + pd.to_timedelta(rng.integers(0, span, m), unit="D")
        epi = np.isin(service, ["inpatient", "housing_24h"])
        length = np.where(service == "housing_24h", rng.integers(30, 900, m), rng.integers(0, 15, m))
        e = pd.Series(s + pd.to_timedelta(length, unit="D")).where(epi)
        cost = rng.gamma(2.0, 80.0, m) * np.where(epi, length + 1, 1)
        cost[rng.random(m) < 0.05] = np.nan
        prof = np.char.add(rng.choice(["doctor.", "nurse.", "ward."], m), rng.integers(0, 50, m).astype(str))
        pd.DataFrame({
            "client_id": ids[who], "start": pd.Series(s).astype("datetime64[s]"), "end": e.astype("datetime64[s]"),
            "service": service, "professional": prof, "cost_eur": cost,
            "unit": np.char.add("u", rng.integers(0, 40, m).astype(str)),
        }).to_parquet(ev_dir / f"part-{k:04d}.parquet", index=False)
        n_events += m
    codes = np.array(["E11.9", "E11.2", "I10", "I50.1", "J44.9", "F32.1", "C50.9", "N18.3", "T90", "K86"])
    nd = clients * 2
    code = rng.choice(codes, nd)
    pd.DataFrame({
        "client_id": ids[rng.integers(0, clients, nd)],
        "date": (t0 + pd.to_timedelta(rng.integers(0, span, nd), unit="D")).astype("datetime64[s]"),
        "code": code, "system": np.where(np.isin(code, ["T90", "K86"]), "ICPC-2", "ICD-10"),
    }).to_parquet(out / "diagnoses.parquet", index=False)
    nm = clients * 2
    name = rng.choice(["hba1c", "bmi", "sbp", "egfr"], nm)
    pd.DataFrame({
        "client_id": ids[rng.integers(0, clients, nm)],
        "date": (t0 + pd.to_timedelta(rng.integers(0, span, nm), unit="D")).astype("datetime64[s]"),
        "name": name, "value": rng.uniform(30, 100, nm).round(1),
    }).to_parquet(out / "measurements.parquet", index=False)
    na = clients // 2
    pd.DataFrame({
        "client_id": ids[rng.integers(0, clients, na)],
        "date": (t0 + pd.to_timedelta(rng.integers(0, span, na), unit="D")).astype("datetime64[s]"),
        "instrument": "rai_hc", "scale": rng.choice(["adl_h", "cps", "maple"], na),
        "value": rng.integers(1, 6, na).astype(float),
    }).to_parquet(out / "assessments.parquet", index=False)
    return {"clients": clients, "events": n_events}


def _read_frames(data: Path) -> dict:
    from features.contract.io import read_tables

    return read_tables(data)[0]


def _run(kind: str, data: str, as_of: str, threads: int | None, memory_limit: str | None, queue) -> None:
    t0, cpu0 = time.perf_counter(), time.process_time()
    if kind == "duckdb":
        from features.histories.engine import DuckDBEngine
        from features.histories.build import build_features

        X = build_features(data, as_of, engine=DuckDBEngine(threads=threads, memory_limit=memory_limit),
                           validate=False)
    else:
        from features.histories.pandas_reference import reference_features

        X = reference_features(_read_frames(Path(data)), as_of)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0  # CPU: every thread of the child
    queue.put({"engine": kind, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
               "peak_rss_mb": round(peak_rss_mb(), 1),
               "rows": len(X), "columns": X.shape[1], "checksum": float(X["cost_total_365d"].sum())})


def run_child(kind: str, data: Path, as_of: str, threads: int | None, memory_limit: str | None = None) -> dict:
    """Run one feature build in a fresh process; return its wall time and peak RSS."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_run, args=(kind, str(data), as_of, threads, memory_limit, q))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{kind} run failed with exit code {proc.exitcode}")
    return q.get()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="canonical data folder (Parquet); generated when omitted")
    ap.add_argument("--clients", type=int, default=200_000, help="clients to generate when --data is omitted")
    ap.add_argument("--as-of", default="2024-01-01")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB (it spills to disk beyond it)")
    ap.add_argument("--keep-data", type=Path, help="write the generated dataset here and keep it")
    ap.add_argument("--skip-pandas", action="store_true", help="only run DuckDB (e.g. at sizes pandas cannot hold)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "features.csv")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        data = args.data
        if data is None:
            data = args.keep_data or Path(tmp) / "data"
            t0 = time.perf_counter()
            made = make_dataset(data, args.clients)
            print(f"generated {made['clients']:,} clients, {made['events']:,} events in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        import duckdb

        events = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{data}/events/**/*.parquet')").fetchall()[0][0] \
            if (data / "events").is_dir() else len(pd.read_parquet(data / "events.parquet", columns=["client_id"]))
        clients = len(pd.read_parquet(data / "clients.parquet", columns=["client_id"]))
        results = [run_child("duckdb", data, args.as_of, args.threads, args.memory_limit)]
        print(json.dumps(results[-1]), flush=True)
        if not args.skip_pandas:
            results.append(run_child("pandas", data, args.as_of, args.threads))
            print(json.dumps(results[-1]), flush=True)
    frame = pd.DataFrame(results)
    frame.insert(0, "date", pd.Timestamp.now().strftime("%Y-%m-%d %H:%M"))
    frame.insert(1, "clients", clients)
    frame.insert(2, "events", events)
    frame["events_per_s"] = (events / frame["seconds"]).round(0)
    frame["memory_limit"] = args.memory_limit or ""
    frame["cpus"] = os.cpu_count()
    frame["machine"] = platform.machine()
    if len(frame) == 2:
        d, p = frame.iloc[0], frame.iloc[1]
        print(f"\n{clients:,} clients, {events:,} events: DuckDB {d.seconds:.1f} s / {d.peak_rss_mb:,.0f} MB, "
              f"pandas {p.seconds:.1f} s / {p.peak_rss_mb:,.0f} MB -> {p.seconds / d.seconds:.1f}x faster, "
              f"{p.peak_rss_mb / d.peak_rss_mb:.1f}x less memory; same checksum: "
              f"{np.isclose(d.checksum, p.checksum, rtol=1e-9)}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.results.exists():  # rows of an earlier version may lack a column (cpu_seconds): one header for all
        frame = pd.concat([pd.read_csv(args.results), frame], ignore_index=True)
    frame.to_csv(args.results, index=False)


if __name__ == "__main__":
    main()
