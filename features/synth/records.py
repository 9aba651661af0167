"""Turning a month of latent events into canonical rows: dates, units, professionals, codes, values.

Rows are built as integer-coded numpy columns (strings only at the very end,
as Arrow dictionary arrays) so that a county of a million clients stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.contract.tables import SERVICE_LINES
from features.synth.dynamics import CONDITIONS, Month, Prices, S

#: Diagnosis codes written for each condition: (ICD-10 codes, ICPC-2 codes).
CODES: dict[str, tuple[list[str], list[str]]] = {
    "diabetes": (["E11.9", "E11.6", "E10.9", "E11.2"], ["T90", "T89"]),
    "hypertension": (["I10"], ["K86"]),
    "coronary": (["I25.1", "I20.9"], ["K76", "K74"]),
    "heart_failure": (["I50.0", "I50.9"], ["K77"]),
    "stroke": (["I63.9", "I64"], ["K90"]),
    "copd": (["J44.9", "J44.1"], ["R95"]),
    "asthma": (["J45.9"], ["R96"]),
    "ckd": (["N18.3", "N18.4"], ["U99"]),
    "dementia": (["F03", "G30.1", "F01.9"], ["P70"]),
    "cancer": (["C50.9", "C61", "C18.9", "C34.9"], []),
    "mental_health": (["F32.1", "F33.1", "F41.1", "F41.9", "F20.9", "F31.3"], ["P76", "P74"]),
    "substance_use": (["F10.2", "F10.1", "F12.2", "F19.2"], ["P15", "P19"]),
    "acute": (["J06.9", "R10.4", "S93.4", "M54.5", "L03.1", "H66.9"], ["R74", "D01", "L03", "S76"]),
}
#: Role of the professional per service line (the part before the dot of ``professional``).
ROLES = {
    "primary_care_visit": "nurse", "remote_contact": "nurse", "emergency": "doctor",
    "specialist_outpatient": "specialist", "inpatient": "hospital", "home_care": "homecare",
    "housing_24h": "housing", "mental_health_substance": "psynurse", "social_work": "socialworker",
    "disability_services": "disability", "rehabilitation": "physio", "oral_health": "dentist",
    "child_family": "familyworker",
}
HOSPITAL_SERVICES = ("emergency", "specialist_outpatient", "inpatient")
DIAGNOSING = ("primary_care_visit", "emergency", "specialist_outpatient", "inpatient", "mental_health_substance")
STAFF_PER_UNIT = 24
NO_END = -(2**40)  # same sentinel as simulate.NO_DAY: a missing date
DOCTOR_SHARE = 0.4  # of primary-care visits; the rest are nurse visits


@dataclass
class Vocab:
    """String dictionaries behind the integer codes of one county."""

    units: list[str]
    hospital: str
    professionals: list[str] = field(init=False)
    codes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        roles = sorted(set(ROLES.values()) | {"doctor", "ward"})
        places = self.units + [self.hospital]
        self.professionals = [f"{r}.{p}.{k:02d}" for r in roles for p in places for k in range(STAFF_PER_UNIT)]
        self._roles = {r: i for i, r in enumerate(roles)}
        self._places = len(places)
        written = set()
        for icd, icpc in CODES.values():
            for code in icd:
                written |= {code, code.replace(".", ""), code.lower()}
            written |= set(icpc)
        self.codes = sorted(written)
        self.code_index = {c: i for i, c in enumerate(self.codes)}

    def professional(self, role: str, place: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Integer code of professional ``k`` of a role at a place (unit index, or the hospital)."""
        return (self._roles[role] * self._places + place) * STAFF_PER_UNIT + k


@dataclass
class Rows:
    """Column buffers of one table; ``add`` appends aligned arrays, ``arrays`` concatenates."""

    columns: tuple[str, ...]
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **cols: np.ndarray) -> None:
        for name in self.columns:
            self.parts.setdefault(name, []).append(np.asarray(cols[name]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {c: (np.concatenate(self.parts[c]) if self.parts.get(c) else np.array([])) for c in self.columns}


def inpatient_stays(rng: np.random.Generator, idx: np.ndarray, last_day: np.ndarray, age: np.ndarray,
                    died: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start day, length in days and ward flag of each admission ``idx`` (a client index per stay).

    Older clients stay longer and half of those 75+ are cared for on a
    primary-care ward. A stay of a client who dies that month ends on the day of death.
    """
    start = rng.integers(1, last_day[idx] + 1)
    mean_days = 3.0 + 0.08 * np.clip(age[idx] - 50, 0, None)
    days = rng.geometric(1.0 / mean_days)
    days = np.where(died[idx], np.minimum(days, last_day[idx] - start + 1), days)
    ward = (age[idx] >= 75) & (rng.random(len(idx)) < 0.5)
    return start, days, ward


def visit_cost(rng: np.random.Generator, counts: np.ndarray, prices: Prices) -> np.ndarray:
    """Cost of point contacts (all lines but inpatient stays and housing), priced as :func:`emit_month` does."""
    visit = prices.visit.copy()
    visit[S["primary_care_visit"]] = 0.0
    visit[S["inpatient"]] = 0.0
    visit[S["housing_24h"]] = 0.0
    cost = counts.astype(np.float64) @ visit
    prim = counts[:, S["primary_care_visit"]]
    doctors = rng.binomial(prim, DOCTOR_SHARE)
    return cost + doctors * prices.doctor + (prim - doctors) * prices.nurse


def episode_cost(rng: np.random.Generator, month: Month, age: np.ndarray, prices: Prices) -> np.ndarray:
    """Cost of a month's inpatient stays and 24 h housing per client, priced as :func:`emit_month` does."""
    cost = np.zeros(len(age))
    adm = month.counts[:, S["inpatient"]]
    if adm.any():
        idx = np.repeat(np.arange(len(adm)), adm)
        _, days, ward = inpatient_stays(rng, idx, month.last_day, age, month.died)
        np.add.at(cost, idx, days * np.where(ward, prices.ward_day, prices.hospital_day))
    housing = month.housing_from > 0
    cost += housing * (month.last_day - month.housing_from + 1) * prices.housing_day
    return cost


def emit_month(rng: np.random.Generator, month: Month, st: dict, month_start: int, prices: Prices,
               vocab: Vocab, out: dict[str, Rows], ids: np.ndarray, seen: np.ndarray,
               last_mh: np.ndarray, last_scale: dict[str, np.ndarray], scales: dict | None,
               missing_cost: float, age: np.ndarray) -> None:
    """Append the canonical rows of one month to ``out`` and update what the record shows.

    ``st`` is the state after the month's step; ``age`` (years) is taken at its start.
    """
    counts = month.counts
    unit = st["unit"]
    hospital_place = len(vocab.units)
    parts_client, parts_day, parts_end, parts_service, parts_prof, parts_cost, parts_unit = ([] for _ in range(7))
    for s_name in SERVICE_LINES:
        if s_name == "housing_24h":
            idx = np.flatnonzero(month.housing_from > 0)
            start = month.housing_from[idx]
            end = month.last_day[idx]
            cost = (end - start + 1) * prices.housing_day
            place = unit[idx]
            prof = vocab.professional("housing", place, st["staff"][idx])
        else:
            col = counts[:, S[s_name]]
            if not col.any():
                continue
            idx = np.repeat(np.arange(len(col)), col)
            if s_name == "inpatient":
                start, days, ward = inpatient_stays(rng, idx, month.last_day, age, month.died)
                end = start + days - 1
                cost = days * np.where(ward, prices.ward_day, prices.hospital_day)
                place = np.where(ward, unit[idx], hospital_place)
                prof = np.where(ward, vocab.professional("ward", unit[idx], st["staff"][idx]),
                                vocab.professional("hospital", hospital_place, rng.integers(0, STAFF_PER_UNIT, len(idx))))
            else:
                start = rng.integers(1, month.last_day[idx] + 1)
                end = np.full(len(idx), -1)  # a point contact: no end
                in_hospital = s_name in HOSPITAL_SERVICES
                place = np.full(len(idx), hospital_place) if in_hospital else unit[idx]
                # Most contacts are with the client's own professional (continuity of care).
                own = rng.random(len(idx)) < 0.6
                k = np.where(own & ~in_hospital, st["staff"][idx], rng.integers(0, STAFF_PER_UNIT, len(idx)))
                if s_name == "primary_care_visit":
                    doctor = rng.random(len(idx)) < DOCTOR_SHARE
                    prof = np.where(doctor, vocab.professional("doctor", place, k), vocab.professional("nurse", place, k))
                    cost = np.where(doctor, prices.doctor, prices.nurse)
                else:
                    prof = vocab.professional(ROLES[s_name], place, k)
                    cost = np.full(len(idx), prices.visit[S[s_name]])
            if s_name == "mental_health_substance":
                np.maximum.at(last_mh, idx, month_start + start - 1)
        parts_client.append(idx)
        parts_day.append(month_start + start - 1)
        parts_end.append(np.where(end >= 0, month_start + end - 1, NO_END))
        parts_service.append(np.full(len(idx), S[s_name], np.int8))
        parts_prof.append(prof)
        parts_cost.append(np.asarray(cost, np.float64))
        parts_unit.append(place)
    if not parts_client:
        return
    client = np.concatenate(parts_client)
    day = np.concatenate(parts_day)
    service = np.concatenate(parts_service)
    cost_full = np.concatenate(parts_cost)
    cost = np.where(rng.random(len(cost_full)) < missing_cost, np.nan, cost_full)
    out["events"].add(client=ids[client], start=day, end=np.concatenate(parts_end), service=service,
                      professional=np.concatenate(parts_prof), cost=cost, cost_full=cost_full,
                      unit=np.concatenate(parts_unit))
    _emit_diagnoses(rng, st, client, day, service, vocab, out["diagnoses"], ids, seen)
    _emit_measurements(rng, st, client[service == S["primary_care_visit"]],
                       day[service == S["primary_care_visit"]], out["measurements"], ids)
    if scales is not None:  # scores of the assessed clients, in index order
        idx = np.flatnonzero(month.assessed)
        when = month_start + rng.integers(1, month.last_day[idx] + 1) - 1
        instrument = np.where(st["care"][idx] == 2, 1, 0)
        for k, name in enumerate(SCALE_NAMES):
            out["assessments"].add(client=ids[idx], date=when, instrument=instrument,
                                   scale=np.full(len(idx), k, np.int8), value=scales[name].astype(np.float64))
        last_scale["adl_h"][idx] = scales["adl_h"]
        last_scale["maple"][idx] = scales["maple"]


def _emit_diagnoses(rng, st, client, day, service, vocab, rows, ids, seen) -> None:
    diagnosing = np.isin(service, [S[s] for s in DIAGNOSING]) & (rng.random(len(service)) < 0.8)
    c, d, s = client[diagnosing], day[diagnosing], service[diagnosing]
    cond = st["cond"][c].copy()
    mh_only = s == S["mental_health_substance"]
    mh_cols = [CONDITIONS.index("mental_health"), CONDITIONS.index("substance_use")]
    keep = np.zeros(len(CONDITIONS), bool)
    keep[mh_cols] = True
    cond[mh_only] &= keep
    n_true = cond.sum(axis=1)
    pick = np.floor(rng.random(len(c)) * n_true).astype(np.int64)
    which = np.argmax(np.cumsum(cond, axis=1) > pick[:, None], axis=1)  # the pick-th condition held
    has = n_true > 0
    acute = ~has & (rng.random(len(c)) < 0.5)
    chosen = np.where(has, which, -1)
    icpc = (s == S["primary_care_visit"]) & (rng.random(len(c)) < 0.45)
    codes = np.full(len(c), -1, np.int64)
    u = rng.random(len(c))
    style = rng.random(len(c))
    for k, name in enumerate(list(CONDITIONS) + ["acute"]):
        sel = (chosen == k) if name != "acute" else acute
        if not sel.any():
            continue
        icd, icpc_codes = CODES[name]
        use_icpc = icpc & sel & bool(icpc_codes)
        use_icd = sel & ~use_icpc
        if use_icpc.any():
            codes[use_icpc] = [vocab.code_index[icpc_codes[int(x * len(icpc_codes))]] for x in u[use_icpc]]
        if use_icd.any():
            raw = [icd[int(x * len(icd))] for x in u[use_icd]]
            # Records mix spellings (E11.9, E119, e11.9); reading normalises them.
            spelled = [r.replace(".", "") if st_ < 0.2 else (r.lower() if st_ < 0.25 else r)
                       for r, st_ in zip(raw, style[use_icd])]
            codes[use_icd] = [vocab.code_index[x] for x in spelled]
        if name != "acute":
            seen[c[sel], k] = True
    ok = codes >= 0
    rows.add(client=ids[c[ok]], date=d[ok], code=codes[ok], system=icpc[ok].astype(np.int8))


def _emit_measurements(rng, st, client, day, rows, ids) -> None:
    n = len(client)
    if n == 0:
        return
    age = st["age_m"][client] / 12.0
    cond = st["cond"][client]
    diab = cond[:, CONDITIONS.index("diabetes")]
    htn = cond[:, CONDITIONS.index("hypertension")]
    ckd = cond[:, CONDITIONS.index("ckd")]
    adult = age >= 18
    draws = {
        "hba1c": (np.where(diab, 0.45, 0.03) * adult,
                  np.where(diab, st["hba1c"][client] + rng.normal(0, 2, n), rng.normal(36, 3, n))),
        "sbp": (np.where(htn, 0.35, 0.12) * adult, 122 + 14 * htn + 0.3 * np.clip(age - 40, 0, None) + rng.normal(0, 12, n)),
        "bmi": (0.12 * adult, rng.normal(27 + 2.5 * diab, 4.5, n)),
        "ldl": (0.10 * adult, rng.normal(3.0, 0.8, n)),
        "egfr": (np.where(diab | ckd, 0.3, 0.05) * adult,
                 np.where(ckd, rng.normal(40, 10, n), 100 - 0.6 * np.clip(age - 30, 0, None) + rng.normal(0, 10, n))),
    }
    names = ("hba1c", "bmi", "sbp", "dbp", "ldl", "egfr")
    limits = {"hba1c": (20, 150), "bmi": (14, 60), "sbp": (80, 230), "dbp": (40, 140), "ldl": (0.5, 9), "egfr": (5, 140)}
    for name, (p, value) in draws.items():
        take = rng.random(n) < p
        if not take.any():
            continue
        v = np.clip(value[take], *limits[name]).round(1)
        rows.add(client=ids[client[take]], date=day[take], name=np.full(take.sum(), names.index(name), np.int8), value=v)
        if name == "sbp":
            dbp = np.clip(0.55 * v + rng.normal(10, 7, len(v)), *limits["dbp"]).round(0)
            rows.add(client=ids[client[take]], date=day[take], name=np.full(take.sum(), names.index("dbp"), np.int8), value=dbp)


MEASUREMENT_NAMES = ("hba1c", "bmi", "sbp", "dbp", "ldl", "egfr")
SCALE_NAMES = ("adl_h", "cps", "maple", "iadl", "chess", "drs")
INSTRUMENTS = ("rai_hc", "rai_ltc")
