"""The main job end to end on the synthetic county.

Data → segments → models → risk lists → reports → worklist → monitoring.
"""
from __future__ import annotations

import gc
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
from features.contract.io import atomic_path

#: The demo's targets: every built-in target (the packaged targets.yaml).
TARGETS = BUILTIN_TARGETS
#: The list the case-manager reports show by default: rising risk (not yet heavy users), for preventive work.
REPORT_TARGET = "rising_high_use" if "rising_high_use" in TARGETS else TARGETS[0]
#: The whole-population list kept for capacity planning (its reports are labelled so, under reports/capacity/).
CAPACITY_TARGET = "high_use"
#: Last year of the demo's service-need scenarios (from the validation date's year: out/scenarios/).
SCENARIO_TO_YEAR = 2030


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
    report_target
        The list behind the case-manager reports (``reports/<target>_<unit>``):
        by default the rising-risk list ``rising_high_use`` (when it is not
        trained, the first target trained, with a message). The ``high_use``
        list, when trained, also gets reports, under ``reports/capacity/``,
        labelled as a capacity-planning list.
    tracking_uri
        MLflow tracking URI (None: the local store ``./mlruns``).
    worklist_db
        The worklist database the lists are imported into (None:
        :func:`worklist.db.default_url`, the SQLite file ``var/worklist.db``);
        never inside the output folder.
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
    report_target: str = field(default=REPORT_TARGET, metadata={"choices": TARGETS})
    tracking_uri: str | None = None
    worklist_db: str | None = None

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
    worklist: dict = field(default_factory=dict)


def run_demo(out: str | Path, config: DemoConfig = DemoConfig(), say=print) -> DemoResult:
    """Run the whole pipeline; every output goes under ``out`` and tracking to ``./mlruns`` (or the URI)."""
    from features.contract.stream import open_dataset
    from features.synth import SynthConfig, generate_county
    from sote.demo_worklist import check_outside
    from worklist.db import default_url

    out = Path(out)
    worklist_db = config.worklist_db or default_url()
    check_outside(worklist_db, out)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    data = out / "county"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 1)
        clock = now

    say(f"1/8 synthetic county of {config.clients:,} residents")
    generate_county(data, SynthConfig(clients=config.clients, seed=config.seed, workers=config.workers,
                                      truth_reps=config.truth_reps))
    lap("synthetic county")

    say("2/8 validation, realism and client histories")
    # validated once into Parquet (removed at the end); every step reads from it only what it needs
    with open_dataset(data) as tables:
        return _pipeline(out, data, tables, config, say, lap, seconds, worklist_db)


def realism_figures(dataset, years: list[int]) -> pd.DataFrame:
    """:func:`features.synth.realism.realism_report` of a validated dataset, two years of events at a time.

    A year's figures read its residents, its events, the episodes running into
    it and the diagnoses before its end; its top-decile persistence also the
    next year's events. So the report is built year by year from those rows
    only (five event columns), with the same rows and values as over the whole
    tables.
    """
    from features.contract.tables import EPISODE_SERVICES
    from features.synth.realism import realism_report

    clients = dataset.read("clients")
    episodes = ", ".join(f"'{s}'" for s in sorted(EPISODE_SERVICES))
    parts = []
    for i, year in enumerate(years):
        span = years[i:i + 2]
        lo, hi = f"TIMESTAMP '{year}-01-01'", f"TIMESTAMP '{span[-1] + 1}-01-01'"
        before = f"TIMESTAMP '{year - 1}-12-31'"  # an episode ending the day before a year runs into it
        running = f'service IN ({episodes}) AND ("end" IS NULL OR "end" >= {before})'
        window = {"clients": clients,
                  "events": dataset.read("events", ["client_id", "start", "end", "service", "cost_eur"],
                                         where=f"start < {hi} AND (start >= {lo} OR ({running}))"),
                  "diagnoses": dataset.read("diagnoses", ["client_id", "date", "code"], where=f"date < {hi}")}
        part = realism_report(window, span)
        parts.append(part[part["year"] == year])
    return pd.concat(parts, ignore_index=True)


def _pipeline(out: Path, data: Path, tables, config: DemoConfig, say, lap, seconds: dict, worklist_db: str
              ) -> DemoResult:
    """Steps 2-8 of :func:`run_demo` over the validated dataset ``tables`` of the county in ``data``."""
    from features.contract.io import write_table
    from features.histories.build import ClientHistories

    years = list(range(pd.Timestamp(config.train_as_of).year - 2, pd.Timestamp(config.score_as_of).year))
    write_table(realism_figures(tables, years), out / "realism.csv")
    # each date's features are built once and kept on disk, not in memory: the steps read them back
    # (four dates of the default county would hold ~1.8 GB through every step)
    with ClientHistories(tables, cache="disk") as histories:
        return _steps(out, data, tables, config, say, lap, seconds, worklist_db, histories)


def _steps(out: Path, data: Path, tables, config: DemoConfig, say, lap, seconds: dict, worklist_db: str,
           histories) -> DemoResult:
    """Steps 2 (features) to 8 of :func:`run_demo`, with the run's feature cache ``histories``."""
    from features.contract.io import write_table
    from models.scoring import score
    from models.train import TrainConfig, top_metrics, train
    from segmentation.report import segmentation_html, write_html
    from segmentation.segments import segment_clients
    from segmentation.snapshots import segment_at, transitions_between
    from segmentation.tracking import track_segmentation
    from sote.demo_worklist import load_demo_worklist
    from worklist.report import write_report

    t_train, t_valid = pd.Timestamp(config.train_as_of), pd.Timestamp(config.valid_as_of)
    f_valid = histories.features(t_valid)
    lap("validation and features")

    say("3/8 segments")
    segmented = segment_at(tables, t_valid, "kmeans", "auto", features=f_valid, random_state=config.seed)
    segs, next_cost = segmented.result, segmented.next_year_cost
    write_table(segs.assignments, out / "segments.parquet")
    grid = segment_clients(f_valid, "grid", next_year_cost=next_cost)
    # need-based (rule) segments beside the data-driven ones, with the rule that placed each client
    needs = segment_clients(f_valid, "needs", next_year_cost=next_cost)
    write_table(needs.assignments.assign(rule=needs.model.rules(f_valid)["conditions"].to_numpy()),
                out / "segments_needs.parquet")
    from segmentation.compare import compare_methods, synthetic_archetypes

    comparison = compare_methods(f_valid, {segs.method: segs, "needs": needs, "grid": grid}, next_cost,
                                 synthetic_archetypes(data, t_valid, f_valid["client_id"]))
    html = segmentation_html(segs, f_valid, str(t_valid.date()), next_cost, comparison)
    write_html(html, out / "segments.html")
    track_segmentation(segs, f_valid, str(t_valid.date()), html, tracking_uri=config.tracking_uri,
                       comparison=comparison)
    write_html(segmentation_html(needs, f_valid, str(t_valid.date()), next_cost, comparison),
               out / "segments_needs.html")
    write_html(segmentation_html(grid, f_valid, str(t_valid.date()), next_cost), out / "segments_grid.html")
    # segments of the validation date applied to the clients of the training date: migration 2023 -> 2024
    moves = transitions_between(segmented, t_train, histories=histories)
    write_html(moves.html(), out / "segment_transitions.html")
    # the segment step's tables (features, assignments, profiles) are not needed again: let them go
    del f_valid, segmented, segs, next_cost, grid, needs, comparison, html, moves
    gc.collect()
    lap("segments")

    base_year = t_valid.year  # a full year of records with 1 January after it
    say(f"   service-need scenarios {base_year}-{SCENARIO_TO_YEAR} ({out / 'scenarios'}/)")
    from scenarios.demo_step import demo_scenarios

    # the panel's second date is built now, while little is held: built inside the step, beside the base
    # year's records and the first date's table, it made the scenarios the demo's peak (4.1 GB)
    histories.prepare([pd.Timestamp(f"{base_year + 1}-01-01")])
    gc.collect()
    scen = demo_scenarios(tables, data, out / "scenarios", base_year=base_year, to_year=SCENARIO_TO_YEAR,
                          histories=histories, tracking_uri=config.tracking_uri)
    lap("scenarios")

    say(f"4/8 models for {len(config.targets)} targets (train {t_train.date()}, validate {t_valid.date()})")
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
        top = top_metrics(result.top_calibration, result.top)
        rows.append({"target": target, **{f"{name}_auroc": m.loc[name, "auroc"] for name in m.index},
                     **{f"{name}_precision_top2pct": m.loc[name, "precision_top2pct"] for name in m.index},
                     "calibration_error": m.loc["lightgbm", "calibration_error"],
                     "precision_top5pct": m.loc["lightgbm", "precision_top5pct"],
                     **{key.removeprefix("valid_"): top.get(key) for key in (
                         "valid_top2pct_calibration_gap", "valid_top5pct_calibration_gap",
                         "valid_top5pct_prior_high_use_share", "valid_top5pct_reason_change_share")},
                     "version": result.version, "champion": result.promoted})
        say(f"   {target}: AUROC {m.loc['lightgbm', 'auroc']:.3f}; {result.decision}")
    metrics = pd.DataFrame(rows)
    write_table(metrics, out / "model_metrics.csv")
    lap("models")

    say(f"5/8 risk lists as of {config.score_as_of}")
    lists = out / "risklists"
    summaries = []
    clock = time.perf_counter()
    for target in trained:
        sidecar = score(f"models:/{target}@champion", tables, config.score_as_of, lists / f"{target}.parquet",
                        tracking_uri=config.tracking_uri, histories=histories, explain_share=config.explain_share)
        summaries.append(list_summary(sidecar))
        say(f"   {target}: scored ({time.perf_counter() - clock:.0f} s into this step)")
    write_table(pd.DataFrame(summaries), out / "list_summary.csv")
    # reports go to the rising-risk list; the whole-population list stays for capacity planning
    report_target = config.report_target if config.report_target in trained else (trained[0] if trained else None)
    if report_target != config.report_target:
        say(f"   {config.report_target} was not trained; the reports show {report_target}")
    reported = [(report_target, out / "reports")] if report_target else []
    if CAPACITY_TARGET in trained and CAPACITY_TARGET != report_target:
        reported.append((CAPACITY_TARGET, out / "reports" / "capacity"))
    # the previous lists only tell which clients are new on the current ones: no reasons needed
    for target, _ in reported:
        score(f"models:/{target}@champion", tables, config.valid_as_of,
              lists / f"{target}_{config.valid_as_of}.parquet", tracking_uri=config.tracking_uri,
              histories=histories, reasons=0)
    lap("scoring")

    say("6/8 case-manager reports" + (f" ({report_target}; {CAPACITY_TARGET} for capacity planning)"
                                      if len(reported) > 1 else ""))
    for target, folder in reported:
        risk = pd.read_parquet(lists / f"{target}.parquet", columns=["unit"])
        for unit in sorted(risk["unit"].unique()):
            write_report(lists / f"{target}.parquet", folder / f"{target}_{unit}.html",
                         previous=lists / f"{target}_{config.valid_as_of}.parquet", unit=unit, top=50, lang="fi")
    lap("reports")

    say("7/8 worklist database")
    loaded = load_demo_worklist(worklist_db, [lists / f"{target}{suffix}.parquet" for target, _ in reported
                                              for suffix in (f"_{config.valid_as_of}", "")],
                                data, out / "segments.parquet")
    say(f"   {loaded['imported']} lists imported ({loaded['already']} already there), "
        f"{loaded['directory']:,} clients in the directory; users created: "
        f"{', '.join(loaded['users_created']) or 'none'}; kept: {', '.join(loaded['users_kept']) or 'none'}")
    say(f"   demo users and their passwords: {loaded['users_file']} (new users only; existing ones keep theirs)")
    lap("worklist")

    monitored = CAPACITY_TARGET if CAPACITY_TARGET in dict(reported) else report_target
    monitoring = {}
    if monitored is not None:
        say(f"8/8 monitoring ({monitored}): the current list against the previous one, and how the previous did")
        monitoring = write_monitoring(out / "monitoring", lists / f"{monitored}_{config.valid_as_of}.parquet",
                                      lists / f"{monitored}.parquet", tables, f"models:/{monitored}@champion",
                                      config.tracking_uri)
    lap("monitoring")
    with atomic_path(out / "demo_summary.json") as tmp:  # recorded as sote's own, so a rerun may replace it
        tmp.write_text(json.dumps({"seconds": seconds, "clients": config.clients,
                                   "metrics": metrics.to_dict("records"),
                                   "lists": summaries, "report_target": report_target, "monitoring": monitoring,
                                   "scenarios": scen,
                                   "worklist": {"imported": loaded["imported"], "already": loaded["already"],
                                                "users_created": loaded["users_created"],
                                                "users_file": str(loaded["users_file"])}},
                                  indent=2, default=str))
    return DemoResult(out, metrics, seconds, loaded)


def write_monitoring(folder: Path, previous: Path, current: Path, tables, model_uri: str,
                     tracking_uri: str | None) -> dict:
    """Drift of ``current`` against ``previous`` and the evaluation of ``previous`` into ``folder``.

    Writes ``drift.html`` / ``drift.csv`` (:func:`models.monitor.monitor` of the
    two risk lists) and ``evaluation.html`` / ``evaluation.csv``
    (:func:`models.evaluate_list.evaluate_list` of the previous list, realised
    when its horizon lies inside the data); both logged to MLflow as aggregates.
    Returns the drift verdict, the score's PSI and the evaluation's basis and AUROC.
    """
    from models.evaluate_list import evaluate_list
    from models.monitor import monitor

    drift = monitor(previous, current, model_uri=model_uri, tracking_uri=tracking_uri, out=folder / "drift")
    evaluation = evaluate_list(previous, tables, tracking_uri=tracking_uri, out=folder / "evaluation")
    auroc = evaluation.overall(shared=True).get("auroc")
    return {"drift_verdict": drift.verdict, "score_psi": drift.score_psi, "evaluated": previous.name,
            "evaluation_basis": evaluation.basis, "evaluation_auroc": float(auroc) if pd.notna(auroc) else None}


def list_summary(sidecar: dict) -> dict:
    """One row of ``list_summary.csv`` from a risk list's sidecar: who its top 5 % are and why.

    Columns: target, list_kind, rows, top5pct_clients, the top 5 %'s shares in
    last year's top decile of cost (``top5pct_prior_high_use``), in an
    intensive episode (``top5pct_intensive``) or either, the reason-type mix of
    their top-3 reasons (``top5pct_reason_change`` / ``_level`` / ``_demographic``),
    and how many clients' probabilities are shown as over / under a bound.
    """
    top = sidecar.get("top") or {}
    mix = top.get("reason_types") or {}
    bounds = sidecar.get("probability_bounds") or {}
    return {"target": sidecar.get("target"), "list_kind": sidecar.get("list_kind"), "rows": sidecar.get("rows"),
            "top5pct_clients": top.get("clients"), "top5pct_prior_high_use": top.get("prior_high_use"),
            "top5pct_intensive": top.get("intensive_ongoing"), "top5pct_either": top.get("either"),
            **{f"top5pct_reason_{kind}": mix.get(kind) for kind in ("change", "level", "demographic")},
            "shown_over": bounds.get("over_rows"), "shown_under": bounds.get("under_rows"),
            "over_bound": bounds.get("over")}
