"""Benchmark: importing a scored risk list (and the client directory) into the worklist database.

    .venv/bin/python benchmarks/bench_worklist_import.py --risklist out/risklists/high_use.parquet \\
        --data out/county [--db sqlite postgresql] [--repeat 2]

``--risklist`` is a list scored on the county (``sote demo`` or ``sote score`` on the default
199,000-resident county gives about 214,000 rows in ``high_use.parquet``). For each database (a fresh
SQLite file in a temporary folder; a database on a throwaway PostgreSQL 15 cluster started as in the
integration tests, with the server's default durability settings), a fresh child process migrates an
empty database (not timed), then times:

``import``
    :func:`worklist.lists.import_risklist` of the list in one transaction, commit included;
``reimport``
    the same file again (idempotent: the digest is found, nothing is written);
``directory``
    with ``--data``: :func:`worklist.directory.build_directory` of the county's residents and
    :func:`~worklist.directory.load_directory` (commit included).

Peak memory is the child's own VmHWM (``benchmarks/measure.py``), after it read nothing but the
libraries (``rss_before_mb``). Results are appended to ``benchmarks/results/worklist_import.csv``.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # live_servers: the PostgreSQL cluster of the tests

from measure import append_results, peak_rss_mb  # benchmarks/ is sys.path[0] when a benchmark runs as a script


#: Columns of a result row (the directory's stay empty without --data).
COLUMNS = ["db", "rows", "import_s", "rows_per_s", "reimport_s", "directory_rows", "directory_build_s",
           "directory_load_s", "rss_before_mb", "peak_after_import_mb", "peak_rss_mb"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(url: str, risklist: str, data: str | None, queue) -> None:
    from worklist import directory, lists
    from worklist.db import make_engine, migrate, session_factory

    engine = make_engine(url)
    migrate(engine)
    Session = session_factory(engine)
    before = _rss_mb()
    out = {"rss_before_mb": round(before)}
    t0 = time.perf_counter()
    with Session.begin() as db:
        result = lists.import_risklist(db, risklist, imported_by="bench")
    out["import_s"] = round(time.perf_counter() - t0, 2)
    out["rows"] = result.rows
    out["rows_per_s"] = round(result.rows / out["import_s"])
    out["peak_after_import_mb"] = round(peak_rss_mb())
    t0 = time.perf_counter()
    with Session.begin() as db:
        again = lists.import_risklist(db, risklist, imported_by="bench")
    out["reimport_s"] = round(time.perf_counter() - t0, 2)
    if again.created:
        raise RuntimeError("the second import of the same file created a list")
    if data:
        t0 = time.perf_counter()
        frame = directory.build_directory(directory.read_clients(data), seed=0)
        out["directory_build_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        with Session.begin() as db:
            out["directory_rows"] = directory.load_directory(db, frame)
        out["directory_load_s"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = round(peak_rss_mb())
    engine.dispose()
    queue.put(out)


def run_child(url: str, risklist: Path, data: Path | None) -> dict:
    """Import into the empty database at ``url`` in a fresh process; return its timings and peak memory."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(url, str(risklist), str(data) if data else None, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"import run failed with exit code {proc.exitcode}")
    return queue.get()


def _new_pg_database(base_url: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    with psycopg.connect(host=base.host, port=base.port, user=base.username, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--risklist", type=Path, required=True, help="a scored risk list (parquet, sidecar beside it)")
    ap.add_argument("--data", type=Path, help="the county's canonical tables: also time the client directory")
    ap.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    ap.add_argument("--repeat", type=int, default=1, help="fresh databases per kind")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "worklist_import.csv")
    args = ap.parse_args(argv)

    rows = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_wl_import_")))
        pg_base = None
        if "postgresql" in args.db:
            from live_servers import postgres_cluster

            pg_base = stack.enter_context(postgres_cluster("postgres_base"))
        for kind in args.db:
            for k in range(args.repeat):
                url = (f"sqlite:///{tmp / f'import_{k}.db'}" if kind == "sqlite"
                       else _new_pg_database(pg_base, f"bench_import_{k}"))
                row = {"db": kind, **run_child(url, args.risklist, args.data)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    append_results(frame, args.results, risklist=args.risklist.name)
    print(frame.drop(columns=["date", "machine"]).to_string(index=False))


if __name__ == "__main__":
    main()
