"""Benchmark: synthetic-county generation time and peak memory.

Usage: python benchmarks/bench_synth.py [--clients 199000 1000000] [--workers 2] [--out DIR]

Each size runs in a fresh child process; peak memory is the largest resident
set of that process and of its worker processes (ru_maxrss of children).
Results are appended to benchmarks/results/synth.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys
from features.synth import SynthConfig, generate_county
m = generate_county(sys.argv[1], SynthConfig(clients=int(sys.argv[2]), workers=int(sys.argv[3]),
                                             truth_reps=int(sys.argv[4])))
print(json.dumps({"rows": m["rows"], "truth_rows": m["truth_rows"]}))
"""


def run(clients: int, workers: int, reps: int, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(clients), str(workers), str(reps)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    size_mb = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    return {"clients": clients, "workers": workers, "truth_reps": reps, "seconds": round(wall, 1),
            "events": info["rows"]["events"], "events_per_s": round(info["rows"]["events"] / wall),
            "peak_rss_mb_one_process": round(max(peak_kb, before) / 1024), "files_mb": round(size_mb),
            "truth_rows": info["truth_rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[199_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--truth-reps", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="keep the generated county here")
    args = parser.parse_args()
    results_dir = Path(__file__).parent / "results"
    results_dir.mkdir(exist_ok=True)
    for n in args.clients:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or Path(tmp) / "county"
            row = run(n, args.workers, args.truth_reps, out)
        print(json.dumps(row))
        path = results_dir / "synth.csv"
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


if __name__ == "__main__":
    main()
