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
    # THL, social-care housing services: 24-hour care about 9 % of people aged 75+ at year end (9.2 % in 2015,
    # lower since); regular home care about 11 %. Ranges from issue 18.
    "housing_24h_share_75_plus": (0.06, 0.11),
    "home_care_share_75_plus": (0.09, 0.13),
}
#: The care figures of :func:`care_shares`.
CARE = ("housing_24h_share_75_plus", "home_care_share_75_plus")
#: Days before 31 December in which a home-care visit makes a client of regular home care in December.
HOME_CARE_DAYS = 31


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


def care_shares(tables: dict[str, pd.DataFrame], year: int) -> dict[str, float]:
    """24-hour care and regular home care at the end of ``year`` among residents aged 75+.

    Residents on 1 January after the year (i.e. on 31 December), aged 75 or more then.
    In 24-hour care: a ``housing_24h`` episode running on 31 December (started before
    1 January and ended on 31 December or later, or not ended; the rule of
    ``exclude_ongoing``). In regular home care: a ``home_care`` visit in December
    (:data:`HOME_CARE_DAYS` days up to 31 December) and not in 24-hour care. THL
    counts the clients of these services at year end (24-hour care) or in a
    November census (home care); one December visit stands in for "regular" here.
    Needs the events' ``service`` and ``end`` columns.
    """
    t = pd.Timestamp(year + 1, 1, 1)
    clients = tables["clients"]
    pop = _residents(clients, t)
    ages = (t - clients.set_index("client_id").loc[pop, "birth_date"]).dt.days / 365.25
    old = pop[(ages >= 75).to_numpy()]
    ev = tables["events"]
    service = ev["service"].astype(str)
    housing = ev[(service == "housing_24h") & (ev["start"] < t)
                 & (ev["end"].isna() | (ev["end"] >= t - pd.Timedelta(days=1)))]
    home = ev[(service == "home_care") & (ev["start"] < t) & (ev["start"] >= t - pd.Timedelta(days=HOME_CARE_DAYS))]
    in_housing = member_of(old, housing["client_id"])
    in_home = member_of(old, home["client_id"]) & ~in_housing
    n = len(old)
    return {"housing_24h_share_75_plus": float(in_housing.mean()) if n else np.nan,
            "home_care_share_75_plus": float(in_home.mean()) if n else np.nan}


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
    """Figures per year with the reference range and whether each figure lies inside it.

    Needs the clients, the diagnoses and the events (``client_id``, ``service``, ``start``,
    ``end``, ``cost_eur``) that a year's figures read: its events, the next year's (for the
    persistence) and 24-hour care episodes running on its 31 December (:func:`care_shares`).
    Events without the ``service`` and ``end`` columns give the care figures as missing
    (NaN, ``within`` None): a cost-only read cannot tell them.
    """
    rows = []
    has_care = {"service", "end"} <= set(tables["events"].columns)
    for year in years:
        figs = {**yearly_figures(tables, year), **(care_shares(tables, year) if has_care else dict.fromkeys(CARE))}
        if year + 1 in years:
            figs["top10_persistence"] = persistence(tables, year)
        for name, value in figs.items():
            lo, hi = REFERENCE.get(name, (np.nan, np.nan))
            known = value is not None and not np.isnan(value)
            rows.append({"year": year, "figure": name, "value": value if known else np.nan, "low": lo, "high": hi,
                         "within": bool(lo <= value <= hi) if name in REFERENCE and known else None})
    return pd.DataFrame(rows)
