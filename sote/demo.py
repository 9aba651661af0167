"""The main job end to end on the synthetic county: data → segments → models → risk lists → reports."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from features.config.defaults import (
    BUILTIN_TARGETS,
    COUNTY_CLIENTS,
    COUNTY_SEED,
    DATA_END,
    DATA_START,
    SCORE_AS_OF,
    TRAIN_AS_OF,
    VALID_AS_OF,
)
from features.config.loader import build, load_config

#: The demo's targets: every built-in target (the packaged targets.yaml).
TARGETS = BUILTIN_TARGETS


@dataclass(frozen=True)
class DemoConfig:
    """Dates and sizes of the demo (defaults: a Keski-Uusimaa-sized county, data 2019–2025).

    Loadable from YAML with :func:`load_demo_config` (a sample: ``docs/demo.yaml``).

    Parameters
    ----------
    clients, seed, workers, truth_reps
        Size, seed, simulation processes and truth replicates of the synthetic county.
    train_as_of, valid_as_of, score_as_of
        Index dates: models learn at the first, are judged (and segments drawn)
        at the second, risk lists are scored at the third; in this order, inside
        the synthetic data's period.
    targets
        Built-in targets to train and score.
    explain_share
        Share of each risk list (from the top) that gets SHAP reasons.
    tracking_uri
        MLflow tracking URI (None: the local store ``./mlruns``).
    """

    clients: int = field(default=COUNTY_CLIENTS, metadata={"ge": 1})
    seed: int = field(default=COUNTY_SEED, metadata={"ge": 0})
    workers: int = field(default=2, metadata={"ge": 1})
    train_as_of: str = TRAIN_AS_OF
    valid_as_of: str = VALID_AS_OF
    score_as_of: str = SCORE_AS_OF
    targets: tuple[str, ...] = field(default=TARGETS, metadata={"choices": TARGETS, "non_empty": True})
    truth_reps: int = field(default=32, metadata={"ge": 1})
    explain_share: float = field(default=0.2, metadata={"gt": 0, "le": 1})
    tracking_uri: str | None = None

    def __post_init__(self):
        dates = {}
        for name in ("train_as_of", "valid_as_of", "score_as_of"):
            try:
                dates[name] = pd.Timestamp(getattr(self, name))
            except (ValueError, TypeError):
                raise ValueError(f"{name} {getattr(self, name)!r} is not a date (use YYYY-MM-DD)") from None
        if not dates["train_as_of"] < dates["valid_as_of"] < dates["score_as_of"]:
            raise ValueError(f"the dates must be in order train_as_of < valid_as_of < score_as_of, got "
                             f"{self.train_as_of}, {self.valid_as_of}, {self.score_as_of}")
        first, last = pd.Timestamp(DATA_START), pd.Timestamp(DATA_END)
        if not (first < dates["train_as_of"] and dates["score_as_of"] <= last):
            raise ValueError(f"the dates must lie inside the synthetic data ({DATA_START} to {DATA_END})")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets lists a target twice: {list(self.targets)}")


def load_demo_config(path: str | Path | None = None, **overrides) -> DemoConfig:
    """Read a demo configuration YAML (see ``docs/demo.yaml``); None gives the defaults.

    Parameters
    ----------
    path
        The YAML file, or None.
    **overrides
        Values that win over the file (command-line options); None values are ignored.

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file (or ``command-line options``), the key and the bad value.
    FileNotFoundError
        If ``path`` does not exist.
    """
    config = load_config(DemoConfig, path)
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return config
    return build(DemoConfig, {**asdict(config), **given}, "command-line options")


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
    from segmentation.report import segmentation_html, write_html
    from segmentation.segments import segment_clients
    from segmentation.snapshots import segment_at, transitions_between
    from sote.report import write_report
    from segmentation.tracking import track_segmentation

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
    segmented = segment_at(tables, t_valid, "kmeans", "auto", features=f_valid, random_state=config.seed)
    segs, next_cost = segmented.result, segmented.next_year_cost
    write_table(segs.assignments, out / "segments.parquet")
    html = segmentation_html(segs, f_valid, str(t_valid.date()), next_cost)
    write_html(html, out / "segments.html")
    track_segmentation(segs, f_valid, str(t_valid.date()), html, tracking_uri=config.tracking_uri)
    grid = segment_clients(f_valid, "grid", next_year_cost=next_cost)
    write_html(segmentation_html(grid, f_valid, str(t_valid.date()), next_cost), out / "segments_grid.html")
    # segments of the validation date applied to the clients of the training date: migration 2023 -> 2024
    moves = transitions_between(segmented, t_train, histories=histories)
    write_html(moves.html(), out / "segment_transitions.html")
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
