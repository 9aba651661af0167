"""The latent health and social state of synthetic clients, and its monthly step.

One :func:`step` advances every client by one calendar month and draws what
happens in it (service counts, episodes, assessments, death, moving out).
The same function drives the recorded history and the Monte Carlo futures
behind the ground truth, so the truth is computed from exactly the process
that produced the data. State is a dict of equally long numpy arrays, so it
can be subset, tiled for replicate futures and stepped in one vectorised call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract.tables import SERVICE_LINES

State = dict[str, np.ndarray]

CONDITIONS = ("diabetes", "hypertension", "coronary", "heart_failure", "stroke", "copd",
              "asthma", "ckd", "dementia", "cancer", "mental_health", "substance_use")
C = {name: i for i, name in enumerate(CONDITIONS)}
S = {name: i for i, name in enumerate(SERVICE_LINES)}
ARCHETYPES = ("healthy", "stable_chronic", "diabetes", "complex_chronic", "active_cancer",
              "frail_elderly", "mhsu", "social_need", "disability")

# Annual onset hazard at the reference age and its log-slope per year of age.
_ONSET = {  # condition: (hazard at age 60, slope per year, min age)
    "diabetes": (0.004, 0.035, 15), "hypertension": (0.015, 0.045, 25),
    "coronary": (0.006, 0.07, 35), "heart_failure": (0.003, 0.09, 40),
    "stroke": (0.0025, 0.085, 35), "copd": (0.003, 0.06, 35), "asthma": (0.004, 0.0, 2),
    "ckd": (0.003, 0.08, 30), "dementia": (0.001, 0.16, 55), "cancer": (0.008, 0.055, 20),
}
# Prevalence at the start of the data by age band (0-17, 18-39, 40-64, 65-74, 75+).
_PREVALENCE = {
    "diabetes": (0.003, 0.018, 0.065, 0.14, 0.16), "hypertension": (0.0, 0.04, 0.22, 0.45, 0.55),
    "coronary": (0.0, 0.002, 0.04, 0.12, 0.22), "heart_failure": (0.0, 0.0005, 0.01, 0.04, 0.11),
    "stroke": (0.0, 0.001, 0.01, 0.035, 0.07), "copd": (0.0, 0.002, 0.03, 0.07, 0.09),
    "asthma": (0.05, 0.07, 0.08, 0.09, 0.09), "ckd": (0.0, 0.003, 0.02, 0.06, 0.13),
    "dementia": (0.0, 0.0, 0.003, 0.03, 0.14), "cancer": (0.001, 0.002, 0.008, 0.02, 0.03),
}
# Finnish age structure (2023): share of residents per 5-year band, 0-4 ... 95-99.
AGE_BANDS = np.array([4.4, 5.2, 5.8, 5.7, 5.8, 6.3, 6.5, 6.4, 6.3, 5.8, 6.2, 6.4, 6.5,
                      6.2, 6.4, 5.0, 3.0, 1.7, 0.6, 0.2])
AGE_BANDS = AGE_BANDS / AGE_BANDS.sum()

HOUSING_DAY_EUR = 160.0

# Care states (0 at home, 1 regular home care, 2 24-hour housing): thresholds of frailty at the start, the monthly
# hazards of entering home care and 24-hour housing (rate x frailty above a threshold; dementia adds 0.2 to
# frailty for housing), and the log-hazard of death in 24-hour housing. Calibrated so that at year end about
# 8-9 % of residents aged 75+ are in 24-hour care and about 11 % in regular home care, steadily over the data
# years (THL: 24-hour care about 9 % of 75+, home care about 11 %; docs/synthetic_county.md).
INITIAL_FRAIL_SCALE = 2.0
INITIAL_HOUSING_FRAIL = 1.15
INITIAL_HOME_FRAIL = 0.8
HOUSING_ENTRY_RATE = 0.04
HOUSING_ENTRY_FRAIL = 0.9
HOME_ENTRY_RATE = 0.055
HOME_ENTRY_FRAIL = 0.6
HOUSING_DEATH = 1.0
YEAR_SHAPE = 1.3  # gamma shape of the yearly shock on all service use (mean 1): unforeseeable variation


@dataclass(frozen=True)
class Prices:
    """Unit prices the generator charges (the same as the packaged unit-cost table)."""

    visit: np.ndarray           # per service line, per visit
    doctor: float = 130.0
    nurse: float = 60.0
    hospital_day: float = 900.0
    ward_day: float = 350.0
    housing_day: float = HOUSING_DAY_EUR


def default_prices() -> Prices:
    from features.contract.costs import load_unit_costs

    table = load_unit_costs()
    visit = np.array([table[s].eur for s in SERVICE_LINES], dtype=np.float64)
    prim = table["primary_care_visit"].by_professional
    return Prices(visit, prim.get("doctor", 130.0), prim.get("nurse", 60.0), table["inpatient"].eur,
                  table["inpatient"].by_professional.get("ward", 350.0), table["housing_24h"].eur)


def _band(age_years: np.ndarray) -> np.ndarray:
    return np.digitize(age_years, [18, 40, 65, 75])


def new_clients(rng: np.random.Generator, age_years: np.ndarray, sex: np.ndarray) -> State:
    """Initial latent state of clients of the given ages (prevalent conditions, frailty, needs)."""
    n = len(age_years)
    band = _band(age_years)
    cond = np.zeros((n, len(CONDITIONS)), dtype=bool)
    for name, prev in _PREVALENCE.items():
        cond[:, C[name]] = rng.random(n) < np.asarray(prev)[band]
    young = (age_years >= 16) & (age_years < 36)
    cond[:, C["mental_health"]] = rng.random(n) < np.where(young, 0.09, np.where(age_years >= 16, 0.05, 0.02))
    male = sex == 1
    cond[:, C["substance_use"]] = rng.random(n) < np.where(age_years >= 18, np.where(male, 0.035, 0.014), 0.0)
    # Frailty: near zero until the late sixties, then a widening, right-skewed spread.
    old = np.clip(age_years - 65, 0, None)
    frail = INITIAL_FRAIL_SCALE * rng.gamma(1.5, 1.0, n) * (0.006 * old + 0.0002 * old**2) \
        + 0.15 * cond[:, C["dementia"]]
    care = np.where(frail > INITIAL_HOUSING_FRAIL, 2, np.where(frail > INITIAL_HOME_FRAIL, 1, 0)).astype(np.int8)
    social = rng.exponential(0.25, n) * (rng.random(n) < 0.12)
    social += 0.4 * cond[:, C["substance_use"]] * rng.random(n)
    mh = np.where(cond[:, C["mental_health"]], rng.gamma(2.0, 0.35, n), 0.0)
    hba1c_mu = rng.normal(54, 9, n).clip(40, 100)
    return {
        "age_m": (age_years * 12 + rng.integers(0, 12, n)).astype(np.int32),
        "sex": sex.astype(np.int8),
        "cond": cond,
        "frail": frail.astype(np.float32),
        "care": care,
        "social": social.astype(np.float32),
        "mh": mh.astype(np.float32),
        "disab": rng.random(n) < 0.012,
        # A lasting, personal propensity to seek care: more contacts at the same need.
        "propensity": rng.lognormal(-0.32, 0.8, n).astype(np.float32),
        "cancer_m": np.where(cond[:, C["cancer"]], rng.integers(0, 36, n), -1).astype(np.int16),
        "acute": np.zeros(n, np.float32),
        "hba1c_mu": hba1c_mu.astype(np.float32),
        "hba1c": (hba1c_mu + rng.normal(0, 4, n)).astype(np.float32),
        "year_g": rng.gamma(YEAR_SHAPE, 1 / YEAR_SHAPE, n).astype(np.float32),
        "alive": np.ones(n, bool),
        "resident": np.ones(n, bool),
    }


def burden(st: State) -> np.ndarray:
    """Health burden: a weighted count of chronic conditions plus frailty."""
    cond = st["cond"].astype(np.float32)
    w = np.zeros(len(CONDITIONS), np.float32)
    for name, weight in {"diabetes": 0.8, "hypertension": 0.3, "coronary": 1.0, "heart_failure": 1.8,
                         "stroke": 1.2, "copd": 1.3, "asthma": 0.3, "ckd": 1.2, "dementia": 0.8}.items():
        w[C[name]] = weight
    active_cancer = (st["cancer_m"] >= 0) & (st["cancer_m"] < 12)
    poor_control = st["cond"][:, C["diabetes"]] * np.clip((st["hba1c"] - 60) / 20, 0, 2)
    return cond @ w + 2.5 * active_cancer + 2.0 * st["frail"] + poor_control


def intensities(st: State, b: np.ndarray) -> np.ndarray:
    """Expected events per month of each service line (n × 13) given the burden ``b``, before the yearly shock."""
    n = len(st["age_m"])
    age = st["age_m"] / 12.0
    cond = st["cond"]
    child = age < 18
    care = st["care"]
    active_cancer = (st["cancer_m"] >= 0) & (st["cancer_m"] < 12)
    lam = np.zeros((n, len(SERVICE_LINES)), np.float64)
    seek = st["propensity"]
    lam[:, S["primary_care_visit"]] = seek * (0.010 + 0.16 * b + 0.06 * st["mh"] + 0.05 * child * (age < 7)
                                              + 0.02 * (age > 65))
    lam[:, S["remote_contact"]] = seek * (0.009 + 0.10 * b + 0.08 * st["mh"])
    # Recent admissions raise the risk of more, saturating so that no feedback loop runs away.
    recent = np.minimum(st["acute"], 3.0)
    lam[:, S["emergency"]] = 0.007 * np.exp(np.minimum(0.45 * b + 0.9 * st["mh"] + 1.2 * cond[:, C["substance_use"]]
                                                       + 0.5 * recent, 5.0)) * (1 + 0.5 * (age > 80))
    lam[:, S["specialist_outpatient"]] = seek * (0.010 + 0.34 * b + 2.0 * active_cancer + 0.1 * st["mh"])
    lam[:, S["inpatient"]] = 0.0095 * np.exp(np.minimum(0.55 * b + 0.5 * recent + 0.6 * cond[:, C["substance_use"]],
                                                        5.0)) * (care < 2)
    lam[:, S["home_care"]] = (care == 1) * (6.0 + 35.0 * np.clip(st["frail"] - 0.4, 0, 1.2))
    lam[:, S["mental_health_substance"]] = 0.9 * st["mh"] + 0.8 * cond[:, C["substance_use"]] \
        + 0.003 * (~child)
    lam[:, S["social_work"]] = 0.004 + 0.7 * st["social"] + 0.15 * cond[:, C["substance_use"]]
    lam[:, S["disability_services"]] = 15.0 * st["disab"]
    lam[:, S["rehabilitation"]] = 0.003 + 0.25 * np.clip(st["frail"] - 0.3, 0, 1) * (care < 2) \
        + 0.08 * cond[:, C["stroke"]]
    lam[:, S["oral_health"]] = seek * (0.009 + 0.02 * child)
    lam[:, S["child_family"]] = child * (0.004 + 1.1 * st["social"])
    return lam


@dataclass
class Month:
    """What one month brought, per client (arrays aligned with the state)."""

    counts: np.ndarray        # n × 13 point events drawn (inpatient = admissions; housing not counted here)
    lam: np.ndarray           # n × 13 expected counts the draws came from
    last_day: np.ndarray      # last day of the month the client was present (death day or month end)
    died: np.ndarray
    moved: np.ndarray
    housing_from: np.ndarray  # first day in 24 h housing this month (0 = not in housing)
    assessed: np.ndarray      # an RAI assessment this month
    adl_h: np.ndarray
    maple: np.ndarray


def rai_scales(st: State, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """RAI scale scores of the clients in ``st`` from their latent state, with measurement noise."""
    n = len(st["frail"])
    f = st["frail"]
    dem = st["cond"][:, C["dementia"]]
    adl = np.clip(np.rint(4.5 * (f - 0.45) + rng.normal(0, 0.6, n)), 0, 6)
    cps = np.clip(np.rint(0.8 * f + 2.2 * dem + rng.normal(0, 0.6, n)), 0, 6)
    iadl = np.clip(np.rint(7.0 * f - 0.5 + rng.normal(0, 0.8, n)), 0, 9)
    chess = np.clip(np.rint(0.35 * burden(st) - 0.5 + rng.normal(0, 0.6, n)), 0, 5)
    drs = np.clip(np.rint(2.5 * st["mh"] + 0.8 * dem + rng.normal(0, 1.2, n)), 0, 14)
    maple = np.clip(1 + (adl >= 2) + (cps >= 3) + (f > 0.9) + (chess >= 3) + (dem & (adl >= 1)), 1, 5)
    scores = {"adl_h": adl, "cps": cps, "maple": maple, "iadl": iadl, "chess": chess, "drs": drs}
    return {k: v + 0.0 for k, v in scores.items()}  # no negative zeros from rint


#: Service lines whose counts feed back into the state; the rest may be drawn once per year in the truth.
FEEDBACK = np.array([S["inpatient"], S["emergency"]])


def step(st: State, rng: np.random.Generator, month_len: int, january: bool, *, only_feedback: bool = False
         ) -> tuple[Month, dict[str, np.ndarray] | None]:
    """Advance every present client by one month, in place; return what happened in it.

    Order within a month: the yearly shock is drawn in January; death and
    moving out are decided from the state at the start of the month (death on
    a random day, so events fall on days up to it); events are drawn from the
    start-of-month state; then the latent state moves on (onsets, frailty,
    care transitions, mental health, social need, HbA1c, ageing).

    With ``only_feedback`` only the counts in :data:`FEEDBACK` are drawn (the
    others stay zero): a sum of monthly Poisson counts is a Poisson count of
    the summed expectations ``Month.lam``, so replicate futures draw those once.
    """
    n = len(st["age_m"])
    present = st["alive"] & st["resident"]
    age_y = np.minimum(st["age_m"] // 12, _MAX_AGE)
    age = st["age_m"] / 12.0
    cond = st["cond"]
    if january:
        st["year_g"] = rng.gamma(YEAR_SHAPE, 1 / YEAR_SHAPE, n).astype(np.float32)

    b = burden(st)
    active_cancer = (st["cancer_m"] >= 0) & (st["cancer_m"] < 12)
    annual_q = _GOMPERTZ[age_y] * np.exp(0.2 * b + 1.3 * active_cancer + HOUSING_DEATH * (st["care"] == 2)
                                         + 0.7 * cond[:, C["substance_use"]])
    u = rng.random((n, 5))
    died = present & (u[:, 0] < 1 - np.exp(-annual_q / 12))
    move_rate = np.where((age >= 18) & (age < 35), 0.05, 0.015) * (st["care"] == 0)
    moved = present & ~died & (u[:, 1] < move_rate / 12)
    last_day = np.where(died, 1 + (u[:, 2] * month_len).astype(np.int64), month_len)
    present_frac = np.where(present, last_day / month_len, 0.0)

    lam = intensities(st, b) * st["year_g"][:, None]
    # Whatever the year brings, no service line averages more than about two contacts a day.
    np.minimum(lam, 62.0, out=lam)
    lam *= present_frac[:, None]
    if only_feedback:
        counts = np.zeros(lam.shape, np.int16)
        counts[:, FEEDBACK] = rng.poisson(lam[:, FEEDBACK])
    else:
        counts = rng.poisson(lam).astype(np.int16)

    # Acute admissions raise short-term risk of more (readmissions) and decay.
    st["acute"] = (0.75 * st["acute"] + counts[:, S["inpatient"]] + 0.3 * counts[:, S["emergency"]]).astype(np.float32)

    # 24 h housing: those already in it stay from day 1; entrants this month from a random day.
    f = st["frail"]
    dem = cond[:, C["dementia"]]
    to_housing = present & ~died & (st["care"] < 2) & (
        u[:, 3] < HOUSING_ENTRY_RATE * np.clip(f - HOUSING_ENTRY_FRAIL + 0.2 * dem, 0, 1))
    entry_day = 1 + (u[:, 4] * month_len).astype(np.int64)
    housing_from = np.where(to_housing, entry_day, np.where(present & (st["care"] == 2), 1, 0))
    u2 = rng.random((n, 2))
    to_home = present & (st["care"] == 0) & ~to_housing & (
        u2[:, 0] < HOME_ENTRY_RATE * np.clip(f - HOME_ENTRY_FRAIL, 0, 1))
    st["care"] = np.where(to_housing, 2, np.where(to_home, 1, st["care"])).astype(np.int8)

    assessed = present & (st["care"] > 0) & ((u2[:, 1] < 1 / 6) | to_housing | to_home)
    scored = np.flatnonzero(assessed)
    scales = rai_scales({k: v[scored] for k, v in st.items()}, rng) if scored.size else None
    adl_h = np.zeros(n)
    maple = np.zeros(n)
    if scales is not None:
        adl_h[scored] = scales["adl_h"]
        maple[scored] = scales["maple"]

    _progress(st, rng, present, counts, age_y)
    st["alive"] = st["alive"] & ~died
    st["resident"] = st["resident"] & ~moved
    st["age_m"] = st["age_m"] + present
    return Month(counts, lam, last_day, died, moved, housing_from, assessed, adl_h, maple), scales


_MAX_AGE = 120
_AGES = np.arange(_MAX_AGE + 1, dtype=np.float64)
_GOMPERTZ = np.exp(-11.2 + 0.095 * _AGES)
_ONSET_NAMES = list(_ONSET)
_ONSET_COLS = np.array([C[name] for name in _ONSET_NAMES])
_ONSET_TABLE = np.stack([h * np.exp(k * (_AGES - 60)) * (_AGES >= a) for h, k, a in _ONSET.values()], axis=1) / 12
_VASCULAR = np.isin(_ONSET_NAMES, ["coronary", "heart_failure", "ckd", "stroke"])


def _some(rng: np.random.Generator, mask: np.ndarray, draw) -> np.ndarray:
    """Draws for the True entries of ``mask`` only (zeros elsewhere): most months change few clients."""
    out = np.zeros(len(mask), np.float64)
    idx = np.flatnonzero(mask)
    if idx.size:
        out[idx] = draw(idx.size)
    return out


def _progress(st: State, rng: np.random.Generator, present: np.ndarray, counts: np.ndarray,
              age_y: np.ndarray) -> None:
    n = len(present)
    age = st["age_m"] / 12.0
    cond = st["cond"]
    male = st["sex"] == 1
    diab = cond[:, C["diabetes"]]
    poor = diab * np.clip((st["hba1c"] - 58) / 15, 0, 3)
    # At most one new condition a month (monthly hazards are small): one uniform per client
    # decides whether any onset happens, and only those few clients are looked at further.
    hazard = _ONSET_TABLE[age_y] * ~cond[:, _ONSET_COLS]
    hazard[:, _VASCULAR] *= ((1 + 0.8 * poor + 0.6 * cond[:, C["hypertension"]]) * np.where(male, 1.3, 0.8))[:, None]
    hazard[:, _ONSET_NAMES.index("diabetes")] *= np.where(male, 1.2, 0.85)
    u_onset = rng.random(n)
    total = hazard.sum(axis=1)
    who = np.flatnonzero(present & (u_onset < total))
    new = np.zeros((n, len(_ONSET_COLS)), bool)
    if who.size:
        which = np.argmax(np.cumsum(hazard[who], axis=1) > u_onset[who, None], axis=1)
        new[who, which] = True
        cond[who, _ONSET_COLS[which]] = True
    new_stroke = new[:, _ONSET_NAMES.index("stroke")] & (age > 50)

    # Frailty grows faster with age, dementia, heart failure, strokes and hospital stays.
    old = np.clip(age - 62, 0, None)
    drift = (0.000018 * old**2) * (1 + 0.8 * cond[:, C["dementia"]] + 0.4 * cond[:, C["heart_failure"]])
    ageing = present & (drift > 0)
    jump = _some(rng, ageing, lambda k: rng.gamma(0.6, 1.0, k)) * drift + 0.03 * counts[:, S["inpatient"]] * (age > 70)
    jump += _some(rng, new_stroke, lambda k: rng.gamma(2.0, 0.12, k))
    st["frail"] = (st["frail"] + present * jump).astype(np.float32)

    # Mental health: onsets concentrated in young adults, episodes that flare and remit.
    u = rng.random((n, 4))
    young = (age >= 15) & (age < 30)
    mh_onset = present & (u[:, 0] < np.where(young, 0.035, np.where(age >= 15, 0.008, 0.002))
                          * (1 + 2.0 * st["social"]) / 12)
    flare = present & (st["mh"] > 0) & (u[:, 1] < 0.04)
    mh = 0.94 * st["mh"] + _some(rng, mh_onset, lambda k: rng.gamma(2.0, 0.3, k)) \
        + _some(rng, flare, lambda k: rng.gamma(2.0, 0.4, k))
    st["mh"] = np.where(mh < 0.05, 0.0, mh).astype(np.float32)
    cond[:, C["mental_health"]] = st["mh"] > 0
    su_onset = present & (age >= 16) & (age < 45) & (u[:, 2] < np.where(male, 0.006, 0.0025)
                                                   * (1 + 1.5 * st["mh"]) / 12)
    su = cond[:, C["substance_use"]]
    cond[:, C["substance_use"]] = (su | su_onset) & ~(su & (u[:, 3] < 0.006))

    # Social need: persistent, with shocks more likely alongside substance use and mental ill-health.
    shock = present & (rng.random(n) < (0.002 + 0.01 * cond[:, C["substance_use"]] + 0.004 * (st["mh"] > 0)))
    st["social"] = (0.985 * st["social"] + _some(rng, shock, lambda k: rng.exponential(0.5, k))).astype(np.float32)

    # HbA1c drifts around each diabetic's own level (it is only measured for them).
    mu = st["hba1c_mu"]
    st["hba1c"] = np.where(diab, mu + 0.85 * (st["hba1c"] - mu) + _some(rng, diab, lambda k: rng.normal(0, 2.5, k)),
                           st["hba1c"]).astype(np.float32)
