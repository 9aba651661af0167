"""Benchmark: every data command of sote on a county tiled to scale, each in a fresh process.

    python benchmarks/bench_scale.py --data out/county --copies 5       # a 1.33 M county: 5 distinct seeds
    python benchmarks/bench_scale.py --data out/county --copies 5 --tiling identical  # issue 16's 5 equal copies
    python benchmarks/bench_scale.py --data out/county --copies 1       # the default county as it is
    python benchmarks/bench_scale.py --clients 20000 --copies 3         # quick: synthesise a small base first
    python benchmarks/bench_scale.py --data out/county --steps validate,features

The base county (``--data``, or ``sote synth --clients N`` into the work
folder) is tiled ``--copies`` times under fresh client ids by
:mod:`tile_county` (DuckDB, Parquet to Parquet; reused while the base and
the copies are unchanged). By default (``--tiling distinct``) copy ``k`` is
a county of its own, generated with the base's configuration and seed
``seed + k`` (copy 0 is the base; the others are generated into
``<work>/<base>-seeds/seed-<s>`` in a measured ``synth-copies`` step, one
after the other, and reused while their configuration holds): distinct
histories, so a model trained on the tiled county early-stops as on real
data. ``--tiling identical`` copies the base itself N times, as the first
1.33 M measurements did: its copies of one history carry different ids and
fall on both sides of the trainer's client-disjoint early-stopping split,
so LightGBM runs to its round cap (2,000 trees) and scoring with that model
is ~30x slower per client. The two tilings are different folders
(``<base>-x<N>-distinct``, ``<base>-x<N>``). Then ``sote validate`` (writing a validated copy with ``--out``),
``sote features``, ``sote labels``, ``sote segment``, ``sote train
--register`` and ``sote score --explain-share 0.2`` run one after another,
each as its own ``sote`` process. With ``--inputs validated`` (the default)
the later commands read the validated copy (the raw tiled county if
``validate`` failed, or was not run and left no copy in an earlier run);
``score`` uses the model ``train`` just registered in the work folder's own
MLflow store, or the model it logged if the quality gate kept it from
registering.

For each command the benchmark records the wall and CPU seconds (CPU time
is the steadier figure on a shared machine), the peak resident
memory of the process (``ru_maxrss`` from ``os.wait4``, KiB on Linux; the
largest of the process and the children it waited for, not their sum), the
exit status, the load average before and after, and on failure the tail of
the command's standard error. A failing command is recorded and the
benchmark goes on. Results are appended to ``benchmarks/results/scale.csv``
and printed as a Markdown table; each command's full output is kept in
``<work>/run-<county>/logs/``.

Linux carries a process's peak RSS across ``exec`` (and, through
``vfork``, a parent's peak into its child's), so each command runs as the
child of a small launcher process that reports the command's own rusage
(:func:`run_measured`). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

STEPS: tuple[str, ...] = ("validate", "features", "labels", "segment", "train", "score")
TARGET = "high_use"
#: The tiling the benchmark uses unless ``--tiling`` says otherwise (see :mod:`tile_county`).
TILING = "distinct"
MODEL_URI = f"models:/{TARGET}@champion"


def sote_command(code: Path | None = None) -> list[str]:
    """The ``sote`` command: the entry point beside this interpreter, or the source tree ``code`` run with it."""
    if code is not None:
        return [sys.executable, "-c", "import sys; from sote.cli import app; sys.argv[0] = 'sote'; sys.exit(app())"]
    beside = Path(sys.executable).parent / "sote"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("sote")
    if found is None:
        raise SystemExit("bench_scale: no `sote` command beside the interpreter or on PATH; install the project")
    return [found]


def model_uri(logs: Path) -> str:
    """The model ``score`` uses: the champion if ``train`` registered one, else the model it logged."""
    text = "".join((logs / f"train.{kind}").read_text(encoding="utf-8", errors="replace")
                   for kind in ("out", "err") if (logs / f"train.{kind}").exists())
    if f"registered {TARGET} version" in text:
        return MODEL_URI
    logged = re.findall(r"model (models:/m-[0-9a-f]+)", text)
    return logged[-1] if logged else MODEL_URI


#: Runs a command as its own child and reports the child's rusage: a small, fresh parent, so the figure is the
#: command's own (Linux hands a process's peak RSS on through exec, and through vfork a parent's peak to its
#: child: measured straight from a large process, a small command would report the large one's peak).
LAUNCHER = """
import json, os, signal, sys, time
report, argv = sys.argv[1], sys.argv[2:]
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)  # outlive the command to report it; a timeout's SIGKILL still ends us
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        os.write(2, f"cannot run {argv[0]}: {err}\\n".encode())
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    json.dump({"seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss,
               "exit": code}, f)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(name: str, argv: list[str], logs: Path, *, cwd: Path | None = None, timeout: float | None = None,
                 tail_lines: int = 12, pythonpath: Path | None = None) -> dict:
    """Run ``argv`` as a fresh process; return its wall time, peak RSS, exit status and, on failure, its stderr tail.

    The command runs as the child of a small launcher (:data:`LAUNCHER`), which
    takes its ``ru_maxrss`` from ``os.wait4``: the peak is the command's own
    (the largest of it and of the processes it waited for, not their sum),
    whatever the size of the process calling this.

    Parameters
    ----------
    name
        The step's name (also the log files' stem: ``<logs>/<name>.out`` and ``.err``).
    argv
        The command.
    logs
        Folder for the command's standard output and error.
    cwd
        Working directory of the command.
    timeout
        Seconds after which the command's process group is sent SIGTERM (then SIGKILL after 30 s);
        recorded as exit status ``timeout``.
    tail_lines
        Lines of standard error kept in ``error`` when the command fails.
    pythonpath
        A source tree put first on the command's ``PYTHONPATH`` (see ``--code``).

    Returns
    -------
    dict
        ``step``, ``seconds`` (wall), ``cpu_seconds`` (user + system, the command and the processes it
        waited for), ``peak_rss_mb``, ``exit`` (the status, ``-N`` for signal N, or
        ``timeout``), ``ok``, ``load_before``, ``load_after`` (1-minute load averages) and ``error``
        (the stderr tail, empty when the command succeeded).
    """
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONUNBUFFERED": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    load_before = os.getloadavg()[0]
    err_path, report = logs / f"{name}.err", logs / f"{name}.rusage.json"
    report.unlink(missing_ok=True)
    timed_out = False
    with open(logs / f"{name}.out", "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(report), *argv], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)
        while True:
            try:
                proc.wait(timeout=None if timeout is None else 0.25)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.perf_counter() - t0
                if elapsed > timeout and not timed_out:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGTERM)
                elif timed_out and elapsed > timeout + 30:
                    os.killpg(proc.pid, signal.SIGKILL)
        seconds = time.perf_counter() - t0
    try:
        measured = json.loads(report.read_text())
    except (OSError, ValueError):  # the launcher itself was killed
        measured = {"seconds": seconds, "cpu_seconds": float("nan"), "maxrss_kib": float("nan"),
                    "exit": proc.returncode}
    code = measured["exit"]
    ok = code == 0 and not timed_out
    error = ""
    if not ok:
        lines = [ln.rstrip() for ln in err_path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if ln.strip()]
        error = " | ".join(lines[-tail_lines:])[-1500:]
    return {"step": name, "seconds": round(measured["seconds"], 1), "cpu_seconds": round(measured["cpu_seconds"], 1),
            "peak_rss_mb": round(measured["maxrss_kib"] / 1024, 1), "exit": "timeout" if timed_out else code,
            "ok": ok, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "error": error}


def count_rows(county: Path) -> dict:
    """Rows per table of a county folder, from the Parquet footers (read in a child process)."""
    code = ("import json, sys, pyarrow.parquet as pq, pathlib\n"
            "d = pathlib.Path(sys.argv[1]); out = {}\n"
            "for t in ('clients', 'events', 'diagnoses', 'measurements', 'assessments'):\n"
            "    f = d / f'{t}.parquet'\n"
            "    files = [f] if f.is_file() else sorted((d / t).rglob('*.parquet'))\n"
            "    out[t] = sum(pq.read_metadata(p).num_rows for p in files)\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code, str(county)], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout)


def step_commands(county: Path, work: Path, data: Path, *, as_of: str, explain_share: float,
                  model: str = MODEL_URI) -> dict[str, list[str]]:
    """The ``sote`` arguments of each step (after the command name's executable).

    ``validate`` reads ``county`` and writes ``<work>/validated``; the others read ``data`` and write
    into ``work``; ``train`` registers into ``<work>/mlruns``, where ``score`` finds ``model``.
    """
    tracking = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    return {
        "validate": ["validate", str(county), "--out", str(work / "validated")],
        "features": ["features", "--data", str(data), "--as-of", as_of, "--out", str(work / "features.parquet")],
        "labels": ["labels", "--data", str(data), "--as-of", as_of, "--target", TARGET,
                   "--out", str(work / "labels.parquet")],
        "segment": ["segment", "--data", str(data), "--as-of", as_of, "--out", str(work / "segments.parquet")],
        "train": ["train", "--data", str(data), "--target", TARGET, "--register", "--tracking-uri", tracking],
        "score": ["score", "--model", model, "--data", str(data), "--as-of", as_of,
                  "--out", str(work / "risk.parquet"), "--explain-share", str(explain_share),
                  "--tracking-uri", tracking],
    }


def tiled_name(base: Path, copies: int, tiling: str) -> str:
    """The tiled county's folder name: ``<base>-x<N>`` for identical copies, ``<base>-x<N>-distinct`` otherwise."""
    return f"{base.name}-x{copies}" + ("" if tiling == "identical" else f"-{tiling}")


def prepare_county(args, work: Path, logs: Path) -> tuple[Path, list[dict]]:
    """The county to measure on: synthesised, copies generated and tiled in child processes (reused when current)."""
    prep = []
    base = args.data
    if base is None:
        base = work / f"base-{args.clients}"
        manifest = base / "manifest.json"
        current = manifest.is_file() and json.loads(manifest.read_text())["config"].get("clients") == args.clients
        if not current:
            print(f"synthesising a {args.clients:,}-client base county into {base}", flush=True)
            prep.append(run_measured("synth", sote_command(args.code) + ["synth", "--out", str(base), "--clients",
                                                                 str(args.clients)], logs, pythonpath=args.code))
            if not prep[-1]["ok"]:
                raise SystemExit(f"bench_scale: sote synth failed: {prep[-1]['error']}")
    base = base.resolve()
    if args.copies == 1:
        return base, prep
    county = work / tiled_name(base, args.copies, args.tiling)
    copies_dir = work / f"{base.name}-seeds"
    sys.path.insert(0, str(HERE))
    from tile_county import is_current  # standard library only at import time

    if is_current(county, base, args.copies, mode=args.tiling, copies_dir=copies_dir):
        print(f"reusing the tiled county {county}", flush=True)
        return county, prep
    tile = [sys.executable, str(HERE / "tile_county.py"), str(base), str(county), "--copies", str(args.copies)]
    if args.tiling == "distinct":
        tile += ["--distinct", "--copies-dir", str(copies_dir)]
        print(f"generating copies 1-{args.copies - 1} of {base} (seed + k) into {copies_dir}", flush=True)
        prep.append(run_measured("synth-copies", tile + ["--generate-only"], logs, cwd=ROOT,
                                 pythonpath=args.code))
        if not prep[-1]["ok"]:
            raise SystemExit(f"bench_scale: generating the copies failed: {prep[-1]['error']}")
    print(f"tiling {base} x {args.copies} ({args.tiling}) into {county}", flush=True)
    prep.append(run_measured("tile", tile, logs, cwd=ROOT))
    if not prep[-1]["ok"]:
        raise SystemExit(f"bench_scale: tiling failed: {prep[-1]['error']}")
    return county, prep


def markdown(rows: list[dict]) -> str:
    """The results as a Markdown table (one line per step)."""
    lines = ["| step | data | seconds | CPU seconds | peak RSS (MB) | exit | load before/after |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {r['data']} | {r['seconds']:,.1f} | {r['cpu_seconds']:,.1f} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['exit']} | {r['load_before']:.2f} / {r['load_after']:.2f} |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="base county folder (Parquet tables, e.g. out/county)")
    src.add_argument("--clients", type=int, help="synthesise a base county of this many residents instead")
    ap.add_argument("--copies", type=int, default=5, help="copies of the base under fresh client ids (1: as it is)")
    ap.add_argument("--tiling", choices=("distinct", "identical"), default=TILING,
                    help="distinct: copy k generated with the base's configuration and seed + k (a `sote synth` "
                         "base; the default); identical: the base copied N times (a model trained on it never "
                         "early-stops)")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "bench_scale",
                    help="folder for the tiled county, the commands' outputs, logs and MLflow store")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--inputs", choices=("validated", "raw"), default="validated",
                    help="what the commands after validate read: its validated copy, or the tiled county")
    ap.add_argument("--validated", type=Path, default=None,
                    help="an existing validated copy of the county (`sote validate COUNTY --out DIR`) for the steps "
                         "to read instead of the run's own (with --inputs validated; not with the validate step)")
    ap.add_argument("--as-of", default="2024-01-01")
    ap.add_argument("--explain-share", type=float, default=0.2)
    ap.add_argument("--timeout", type=float, default=None, help="seconds after which a step is stopped")
    ap.add_argument("--code", type=Path, default=None,
                    help="run sote from this source tree (e.g. `git archive <commit> | tar -x -C DIR`) instead of the "
                         "installed one, to measure an earlier version")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. 'before streaming')")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "scale.csv")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        ap.error(f"--steps: unknown step(s) {unknown}; choose among {','.join(STEPS)}")
    if args.copies < 1:
        ap.error("--copies: give at least 1")
    if args.validated is not None:
        if "validate" in steps:
            ap.error("--validated: the validate step writes the run's own validated copy; leave one of them out")
        if not args.validated.is_dir():
            ap.error(f"--validated {args.validated}: not a folder")
        args.validated = args.validated.resolve()
    if args.data is not None and not args.data.is_dir():
        ap.error(f"--data {args.data}: not a folder")
    if args.code is not None:
        if not (args.code / "sote" / "cli.py").is_file():
            ap.error(f"--code {args.code}: not a sote source tree (no sote/cli.py)")
        args.code = args.code.resolve()

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    county, prep = prepare_county(args, work, logs)
    run = work / f"run-{county.name}"
    run.mkdir(exist_ok=True)
    logs = run / "logs"
    rows_in = count_rows(county)
    print(f"county {county}: " + ", ".join(f"{t} {n:,}" for t, n in rows_in.items()), flush=True)

    validated = args.validated or run / "validated"
    results = []
    for r in prep:
        results.append({**r, "data": "base"})
    for step in steps:
        use_validated = (args.inputs == "validated" and step != "validate" and validated.is_dir()
                         and not any(r["step"] == "validate" and not r["ok"] for r in results))
        data = validated if use_validated else county
        if step == "train" and (run / "mlruns").exists():
            shutil.rmtree(run / "mlruns")  # this run's own store: score reads the model registered now
        model = model_uri(logs) if step == "score" and "train" in steps else MODEL_URI
        argv = sote_command(args.code) + step_commands(county, run, data, as_of=args.as_of,
                                                       explain_share=args.explain_share, model=model)[step]
        result = run_measured(step, argv, logs, cwd=run, timeout=args.timeout, pythonpath=args.code)
        result["data"] = "validated" if use_validated else ("tiled" if args.copies > 1 else "base")
        results.append(result)
        print(json.dumps(result), flush=True)

    import pandas as pd  # only now: every measured process has ended

    from measure import append_results

    frame = pd.DataFrame(results)
    append_results(frame, args.results, county=county.name, copies=args.copies,
                   clients=rows_in.get("clients"), events=rows_in.get("events"), inputs=args.inputs,
                   code=str(args.code or ROOT), note=args.note)
    print(f"\n{county.name}: {rows_in.get('clients', 0):,} clients, {rows_in.get('events', 0):,} events, "
          f"{os.cpu_count()} cpus\n")
    print(markdown(results))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
