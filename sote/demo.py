"""The main job end to end on the synthetic county: data → segments → models → risk lists → reports."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

TARGETS = ("high_use", "diabetes_high_use", "elderly_low_function", "young_adult_mhsu")


@dataclass
class DemoConfig:
    """Dates and sizes of the demo (defaults: a Keski-Uusimaa-sized county, data 2019–2025)."""

    clients: int = 199_000
    seed: int = 2024
    workers: int = 2
    train_as_of: str = "2023-01-01"
    valid_as_of: str = "2024-01-01"
    score_as_of: str = "2025-01-01"
    targets: tuple[str, ...] = TARGETS
    truth_reps: int = 32
    explain_share: float = 0.2
    tracking_uri: str | None = None


@dataclass
class DemoResult:
    """Where everything went, the headline figures and the time each step took."""

    out: Path
    metrics: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(out: str | Path, config: DemoConfig = DemoConfig(), say=print) -> DemoResult:
    """Run the whole pipeline; every output goes under ``out`` and tracking to ``./mlruns`` (or the URI)."""
    from features.histories.build import ClientHistories
    from features.contract.io import write_table
    from features.contract.load import load_tables
    from features.synth import SynthConfig, generate_county
    from features.synth.realism import realism_report
    from models.scoring import score
    from models.train import TrainConfig, train
    from segmentation.report import segmentation_html, transitions_html, write_html
    from segmentation.segments import horizon_cost, segment_clients
    from segmentation.transitions import transition_matrix, transition_table
    from sote.report import write_report
    from sote.tracking import track_segmentation

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "county"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 1)
        clock = now

    say(f"1/6 synthetic county of {config.clients:,} residents")
    generate_county(data, SynthConfig(clients=config.clients, seed=config.seed, workers=config.workers,
                                      truth_reps=config.truth_reps))
    lap("synthetic county")

    say("2/6 validation, realism and client histories")
    tables = load_tables(data)
    years = list(range(pd.Timestamp(config.train_as_of).year - 2, pd.Timestamp(config.score_as_of).year))
    write_table(realism_report(tables.tables, years), out / "realism.csv")
    histories = ClientHistories(tables, cache=True)
    t_train, t_valid = pd.Timestamp(config.train_as_of), pd.Timestamp(config.valid_as_of)
    f_valid = histories.features(t_valid)
    lap("validation and features")

    say("3/6 segments")
    next_cost = horizon_cost(tables.tables["events"], f_valid["client_id"], t_valid)
    segs = segment_clients(f_valid, "kmeans", "auto", next_year_cost=next_cost, random_state=config.seed)
    write_table(segs.assignments, out / "segments.parquet")
    html = segmentation_html(segs, f_valid, str(t_valid.date()), next_cost)
    write_html(html, out / "segments.html")
    track_segmentation(segs, f_valid, str(t_valid.date()), html, tracking_uri=config.tracking_uri)
    grid = segment_clients(f_valid, "grid", next_year_cost=next_cost)
    write_html(segmentation_html(grid, f_valid, str(t_valid.date()), next_cost), out / "segments_grid.html")
    f_train = histories.features(t_train)
    before = segs.assign(f_train)
    after = pd.Series(segs.assignments["segment_name"].to_numpy(), index=segs.assignments["client_id"].to_numpy())
    write_html(transitions_html(transition_table(before, after), transition_matrix(before, after),
                                str(t_train.date()), str(t_valid.date())), out / "segment_transitions.html")
    lap("segments")

    say(f"4/6 models for {len(config.targets)} targets (train {t_train.date()}, validate {t_valid.date()})")
    rows = []
    trained = []
    for target in config.targets:
        try:
            result = train(tables, TrainConfig(target=target, train_as_of=config.train_as_of,
                                               valid_as_of=config.valid_as_of, seed=config.seed),
                           register=True, tracking_uri=config.tracking_uri, truth=data / "truth.parquet",
                           histories=histories)
        except ValueError as err:  # a small county may have too few outcomes for a narrow cohort
            say(f"   {target}: skipped — {err}")
            continue
        trained.append(target)
        m = result.metrics.set_index("model")
        rows.append({"target": target, **{f"{name}_auroc": m.loc[name, "auroc"] for name in m.index},
                     "calibration_error": m.loc["lightgbm", "calibration_error"],
                     "precision_top5pct": m.loc["lightgbm", "precision_top5pct"], "version": result.version,
                     "champion": result.promoted})
        say(f"   {target}: AUROC {m.loc['lightgbm', 'auroc']:.3f}; {result.decision}")
    metrics = pd.DataFrame(rows)
    write_table(metrics, out / "model_metrics.csv")
    lap("models")

    say(f"5/6 risk lists as of {config.score_as_of}")
    lists = out / "risklists"
    for target in trained:
        score(f"models:/{target}@champion", tables, config.score_as_of, lists / f"{target}.parquet",
              tracking_uri=config.tracking_uri, histories=histories, explain_share=config.explain_share)
        say(f"   {target}: scored ({time.perf_counter() - clock:.0f} s into this step)")
    # the previous list only tells which clients are new on the current one: no reasons needed
    score("models:/high_use@champion", tables, config.valid_as_of, lists / f"high_use_{config.valid_as_of}.parquet",
          tracking_uri=config.tracking_uri, histories=histories, reasons=0)
    lap("scoring")

    say("6/6 case-manager reports")
    risk = pd.read_parquet(lists / "high_use.parquet", columns=["unit"])
    for unit in sorted(risk["unit"].unique()):
        write_report(lists / "high_use.parquet", out / "reports" / f"high_use_{unit}.html",
                     previous=lists / f"high_use_{config.valid_as_of}.parquet", unit=unit, top=50, lang="fi")
    lap("reports")
    (out / "demo_summary.json").write_text(json.dumps({"seconds": seconds, "clients": config.clients,
                                                        "metrics": metrics.to_dict("records")}, indent=2,
                                                       default=str))
    return DemoResult(out, metrics, seconds)
