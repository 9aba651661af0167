"""Benchmark: a bounded load on the live worklist app (uvicorn on 127.0.0.1), on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/bench_worklist_load.py --risklist out/risklists/high_use.parquet \\
        --data out/county [--db sqlite postgresql] [--sessions 50] [--requests 200] [--think 1 2] [--workers 2]

For each database: a fresh database gets the list, the county's client directory and ``--users`` case
managers of the list's largest unit (not timed); the app (:func:`worklist.web.create_app`, with
``--data`` for the client page's usage chart) runs under uvicorn in a child process, as ``sote serve``
runs it (``--workers N``: N server processes, as ``sote serve --workers N``). Then:

``single``
    one logged-in session asks for ``--single`` worklist pages of the largest unit, one at a time
    (random page and sort): the latency of a worklist page with nothing else running;
``load``
    ``--sessions`` concurrent sessions (threads, each its own login and cookies) send ``--requests``
    requests each: worklist pages (random page, sort and filters), client pages and action posts, in
    the shares ``--mix``. Latency is measured per request (p50 / p95 / p99 / max per kind); an error is
    any exception or unexpected status (a page must be 200, an action post 303). Without ``--think``
    every session sends its next request as soon as the last one is answered (saturation: the
    throughput is the server's); ``--think LOW HIGH`` makes each session wait a uniform LOW–HIGH
    seconds between requests (a realistic pace: the latency a user sees).

Afterwards every posted action must be in the ``actions`` table (by client and its unique note), every
action row must have its access-log row (``what = action`` with that action's id), and the access log
must verify against its anchor. The run fails (exit 1) on any error or missing row.

The load generator shares the 2 cores with the server, so the latencies include its own cost.
Results are appended to ``benchmarks/results/worklist_load.csv``. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the integration tests' servers and HTTP login
from measure import append_results  # noqa: E402 - benchmarks/ is sys.path[0] when a benchmark runs as a script

KINDS = ("worklist", "client", "action")
SORTS = ("rank", "rank", "rank", "probability", "name", "age", "status")
SECRET = "bench-worklist-load-secret-0123456789"


def _serve(url: str, data: str | None, port: int, anchor: str, workers: int = 1) -> None:
    import uvicorn

    from worklist.web import SERVE_ENV, create_app

    if workers == 1:
        app = create_app(url, Path(data) if data else None, secret=SECRET, anchor=Path(anchor))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    os.environ["SOTE_WORKLIST_SECRET"] = SECRET
    os.environ[SERVE_ENV] = json.dumps({"url": url, "data": data, "anchor": anchor})
    uvicorn.run("worklist.web:app_from_env", factory=True, workers=workers, host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


def _prepare(url: str, risklist: Path, data: Path | None, users: int) -> dict:
    """Load the list, the directory and ``users`` case managers of the largest unit into ``url``."""
    from sqlalchemy import func, select

    from worklist import auth, directory, lists
    from worklist.db import ListRow, make_engine, migrate, session_factory

    engine = make_engine(url)
    migrate(engine)
    Session = session_factory(engine)
    t0 = time.perf_counter()
    with Session.begin() as db:
        result = lists.import_risklist(db, risklist, imported_by="bench")
    if data is not None:
        with Session.begin() as db:
            directory.load_directory(db, directory.build_directory(directory.read_clients(data), seed=0))
    with Session() as db:
        unit, size = db.execute(select(ListRow.unit, func.count()).where(ListRow.list_id == result.list_id)
                                .group_by(ListRow.unit).order_by(func.count().desc()).limit(1)).one()
        clients = list(db.scalars(select(ListRow.client_id).where(ListRow.list_id == result.list_id,
                                                                  ListRow.unit == unit)))
    accounts = []
    with Session.begin() as db:
        for k in range(users):
            name = f"bench.cm{k:02d}"
            _, password = auth.add_user(db, name, "case_manager", [unit], display_name=f"Bench {k}")
            accounts.append((name, password))
    engine.dispose()
    return {"list_id": result.list_id, "target": result.target, "unit": unit, "unit_rows": size,
            "clients": clients, "accounts": accounts, "prepare_s": round(time.perf_counter() - t0, 1)}


def _request(http, kind: str, rng: np.random.Generator, facts: dict, csrf: str, tag: str):
    from worklist.db import STATUSES

    pages = max(1, -(-facts["unit_rows"] // 50))
    if kind == "worklist":
        params = {"target": facts["target"], "page": int(rng.integers(1, pages + 1)),
                  "sort": SORTS[rng.integers(len(SORTS))]}
        if rng.random() < 0.3:
            params["band"] = ("high", "raised", "usual")[rng.integers(3)]
        if rng.random() < 0.2:
            params["status"] = "none"
        return http.get("/worklist", params=params), 200, None
    client = facts["clients"][rng.integers(len(facts["clients"]))]
    if kind == "client":
        return http.get(f"/clients/{client}", params={"list": facts["list_id"]}), 200, None
    status = STATUSES[rng.integers(len(STATUSES))]
    form = {"csrf": csrf, "list": str(facts["list_id"]), "status": status, "note": tag,
            "reason": "bench reason" if status == "not_appropriate" else ""}
    return http.post(f"/clients/{client}/actions", data=form), 303, (client, tag)


def _session(base: str, account, facts: dict, kinds: list[str], seed: int, start: threading.Barrier,
             out: dict, think: tuple[float, float] | None = None) -> None:
    import httpx

    from web_client import login

    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base, timeout=120) as http:
        csrf = login(http, *account)
        start.wait()
        for i, kind in enumerate(kinds):
            if think is not None:
                time.sleep(rng.uniform(*think))
            tag = f"bench s{seed} r{i}"
            t0 = time.perf_counter()
            try:
                response, expected, posted = _request(http, kind, rng, facts, csrf, tag)
                ok = response.status_code == expected
            except Exception as err:  # noqa: BLE001 - counted as an error of the run
                ok, posted, response = False, None, err
            out["latency"].append((kind, time.perf_counter() - t0, ok))
            if not ok:
                out["errors"].append(f"{kind}: {getattr(response, 'status_code', response)}")
            elif posted is not None:
                out["posted"].append(posted)


def _loadavg() -> str:
    """The machine's 1-, 5- and 15-minute load averages (other work on a shared machine shows here)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _stats(latency: list[tuple[str, float, bool]]) -> dict:
    frame = pd.DataFrame(latency, columns=["kind", "s", "ok"])
    out = {}
    for kind, part in [("all", frame), *frame.groupby("kind")]:
        ms = part["s"].to_numpy() * 1000
        out[kind] = {"n": int(len(ms)), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                     "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
                     "max_ms": round(float(ms.max()), 1)}
    return out


def _check(url: str, anchor: Path, posted: list[tuple[str, str]]) -> dict:
    """Every posted action in ``actions``, every action in the access log, and the log verifies."""
    from sqlalchemy import select

    from worklist import accesslog
    from worklist.db import AccessLog, Action, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            actions = conn.execute(select(Action.id, Action.client_id, Action.note)).all()
            logged = [json.loads(d).get("action_id") for d in
                      conn.scalars(select(AccessLog.detail).where(AccessLog.what == "action"))]
        report = accesslog.verify(engine, anchor)
    finally:
        engine.dispose()
    in_db = {(a.client_id, a.note) for a in actions}
    return {"posted": len(posted), "actions": len(actions), "missing_actions": len(set(posted) - in_db),
            "actions_not_logged": len({a.id for a in actions} - set(logged)), "log_rows": report.rows,
            "log_ok": report.ok, "log_anchored": report.anchored}


def run(kind: str, url: str, args, tmp: Path) -> dict:
    """Prepare ``url``, serve it, run the single-session and the concurrent load, check the database."""
    import httpx

    from live_servers import free_port
    from web_client import login

    facts = _prepare(url, args.risklist, args.data, args.users)
    anchor = tmp / f"{kind}.audit-anchor"
    port = free_port()
    ctx = mp.get_context("spawn")
    server = ctx.Process(target=_serve, args=(url, str(args.data) if args.data else None, port, str(anchor),
                                              args.workers))
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
        time.sleep(args.settle)  # users arrive some time after the start: the usage cache is warmed meanwhile
        rng = np.random.default_rng(0)
        with httpx.Client(base_url=base, timeout=120) as http:
            csrf = login(http, *facts["accounts"][0])
            t0 = time.perf_counter()
            _request(http, "client", rng, facts, csrf, "")  # the first client page builds the usage cache
            warmup = time.perf_counter() - t0
            single = []
            for _ in range(args.single):
                t0 = time.perf_counter()
                response, expected, _ = _request(http, "worklist", rng, facts, csrf, "")
                single.append(("worklist", time.perf_counter() - t0, response.status_code == expected))
        shares = np.array(args.mix) / np.sum(args.mix)
        out = {"latency": [], "errors": ["single worklist page failed" for *_, ok in single if not ok],
               "posted": []}
        start = threading.Barrier(args.sessions + 1)
        threads = []
        for s in range(args.sessions):
            kinds = list(np.random.default_rng(1000 + s).choice(KINDS, size=args.requests, p=shares))
            threads.append(threading.Thread(target=_session, args=(
                base, facts["accounts"][s % len(facts["accounts"])], facts, kinds, 1000 + s, start, out,
                tuple(args.think) if args.think else None)))
        for t in threads:
            t.start()
        load_before = _loadavg()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.join(60)
    check = _check(url, anchor, out["posted"])
    load = _stats(out["latency"])
    return {"db": kind, "unit": facts["unit"], "unit_rows": facts["unit_rows"], "prepare_s": facts["prepare_s"],
            "settle_s": args.settle, "first_client_page_s": round(warmup, 2), "single": _stats(single)["worklist"],
            "sessions": args.sessions, "requests": args.requests, "workers": args.workers,
            "think_s": "-".join(str(t) for t in args.think) if args.think else "0", "load_before": load_before,
            "load_after": _loadavg(), "wall_s": round(wall, 1),
            "requests_per_s": round(len(out["latency"]) / wall, 1), "errors": len(out["errors"]),
            "error_examples": out["errors"][:5], "load": load, **check}


def _flat(result: dict) -> dict:
    row = {k: v for k, v in result.items() if k not in ("single", "load", "error_examples")}
    for key, value in result["single"].items():
        row[f"single_worklist_{key}"] = value
    for kind, stats in result["load"].items():
        for key, value in stats.items():
            row[f"{kind}_{key}"] = value
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--risklist", type=Path, required=True, help="a scored risk list (parquet, sidecar beside it)")
    ap.add_argument("--data", type=Path, help="the county's canonical tables (directory names, usage chart)")
    ap.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--requests", type=int, default=200, help="requests per session")
    ap.add_argument("--mix", type=float, nargs=3, default=[0.5, 0.35, 0.15], metavar=("WORKLIST", "CLIENT", "ACTION"))
    ap.add_argument("--users", type=int, default=10, help="case managers of the largest unit sharing the sessions")
    ap.add_argument("--single", type=int, default=100, help="worklist pages of the unloaded single session")
    ap.add_argument("--think", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="each session waits a uniform LOW-HIGH seconds before each request (default: no wait)")
    ap.add_argument("--workers", type=int, default=1, help="server processes (sote serve --workers)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds between the server answering and the first client page (default 0)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "worklist_load.csv")
    args = ap.parse_args(argv)

    results = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_wl_load_")))
        for kind in args.db:
            if kind == "postgresql":
                from live_servers import postgres_cluster

                url = stack.enter_context(postgres_cluster("bench_load", settings={"max_connections": "200"}))
            else:
                url = f"sqlite:///{tmp / 'load.db'}"
            result = run(kind, url, args, tmp)
            results.append(result)
            print(json.dumps(result), flush=True)
    frame = pd.DataFrame([_flat(r) for r in results])
    append_results(frame, args.results, risklist=args.risklist.name)
    print(frame.T.to_string(header=False))
    bad = [r["db"] for r in results if r["errors"] or r["missing_actions"] or r["actions_not_logged"]
           or not r["log_ok"] or r["actions"] != r["posted"]]
    if bad:
        sys.exit(f"load run failed on {', '.join(bad)}: errors, missing actions or an unverified log")


if __name__ == "__main__":
    main()
