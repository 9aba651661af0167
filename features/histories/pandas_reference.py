"""A plain pandas implementation of the feature spec, independent of the SQL compiler.

It reads the same :class:`~features.histories.spec.FeatureSpec` and follows the rules of
docs/features.md with ordinary pandas operations (filter, groupby, unstack).
The tests compare it with the DuckDB pipeline on generated data, and
``bench_features.py`` races the two. It shares only the spec, the unit-cost
rule (:func:`features.contract.costs.unit_cost_per_row`) and the diagnosis-range rule
(:func:`features.contract.codes.code_in_ranges`) with the library: the definitions,
not the implementation. :func:`window_cost` (the ``cost_total_<w>d`` rule for one
window) is also what the targets' prior-cost cohort key uses, so a cohort
bounded by last year's cost sees the same number as the feature.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.codes import code_in_ranges
from features.contract.tables import EPISODE_SERVICES, HEALTH_SERVICES, SOCIAL_SERVICES
from features.contract.costs import load_unit_costs, unit_cost_per_row
from features.histories.spec import FeatureSpec, load_spec

DAY = pd.Timedelta(days=1)


def _day(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).astype("datetime64[s]").dt.floor("D")


def _population(clients: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    c = clients.copy()
    keep = (_day(c["birth_date"]) < t) & (c["death_date"].isna() | (_day(c["death_date"]) >= t))
    if "moved_in" in c:
        keep &= c["moved_in"].isna() | (_day(c["moved_in"]) <= t)
    if "moved_out" in c:
        keep &= c["moved_out"].isna() | (_day(c["moved_out"]) > t)
    return c.loc[keep.to_numpy()].set_index("client_id")


def _event_features(events: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp, costs) -> pd.DataFrame:
    ev = events.loc[(_day(events["start"]) < t).to_numpy()].copy()
    ev["s"] = _day(ev["start"])
    ev["e"] = _day(ev["end"])
    epi = ev["service"].isin(EPISODE_SERVICES).to_numpy()
    rate = unit_cost_per_row(ev, costs).to_numpy(dtype=float)
    per_day = ev["service"].map({k: c.per == "day" for k, c in costs.items()}).fillna(False).to_numpy(bool)
    ongoing = (ev["e"].isna() | (ev["e"] >= t)).to_numpy()
    eff_end = ev["e"].where(~ongoing, t - DAY)
    total_days = ((ev["e"] - ev["s"]).dt.days + 1).to_numpy(dtype=float)
    known_days = per_day & ev["e"].notna().to_numpy() & ~ongoing & (ev["e"] >= ev["s"]).to_numpy()
    cost = ev["cost_eur"].to_numpy(dtype=float)
    cost_known = np.where(np.isnan(cost), rate * np.where(known_days, total_days, 1.0), cost)
    ev["last_day"] = eff_end.where(epi, ev["s"])
    key = [ev["client_id"].to_numpy(), ev["service"].to_numpy()]
    parts = {}
    for w in spec.event_windows():
        lo = t - pd.Timedelta(days=w)
        in_w = (ev["s"] >= lo).to_numpy()
        days = np.clip((eff_end - ev["s"].clip(lower=lo)).dt.days.to_numpy(dtype=float) + 1, 0, None)
        days = np.where(epi, days, 0.0)
        c = np.where(~epi, np.where(in_w, cost_known, np.nan),
                     np.where(ongoing, np.where(per_day, rate * days, np.where(in_w, rate, 0.0)),
                              cost_known * days / total_days))
        frame = pd.DataFrame({f"n_{w}": in_w.astype(int), f"c_{w}": c, f"d_{w}": days})
        frame.index = pd.MultiIndex.from_arrays(key, names=["client_id", "service"])
        parts[w] = frame.groupby(level=[0, 1]).sum(min_count=1)
        parts[w][f"n_{w}"] = parts[w][f"n_{w}"].fillna(0)
        parts[w][f"d_{w}"] = parts[w][f"d_{w}"].fillna(0)
    by = pd.concat(parts.values(), axis=1)
    for agg, letter in (("units", "u"), ("professionals", "p")):
        col = "unit" if agg == "units" else "professional"
        for w in sorted({w for a in spec.events if a.agg == agg for w in a.windows}):
            sub = ev.loc[(ev["s"] >= t - pd.Timedelta(days=w)).to_numpy()]
            by[f"{letter}_{w}"] = sub.groupby(["client_id", "service"])[col].nunique()
    by["since"] = (t - ev.groupby(["client_id", "service"])["last_day"].max()).dt.days
    for a, b in spec.event_spans():  # the span [T - a, T - b) of the change features
        lo, last = t - pd.Timedelta(days=a), t - pd.Timedelta(days=b + 1)
        inside = ((ev["s"] >= lo) & (ev["s"] <= last)).to_numpy()
        days = np.where(epi, np.clip((eff_end.clip(upper=last) - ev["s"].clip(lower=lo)).dt.days.to_numpy(dtype=float)
                                     + 1, 0, None), 0.0)
        c = np.where(~epi, np.where(inside, cost_known, 0.0),
                     np.where(ongoing, np.where(per_day, rate * days, np.where(inside, rate, 0.0)),
                              cost_known * days / total_days))
        frame = pd.DataFrame({f"ns_{a}_{b}": inside.astype(int), f"cs_{a}_{b}": c},
                             index=pd.MultiIndex.from_arrays(key, names=["client_id", "service"]))
        by = by.join(frame.groupby(level=[0, 1]).sum(), how="outer")
    out = {}
    short = {"count": "n", "cost": "c", "days": "d", "units": "u", "professionals": "p"}
    for col in spec.columns():
        if col.kind in short:
            out[col.name] = by[f"{short[col.kind]}_{col.window}"].unstack().get(col.service)
        elif col.kind == "days_since_last":
            out[col.name] = by["since"].unstack().get(col.service)
        elif col.kind == "total_count":
            out[col.name] = by[f"n_{col.window}"].groupby(level=0).sum()
        elif col.kind == "total_cost":
            out[col.name] = by[f"c_{col.window}"].groupby(level=0).sum()
        elif col.kind in ("use_change", "first_use"):
            x = "cs" if col.agg == "cost" else "ns"
            mine = by.index.get_level_values(1).isin(col.services)
            recent, earlier = (by[f"{x}_{a}_{b}"].where(mine, 0).fillna(0).groupby(level=0).sum()
                               for a, b in col.spans())
            out[col.name] = recent - earlier if col.kind == "use_change" else ((recent > 0) & (earlier == 0)).astype(int)
        elif col.kind in ("service_lines", "social_and_health"):
            used = (by[f"n_{col.window}"] > 0) | (by[f"d_{col.window}"] > 0)
            if col.kind == "service_lines":
                out[col.name] = used.groupby(level=0).sum()
            else:
                svc = used.index.get_level_values(1)
                social = (used & svc.isin(SOCIAL_SERVICES)).groupby(level=0).any()
                health = (used & svc.isin(HEALTH_SERVICES)).groupby(level=0).any()
                out[col.name] = (social & health).astype(int)
    return pd.DataFrame({k: v for k, v in out.items() if v is not None},
                        index=by.index.get_level_values(0).unique())


def window_cost(events: pd.DataFrame, as_of, days: int, costs=None) -> pd.Series:
    """Each client's cost of every service line in the window [T - ``days``, T): the ``cost_total_<days>d`` rule.

    The same rule as the feature (docs/features.md, "Episodes"): a point
    contact counts by its start date; a finished episode brings its recorded
    (or unit-cost filled) cost prorated by its days inside the window; an
    episode running at T (end missing or on/after T) is costed as unit cost x
    days before T (per-day services) and never from its recorded cost or end,
    which are information from after T. Used by the targets' prior-cost cohort
    key (``max_prior_cost_quantile``).

    Parameters
    ----------
    events
        The events table (``client_id, start, end, service, professional, cost_eur``).
    as_of
        The index date T.
    days
        Length of the window in days.
    costs
        Unit-cost table (``features.contract.costs.load_unit_costs``; the packaged one when None).

    Returns
    -------
    pandas.Series
        Cost in EUR indexed by ``client_id`` (as text), for clients with a record that reaches the window.
    """
    t = pd.Timestamp(as_of).normalize()
    lo = t - pd.Timedelta(days=days)
    costs = costs if costs is not None else load_unit_costs()
    s, e = _day(events["start"]), _day(events["end"])
    epi_all = events["service"].isin(EPISODE_SERVICES)
    keep = ((s < t) & ((s >= lo) | (epi_all & (e.isna() | (e >= lo))))).to_numpy()
    ev, s, e = events.loc[keep], s[keep], e[keep]
    epi = epi_all[keep].to_numpy()
    rate = unit_cost_per_row(ev, costs).to_numpy(dtype=float)
    per_day = ev["service"].map({k: c.per == "day" for k, c in costs.items()}).fillna(False).to_numpy(bool)
    ongoing = (e.isna() | (e >= t)).to_numpy()
    eff_end = e.where(~ongoing, t - DAY)
    total_days = ((e - s).dt.days + 1).to_numpy(dtype=float)
    known_days = per_day & e.notna().to_numpy() & ~ongoing & (e >= s).to_numpy()
    cost = ev["cost_eur"].to_numpy(dtype=float)
    cost_known = np.where(np.isnan(cost), rate * np.where(known_days, total_days, 1.0), cost)
    in_w = (s >= lo).to_numpy()
    d = np.clip((eff_end - s.clip(lower=lo)).dt.days.to_numpy(dtype=float) + 1, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(~epi, np.where(in_w, cost_known, 0.0),
                     np.where(ongoing, np.where(per_day, rate * d, np.where(in_w, rate, 0.0)),
                              cost_known * d / total_days))
    return pd.Series(c, index=ev["client_id"].astype("str").to_numpy()).groupby(level=0).sum().rename_axis("client_id")


def _diagnosis_features(dx: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp) -> pd.DataFrame:
    d = dx.loc[((_day(dx["date"]) < t) & dx["code"].notna()).to_numpy()]
    if spec.diagnosis_lookback_days:
        d = d.loc[(_day(d["date"]) >= t - pd.Timedelta(days=spec.diagnosis_lookback_days)).to_numpy()]
    out = pd.DataFrame(index=pd.Index(d["client_id"].unique(), name="client_id"))
    for g in spec.diagnosis_groups:
        hit = (d["system"].eq("ICD-10") & code_in_ranges(d["code"], list(g.icd10))) | \
              (d["system"].eq("ICPC-2") & code_in_ranges(d["code"], list(g.icpc2)))
        out[f"dx_{g.name}"] = hit.groupby(d["client_id"].to_numpy()).any().astype(int)
    if spec.chronic_groups:
        out["chronic_conditions"] = out[[f"dx_{g}" for g in spec.chronic_groups]].sum(axis=1)
    if spec.charlson is not None:
        icd = d.loc[d["system"].eq("ICD-10").to_numpy()]
        c = icd["code"].str.replace(".", "", regex=False)
        flags = {}
        for cat in spec.charlson.categories:
            hit = pd.Series(False, index=icd.index)
            for p in cat.prefixes:
                hit |= c.str.startswith(p)
            for lo, hi in cat.ranges:
                head = c.str.slice(0, len(lo))
                hit |= (head >= lo) & (head <= hi)
            flags[cat.name] = hit.groupby(icd["client_id"].to_numpy()).any().reindex(out.index, fill_value=False)
        flags = {k: v.astype(int) for k, v in flags.items()}
        for needed, then in spec.charlson.implies:
            both = pd.concat([flags[n] for n in needed], axis=1).min(axis=1)
            flags[then] = np.maximum(flags[then], both)
        final = dict(flags)
        for high, lows in spec.charlson.supersedes:
            for low in lows:
                final[low] = final[low] * (1 - flags[high])
        out["charlson_index"] = sum(cat.weight * final[cat.name] for cat in spec.charlson.categories)
    return out


def _new_diagnosis_features(dx: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp) -> pd.DataFrame:
    """new_dx_<group>_<days>d: a group recorded in [T - days, T) and not in the none_before_days before."""
    n = spec.new_diagnoses
    lo, first = t - pd.Timedelta(days=n.days), t - pd.Timedelta(days=n.days + n.none_before_days)
    day = _day(dx["date"])
    d = dx.loc[((day < t) & (day >= first) & dx["code"].notna()).to_numpy()]
    recent = (_day(d["date"]) >= lo).to_numpy()
    who = d["client_id"].astype("str").to_numpy()
    out = pd.DataFrame(index=pd.Index(pd.unique(who), name="client_id"))
    for g in n.groups:
        hit = ((d["system"].eq("ICD-10") & code_in_ranges(d["code"], list(g.icd10)))
               | (d["system"].eq("ICPC-2") & code_in_ranges(d["code"], list(g.icpc2)))).to_numpy()
        now = pd.Series(hit & recent, index=who).groupby(level=0).any()
        before = pd.Series(hit & ~recent, index=who).groupby(level=0).any()
        out[f"new_dx_{g.name}_{n.days}d"] = (now & ~before).astype(int)
    out[f"new_dx_count_{n.days}d"] = out[[f"new_dx_{g.name}_{n.days}d" for g in n.groups]].sum(axis=1)
    return out


def _latest(frame: pd.DataFrame, key: str, t: pd.Timestamp) -> pd.DataFrame:
    """Mean value per client, key and day, newest first with a rank."""
    day = frame.assign(d=_day(frame["date"])).groupby(["client_id", key, "d"], as_index=False)["value"].mean()
    day = day.sort_values(["client_id", key, "d"], ascending=[True, True, False])
    day["rn"] = day.groupby(["client_id", key]).cumcount() + 1
    return day


def _measurement_features(meas: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp) -> pd.DataFrame:
    out = {}
    for m in spec.measurements:
        sub = meas.loc[(meas["name"].eq(m.name) & (_day(meas["date"]) < t)
                        & (_day(meas["date"]) >= t - pd.Timedelta(days=m.lookback_days))
                        & meas["value"].notna()).to_numpy()]
        day = _latest(sub, "name", t)
        first = day[day["rn"] == 1].set_index("client_id")
        second = day[day["rn"] == 2].set_index("client_id")
        out[f"{m.name}_last"] = first["value"]
        if m.change:
            out[f"{m.name}_change"] = first["value"] - second["value"].reindex(first.index)
        if m.days_since:
            out[f"days_since_last_{m.name}"] = (t - first["d"]).dt.days.astype(float)
    return pd.DataFrame(out)


def _assessment_features(ass: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp) -> pd.DataFrame:
    a = spec.assessments
    lo_change = t - pd.Timedelta(days=a.change_days)
    out = {}
    for sc in a.scales:
        sub = ass.loc[(ass["scale"].eq(sc) & (_day(ass["date"]) < t)
                       & (_day(ass["date"]) >= t - pd.Timedelta(days=a.lookback_days))
                       & ass["value"].notna()).to_numpy()]
        day = _latest(sub, "scale", t)
        last = day[day["rn"] == 1].set_index("client_id")["value"]
        recent = day[day["d"] >= lo_change]
        n = recent.groupby("client_id").size()
        first = recent.sort_values("d").groupby("client_id")["value"].first()[n >= 2]
        out[f"rai_{sc}_last"] = last
        out[f"rai_{sc}_change_{a.change_days}d"] = last - first.reindex(last.index)
        if a.step:
            previous = day[day["rn"] == 2].set_index("client_id")["value"]
            out[f"rai_{sc}_step"] = last - previous.reindex(last.index)
    return pd.DataFrame(out)


def _continuity_features(events: pd.DataFrame, spec: FeatureSpec, t: pd.Timestamp) -> pd.DataFrame:
    c = spec.continuity
    s = _day(events["start"])
    sub = events.loc[((s < t) & (s >= t - pd.Timedelta(days=c.window_days))
                      & events["service"].isin(c.services)).to_numpy()]
    out = {}
    for by in c.by:
        n = sub.dropna(subset=[by]).groupby(["client_id", by]).size()
        total, top = n.groupby(level=0).sum(), n.groupby(level=0).max()
        out[f"continuity_{by}_{c.window_days}d"] = (top / total).where(total >= c.min_contacts)
    return pd.DataFrame(out)


def reference_features(tables: dict[str, pd.DataFrame], as_of, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """The feature table as of ``as_of``, computed with plain pandas.

    Parameters
    ----------
    tables
        The five canonical tables as DataFrames.
    as_of
        Index date T.
    spec
        Feature spec (the packaged default when None).

    Returns
    -------
    pandas.DataFrame
        Same columns, order and dtypes as :func:`features.histories.build.build_features`.
    """
    spec = spec or load_spec()
    t = pd.Timestamp(as_of).normalize()
    costs = load_unit_costs(spec.unit_costs)
    pop = _population(tables["clients"], t)
    blocks = [_event_features(tables["events"], spec, t, costs)]
    if spec.diagnosis_groups or spec.charlson is not None:
        blocks.append(_diagnosis_features(tables["diagnoses"], spec, t))
    if spec.measurements:
        blocks.append(_measurement_features(tables["measurements"], spec, t))
    if spec.assessments is not None:
        blocks.append(_assessment_features(tables["assessments"], spec, t))
    if spec.continuity is not None:
        blocks.append(_continuity_features(tables["events"], spec, t))
    if spec.new_diagnoses is not None:
        blocks.append(_new_diagnosis_features(tables["diagnoses"], spec, t))
    index = pop.index.astype("str")
    out: dict[str, object] = {}
    b = _day(pop["birth_date"])
    before = (b.dt.month > t.month) | ((b.dt.month == t.month) & (b.dt.day > t.day))
    demo = {"age": (t.year - b.dt.year - before.astype(int)).to_numpy(),
            **{k: pop[k].to_numpy() for k in ("sex", "language", "municipality", "unit")}}
    for col in spec.columns():
        if col.kind in demo:
            out[col.name] = demo[col.kind]
            continue
        values = None
        for block in blocks:
            if col.name in block:
                values = block[col.name]
                values.index = values.index.astype("str")
                break
        values = values.reindex(index) if values is not None else pd.Series(np.nan, index=index)
        zero_when_missing = col.dtype == "int" or col.kind in ("cost", "total_cost") or col.history_days is not None
        values = values.fillna(0) if zero_when_missing else values
        if col.history_days is not None:  # a change feature: NaN unless born and resident since T - history_days
            start = t - pd.Timedelta(days=col.history_days)
            late = (_day(pop["birth_date"]) > start).to_numpy(bool, copy=True)
            if "moved_in" in pop:
                late = late | (_day(pop["moved_in"]) > start).fillna(False).to_numpy(bool)
            values = values.where(~late)
        out[col.name] = values.to_numpy()
    out = pd.DataFrame(out, index=index).sort_index().rename_axis("client_id").reset_index()
    dtypes = {"int": "int64", "float": "float64", "str": "str"}
    return out.astype({"client_id": "str", **{c.name: dtypes[c.dtype] for c in spec.columns()}})
