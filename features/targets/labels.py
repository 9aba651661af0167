"""Labels of declared targets as of an index date, and training sets.

The targets are declared in ``features/config/targets.yaml`` and read by
:mod:`features.targets.spec`. The rules shared by every target, implemented
here exactly:

- population at T: born before T, not dead before T, resident at T;
- observation in the horizon ends at death (after the day of death) or at
  moving out; such clients stay in the cohort and are judged on what happened
  before (docs/targets.md);
- event costs count in the horizon by their start date;
- quantile thresholds over the cohort's realised horizon costs at the same T
  (``population: all``: over the whole population at T), positive when
  strictly above;
- a prior-cost cohort bound (``max_prior_cost_quantile``) keeps clients whose
  cost in [T - days, T) (the ``cost_total_<days>d`` rule) is at or below that
  quantile of the same cost over the whole population at T.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract.codes import code_in_ranges
from features.contract.costs import fill_missing_costs, load_unit_costs
from features.contract.tables import EPISODE_SERVICES, RAI_SCALES
from features.contract.validation import ValidatedTables
from features.histories.pandas_reference import window_cost
from features.histories.spec import FeatureSpec, load_diagnosis_groups
from features.histories.sql import code_in_ranges_sql
from features.targets.spec import (  # noqa: F401  (re-exported: the names callers import from here)
    DEFAULT_PRIOR_COST_DAYS,
    OUTCOME_KINDS,
    Cohort,
    Outcome,
    Target,
    TargetError,
    get_target,
    intensive_services,
    load_targets,
)

DAY = pd.Timedelta(days=1)


def is_dataset(data) -> bool:
    """Whether ``data`` is a :class:`features.contract.stream.ValidatedDataset` (a folder of validated Parquet)."""
    from features.contract.stream import ValidatedDataset

    return isinstance(data, ValidatedDataset)


#: Event columns the labels, cohorts and prior costs read (the unit is left in the Parquet).
EVENT_COLUMNS = ["client_id", "start", "end", "service", "professional", "cost_eur"]


def _timestamp(day: pd.Timestamp) -> str:
    return f"TIMESTAMP '{day:%Y-%m-%d}'"


def _text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _groups_sql(names: Iterable[str]) -> str:
    """A diagnosis row (``system``, ``code``) in one of the named groups: the rule of :func:`cohort_members` in SQL."""
    groups = load_diagnosis_groups()
    parts = []
    for name in names:
        g = groups[name]
        if g.icd10:
            parts.append(f"(system = 'ICD-10' AND ({code_in_ranges_sql('code', list(g.icd10))}))")
        if g.icpc2:
            parts.append(f"(system = 'ICPC-2' AND ({code_in_ranges_sql('code', list(g.icpc2))}))")
    return " OR ".join(parts) or "FALSE"


def event_window_condition(end: str, t: pd.Timestamp, history_days: int | None, services=()) -> str:
    """The DuckDB condition of the event rows :func:`window_tables` reads (the Spark passes read the same).

    Events starting before ``end`` (a SQL timestamp literal) and, unless ``history_days`` is None, reaching
    T - ``history_days`` days (at least 1), or without an end and of an episode service or of ``services``.
    """
    where = f"start < {end}"
    if history_days is not None:
        lo = _timestamp(t - pd.Timedelta(days=max(int(history_days), 1)))
        open_ended = sorted(set(EPISODE_SERVICES) | set(services))
        where += (f' AND (start >= {lo} OR "end" >= {lo} OR ("end" IS NULL AND service IN '
                  f'({", ".join(_text(v) for v in open_ended)})))')
    return where


def window_tables(dataset, as_of, *, history_days: int | None = 1, horizon_days: int = 0,
                  diagnoses: bool | Iterable[str] = False, assessments: bool = False,
                  services: Iterable[str] = (), professional: bool = True) -> dict[str, pd.DataFrame]:
    """The rows of a validated dataset that a cohort, label or prior cost at T can use, in pandas.

    Every client; the events that start before T + ``horizon_days`` and either
    start, or end, on or after T - ``history_days``, or have no end and belong to
    an episode service (:data:`~features.contract.tables.EPISODE_SERVICES`) or to
    ``services`` (all events before T + ``horizon_days`` when ``history_days`` is
    None); when asked, the diagnoses and assessments dated before
    T + ``horizon_days`` (the diagnoses only of the given groups). The rules
    themselves are applied in pandas to these rows exactly as to the whole
    tables: the window only leaves out rows no rule can reach, so results equal
    those of the in-memory tables (tested in
    ``tests/features/targets/test_labels_lazy.py``).

    Which rows no rule reaches: a point contact (no end) that started before
    the look-back is read by no rule (the look-back rules count contacts by
    their start; the running-episode rules -- ``exclude_ongoing``, the
    prior cost, a ``service_start``'s continuing stay -- read only episode
    services, the targets file checks that). Reading them took every contact of
    the history into pandas (16.8 GB for the 1.33 M county's ``high_use``).

    Parameters
    ----------
    dataset
        A :class:`~features.contract.stream.ValidatedDataset`.
    as_of
        The index date T.
    history_days
        Days before T the rules look back (at least 1: an episode ending on T - 1 runs at T); None for all history.
    horizon_days
        Days from T the outcome looks forward (0: nothing at or after T).
    diagnoses
        Read the diagnoses too: True for every row dated before T + ``horizon_days``, or diagnosis group
        names (``features/config/diagnosis_groups.yaml``) for only the rows with a code in one of them.
    assessments
        Read the assessments too (otherwise empty).
    services
        Further services whose events without an end reach the rules from any date (the episode services
        always do), e.g. the services of :func:`current_use_flags`.
    professional
        Read the events' ``professional`` (a row's unit cost can depend on it: the prior-cost rule and the
        filling of missing costs read it); without it the events have the other five columns.

    Returns
    -------
    dict
        One DataFrame per canonical table (``measurements`` empty), types as
        :func:`features.contract.load.load_tables` gives them.
    """
    from features.contract.tables import TABLES
    from features.histories.build import empty_table

    t = pd.Timestamp(as_of).normalize()
    end = _timestamp(t + pd.Timedelta(days=horizon_days))
    where = event_window_condition(end, t, history_days, services)
    out = {table: empty_table(table) for table in TABLES}
    out["clients"] = dataset.read("clients")
    columns = EVENT_COLUMNS if professional else [c for c in EVENT_COLUMNS if c != "professional"]
    out["events"] = dataset.read("events", columns, where=where)
    if diagnoses:
        dx_where = f"date < {end}"
        if not isinstance(diagnoses, bool):
            dx_where += f" AND code IS NOT NULL AND ({_groups_sql(diagnoses)})"
        out["diagnoses"] = dataset.read("diagnoses", ["client_id", "date", "system", "code"], where=dx_where)
    if assessments:
        out["assessments"] = dataset.read("assessments", ["client_id", "date", "scale", "value"],
                                          where=f"date < {end}")
    return out


def event_span(data) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last event start of ``data`` (NaT without events), without reading the events into pandas.

    Parameters
    ----------
    data
        A validated dataset, validated tables or a mapping of table name to DataFrame.
    """
    if is_dataset(data):
        import duckdb

        path = str(data.paths()["events"]).replace("'", "''")
        with duckdb.connect() as con:
            first, last = con.execute(f"SELECT min(start), max(start) FROM read_parquet('{path}')").fetchone()
        return (pd.Timestamp(first) if first is not None else pd.NaT,
                pd.Timestamp(last) if last is not None else pd.NaT)
    starts = (data.tables if isinstance(data, ValidatedTables) else data)["events"]["start"]
    return starts.min(), starts.max()


def cohort_history_days(cohort: Cohort) -> int | None:
    """How far before T a cohort's rules look (None: all history), at least 1 day."""
    days = 1
    if cohort.services_any:
        if not cohort.lookback_days:
            return None
        days = max(days, cohort.lookback_days)
    if cohort.max_prior_cost_quantile is not None:
        days = max(days, cohort.prior_window_days)
    return days


def _frames(data, validate: bool, as_of=None, **window) -> dict[str, pd.DataFrame]:
    """The tables of ``data`` as a mapping; for a dataset (or a folder validated into one) only ``window``'s rows."""
    if isinstance(data, ValidatedTables):
        return dict(data.tables)
    if isinstance(data, Mapping):
        return dict(data)
    if is_dataset(data):
        return window_tables(data, as_of, **_costed(data, window))
    from features.contract.io import read_tables

    if not validate:
        return read_tables(data)[0]
    from features.contract.stream import open_dataset

    with open_dataset(data) as dataset:
        return window_tables(dataset, as_of, **_costed(dataset, window))


def _costed(dataset, window: dict) -> dict:
    """``window`` reading the professional unless it says it needs no unit costs (``professional=False``) and the
    dataset's costs were filled from the packaged table (every missing cost left is one no rate fills)."""
    if window.get("professional", True) or dataset.costs_filled():
        return window
    return {**window, "professional": True}


def _day(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).astype("datetime64[s]").dt.floor("D")


def population(clients: pd.DataFrame, as_of) -> pd.DataFrame:
    """Clients in the population at T (born before T, not dead before T, resident at T), with ``age``."""
    t = pd.Timestamp(as_of).normalize()
    b = _day(clients["birth_date"])
    keep = (b < t) & (clients["death_date"].isna() | (_day(clients["death_date"]) >= t))
    if "moved_in" in clients:
        keep &= clients["moved_in"].isna() | (_day(clients["moved_in"]) <= t)
    if "moved_out" in clients:
        keep &= clients["moved_out"].isna() | (_day(clients["moved_out"]) > t)
    pop = clients.loc[keep.to_numpy()].copy()
    b = b[keep.to_numpy()]
    pop["age"] = t.year - b.dt.year - ((b.dt.month > t.month) | ((b.dt.month == t.month) & (b.dt.day > t.day))
                                       ).astype(int)
    return pop.set_index(pop["client_id"].astype("str"))


def cohort_members(tables, as_of, cohort: Cohort) -> pd.DataFrame:
    """The population at T narrowed by a cohort definition (using only records before T).

    ``tables`` is a mapping of table name to DataFrame, or a validated dataset
    (only the rows the cohort's rules can reach are read, :func:`window_tables`).
    """
    t = pd.Timestamp(as_of).normalize()
    if is_dataset(tables):
        tables = window_tables(tables, t, history_days=cohort_history_days(cohort),
                               diagnoses=cohort.diagnosis_groups)
    pop = population(tables["clients"], t)
    keep = pd.Series(True, index=pop.index)
    if cohort.min_age is not None:
        keep &= pop["age"] >= cohort.min_age
    if cohort.max_age is not None:
        keep &= pop["age"] <= cohort.max_age
    ev = tables["events"]
    ev_start = _day(ev["start"])
    if cohort.diagnosis_groups:
        dx = tables["diagnoses"]
        dx = dx.loc[((_day(dx["date"]) < t) & dx["code"].notna()).to_numpy()]
        groups = load_diagnosis_groups()
        hit = pd.Series(False, index=dx.index)
        for g in cohort.diagnosis_groups:
            hit |= dx["system"].eq("ICD-10") & code_in_ranges(dx["code"], list(groups[g].icd10))
            hit |= dx["system"].eq("ICPC-2") & code_in_ranges(dx["code"], list(groups[g].icpc2))
        keep &= pop.index.isin(dx.loc[hit.to_numpy(), "client_id"].astype("str"))
    if cohort.services_any:
        lo = t - pd.Timedelta(days=cohort.lookback_days) if cohort.lookback_days else pd.Timestamp.min
        used = ev.loc[(ev["service"].isin(cohort.services_any) & (ev_start < t) & (ev_start >= lo)).to_numpy()]
        keep &= pop.index.isin(used["client_id"].astype("str"))
    if cohort.exclude_ongoing:
        episodes = ev.loc[ev["service"].isin(cohort.exclude_ongoing).to_numpy()]
        keep &= ~pop.index.isin(ongoing_clients(episodes, t, cohort.exclude_ongoing))
    if cohort.max_prior_cost_quantile is not None:
        # compared in whole cents, so that the order in which an engine sums the costs cannot move a tie
        cost = prior_cost(tables, t, cohort.prior_window_days, population_index=pop.index).round(2)
        keep &= cost <= _quantile(cost, cohort.max_prior_cost_quantile)
    return pop.loc[keep.to_numpy()]


def ongoing_clients(events: pd.DataFrame, as_of, services) -> pd.Index:
    """Clients with an episode of ``services`` running at T: started before T, ended on T - 1 or later, or not ended.

    An end on T - 1 still counts: episodes billed month by month (24-hour
    housing) end on the last day of a month and go on in a new row from T, so
    a row ending on T - 1 is a client in the service on the day before T. An
    episode starting on T is not running at T (it is not known before T).

    Parameters
    ----------
    events
        The events table.
    as_of
        The index date T.
    services
        Episode service lines (a name or several), e.g. :func:`features.targets.spec.intensive_services`.

    Returns
    -------
    pandas.Index
        Distinct client ids (text).
    """
    t = pd.Timestamp(as_of).normalize()
    services = [services] if isinstance(services, str) else list(services)
    start, end = _day(events["start"]), _day(events["end"])
    running = events["service"].isin(services) & (start < t) & (end.isna() | (end >= t - DAY))
    return pd.Index(events.loc[running.to_numpy(), "client_id"].astype("str").unique())


def _quantile(values: pd.Series, q: float) -> float:
    """numpy's default (linear) quantile; NaN for no values."""
    return float(np.quantile(values.to_numpy(dtype=float), q)) if len(values) else np.nan


def prior_cost(data, as_of, days: int = DEFAULT_PRIOR_COST_DAYS, *, population_index: pd.Index | None = None,
               validate: bool = True) -> pd.Series:
    """Each client's cost in [T - ``days``, T), for everyone in the population at T (0 without records).

    The rule of the feature ``cost_total_<days>d`` (docs/features.md): visits
    by start date, finished episodes prorated by days in the window, an
    episode running at T costed at the unit rate up to T - 1 (so nothing dated
    at or after T, nor a running episode's recorded end or cost, reaches it).
    Missing costs are filled from the packaged unit-cost table.

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, validated tables or a validated dataset.
    as_of
        The index date T.
    days
        Window length (365: last year's cost).
    population_index
        The population at T when already known (client ids as text).
    validate
        For a folder, validate it first.

    Returns
    -------
    pandas.Series
        Cost in EUR indexed by client id (text), one entry per client in the population at T.
    """
    t = pd.Timestamp(as_of).normalize()
    tables = _frames(data, validate, t, history_days=days)
    index = population_index if population_index is not None else population(tables["clients"], t).index
    return window_cost(tables["events"], t, days, load_unit_costs()).reindex(index, fill_value=0.0)


def current_use_flags(data, as_of, *, quantile: float = 0.9, days: int = DEFAULT_PRIOR_COST_DAYS,
                      services=None, targets: str | Path | None = None, validate: bool = True) -> pd.DataFrame:
    """Who is already a heavy user at T: last year's cost, its top-quantile flag, and ongoing intensive care.

    For risk lists and reports, to flag clients already in the top decile of
    last year's cost or in an intensive episode (the same definitions as the
    ``rising_high_use`` cohort, which excludes both).

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, validated tables or a validated dataset.
    as_of
        The index date T.
    quantile
        The prior-cost quantile over the population at T (0.9: the top decile).
    days
        Window of the prior cost.
    services
        Intensive services; the targets file's ``intensive_services`` when None.
    targets
        Targets file whose ``intensive_services`` to use (the packaged one when None).
    validate
        For a folder, validate it first.

    Returns
    -------
    pandas.DataFrame
        One row per client in the population at T, sorted by ``client_id``:
        ``client_id``, ``prior_cost`` (EUR), ``prior_cost_threshold`` (the
        population's quantile), ``prior_top`` (cost strictly above it),
        ``intensive_ongoing`` (an episode of the intensive services running at
        T), ``intensive_services`` (those services, ``;``-separated, "" if none).
    """
    t = pd.Timestamp(as_of).normalize()
    services = tuple(services) if services is not None else intensive_services(targets)
    tables = _frames(data, validate, t, history_days=days, services=services)
    pop = population(tables["clients"], t)
    cost = prior_cost(tables, t, days, population_index=pop.index).round(2)  # in cents, as the cohort compares it
    threshold = _quantile(cost, quantile)
    which = pd.Series("", index=pop.index)
    episodes = tables["events"].loc[tables["events"]["service"].isin(services).to_numpy()]
    for service in services:
        hit = pop.index.isin(ongoing_clients(episodes, t, service))
        which = which.where(~hit, which.where(which.eq(""), which + ";") + service)
    out = pd.DataFrame({"client_id": pop.index.astype("str"), "prior_cost": cost.to_numpy(float),
                        "prior_cost_threshold": threshold, "prior_top": (cost > threshold).to_numpy(bool),
                        "intensive_ongoing": which.ne("").to_numpy(bool), "intensive_services": which.to_numpy()})
    return out.sort_values("client_id", ignore_index=True)


def _baseline(assessments: pd.DataFrame, scale: str, t: pd.Timestamp) -> pd.Series:
    """Mean value of the last assessment day before T, per client."""
    sub = assessments.loc[(assessments["scale"].eq(scale) & (_day(assessments["date"]) < t)
                           & assessments["value"].notna()).to_numpy()]
    day = sub.assign(d=_day(sub["date"]), cid=sub["client_id"].astype("str")).groupby(["cid", "d"])["value"].mean()
    return day.groupby(level=0).last()  # groupby sorts by day: last is the latest


def _evaluate(outcome: Outcome, members: pd.Index, horizon: dict) -> tuple[pd.Series, float]:
    """Positive flag per member and the cost threshold (NaN unless cost_quantile)."""
    if outcome.kind == "cost_quantile":
        cost = horizon["cost"]
        over = horizon["population_cost"] if outcome.population == "all" else cost
        threshold = _quantile(over, outcome.quantile)
        return cost > threshold, threshold
    ev = horizon["events"]
    if outcome.kind == "count":
        n = ev.loc[ev["service"].isin(outcome.services).to_numpy()].groupby("cid").size()
        return n.reindex(members, fill_value=0) >= outcome.min, np.nan
    if outcome.kind == "service_start":
        starts = ev.loc[ev["service"].eq(outcome.service).to_numpy(), ["cid", "s"]]
        # A row that continues an episode of the same service (one ending on or after the
        # day before it starts) is no new start: monthly billing rows are one stay.
        prior = horizon["service_rows"](outcome.service)
        cont = starts.merge(prior, on="cid")
        cont = cont[(cont["prior_start"] < cont["s"])
                    & (cont["prior_end"].isna() | (cont["prior_end"] >= cont["s"] - DAY))]
        new = starts.loc[~starts.set_index(["cid", "s"]).index.isin(cont.set_index(["cid", "s"]).index)]
        return pd.Series(members.isin(new["cid"]), index=members), np.nan
    if outcome.kind in ("assessment_level", "assessment_rise"):
        in_horizon = horizon["assessments"]
        sub = in_horizon.loc[in_horizon["scale"].eq(outcome.scale).to_numpy()]
        top = sub.groupby("cid")["value"].max().reindex(members)
        base = _baseline(horizon["assessments_all"], outcome.scale, horizon["t"]).reindex(members)
        if outcome.kind == "assessment_level":
            return ((top >= outcome.min) & ~(base >= outcome.min)).fillna(False).astype(bool), np.nan
        base = base.fillna(RAI_SCALES[outcome.scale][0])
        return (top >= base + outcome.min_rise).fillna(False).astype(bool), np.nan
    flags, threshold = pd.Series(False, index=members), np.nan
    for part in outcome.of:
        f, th = _evaluate(part, members, horizon)
        flags |= f.reindex(members, fill_value=False)
        threshold = th if np.isnan(threshold) else threshold
    return flags, threshold


def _start_services(outcome: Outcome) -> set[str]:
    """The services of the ``service_start`` outcomes in an outcome (or the parts of an any_of)."""
    own = {outcome.service} if outcome.kind == "service_start" else set()
    return own.union(*(_start_services(o) for o in outcome.of))


def _needs_assessments(outcome: Outcome) -> bool:
    """Whether an outcome (or a part of an any_of) reads assessments."""
    return outcome.kind in ("assessment_level", "assessment_rise") or any(_needs_assessments(o) for o in outcome.of)


def _over_population(outcome: Outcome) -> bool:
    """Whether an outcome (or a part of an any_of) takes its threshold over the whole population."""
    return (outcome.kind == "cost_quantile" and outcome.population == "all") or any(
        _over_population(o) for o in outcome.of)


def build_labels(data, as_of, target: str | Target, *, targets: str | Path | Mapping[str, Target] | None = None,
                 validate: bool = True) -> pd.DataFrame:
    """Labels of one target as of ``as_of``: one row per cohort member.

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, validated tables, or a validated
        dataset (:func:`features.contract.stream.open_dataset`; only the rows of the cohort's
        look-back and the horizon are read, :func:`window_tables`).
    as_of
        Index date T; the cohort uses records before T, the outcome [T, T + horizon).
    target
        A target name from the targets file, or a :class:`Target`.
    targets
        Targets YAML path or loaded mapping (the packaged file when None).
    validate
        For a folder, validate it first (:func:`features.contract.stream.open_dataset`).

    Returns
    -------
    pandas.DataFrame
        ``client_id, as_of, target, label`` (0/1) and ``horizon_cost`` (EUR),
        ``horizon_events``, ``observed_days``, ``died_in_horizon``,
        ``moved_out_in_horizon``, ``threshold`` (cost threshold, NaN otherwise).

    Raises
    ------
    TargetError
        If the target is not declared.
    """
    if isinstance(target, str):
        target = get_target(target, targets)
    t = pd.Timestamp(as_of).normalize()
    tables = _frames(data, validate, t, history_days=cohort_history_days(target.cohort),
                     horizon_days=target.horizon_days, diagnoses=target.cohort.diagnosis_groups,
                     assessments=_needs_assessments(target.outcome),
                     professional=target.cohort.max_prior_cost_quantile is not None)
    members = cohort_members(tables, t, target.cohort)
    ids = members.index
    # a threshold over the whole population needs everyone's horizon cost, observed by the same rules
    scope = population(tables["clients"], t) if _over_population(target.outcome) else members
    end = pd.Series(t + pd.Timedelta(days=target.horizon_days), index=scope.index)
    death = _day(scope["death_date"]) + DAY
    end = end.where(~(death < end), death)
    if "moved_out" in scope:
        out = _day(scope["moved_out"])
        end = end.where(~(out < end), out)

    ev = tables.pop("events")
    # the continuing stays of service_start outcomes need earlier rows of their services; nothing else does
    starts = sorted(_start_services(target.outcome))
    start_rows = ev.loc[ev["service"].isin(starts).to_numpy()] if starts else ev.iloc[:0]
    if ev["cost_eur"].isna().any():
        ev = fill_missing_costs(ev, load_unit_costs())
    # the horizon's rows in four columns (a label reads no other), in their order, so the sums are the same
    start = _day(ev["start"])
    later = (start >= t).to_numpy()
    rows = ev.loc[later, ["client_id", "service", "cost_eur"]]
    ev = pd.DataFrame({"cid": rows["client_id"].astype("str"), "s": start[later], "service": rows["service"],
                       "cost_eur": rows["cost_eur"]})
    del rows, start, later
    ev = ev.loc[ev["cid"].isin(scope.index).to_numpy()]
    ev = ev.loc[(ev["s"] < end.reindex(ev["cid"]).to_numpy()).to_numpy()]
    population_cost = ev.groupby("cid")["cost_eur"].sum().reindex(scope.index, fill_value=0.0)
    ev = ev.loc[ev["cid"].isin(ids).to_numpy()]
    end = end.reindex(ids)
    assessments = tables["assessments"].assign(cid=lambda d: d["client_id"].astype("str"),
                                               d=lambda d: _day(d["date"]))
    assessments_in_horizon = assessments.loc[(assessments["cid"].isin(ids) & (assessments["d"] >= t)).to_numpy()]
    assessments_in_horizon = assessments_in_horizon.loc[
        (assessments_in_horizon["d"] < end.reindex(assessments_in_horizon["cid"]).to_numpy()).to_numpy()]

    def service_rows(service: str) -> pd.DataFrame:
        rows = start_rows.loc[start_rows["service"].eq(service).to_numpy()]
        rows = pd.DataFrame({"cid": rows["client_id"].astype("str").to_numpy(),
                             "prior_start": _day(rows["start"]).to_numpy(), "prior_end": _day(rows["end"]).to_numpy()})
        return rows.loc[rows["cid"].isin(ids).to_numpy()]

    horizon = {"t": t, "events": ev, "assessments": assessments_in_horizon, "assessments_all": assessments,
               "service_rows": service_rows, "population_cost": population_cost,
               "cost": population_cost.reindex(ids, fill_value=0.0)}
    flags, threshold = _evaluate(target.outcome, ids, horizon)
    horizon_end = t + pd.Timedelta(days=target.horizon_days)
    return pd.DataFrame({
        "client_id": ids.astype("str"),
        "as_of": t,
        "target": target.name,
        "label": flags.reindex(ids, fill_value=False).astype("int64").to_numpy(),
        "horizon_cost": horizon["cost"].to_numpy(dtype=float),
        "horizon_events": ev.groupby("cid").size().reindex(ids, fill_value=0).astype("int64").to_numpy(),
        "observed_days": (end - t).dt.days.astype("int64").to_numpy(),
        "died_in_horizon": (_day(members["death_date"]) < horizon_end).to_numpy(bool),
        "moved_out_in_horizon": ((_day(members["moved_out"]) < horizon_end).to_numpy(bool) if "moved_out" in members
                                 else np.zeros(len(ids), bool)),
        "threshold": threshold,
    }).sort_values("client_id", ignore_index=True)


def stratified_rows(y, max_rows: int | None, seed: int) -> np.ndarray:
    """Positions of at most ``max_rows`` of the 0/1 labels ``y``, the same share from each label (seeded; sorted).

    Proportional stratified sampling: the positives keep their share of ``max_rows``
    (rounded up, so a rare outcome never loses a row to rounding), the negatives the
    rest, so the outcome rate is the whole set's own. All positions when ``max_rows``
    is None or not below ``len(y)``.
    """
    y = np.asarray(y, dtype=int)
    n = len(y)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for value in (1, 0):
        rows = np.flatnonzero(y == value)
        quota = len(rows) * max_rows / n
        take = int(np.ceil(quota)) if value == 1 else max_rows - sum(len(k) for k in keep)
        keep.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(keep))


def build_training_set(data, as_of_dates: Iterable, target: str, spec: FeatureSpec | str | Path | None = None, *,
                       targets: str | Path | Mapping[str, Target] | None = None, engine=None,
                       validate: bool = True, histories=None, max_rows: int | None = None,
                       seed: int = 0) -> pd.DataFrame:
    """Features and labels of one target for several index dates, stacked for temporal validation.

    The tables are read and registered once; for each T the target's labels are
    built first, then the feature table, joined to them (one row per cohort member).
    Pass ``histories`` (a :class:`~features.histories.build.ClientHistories` over the
    same tables, e.g. with ``cache=True``) to reuse feature tables across targets.

    Parameters
    ----------
    max_rows
        At most this many cohort members per date (None: all): a larger cohort is
        sampled within each label, seeded (:func:`stratified_rows` over the labels
        sorted by ``client_id``), and features are built for the sampled clients only
        (``ClientHistories.features(as_of, clients=…)``). The rows are those that
        sampling the whole joined table would keep, with the same features.
    seed
        Seed of the sampling.

    Returns
    -------
    pandas.DataFrame
        ``client_id, as_of``, the spec's feature columns, then ``label`` and the
        label's horizon columns; rows sorted by ``as_of`` and ``client_id``.
        ``attrs["rows_available"]``: cohort members per date before sampling
        (a list in the order of ``as_of_dates``).

    Raises
    ------
    ValueError
        If ``as_of_dates`` is empty, or a sampled cohort member has no feature row.
    """
    from features.histories.build import ClientHistories

    if isinstance(data, (str, Path)) and validate:
        from features.contract.stream import open_dataset

        with open_dataset(data) as dataset:
            return build_training_set(dataset, as_of_dates, target, spec, targets=targets, engine=engine,
                                      histories=histories, max_rows=max_rows, seed=seed)
    tables = data if is_dataset(data) else _frames(data, validate)
    declared = {target: get_target(target, targets)}
    histories = histories if histories is not None else ClientHistories(tables, spec, engine=engine)
    frames, available = [], []
    for t in as_of_dates:
        t = pd.Timestamp(t).normalize()
        labels = build_labels(tables, t, declared[target]).drop(columns=["as_of"])
        available.append(len(labels))
        if max_rows is not None and len(labels) > max_rows:
            labels = labels.iloc[stratified_rows(labels["label"].to_numpy(), max_rows, seed)]
            feats = histories.features(t, clients=labels["client_id"])
            missing = ~labels["client_id"].isin(feats["client_id"])
            if missing.any():  # a cohort member is in the population the features are built for
                raise ValueError(f"{target} at {t.date()}: {int(missing.sum())} sampled cohort members have no "
                                 f"feature row (population rules differ?); e.g. row {int(np.flatnonzero(missing)[0])}"
                                 " of the sampled labels")
        else:
            feats = histories.features(t)
        joined = feats.merge(labels, on="client_id", how="inner", validate="one_to_one")
        del feats, labels
        with warnings.catch_warnings():
            # the features arrive one block per column; insert only adds one more, consolidating would copy them all
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            joined.insert(1, "as_of", t)
        frames.append(joined)
    if not frames:
        raise ValueError("as_of_dates is empty")
    out = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    out = out.reset_index(drop=True)
    out.attrs["rows_available"] = available
    return out
