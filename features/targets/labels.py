"""Prediction targets declared in config, and their labels as of an index date.

``features/config/targets.yaml`` declares each target as a cohort (known
before T) and an outcome over the horizon [T, T + horizon). Its header holds
the rules shared by every target, implemented here exactly:

- population at T: born before T, not dead before T, resident at T;
- observation in the horizon ends at death (after the day of death) or at
  moving out; such clients stay in the cohort and are judged on what happened
  before (docs/targets.md);
- event costs count in the horizon by their start date;
- quantile thresholds over the cohort's realised horizon costs at the same T,
  positive when strictly above.

A county adds a target by editing the YAML; :func:`load_targets` validates it
and names the target and key of any problem.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.contract.codes import code_in_ranges
from features.contract.tables import EPISODE_SERVICES, RAI_SCALES, SERVICE_LINES
from features.contract.costs import fill_missing_costs, load_unit_costs
from features.histories.spec import FeatureSpec, load_diagnosis_groups
from features.contract.validation import ValidatedTables

OUTCOME_KINDS = ("cost_quantile", "count", "service_start", "assessment_level", "assessment_rise", "any_of")
_OUTCOME_KEYS = {
    "cost_quantile": {"quantile"}, "count": {"services", "min"}, "service_start": {"service"},
    "assessment_level": {"scale", "min"}, "assessment_rise": {"scale", "min_rise"}, "any_of": {"of"},
}
_COHORT_KEYS = {"min_age", "max_age", "diagnosis_groups", "services_any", "lookback_days", "exclude_ongoing"}
DAY = pd.Timedelta(days=1)


class TargetError(ValueError):
    """A targets file that cannot be used, or an unknown target name."""


@dataclass(frozen=True)
class Cohort:
    """Who is eligible at T; every key is optional (an empty cohort is the whole population)."""

    min_age: int | None = None
    max_age: int | None = None
    diagnosis_groups: tuple[str, ...] = ()
    services_any: tuple[str, ...] = ()
    lookback_days: int | None = None
    exclude_ongoing: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What makes a cohort member positive over the horizon."""

    kind: str
    quantile: float | None = None
    services: tuple[str, ...] = ()
    min: float | None = None
    service: str | None = None
    scale: str | None = None
    min_rise: float | None = None
    of: tuple["Outcome", ...] = ()


@dataclass(frozen=True)
class Target:
    """A named target: description, cohort, outcome and horizon in days."""

    name: str
    description: str
    cohort: Cohort
    outcome: Outcome
    horizon_days: int


def _err(source: str, where: str, problem: str) -> TargetError:
    return TargetError(f"targets {source}: {where}: {problem}")


def _whole(value, source, where, minimum=0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _err(source, where, f"expected a whole number >= {minimum}, got {value!r}")
    return value


def _service_list(value, source, where) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _err(source, where, f"expected a non-empty list of service lines, got {value!r}")
    unknown = [s for s in value if s not in SERVICE_LINES]
    if unknown:
        raise _err(source, where, f"unknown service line(s) {unknown}")
    return tuple(value)


def _outcome(raw, source: str, where: str) -> Outcome:
    if not isinstance(raw, dict) or raw.get("kind") not in OUTCOME_KINDS:
        raise _err(source, where, f"outcome needs a kind among {list(OUTCOME_KINDS)}, got {raw!r}")
    kind = raw["kind"]
    keys = set(raw) - {"kind"}
    if keys != _OUTCOME_KEYS[kind]:
        raise _err(source, where, f"outcome {kind} takes exactly {sorted(_OUTCOME_KEYS[kind])}, got {sorted(keys)}")
    if kind == "cost_quantile":
        q = raw["quantile"]
        if not isinstance(q, (int, float)) or not 0 < q < 1:
            raise _err(source, f"{where}.quantile", f"expected a number strictly between 0 and 1, got {q!r}")
        return Outcome(kind, quantile=float(q))
    if kind == "count":
        return Outcome(kind, services=_service_list(raw["services"], source, f"{where}.services"),
                       min=_whole(raw["min"], source, f"{where}.min", 1))
    if kind == "service_start":
        if raw["service"] not in EPISODE_SERVICES:
            raise _err(source, f"{where}.service", f"expected an episode service {sorted(EPISODE_SERVICES)}, "
                                                  f"got {raw['service']!r}")
        return Outcome(kind, service=raw["service"])
    if kind in ("assessment_level", "assessment_rise"):
        if raw["scale"] not in RAI_SCALES:
            raise _err(source, f"{where}.scale", f"unknown RAI scale {raw['scale']!r}; known: {list(RAI_SCALES)}")
        key = "min" if kind == "assessment_level" else "min_rise"
        v = raw[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or (kind == "assessment_rise" and v <= 0):
            raise _err(source, f"{where}.{key}", f"expected a number{' > 0' if key == 'min_rise' else ''}, got {v!r}")
        return Outcome(kind, scale=raw["scale"], **{key: float(v)})
    subs = raw["of"]
    if not isinstance(subs, list) or not subs:
        raise _err(source, f"{where}.of", "any_of needs a non-empty list of outcomes")
    return Outcome(kind, of=tuple(_outcome(s, source, f"{where}.of[{i}]") for i, s in enumerate(subs)))


def _cohort(raw, source: str, where: str, groups: set[str]) -> Cohort:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _err(source, where, f"expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - _COHORT_KEYS)
    if unknown:
        raise _err(source, where, f"unknown key(s) {unknown}; allowed: {sorted(_COHORT_KEYS)}")
    c = Cohort(
        min_age=_whole(raw["min_age"], source, f"{where}.min_age") if "min_age" in raw else None,
        max_age=_whole(raw["max_age"], source, f"{where}.max_age") if "max_age" in raw else None,
        diagnosis_groups=tuple(raw.get("diagnosis_groups") or ()),
        services_any=_service_list(raw["services_any"], source, f"{where}.services_any") if "services_any" in raw
        else (),
        lookback_days=_whole(raw["lookback_days"], source, f"{where}.lookback_days", 1) if "lookback_days" in raw
        else None,
        exclude_ongoing=raw.get("exclude_ongoing"),
    )
    if c.min_age is not None and c.max_age is not None and c.min_age > c.max_age:
        raise _err(source, where, f"min_age {c.min_age} > max_age {c.max_age}")
    bad = [g for g in c.diagnosis_groups if g not in groups]
    if bad:
        raise _err(source, f"{where}.diagnosis_groups", f"unknown group(s) {bad}; known: {sorted(groups)}")
    if c.lookback_days is not None and not c.services_any:
        raise _err(source, f"{where}.lookback_days", "only meaningful with services_any")
    if c.exclude_ongoing is not None and c.exclude_ongoing not in EPISODE_SERVICES:
        raise _err(source, f"{where}.exclude_ongoing", f"expected an episode service {sorted(EPISODE_SERVICES)}")
    return c


def load_targets(path: str | Path | None = None) -> dict[str, Target]:
    """Read and validate a targets YAML (``features/config/targets.yaml`` by default).

    Raises
    ------
    TargetError
        Naming the target and key of anything unknown or malformed.
    """
    source = str(path) if path is not None else "targets.yaml (default)"
    text = (resources.files("features.config").joinpath("targets.yaml").read_text() if path is None
            else Path(path).read_text())
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise TargetError(f"targets {source}: not valid YAML: {err}") from err
    unknown = sorted(set(raw) - {"horizon_days", "targets"})
    if unknown:
        raise _err(source, "top level", f"unknown key(s) {unknown}")
    horizon = _whole(raw.get("horizon_days", 365), source, "horizon_days", 1)
    groups = set(load_diagnosis_groups())
    out = {}
    for name, t in (raw.get("targets") or {}).items():
        where = f"target {name}"
        if not isinstance(t, dict):
            raise _err(source, where, "expected a mapping")
        extra = sorted(set(t) - {"description", "cohort", "outcome", "horizon_days"})
        if extra:
            raise _err(source, where, f"unknown key(s) {extra}")
        if "outcome" not in t:
            raise _err(source, where, "missing outcome")
        out[name] = Target(name, str(t.get("description", "")), _cohort(t.get("cohort"), source, f"{where}.cohort",
                                                                         groups),
                           _outcome(t["outcome"], source, f"{where}.outcome"),
                           _whole(t.get("horizon_days", horizon), source, f"{where}.horizon_days", 1))
    if not out:
        raise _err(source, "targets", "no targets declared")
    return out


def _frames(data, validate: bool) -> dict[str, pd.DataFrame]:
    if isinstance(data, ValidatedTables):
        return dict(data.tables)
    if isinstance(data, Mapping):
        return dict(data)
    from features.contract.io import read_tables
    from features.contract.load import load_tables

    return dict(load_tables(data).tables) if validate else read_tables(data)[0]


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


def cohort_members(tables: Mapping[str, pd.DataFrame], as_of, cohort: Cohort) -> pd.DataFrame:
    """The population at T narrowed by a cohort definition (using only records before T)."""
    t = pd.Timestamp(as_of).normalize()
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
        # In the service on the day before T: episodes billed month by month end on T - 1
        # and go on in a new row from T, so an end on T - 1 still counts as ongoing.
        end = _day(ev["end"])
        running = ev["service"].eq(cohort.exclude_ongoing) & (ev_start < t) & (end.isna() | (end >= t - DAY))
        keep &= ~pop.index.isin(ev.loc[running.to_numpy(), "client_id"].astype("str"))
    return pop.loc[keep.to_numpy()]


def _baseline(ass: pd.DataFrame, scale: str, t: pd.Timestamp) -> pd.Series:
    """Mean value of the last assessment day before T, per client."""
    sub = ass.loc[(ass["scale"].eq(scale) & (_day(ass["date"]) < t) & ass["value"].notna()).to_numpy()]
    day = sub.assign(d=_day(sub["date"]), cid=sub["client_id"].astype("str")).groupby(["cid", "d"])["value"].mean()
    return day.groupby(level=0).last()  # groupby sorts by day: last is the latest


def _evaluate(o: Outcome, members: pd.Index, horizon: dict) -> tuple[pd.Series, float]:
    """Positive flag per member and the cost threshold (NaN unless cost_quantile)."""
    if o.kind == "cost_quantile":
        cost = horizon["cost"]
        threshold = float(np.quantile(cost.to_numpy(), o.quantile)) if len(cost) else np.nan
        return cost > threshold, threshold
    ev = horizon["events"]
    if o.kind == "count":
        n = ev.loc[ev["service"].isin(o.services).to_numpy()].groupby("cid").size()
        return n.reindex(members, fill_value=0) >= o.min, np.nan
    if o.kind == "service_start":
        starts = ev.loc[ev["service"].eq(o.service).to_numpy(), ["cid", "s"]]
        # A row that continues an episode of the same service (one ending on or after the
        # day before it starts) is no new start: monthly billing rows are one stay.
        prior = horizon["service_rows"](o.service)
        cont = starts.merge(prior, on="cid", suffixes=("", "_p"))
        cont = cont[(cont["s_p"] < cont["s"]) & (cont["e_p"].isna() | (cont["e_p"] >= cont["s"] - DAY))]
        new = starts.loc[~starts.set_index(["cid", "s"]).index.isin(cont.set_index(["cid", "s"]).index)]
        return pd.Series(members.isin(new["cid"]), index=members), np.nan
    if o.kind in ("assessment_level", "assessment_rise"):
        ass = horizon["assessments"]
        sub = ass.loc[ass["scale"].eq(o.scale).to_numpy()]
        top = sub.groupby("cid")["value"].max().reindex(members)
        base = _baseline(horizon["assessments_all"], o.scale, horizon["t"]).reindex(members)
        if o.kind == "assessment_level":
            return ((top >= o.min) & ~(base >= o.min)).fillna(False).astype(bool), np.nan
        base = base.fillna(RAI_SCALES[o.scale][0])
        return (top >= base + o.min_rise).fillna(False).astype(bool), np.nan
    flags, threshold = pd.Series(False, index=members), np.nan
    for sub in o.of:
        f, th = _evaluate(sub, members, horizon)
        flags |= f.reindex(members, fill_value=False)
        threshold = th if np.isnan(threshold) else threshold
    return flags, threshold


def build_labels(data, as_of, target: str | Target, *, targets: str | Path | Mapping[str, Target] | None = None,
                 validate: bool = True) -> pd.DataFrame:
    """Labels of one target as of ``as_of``: one row per cohort member.

    Parameters
    ----------
    data
        A data folder, a mapping of table name to DataFrame, or validated tables.
    as_of
        Index date T; the cohort uses records before T, the outcome [T, T + horizon).
    target
        A target name from the targets file, or a :class:`Target`.
    targets
        Targets YAML path or loaded mapping (the packaged file when None).
    validate
        For a folder, validate it with :func:`features.contract.load.load_tables` first.

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
    tables = _frames(data, validate)
    if isinstance(target, str):
        declared = targets if isinstance(targets, Mapping) else load_targets(targets)
        if target not in declared:
            raise TargetError(f"unknown target {target!r}; declared: {sorted(declared)}")
        target = declared[target]
    t = pd.Timestamp(as_of).normalize()
    members = cohort_members(tables, t, target.cohort)
    ids = members.index
    end = pd.Series(t + pd.Timedelta(days=target.horizon_days), index=ids)
    death = _day(members["death_date"]) + DAY
    end = end.where(~(death < end), death)
    if "moved_out" in members:
        out = _day(members["moved_out"])
        end = end.where(~(out < end), out)

    ev = tables["events"]
    if ev["cost_eur"].isna().any():
        ev = fill_missing_costs(ev, load_unit_costs())
    ev = ev.assign(cid=ev["client_id"].astype("str"), s=_day(ev["start"]))
    ev = ev.loc[(ev["cid"].isin(ids) & (ev["s"] >= t)).to_numpy()]
    ev = ev.loc[(ev["s"] < end.reindex(ev["cid"]).to_numpy()).to_numpy()]
    ass = tables["assessments"].assign(cid=lambda d: d["client_id"].astype("str"), d=lambda d: _day(d["date"]))
    in_h = ass.loc[(ass["cid"].isin(ids) & (ass["d"] >= t)).to_numpy()]
    in_h = in_h.loc[(in_h["d"] < end.reindex(in_h["cid"]).to_numpy()).to_numpy()]
    all_events = tables["events"]

    def service_rows(service: str) -> pd.DataFrame:
        rows = all_events.loc[all_events["service"].eq(service).to_numpy()]
        rows = pd.DataFrame({"cid": rows["client_id"].astype("str").to_numpy(), "s": _day(rows["start"]).to_numpy(),
                             "e": _day(rows["end"]).to_numpy()})
        return rows.loc[rows["cid"].isin(ids).to_numpy()].rename(columns={"s": "s_p", "e": "e_p"})

    horizon = {"t": t, "events": ev, "assessments": in_h, "assessments_all": ass, "service_rows": service_rows,
               "cost": ev.groupby("cid")["cost_eur"].sum().reindex(ids, fill_value=0.0)}
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


def build_training_set(data, as_of_dates: Iterable, target: str, spec: FeatureSpec | str | Path | None = None, *,
                       targets: str | Path | Mapping[str, Target] | None = None, engine=None,
                       validate: bool = True, histories=None) -> pd.DataFrame:
    """Features and labels of one target for several index dates, stacked for temporal validation.

    The tables are read and registered once; for each T the feature table is
    joined to the target's cohort (inner join: one row per cohort member).
    Pass ``histories`` (a :class:`~features.histories.build.ClientHistories` over the
    same tables, e.g. with ``cache=True``) to reuse feature tables across targets.

    Returns
    -------
    pandas.DataFrame
        ``client_id, as_of``, the spec's feature columns, then ``label`` and the
        label's horizon columns; rows sorted by ``as_of`` and ``client_id``.
    """
    from features.histories.build import ClientHistories

    tables = _frames(data, validate)
    declared = targets if isinstance(targets, Mapping) else load_targets(targets)
    if target not in declared:
        raise TargetError(f"unknown target {target!r}; declared: {sorted(declared)}")
    histories = histories if histories is not None else ClientHistories(tables, spec, engine=engine)
    frames = []
    for t in as_of_dates:
        t = pd.Timestamp(t).normalize()
        feats = histories.features(t)
        labels = build_labels(tables, t, declared[target]).drop(columns=["as_of"])
        joined = feats.merge(labels, on="client_id", how="inner", validate="one_to_one")
        joined.insert(1, "as_of", t)
        frames.append(joined)
    if not frames:
        raise ValueError("as_of_dates is empty")
    return pd.concat(frames, ignore_index=True)
