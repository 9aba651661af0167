"""Features (and scoring) on Spark with two local workers against DuckDB on the same machine.

    python benchmarks/bench_spark.py --data DIR [--as-of 2024-01-01] [--engines duckdb,spark]
                                     [--steps features,labels,score,validate --model URI --tracking-uri URI]

``DIR`` is validated Parquet (``sote validate --out`` or a synthetic county): both engines scan it with
``validate=False``. The ``validate`` step checks ``DIR`` against the data contract instead, so give it
the raw tables (a validated copy would be reused by DuckDB as it is): DuckDB's streaming validation
(:func:`features.contract.stream.open_dataset`, which also writes the kept rows to a temporary copy)
against :func:`features.contract.validate_spark.check_contract_spark` (checks only). Spark runs on a standalone master and two one-core workers started on 127.0.0.1
(``tests/spark/spark_cluster.py``; 2 GB each, executors of 1.5 GB), the driver in a fresh process.
Each step runs in a fresh child process; measured: wall and CPU seconds (the child and every process of
the cluster: the master, the workers, their executor JVMs and Python workers, from /proc), the peak
resident memory of each process role (sampled every 0.5 s: driver Python, driver JVM, largest executor,
largest Python worker), and Spark's shuffle bytes written (from the application's event log). Rows are
appended to ``benchmarks/results/spark.csv`` and printed as a Markdown table. Run heavy sizes under the
shared lock: ``flock /work/spec6/heavy.lock nice -n 5 python benchmarks/bench_spark.py ...``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "spark"))  # the cluster launcher the tests use
sys.path.insert(0, str(HERE))


def _child(args) -> None:
    """One step with one engine, in this (fresh) process."""
    from features.histories.build import ClientHistories
    from features.histories.output import write_features

    out = Path(args.out)
    engine = None
    if args.engine == "spark":
        from features.histories.engine_spark import SparkEngine

        engine = SparkEngine(master=args.master, driver_memory="2g", executor_memory="1500m",
                             shuffle_partitions=args.partitions,
                             config={"spark.eventLog.enabled": "true", "spark.eventLog.dir": args.events,
                                     "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                                     "spark.executor.cores": "1", "spark.cores.max": "2",
                                     "spark.pyspark.python": sys.executable})
    t0 = time.perf_counter()
    if args.step == "features":
        with ClientHistories(args.data, engine=engine, validate=False) as h:
            write_features(h, args.as_of, out / "features")
    elif args.step == "validate":
        # the contract checks of raw tables: DuckDB's streaming validation (which also writes the kept,
        # typed rows to a temporary copy, removed at the end) against the checks on the cluster (no copy)
        if engine is None:
            from features.contract.stream import open_dataset

            out.mkdir(parents=True, exist_ok=True)
            with open_dataset(args.data, workdir=out):
                pass
        else:
            from features.contract.validate_spark import check_contract_spark

            check_contract_spark(args.data, engine)
    elif args.step == "labels":
        from features.contract.stream import open_dataset

        with open_dataset(args.data) as dataset:
            if engine is None:
                from features.contract.io import write_table
                from features.targets.labels import build_labels

                write_table(build_labels(dataset, args.as_of, args.target), out / "labels.parquet")
            else:
                from features.targets.labels_spark import build_labels_spark

                build_labels_spark(dataset, args.as_of, args.target, out / "labels", engine=engine)
    else:
        from features.contract.stream import open_dataset

        with open_dataset(args.data) as dataset:
            if engine is None:
                from models.scoring import score

                score(args.model, dataset, args.as_of, out / "risk.parquet", tracking_uri=args.tracking_uri,
                      explain_share=args.explain_share)
            else:
                from models.scoring_spark import score_spark

                score_spark(args.model, dataset, args.as_of, out / "risk.parquet", engine=engine,
                            tracking_uri=args.tracking_uri, explain_share=args.explain_share)
    print(json.dumps({"seconds_in_child": round(time.perf_counter() - t0, 1)}))
    if engine is not None:
        engine.close()


def _tree(pid: int):
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _role(proc) -> str:
    try:
        argv = proc.cmdline()
    except Exception:  # noqa: BLE001 - the process ended
        return "gone"
    cmd, program = " ".join(argv), Path(argv[0]).name if argv else ""
    if "CoarseGrainedExecutorBackend" in cmd:
        return "executor_jvm"
    if "deploy.worker.Worker" in cmd or "deploy.master.Master" in cmd:
        return "daemon_jvm"
    if program == "java" or program.endswith("/java"):
        return "driver_jvm"
    if "pyspark.daemon" in cmd or "pyspark.worker" in cmd:
        return "python_worker"
    if program.startswith("python"):
        return "driver_python"
    return "launcher"  # the bash of spark-class / spark-submit before it execs java


class _Sampler(threading.Thread):
    """Peak RSS per role and CPU seconds of the child's and the cluster's processes, every 0.5 s.

    CPU is each process's own user + system time at its last sample (not its reaped children's, which
    are sampled themselves: counting both would count a Python worker twice), so a process's last
    half second before it exits is missed. The cluster's daemons (master, workers) were running
    before the step: their CPU is counted from the step's first sample.
    """

    def __init__(self, pids, daemons=()):
        super().__init__(daemon=True)
        self.pids, self.peak, self.cpu, self.stop = pids, {}, {}, threading.Event()
        self.start_cpu = {pid: _own_cpu(pid) for pid in daemons}

    def sample(self) -> None:
        for pid in self.pids():
            for proc in _tree(pid):
                try:
                    rss, times = proc.memory_info().rss / 2**20, proc.cpu_times()
                except Exception:  # noqa: BLE001 - the process ended
                    continue
                role = _role(proc)
                self.peak[role] = max(self.peak.get(role, 0.0), rss)
                self.cpu[proc.pid] = times.user + times.system

    def cpu_seconds(self) -> float:
        """CPU seconds of every process seen, the daemons' from the step's start."""
        return sum(cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.cpu.items())

    def executors(self) -> int:
        """How many executor JVMs run now."""
        return sum(_role(proc) == "executor_jvm" for pid in self.pids() for proc in _tree(pid))

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.5)


def _own_cpu(pid: int) -> float:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def _commit() -> str:
    """The git HEAD this run measured, with ``+dirty`` when engine or SQL files differ from it."""
    root = HERE.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "features", "models", "sote"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _shuffle_bytes(events: Path) -> tuple[int, int, int]:
    """Shuffle bytes written and read, and bytes spilled to disk, summed over the event log's finished tasks."""
    written = read = spilled = 0
    for log in events.glob("*"):
        for line in log.read_text(errors="replace").splitlines():
            if '"Event":"SparkListenerTaskEnd"' not in line:
                continue
            metrics = json.loads(line).get("Task Metrics") or {}
            written += (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
            shuffle_read = metrics.get("Shuffle Read Metrics") or {}
            read += shuffle_read.get("Remote Bytes Read", 0) + shuffle_read.get("Local Bytes Read", 0)
            spilled += metrics.get("Disk Bytes Spilled", 0)
    return written, read, spilled


def _run(args, engine: str, step: str, master: str | None, cluster_pids, work: Path) -> dict:
    events = work / f"events-{engine}-{step}"
    events.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", "--engine", engine, "--step", step, "--data", str(args.data),
           "--as-of", args.as_of, "--out", str(work / f"out-{engine}-{step}"), "--events", str(events),
           "--partitions", str(args.partitions), "--explain-share", str(args.explain_share), "--target", args.target]
    if master:
        cmd += ["--master", master]
    if args.model:
        cmd += ["--model", args.model]
    if args.tracking_uri:
        cmd += ["--tracking-uri", args.tracking_uri]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = _Sampler(lambda: [proc.pid, *cluster_pids()], daemons=cluster_pids())
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    deadline = time.monotonic() + 60  # the application's executors exit after the driver: count them to the end
    while sampler.executors() and time.monotonic() < deadline:
        time.sleep(0.2)
    sampler.stop.set()
    sampler.join()
    sampler.sample()
    written, read, spilled = _shuffle_bytes(events) if engine == "spark" else (None, None, None)
    mb = (lambda n: None if n is None else round(n / 2**20, 1))
    row = {"engine": engine, "step": step, "status": "ok" if proc.returncode == 0 else f"exit {proc.returncode}",
           "wall_s": round(wall, 1), "cpu_s": round(sampler.cpu_seconds(), 1),
           **{f"peak_{k}_mb": round(sampler.peak[k]) if k in sampler.peak else None for k in _ROLES},
           "shuffle_written_mb": mb(written), "shuffle_read_mb": mb(read), "spilled_mb": mb(spilled),
           "partitions": args.partitions if engine == "spark" else None, "commit": _commit(),
           "error": (err.strip().splitlines()[-1][:200] if err.strip() else "") if proc.returncode else ""}
    if proc.returncode:
        (work / f"stderr-{engine}-{step}.txt").write_text(err)
    return row


#: Process roles whose peak memory each row reports (the same columns in every row of the CSV).
_ROLES = ("driver_python", "driver_jvm", "executor_jvm", "python_worker", "daemon_jvm")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--as-of", default="2024-01-01")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--steps", default="features")
    parser.add_argument("--target", default="high_use", help="the labels step's target")
    parser.add_argument("--model")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--explain-share", type=float, default=0.2)
    parser.add_argument("--partitions", type=int, default=16, help="spark.sql.shuffle.partitions")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--label", default=None, help="what the data are, for the results table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--master", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    import psutil

    from measure import append_results
    from spark_cluster import standalone_cluster

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_spark-"))
    engines, steps = args.engines.split(","), args.steps.split(",")
    clients = pd.read_parquet(args.data / "clients.parquet", columns=["client_id"]).shape[0] \
        if (args.data / "clients.parquet").is_file() else None
    rows = []

    def record(row: dict) -> None:
        frame = pd.DataFrame([row])
        frame.insert(0, "data", args.label or str(args.data))
        frame.insert(1, "clients", clients)
        append_results(frame, HERE / "results" / "spark.csv")
        rows.append(frame)
        print(_markdown(frame), flush=True)

    for engine in engines:
        if engine == "duckdb":
            for step in steps:
                record(_run(args, "duckdb", step, None, lambda: [], work))
            continue
        with standalone_cluster(work / "cluster", workers=2, worker_memory="2g") as master:
            me = psutil.Process()
            daemons = [p.pid for p in me.children() if "spark-class" in " ".join(p.cmdline()) or
                       "java" in " ".join(p.cmdline())]
            for step in steps:
                record(_run(args, "spark", step, master, lambda: daemons, work))
    print(_markdown(pd.concat(rows, ignore_index=True)))


def _markdown(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame`` (without the optional tabulate package)."""
    cells = [[str(v) for v in row] for row in frame.astype(object).fillna("").to_numpy()]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    main()
