"""Benchmark: service-need scenarios on a county (issue 18) — CPU seconds and peak memory per phase.

Usage (the default county, a heavy run: through the shared lock)::

    flock /work/spec4/heavy.lock nice -n 10 .venv/bin/python benchmarks/bench_scenarios.py \\
        --data out/county [--base-year 2024 --to 2030 --bootstrap 200] [--demo-bootstrap 20]

Phases, each timed in CPU seconds of this process (user + system, DuckDB's threads
included) and wall seconds: validating the county into a dataset read lazily (as the
demo does), the features of 1 January of the base year and of the next year (cached
for what follows), the run of every shipped scenario with ``--bootstrap`` rounds over
the rows the base year touches (:func:`scenarios.demo_step.base_year_frames`), the
report and the tidy table written, and then the demo's step
(:func:`scenarios.demo_step.demo_scenarios`, ``--demo-bootstrap`` rounds, features
cached, no MLflow) — the issue's budget for that is 30 s on the default county. The
projection is the county's ``projection.csv`` (``sote synth``) or, without one, made
from its records. Peak memory is this process's VmHWM after each phase. Rows are
appended to ``benchmarks/results/scenarios.csv``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import append_results, peak_rss_mb  # noqa: E402


class Phases:
    """CPU and wall seconds and the peak memory after each phase."""

    def __init__(self):
        self.rows = []
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def lap(self, phase: str, **extra) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        self.rows.append({"phase": phase, "cpu_s": round(cpu - self._cpu, 1), "wall_s": round(wall - self._wall, 1),
                          "peak_rss_mb": round(peak_rss_mb()), **extra})
        print(json.dumps(self.rows[-1]), flush=True)
        self._cpu, self._wall = cpu, wall


def main() -> None:
    import pandas as pd

    from features.contract.stream import open_dataset
    from features.histories.build import ClientHistories
    from scenarios.demo_step import base_year_frames, demo_scenarios
    from scenarios.projection import load_projection
    from scenarios.projection_synth import PROJECTION_FILE, county_projection, full_years
    from scenarios.report import scenarios_html
    from scenarios.run import project_scenarios

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the county's folder")
    parser.add_argument("--base-year", type=int, default=2024)
    parser.add_argument("--to", type=int, default=2030)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--demo-bootstrap", type=int, default=20)
    args = parser.parse_args()

    clock = Phases()
    with open_dataset(args.data) as ds, tempfile.TemporaryDirectory() as tmp:
        clients = int(len(ds.read("clients", ["client_id"])))
        clock.lap("validate (dataset)", clients=clients)
        histories = ClientHistories(ds, cache=True)
        for y in (args.base_year, args.base_year + 1):
            histories.features(pd.Timestamp(f"{y}-01-01"))
        clock.lap("features of 2 dates")
        frames = base_year_frames(ds, args.base_year)
        given = args.data / PROJECTION_FILE
        projection = (load_projection(given) if given.is_file()
                      else county_projection(frames, full_years(ds.period.start, ds.period.end), args.to))
        clock.lap("base-year rows and projection", events=int(len(frames["events"])))
        result = project_scenarios(frames, projection, base_year=args.base_year, to_year=args.to,
                                   bootstrap=args.bootstrap, histories=histories)
        clock.lap(f"all scenarios, {args.bootstrap} rounds", scenarios=len(result.config.scenarios),
                  variants=len(result.meta["variants"]), rows=int(len(result.table)))
        html = scenarios_html(result, "fi")
        result.table.to_parquet(Path(tmp) / "scenarios.parquet", index=False)
        result.table.to_csv(Path(tmp) / "scenarios.csv", index=False)
        (Path(tmp) / "scenarios.html").write_text(html, encoding="utf-8")
        clock.lap("report and table written")
        del result
        summary = demo_scenarios(ds, args.data, Path(tmp) / "demo", base_year=args.base_year, to_year=args.to,
                                 bootstrap=args.demo_bootstrap, histories=histories, track=False)
        clock.lap(f"demo step, {args.demo_bootstrap} rounds (features cached)", step_wall_s=summary["seconds"])
    frame = pd.DataFrame(clock.rows)
    append_results(frame, Path(__file__).parent / "results" / "scenarios.csv", data=str(args.data),
                   base_year=args.base_year, to_year=args.to, bootstrap=args.bootstrap)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
