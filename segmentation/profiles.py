"""Segment profiles: who is in each segment, what they use, what they cost, and a descriptive name."""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.tables import SERVICE_LINES

SERVICE_NAMES = {
    "primary_care_visit": "primary care", "remote_contact": "remote contacts", "emergency": "emergency",
    "specialist_outpatient": "specialist outpatient", "inpatient": "inpatient", "home_care": "home care",
    "housing_24h": "24 h housing", "mental_health_substance": "mental health & substance",
    "social_work": "social work", "disability_services": "disability services", "rehabilitation": "rehabilitation",
    "oral_health": "oral health", "child_family": "child & family",
}


def _age_band(age: float) -> str:
    if age < 18:
        return "children"
    if age < 30:
        return "young adults"
    if age < 65:
        return "working age"
    if age < 75:
        return "65–74"
    return "75+"


def profile_segments(features: pd.DataFrame, segments: np.ndarray | pd.Series,
                     next_year_cost: pd.Series | None = None, window: str = "365d") -> pd.DataFrame:
    """Describe each segment.

    Parameters
    ----------
    features
        Client-history feature table (one row per client).
    segments
        Segment of each row of ``features``.
    next_year_cost
        Optional cost of each client in the year after the index date, aligned
        with ``features``; gives each segment's share of next year's cost.
    window
        Feature window describing service use (``<service>_cost_<window>``).

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``clients``, ``client_share``, ``cost_share`` (past
        window), ``next_year_cost_share`` and ``next_year_cost_per_client`` (when
        given), ``mean_age``, ``female_share``, ``top_services``,
        ``top_conditions``, ``distinguishing`` (features furthest above the
        population, in standard deviations) and ``segment_name``.
    """
    seg = pd.Series(np.asarray(segments), index=features.index, name="segment")
    rows = []
    cost_cols = {s: f"{s}_cost_{window}" for s in SERVICE_LINES if f"{s}_cost_{window}" in features}
    total_col = f"cost_total_{window}" if f"cost_total_{window}" in features else None
    dx_cols = [c for c in features.columns if c.startswith("dx_")]
    numeric = features.select_dtypes("number").drop(columns=[c for c in ("client_id",) if c in features], errors="ignore")
    mean_all, sd_all = numeric.mean(), numeric.std().replace(0, np.nan)
    past_total = features[total_col].sum() if total_col else np.nan
    service_share_all = {s: features[c].sum() for s, c in cost_cols.items()}
    all_cost = sum(service_share_all.values()) or np.nan
    for label, idx in seg.groupby(seg, sort=True).groups.items():
        part = features.loc[idx]
        row = {"segment": label, "clients": len(part), "client_share": len(part) / len(features)}
        if total_col:
            row["cost_share"] = part[total_col].sum() / past_total if past_total else np.nan
            row["cost_per_client_eur"] = part[total_col].mean()
        if next_year_cost is not None:
            nyc = next_year_cost.loc[idx]
            row["next_year_cost_share"] = nyc.sum() / next_year_cost.sum() if next_year_cost.sum() else np.nan
            row["next_year_cost_per_client_eur"] = nyc.mean()
        if "age" in part:
            row["mean_age"] = part["age"].mean()
        if "sex" in part:
            row["female_share"] = (part["sex"].astype(str) == "F").mean()
        # Services by how much more of the segment's cost they take than of everyone's.
        seg_cost = {s: part[c].sum() for s, c in cost_cols.items()}
        seg_total = sum(seg_cost.values())
        lift = {s: (seg_cost[s] / seg_total) / (service_share_all[s] / all_cost)
                for s in cost_cols if seg_total > 0 and service_share_all[s] > 0}
        top_services = [s for s, v in sorted(lift.items(), key=lambda kv: -kv[1])
                        if v > 1.5 and seg_cost[s] / seg_total > 0.05][:3]
        if not top_services and seg_total > 0:
            top_services = [max(seg_cost, key=seg_cost.get)]
        row["top_services"] = ", ".join(SERVICE_NAMES[s] for s in top_services)
        prevalence = {c[3:]: part[c].mean() for c in dx_cols}
        base = {c[3:]: features[c].mean() for c in dx_cols}
        top_conditions = [g for g, p in sorted(prevalence.items(), key=lambda kv: -kv[1])
                          if p >= 0.2 and base[g] > 0 and p / base[g] > 1.5][:2]
        row["top_conditions"] = ", ".join(g.replace("_", " ") for g in top_conditions)
        z = ((part[numeric.columns].mean() - mean_all) / sd_all).dropna().sort_values(ascending=False)
        row["distinguishing"] = ", ".join(f"{c} {v:+.1f} sd" for c, v in z.head(4).items())
        use = "low use" if total_col and row.get("cost_per_client_eur", 0) < 0.25 * features[total_col].mean() \
            else (row["top_services"] or "mixed use")
        parts = [_age_band(row.get("mean_age", 40.0)), use] + ([row["top_conditions"]] if top_conditions else [])
        row["segment_name"] = " · ".join(parts)
        rows.append(row)
    out = pd.DataFrame(rows)
    dup = out["segment_name"].duplicated(keep=False)
    out.loc[dup, "segment_name"] = out.loc[dup, "segment_name"] + " #" + out.loc[dup, "segment"].astype(str)
    return out
