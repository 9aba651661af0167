"""Small, seeded canonical tables for the client-history and label tests.

Random but deterministic, covering all five tables and the awkward cases:
episodes crossing T (ended after T and still open), missing costs, clients
without records, deaths and moves before and after T, clients born after T,
same-day duplicate measurements and both code systems.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.tables import RAI_SCALES, SERVICE_LINES

AS_OF = pd.Timestamp("2024-01-01")
START, END = pd.Timestamp("2020-01-01"), pd.Timestamp("2025-06-30")

CODES = [
    ("E11.9", "ICD-10"), ("E11.2", "ICD-10"), ("E10.1", "ICD-10"), ("I50.1", "ICD-10"), ("I25.2", "ICD-10"),
    ("I21.0", "ICD-10"), ("C78.0", "ICD-10"), ("C50.9", "ICD-10"), ("K70.3", "ICD-10"), ("R18", "ICD-10"),
    ("J44.9", "ICD-10"), ("J45.0", "ICD-10"), ("F32.1", "ICD-10"), ("F10.2", "ICD-10"), ("I10", "ICD-10"),
    ("N18.3", "ICD-10"), ("G30.1", "ICD-10"), ("I63.9", "ICD-10"), ("T90", "ICPC-2"), ("K86", "ICPC-2"),
    ("P76", "ICPC-2"), ("P15", "ICPC-2"), ("R95", "ICPC-2"), ("A04", "ICPC-2"), ("M54.5", "ICD-10"),
]
MEASURES = {"hba1c": (30, 110), "bmi": (17, 45), "sbp": (95, 190), "egfr": (15, 120), "ldl": (1, 6)}
UNITS = ["hyvinkaa.hc", "jarvenpaa.hc", "tuusula.hc", "keusote.hospital"]
ROLES = ["doctor", "nurse", "ward", "social_worker"]


def _days(rng, n, lo=START, hi=END):
    return lo + pd.to_timedelta(rng.integers(0, (hi - lo).days + 1, n), unit="D")


def make_county(n_clients: int = 60, seed: int = 0, events_per_client: float = 14.0) -> dict[str, pd.DataFrame]:
    """Build the five canonical tables for ``n_clients`` clients (seeded)."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(n_clients)]
    birth = pd.Timestamp("1925-01-01") + pd.to_timedelta(rng.integers(0, 36500, n_clients), unit="D")
    birth = pd.Series(birth)
    birth.iloc[:2] = [AS_OF + pd.Timedelta(days=3), AS_OF]  # born at / after T: not in the population
    birth.iloc[2] = pd.Timestamp("1940-02-29")
    death = pd.Series(pd.NaT, index=range(n_clients), dtype="datetime64[s]")
    dead = rng.random(n_clients) < 0.12
    death[dead] = _days(rng, dead.sum(), pd.Timestamp("2021-01-01"), END)
    death.iloc[3], death.iloc[4] = AS_OF - pd.Timedelta(days=1), AS_OF  # dead just before T / on T
    moved_in = pd.Series(pd.NaT, index=range(n_clients), dtype="datetime64[s]")
    moved_out = pd.Series(pd.NaT, index=range(n_clients), dtype="datetime64[s]")
    moved_in.iloc[5], moved_in.iloc[6] = AS_OF, AS_OF + pd.Timedelta(days=1)
    moved_out.iloc[7], moved_out.iloc[8] = AS_OF, AS_OF + pd.Timedelta(days=1)
    mi = rng.random(n_clients) < 0.08
    moved_in[mi & moved_in.isna()] = _days(rng, (mi & moved_in.isna()).sum())
    clients = pd.DataFrame({
        "client_id": ids,
        "birth_date": birth.astype("datetime64[s]").to_numpy(),
        "sex": rng.choice(["F", "M", "X"], n_clients, p=[0.5, 0.48, 0.02]),
        "municipality": rng.choice(["Hyvinkää", "Järvenpää", "Tuusula"], n_clients),
        "language": rng.choice(["fi", "sv", "other"], n_clients, p=[0.8, 0.1, 0.1]),
        "death_date": death.to_numpy(),
        "unit": rng.choice(UNITS[:3], n_clients),
        "moved_in": moved_in.to_numpy(),
        "moved_out": moved_out.to_numpy(),
    })
    for c in ("client_id", "sex", "municipality", "language", "unit"):
        clients[c] = clients[c].astype("string")

    # events: a few clients have none at all
    n_ev = rng.poisson(events_per_client, n_clients)
    n_ev[9:12] = 0
    who = np.repeat(np.arange(n_clients), n_ev)
    m = len(who)
    service = rng.choice(list(SERVICE_LINES), m)
    start = pd.Series(_days(rng, m))
    episode = np.isin(service, ["inpatient", "housing_24h"])
    length = np.where(service == "housing_24h", rng.integers(0, 400, m), rng.integers(0, 20, m))
    end = (start + pd.to_timedelta(length, unit="D")).where(episode)
    open_ = episode & (rng.random(m) < 0.15)
    end[open_] = pd.NaT
    cost = rng.gamma(2.0, 120.0, m).round(2)
    cost[rng.random(m) < 0.15] = np.nan
    role = rng.choice(ROLES, m)
    prof = pd.Series([f"{r}.{rng.integers(0, 4)}" for r in role], dtype="string")
    prof[rng.random(m) < 0.1] = pd.NA
    unit = pd.Series(rng.choice(UNITS, m), dtype="string")
    unit[rng.random(m) < 0.1] = pd.NA
    events = pd.DataFrame({
        "client_id": pd.Series(np.array(ids)[who], dtype="string"),
        "start": start.astype("datetime64[s]").to_numpy(),
        "end": end.astype("datetime64[s]").to_numpy(),
        "service": pd.Series(service, dtype="string"),
        "professional": prof, "cost_eur": cost, "unit": unit,
    })
    # hand-placed episodes crossing T for client 12
    cross = pd.DataFrame({
        "client_id": pd.Series(["c0012"] * 3, dtype="string"),
        "start": pd.to_datetime(["2023-12-20", "2023-06-01", "2023-12-31"]).astype("datetime64[s]"),
        "end": pd.to_datetime(["2024-01-10", None, "2024-01-01"]).astype("datetime64[s]"),
        "service": pd.Series(["inpatient", "housing_24h", "inpatient"], dtype="string"),
        "professional": pd.Series(["ward.1", pd.NA, "doctor.2"], dtype="string"),
        "cost_eur": [9000.0, np.nan, 1800.0],
        "unit": pd.Series(["keusote.hospital", pd.NA, "keusote.hospital"], dtype="string"),
    })
    events = pd.concat([events, cross], ignore_index=True)

    n_dx = rng.poisson(3, n_clients)
    who = np.repeat(np.arange(n_clients), n_dx)
    pick = rng.integers(0, len(CODES), len(who))
    diagnoses = pd.DataFrame({
        "client_id": pd.Series(np.array(ids)[who], dtype="string"),
        "date": pd.Series(_days(rng, len(who))).astype("datetime64[s]").to_numpy(),
        "code": pd.Series([CODES[i][0] for i in pick], dtype="string"),
        "system": pd.Series([CODES[i][1] for i in pick], dtype="string"),
    })

    n_m = rng.poisson(5, n_clients)
    who = np.repeat(np.arange(n_clients), n_m)
    name = rng.choice(list(MEASURES), len(who))
    lo = np.array([MEASURES[x][0] for x in name], dtype=float)
    hi = np.array([MEASURES[x][1] for x in name], dtype=float)
    measurements = pd.DataFrame({
        "client_id": pd.Series(np.array(ids)[who], dtype="string"),
        "date": pd.Series(_days(rng, len(who))).astype("datetime64[s]").to_numpy(),
        "name": pd.Series(name, dtype="string"),
        "value": (lo + rng.random(len(who)) * (hi - lo)).round(1),
    })
    dup = measurements.sample(frac=0.1, random_state=seed).assign(value=lambda d: d["value"] + 1.0)
    measurements = pd.concat([measurements, dup], ignore_index=True)  # same-day duplicates

    n_a = rng.poisson(2, n_clients) * (rng.random(n_clients) < 0.4)
    who = np.repeat(np.arange(n_clients), n_a)
    dates = pd.Series(_days(rng, len(who))).astype("datetime64[s]").to_numpy()
    rows = []
    for i, d in zip(who, dates):
        inst = rng.choice(["rai_hc", "rai_ltc"])
        for scale, (lo_s, hi_s) in RAI_SCALES.items():
            rows.append((ids[i], d, inst, scale, float(rng.integers(lo_s, hi_s + 1))))
    assessments = pd.DataFrame(rows, columns=["client_id", "date", "instrument", "scale", "value"])
    for c in ("client_id", "instrument", "scale"):
        assessments[c] = assessments[c].astype("string")
    assessments["date"] = assessments["date"].astype("datetime64[s]")
    return {"clients": clients, "events": events, "diagnoses": diagnoses, "measurements": measurements,
            "assessments": assessments}


_DEFAULT_CLIENT = {"birth_date": "1950-06-15", "sex": "F", "municipality": "Hyvinkää", "language": "fi",
                   "death_date": None, "unit": "hyvinkaa.hc", "moved_in": None, "moved_out": None}
_DEFAULT_EVENT = {"end": None, "professional": None, "cost_eur": 100.0, "unit": None}
_COLUMNS = {
    "clients": ["client_id", "birth_date", "sex", "municipality", "language", "death_date", "unit", "moved_in",
                "moved_out"],
    "events": ["client_id", "start", "end", "service", "professional", "cost_eur", "unit"],
    "diagnoses": ["client_id", "date", "code", "system"],
    "measurements": ["client_id", "date", "name", "value"],
    "assessments": ["client_id", "date", "instrument", "scale", "value"],
}
_DATES = {"birth_date", "death_date", "moved_in", "moved_out", "start", "end", "date"}


def frames(clients=("a",), events=(), diagnoses=(), measurements=(), assessments=()) -> dict[str, pd.DataFrame]:
    """Hand-built tables: ``clients`` are ids or dicts; other rows are dicts with the table's columns."""
    rows = {
        "clients": [{**_DEFAULT_CLIENT, **({"client_id": c} if isinstance(c, str) else c)} for c in clients],
        "events": [{**_DEFAULT_EVENT, **e} for e in events],
        "diagnoses": [{"system": "ICD-10", **d} for d in diagnoses],
        "measurements": list(measurements),
        "assessments": [{"instrument": "rai_hc", **a} for a in assessments],
    }
    out = {}
    for table, cols in _COLUMNS.items():
        f = pd.DataFrame(rows[table], columns=cols)
        for c in cols:
            if c in _DATES:
                f[c] = pd.to_datetime(f[c]).astype("datetime64[s]")
            elif c in ("cost_eur", "value"):
                f[c] = f[c].astype(float)
            else:
                f[c] = f[c].astype("string")
        out[table] = f
    return out
