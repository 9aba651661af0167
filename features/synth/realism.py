"""Realism figures of a county's tables, to check a synthetic county against Finnish reference values."""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.codes import code_in_ranges
from features.contract.distinct import member_of

#: Reference ranges the synthetic county is calibrated to (DOMAIN.md and the foundation issue).
REFERENCE = {
    "any_contact_share": (0.60, 0.70),
    "top10_cost_share": (0.70, 0.85),
    "adult_diabetes_prevalence": (0.07, 0.09),
    "cost_per_resident_eur": (3000.0, 4500.0),
    "top10_persistence": (0.33, 0.50),
}


def _residents(clients: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    born = clients["birth_date"] < day
    alive = clients["death_date"].isna() | (clients["death_date"] >= day)
    moved_in = clients["moved_in"].isna() | (clients["moved_in"] <= day) if "moved_in" in clients else True
    moved_out = clients["moved_out"].isna() | (clients["moved_out"] > day) if "moved_out" in clients else True
    return clients.loc[born & alive & moved_in & moved_out, "client_id"]


def yearly_figures(tables: dict[str, pd.DataFrame], year: int) -> dict[str, float]:
    """Realism figures of one calendar year for residents on 1 January of that year.

    Costs are event costs by start date within the year (missing costs must be filled first).
    """
    t0, t1 = pd.Timestamp(year, 1, 1), pd.Timestamp(year + 1, 1, 1)
    clients = tables["clients"]
    pop = _residents(clients, t0)
    ev = tables["events"]
    ev = ev[(ev["start"] >= t0) & (ev["start"] < t1) & member_of(ev["client_id"], pop)]
    cost = ev.groupby("client_id", observed=True)["cost_eur"].sum().reindex(pop, fill_value=0.0).to_numpy()
    ranked = np.sort(cost)[::-1]
    top = max(1, int(round(0.1 * len(ranked))))
    ages = (t0 - clients.set_index("client_id").loc[pop, "birth_date"]).dt.days / 365.25
    adults = pop[(ages >= 18).to_numpy()]
    dg = tables["diagnoses"]
    diab = dg[(dg["date"] < t1) & code_in_ranges(dg["code"], [("E10", "E14"), ("T89", "T90")])]
    return {
        "residents": float(len(pop)),
        "any_contact_share": float((cost > 0).mean()) if len(cost) else np.nan,
        "top10_cost_share": float(ranked[:top].sum() / ranked.sum()) if ranked.sum() > 0 else np.nan,
        "cost_per_resident_eur": float(cost.mean()),
        "adult_diabetes_prevalence": float(member_of(adults, diab["client_id"]).mean()),
        "share_75_plus": float((ages >= 75).mean()),
    }


def persistence(tables: dict[str, pd.DataFrame], year: int) -> float:
    """Share of the year's top cost decile (residents all year) that is in the top decile the next year."""
    ev = tables["events"]
    pop = set(_residents(tables["clients"], pd.Timestamp(year, 1, 1))) & set(
        _residents(tables["clients"], pd.Timestamp(year + 2, 1, 1) - pd.Timedelta(days=1)))
    pop = pd.Index(sorted(pop))

    def top_decile(y: int) -> set:
        e = ev[(ev["start"] >= pd.Timestamp(y, 1, 1)) & (ev["start"] < pd.Timestamp(y + 1, 1, 1))]
        cost = e.groupby("client_id", observed=True)["cost_eur"].sum().reindex(pop, fill_value=0.0)
        return set(cost.nlargest(max(1, int(round(0.1 * len(cost))))).index)

    first, second = top_decile(year), top_decile(year + 1)
    return len(first & second) / len(first) if first else np.nan


def realism_report(tables: dict[str, pd.DataFrame], years: list[int]) -> pd.DataFrame:
    """Figures per year with the reference range and whether each figure lies inside it."""
    rows = []
    for year in years:
        figs = yearly_figures(tables, year)
        if year + 1 in years:
            figs["top10_persistence"] = persistence(tables, year)
        for name, value in figs.items():
            lo, hi = REFERENCE.get(name, (np.nan, np.nan))
            rows.append({"year": year, "figure": name, "value": value, "low": lo, "high": hi,
                         "within": bool(lo <= value <= hi) if name in REFERENCE else None})
    return pd.DataFrame(rows)
