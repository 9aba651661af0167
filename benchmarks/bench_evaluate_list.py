"""How far the label-free estimate of ``sote evaluate-list`` lands from the realised figures, with and without drift.

On a synthetic county: ``high_use`` is trained (2023-01-01, judged 2024-01-01)
and registered; lists are scored on 2024-01-01 and 2025-01-01 (both
horizons inside the data) and evaluated, so the estimate (from the calibrated
probabilities only) stands beside the realised figures. Then the 2025 list is
re-scored and evaluated on copies of the data with drift injected (seeded):

- ``mix``: covariate shift -- 60 % of the clients under 65 at the list date
  removed (an older population; the outcome's rule unchanged);
- ``recording_gap``: 50 % of one municipality's primary-care, remote and
  specialist-outpatient records of the year before the list date missing (a
  registry gap: features understate need, outcomes unchanged);
- ``horizon_use_shock``: a random 20 % of clients, unrelated to any feature,
  with every event of the horizon recorded three times (use and cost tripled
  after the list date: concept shift);
- ``municipality_costs``: the horizon events of the largest municipality's
  clients cost twice as much (a new, dearer service model there: concept shift).

Writes ``benchmarks/results/evaluate_list_<clients>.json`` and ``.md`` (not committed).

    .venv/bin/python benchmarks/bench_evaluate_list.py --clients 30000 [--data county] [--out-dir /tmp/bench_eval]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

LIST_DATES = ("2024-01-01", "2025-01-01")
DRIFT_DATE = "2025-01-01"
FIGURES = ("auroc", "precision_top1pct", "precision_top2pct", "precision_top5pct", "recall_top5pct")


def _day(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.normalize()


def _keep_clients(tables, keep: set[str]):
    new = {}
    for name, frame in tables.tables.items():
        new[name] = (frame[frame["client_id"].astype(str).isin(keep).to_numpy()].reset_index(drop=True)
                     if "client_id" in frame else frame)
    return dataclasses.replace(tables, tables=new)


def mix(tables, t: pd.Timestamp, seed: int):
    """60 % of the clients under 65 at ``t`` removed from every table."""
    from features.targets.labels import population

    people = population(tables.tables["clients"], t)
    young = people.index[people["age"] < 65].to_numpy()
    rng = np.random.default_rng(seed)
    dropped = set(rng.choice(young, size=int(0.6 * len(young)), replace=False))
    everyone = set(tables.tables["clients"]["client_id"].astype(str))
    return _keep_clients(tables, everyone - dropped)


def _largest_municipality(tables) -> str:
    return str(tables.tables["clients"]["municipality"].astype(str).value_counts().index[0])


def recording_gap(tables, t: pd.Timestamp, seed: int):
    """Half of the largest municipality's primary-care, remote and outpatient records of the year before ``t`` lost."""
    clients = tables.tables["clients"]
    place = _largest_municipality(tables)
    ids = set(clients.loc[clients["municipality"].astype(str) == place, "client_id"].astype(str))
    ev = tables.tables["events"]
    start = _day(ev["start"])
    hit = (ev["client_id"].astype(str).isin(ids) & ev["service"].astype(str).isin(
        ["primary_care_visit", "remote_contact", "specialist_outpatient"]) & (start >= t - pd.Timedelta(days=365))
        & (start < t)).to_numpy()
    rng = np.random.default_rng(seed)
    lost = hit & (rng.random(len(ev)) < 0.5)
    return dataclasses.replace(tables, tables={**tables.tables, "events": ev.loc[~lost].reset_index(drop=True)})


def horizon_use_shock(tables, t: pd.Timestamp, seed: int):
    """A random 20 % of clients: every event from ``t`` on recorded three times."""
    clients = tables.tables["clients"]["client_id"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(clients, size=int(0.2 * len(clients)), replace=False))
    ev = tables.tables["events"]
    after = (_day(ev["start"]) >= t).to_numpy() & ev["client_id"].astype(str).isin(chosen).to_numpy()
    tripled = pd.concat([ev, ev.loc[after], ev.loc[after]], ignore_index=True)
    return dataclasses.replace(tables, tables={**tables.tables, "events": tripled})


def municipality_costs(tables, t: pd.Timestamp, seed: int):
    """The largest municipality's clients: events from ``t`` on cost twice as much."""
    clients = tables.tables["clients"]
    place = _largest_municipality(tables)
    ids = set(clients.loc[clients["municipality"].astype(str) == place, "client_id"].astype(str))
    ev = tables.tables["events"].copy()
    after = ((_day(ev["start"]) >= t) & ev["client_id"].astype(str).isin(ids)).to_numpy()
    ev.loc[after, "cost_eur"] = ev.loc[after, "cost_eur"] * 2.0
    return dataclasses.replace(tables, tables={**tables.tables, "events": ev})


SCENARIOS = {"mix": mix, "recording_gap": recording_gap, "horizon_use_shock": horizon_use_shock,
             "municipality_costs": municipality_costs}


def compare(ev) -> dict:
    """Realised and estimated whole-list figures, the gaps, and whether the realised lies in the estimate's range."""
    real, est = ev.overall("realised"), ev.overall("estimate")
    out = {"rows": int(real["n"]), "outcomes": int(real["outcomes"]), "expected_outcomes": float(est["outcomes"])}
    for f in FIGURES:
        out[f] = {"realised": float(real[f]), "estimate": float(est[f]), "gap": float(est[f] - real[f]),
                  "relative_gap": float((est[f] - real[f]) / real[f]) if real[f] else None}
        low, high = (("auroc_low", "auroc_high") if f == "auroc" else
                     (f"precision_low_{f.split('_')[1]}", f"precision_high_{f.split('_')[1]}")
                     if f.startswith("precision") else (None, None))
        if low:
            out[f]["estimate_range"] = [float(est[low]), float(est[high])]
            out[f]["realised_in_range"] = bool(est[low] <= real[f] <= est[high])
            out[f]["realised_interval"] = [float(real[low]), float(real[high])]
    return out


def main() -> None:
    from features.contract.load import load_tables
    from features.synth import SynthConfig, generate_county
    from models.evaluate_list import evaluate_list
    from models.scoring import score
    from models.train import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="an existing county (else one is generated)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/sote_bench_evaluate_list"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{args.out_dir / 'mlflow.db'}"
    timings = {}
    t0 = time.perf_counter()
    data = args.data or args.out_dir / f"county_{args.clients}"
    if not data.exists():
        generate_county(data, SynthConfig(clients=args.clients, seed=args.seed, truth_reps=1, workers=args.workers))
    timings["synth"] = round(time.perf_counter() - t0, 1)
    tables = load_tables(data)
    t1 = time.perf_counter()
    trained = train(tables, TrainConfig(target="high_use"), register=True, tracking_uri=uri,
                    progress=lambda m: print(m, flush=True))
    timings["train"] = round(time.perf_counter() - t1, 1)
    report = {"data": str(data), "clients": int(len(tables.tables["clients"])),
              "valid_auroc": float(trained.metrics.set_index("model").loc["lightgbm", "auroc"]),
              "calibration_rows": None, "undrifted": {}, "drift": {}, "seconds": timings}
    calibrator = trained.model.estimator.calibrator_
    if calibrator.bins_ is not None:
        report["calibration_rows"] = int(calibrator.bins_["clients"].sum())
    lists = {}
    for d in LIST_DATES:
        path = args.out_dir / f"risk_high_use_{d}.parquet"
        score("models:/high_use@champion", tables, d, path, tracking_uri=uri, reasons=0)
        lists[d] = path
        t2 = time.perf_counter()
        ev = evaluate_list(path, tables, tracking_uri=uri, out=args.out_dir / f"evaluation_{d}")
        timings[f"evaluate_{d}"] = round(time.perf_counter() - t2, 1)
        report["undrifted"][d] = compare(ev)
        print(d, json.dumps(report["undrifted"][d]["auroc"]), flush=True)
    t = pd.Timestamp(DRIFT_DATE)
    for name, inject in SCENARIOS.items():
        drifted = inject(tables, t, args.seed)
        path = args.out_dir / f"risk_high_use_{DRIFT_DATE}_{name}.parquet"
        score("models:/high_use@champion", drifted, DRIFT_DATE, path, tracking_uri=uri, reasons=0)
        ev = evaluate_list(path, drifted, tracking_uri=uri, out=args.out_dir / f"evaluation_{name}", log=False)
        report["drift"][name] = compare(ev)
        print(name, json.dumps(report["drift"][name]["auroc"]), flush=True)
    timings["total"] = round(time.perf_counter() - t0, 1)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stem = results / f"evaluate_list_{args.clients}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = [f"# evaluate-list: estimate against realised ({report['clients']:,} clients, seed {args.seed})", "",
             "| list | AUROC realised | estimate (95 % range) | precision top 5 % realised | estimate | relative gap |",
             "|---|---|---|---|---|---|"]
    for label, entry in [*((f"{d} (no drift)", e) for d, e in report["undrifted"].items()),
                         *((f"{DRIFT_DATE} {n}", e) for n, e in report["drift"].items())]:
        a, p = entry["auroc"], entry["precision_top5pct"]
        lines.append(f"| {label} | {a['realised']:.3f} | {a['estimate']:.3f} ({a['estimate_range'][0]:.3f}–"
                     f"{a['estimate_range'][1]:.3f}) | {p['realised']:.3f} | {p['estimate']:.3f} | "
                     f"{100 * p['relative_gap']:+.1f} % |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
