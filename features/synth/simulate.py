"""Simulating one chunk of clients month by month, with the Monte Carlo ground truth.

Clients never interact, so a county is simulated as independent chunks, each
with its own random stream (reproducible whatever the number of workers).
At every 1 January with a full year of data ahead, the state of each client
present is copied into ``reps`` replicate futures and run 12 months forward
with the same :func:`features.synth.dynamics.step`; the outcome frequencies over
those futures are the client's true probabilities, with their standard errors
(stratified yearly shock and exact Poisson tails: :mod:`features.synth.estimate`).
The truth uses its own random stream, so the recorded data do not depend on the
number of replicates.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from features.synth.dynamics import (
    AGE_BANDS, ARCHETYPES, C, CONDITIONS, FEEDBACK, Prices, S, State, burden, new_clients, step,
)
from features.synth.estimate import half_mean, mean_and_se, poisson_at_least, stratified_shock
from features.synth.records import STAFF_PER_UNIT, Rows, Vocab, emit_month, episode_cost, visit_cost

LANG_FI, LANG_SV, LANG_OTHER = 0, 1, 2
NO_DAY = -(2**40)  # a missing date (day numbers before 1970 are negative, so -1 will not do)


@dataclass
class CountyLayout:
    """Municipalities (share, Swedish share, unit indices) of the simulated county."""

    municipalities: list[str]
    shares: np.ndarray
    swedish: np.ndarray
    units: list[list[int]]


@dataclass(frozen=True)
class TruthSpec:
    """The parameters of the four built-in targets that the ground truth follows (targets.yaml)."""

    elderly_min_age: int = 75
    maple_min: float = 4
    adl_rise: float = 2
    young_min_age: int = 18
    young_max_age: int = 29
    young_lookback_days: int = 365
    young_min_count: int = 10
    horizon_days: int = 365
    #: rising_high_use: services whose episode running at T excludes a client (targets.yaml intensive_services),
    #: the prior-cost window and quantile (cohort), and the population quantile of next year's cost (outcome)
    intensive_services: tuple[str, ...] = ()  # from targets.yaml (generate.truth_spec)
    rising_prior_days: int = 365
    rising_prior_quantile: float = 0.9
    rising_quantile: float = 0.9


@dataclass
class ChunkResult:
    """Everything one chunk produced: client attributes, row buffers and truth pieces."""

    offset: int
    clients: dict[str, np.ndarray]
    tables: dict[str, dict[str, np.ndarray]]
    truth: list[dict[str, np.ndarray]]


def month_starts(start: np.datetime64, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Day numbers (days since 1970-01-01) of each month's first day, and each month's length."""
    first = np.datetime64(start, "M") + np.arange(n_months + 1)
    days = first.astype("datetime64[D]").astype(np.int64)
    return days[:-1], np.diff(days)


def completed_years(birth_day: np.ndarray, at_day: int) -> np.ndarray:
    """Completed years of age on ``at_day`` for birth days (both as days since 1970-01-01)."""
    b = birth_day.astype("datetime64[D]")
    t = np.datetime64(int(at_day), "D")

    def parts(d):
        y = d.astype("datetime64[Y]").astype(np.int64)
        mo = d.astype("datetime64[M]").astype(np.int64) % 12
        day = (d - d.astype("datetime64[M]")).astype(np.int64)
        return y, mo, day

    by, bm, bd = parts(b)
    ty, tm, td = parts(t)
    return ty - by - ((bm > tm) | ((bm == tm) & (bd > td)))


def archetype(st: State, age_years: np.ndarray) -> np.ndarray:
    """The latent group of each client: the first rule that holds, in order of need."""
    cond = st["cond"]
    serious = cond[:, [C["heart_failure"], C["ckd"], C["copd"], C["coronary"], C["stroke"]]].sum(axis=1)
    rules = [
        ("active_cancer", (st["cancer_m"] >= 0) & (st["cancer_m"] < 12)),
        ("frail_elderly", (age_years >= 75) & ((st["frail"] > 0.6) | (st["care"] > 0) | cond[:, C["dementia"]])),
        ("mhsu", (st["mh"] > 0.3) | cond[:, C["substance_use"]]),
        ("complex_chronic", serious >= 2),
        ("diabetes", cond[:, C["diabetes"]]),
        ("disability", st["disab"]),
        ("social_need", st["social"] > 0.5),
        ("stable_chronic", cond[:, [C["hypertension"], C["asthma"], C["coronary"], C["copd"], C["ckd"],
                                    C["heart_failure"], C["stroke"], C["cancer"]]].any(axis=1)),
    ]
    out = np.full(len(age_years), ARCHETYPES.index("healthy"), np.int8)
    for name, hit in reversed(rules):
        out = np.where(hit, ARCHETYPES.index(name), out)
    return out


def _initial_ages(rng: np.random.Generator, n: int, mobile: bool = False) -> np.ndarray:
    weights = AGE_BANDS.copy()
    if mobile:  # people moving in are mostly young adults and families
        weights = weights * np.array([1.2, 0.8, 0.5, 0.9, 2.5, 3.0, 2.5, 1.8, 1.2, 0.9, 0.7, 0.6, 0.6,
                                      0.6, 0.5, 0.4, 0.3, 0.3, 0.2, 0.1])
        weights /= weights.sum()
    band = rng.choice(len(weights), n, p=weights)
    return band * 5 + rng.integers(0, 5, n)


def simulate_chunk(*, seed: int, chunk: int, offset: int, n_initial: int, start: np.datetime64, n_months: int,
                   layout: CountyLayout, vocab: Vocab, prices: Prices, reps: int | Mapping[int, int],
                   missing_cost: float, truth_months: list[int], spec: TruthSpec) -> ChunkResult:
    """Simulate ``n_initial`` residents (plus births and move-ins) over ``n_months`` months.

    ``reps`` is the number of replicate futures behind the truth, one for all
    ``truth_months`` or a mapping from each truth month to its own number.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    first_day, month_len = month_starts(start, n_months)

    # Entrants: births and move-ins arrive during month m - 1 and are present from month m.
    births = rng.poisson(n_initial * 0.0085 / 12, n_months)
    movers = rng.poisson(n_initial * 0.040 / 12, n_months)
    births[0] = movers[0] = 0
    entry_month = np.concatenate([np.zeros(n_initial, np.int64), np.repeat(np.arange(n_months), births),
                                  np.repeat(np.arange(n_months), movers)])
    n = len(entry_month)
    kind = np.concatenate([np.zeros(n_initial, np.int8), np.ones(births.sum(), np.int8),
                           np.full(movers.sum(), 2, np.int8)])
    age_years = np.concatenate([_initial_ages(rng, n_initial), np.zeros(births.sum(), np.int64),
                                _initial_ages(rng, movers.sum(), mobile=True)])
    sex = (rng.random(n) < 0.495).astype(np.int8)
    sex[rng.random(n) < 0.0005] = 2
    st = new_clients(rng, age_years, sex)
    st["age_m"] = np.where(kind == 1, 0, st["age_m"]).astype(np.int32)
    _burn_in(st, rng)
    # People moving in arrive living at home: a 24 h housing stay starts in the county, with
    # its own first row, as the labels' "enters 24 h housing" expects.
    st["care"] = np.where(kind == 2, np.minimum(st["care"], 1), st["care"]).astype(np.int8)
    muni = rng.choice(len(layout.municipalities), n, p=layout.shares)
    unit_pick = rng.random(n)
    unit = np.array([layout.units[m][int(u * len(layout.units[m]))] for m, u in zip(muni, unit_pick)], np.int64)
    st["unit"] = unit
    st["staff"] = rng.integers(0, STAFF_PER_UNIT, n)
    language = np.where(rng.random(n) < layout.swedish[muni], LANG_SV,
                        np.where(rng.random(n) < 0.07, LANG_OTHER, LANG_FI)).astype(np.int8)

    # Entry day: a random day of the month before the client is first present (never its first day).
    entry_prev = np.maximum(entry_month - 1, 0)
    entry_day = np.where(entry_month > 0,
                         first_day[entry_prev] + 1 + (rng.random(n) * (month_len[entry_prev] - 1)).astype(np.int64),
                         NO_DAY)
    start_day = first_day[0]
    birth_day = np.where(kind == 1, entry_day,
                         np.where(entry_month > 0, entry_day, start_day)
                         - (st["age_m"] * 30.4375).astype(np.int64) - rng.integers(1, 30, n))
    st["resident"] = entry_month == 0
    death_day = np.full(n, NO_DAY, np.int64)
    moved_out = np.full(n, NO_DAY, np.int64)

    seen = np.zeros((n, len(CONDITIONS)), bool)
    last_mh = np.full(n, -10**6, np.int64)
    last_scale = {"adl_h": np.full(n, np.nan), "maple": np.full(n, np.nan)}
    ids = offset + np.arange(n)
    out = {
        "events": Rows(("client", "start", "end", "service", "professional", "cost", "cost_full", "unit")),
        "diagnoses": Rows(("client", "date", "code", "system")),
        "measurements": Rows(("client", "date", "name", "value")),
        "assessments": Rows(("client", "date", "instrument", "scale", "value")),
    }
    truth = []
    for m in range(n_months):
        arriving = entry_month == m
        if m > 0 and arriving.any():
            st["resident"] = st["resident"] | arriving
        january = (np.datetime64(start, "M") + m).astype(int) % 12 == 0
        if m in truth_months:
            truth.append(_truth_at(st, seed, chunk, m, first_day, month_len, birth_day, seen, last_mh,
                                   last_scale, prices, reps if isinstance(reps, int) else reps[m], ids, spec))
        age_now = st["age_m"] / 12.0
        month, scales = step(st, rng, int(month_len[m]), bool(january))
        emit_month(rng, month, st, int(first_day[m]), prices, vocab, out, ids, seen, last_mh, last_scale,
                   scales, missing_cost, age_now)
        death_day = np.where(month.died, first_day[m] + month.last_day - 1, death_day)
        moved_out = np.where(month.moved, first_day[m] + month_len[m], moved_out)

    tables = {name: rows.arrays() for name, rows in out.items()}
    ev = tables["events"]
    _separate_duplicates(ev)
    for piece in truth:
        t0 = piece["as_of_day"]
        in_h = (ev["start"] >= t0) & (ev["start"] < t0 + spec.horizon_days)
        cost = np.bincount(ev["client"][in_h] - offset, weights=ev["cost_full"][in_h], minlength=n)
        piece["realised_cost"] = cost[piece["client"] - offset]
        prior, intensive = recorded_prior_use(ev, t0, spec.rising_prior_days, spec.intensive_services, n, offset)
        piece["prior_cost"] = prior[piece["client"] - offset]
        piece["intensive_ongoing"] = intensive[piece["client"] - offset]
    clients = {
        "client": ids, "birth_day": birth_day, "sex": sex, "municipality": muni, "language": language,
        "death_day": death_day, "unit": unit, "moved_in": np.where(kind == 2, entry_day, NO_DAY),
        "moved_out": moved_out,
    }
    return ChunkResult(offset, clients, tables, truth)


def recorded_prior_use(ev: dict[str, np.ndarray], t0: int, days: int, intensive: tuple[str, ...], n: int,
                       offset: int) -> tuple[np.ndarray, np.ndarray]:
    """What the records show at day ``t0``: each client's cost in [t0 - days, t0) and an intensive episode running.

    The cost follows the feature ``cost_total_<days>d`` (docs/features.md), as
    the labels' ``max_prior_cost_quantile`` does: point contacts by start day;
    episodes by their days inside the window up to t0 - 1, at their per-day
    price (a finished episode's recorded cost x days inside / total days; a
    running one's unit rate x days before t0, which is the same per-day price).
    The true price (``cost_full``) stands in for the 2 % of rows recorded
    without a cost: reading fills them from the same unit-cost table, so the
    filled value equals it. An intensive episode is running when it started
    before t0 and ends on t0 - 1 or later (the labels' ``exclude_ongoing``).

    Returns
    -------
    tuple of numpy.ndarray
        Cost per client (rounded to cents, as the labels compare it) and the
        running-intensive flag, both indexed by ``client - offset`` (length ``n``).
    """
    lo = t0 - days
    episode = np.isin(ev["service"], [S["inpatient"], S["housing_24h"]])
    start, end = ev["start"], ev["end"]
    before = start < t0
    visits = before & ~episode & (start >= lo)
    cost = np.bincount(ev["client"][visits] - offset, weights=ev["cost_full"][visits], minlength=n)
    epi = before & episode & ((end == NO_DAY) | (end >= lo))
    s_, e_, c_ = start[epi], end[epi], ev["cost_full"][epi]
    running = (e_ == NO_DAY) | (e_ >= t0)
    total = (e_ - s_ + 1).astype(np.float64)
    eff_end = np.where(running, t0 - 1, e_)
    inside = np.clip(eff_end - np.maximum(s_, lo) + 1, 0, None).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(running, (c_ / total) * inside, c_ * inside / total)
    cost += np.bincount(ev["client"][epi] - offset, weights=c, minlength=n)
    flagged = before & np.isin(ev["service"], [S[x] for x in intensive]) & ((end == NO_DAY) | (end >= t0 - 1))
    ongoing = np.zeros(n, bool)
    ongoing[ev["client"][flagged] - offset] = True
    return np.round(cost, 2), ongoing


BURN_IN_MONTHS = 24


def _burn_in(st: State, rng: np.random.Generator) -> None:
    """Run the latent process for two years before the data start, then restore ages and presence.

    Initial states are drawn from simple prevalence tables; a warm-up lets
    acute episodes, frailty, care and mental-health courses settle into the
    process's own balance, so the first data year looks like the later ones.
    """
    age, alive, resident = st["age_m"].copy(), st["alive"].copy(), st["resident"].copy()
    st["resident"] = np.ones_like(resident)
    for k in range(BURN_IN_MONTHS):
        step(st, rng, 30, k % 12 == 0)
        st["alive"][:] = True  # the population is held fixed during the warm-up
        st["resident"][:] = True
    st["age_m"], st["alive"], st["resident"] = age, alive, resident


def _separate_duplicates(ev: dict[str, np.ndarray]) -> None:
    """Give same-day repeat contacts (two home-care visits, say) different staff of the same role and place.

    Events carry dates, not times, so without this two genuine visits would be
    indistinguishable from an extract that duplicated a row. Counts and costs
    are unchanged; up to ``STAFF_PER_UNIT`` same-day contacts stay distinct.
    """
    if not len(ev["client"]):
        return
    k = ev["professional"] % STAFF_PER_UNIT
    base = ev["professional"] - k
    keys = (ev["client"], ev["start"], ev["end"], ev["service"], ev["unit"], base)
    order = np.lexsort(keys[::-1])
    new_run = np.ones(len(order), bool)
    new_run[1:] = np.any([col[order][1:] != col[order][:-1] for col in keys], axis=0)
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))
    rank = np.arange(len(order)) - run_start
    first_k = k[order][run_start]
    ev["professional"][order] = base[order] + (first_k + rank) % STAFF_PER_UNIT


MC_BLOCK_ROWS = 1 << 14


def _futures(base: State, rng: np.random.Generator, m: int, month_len: np.ndarray, prices: Prices,
             spec: TruthSpec, last_adl: np.ndarray, last_maple: np.ndarray, reps: np.ndarray, total: int,
             young: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run futures ``reps`` (of ``total``) of the clients in ``base`` 12 months ahead, rows future by future.

    The yearly shock of the first month is stratified over the ``total``
    futures (:func:`features.synth.estimate.stratified_shock`). Returns each
    row's cost, its probability of at least ``young_min_count``
    mental-health/substance and emergency contacts given the simulated path
    (exact Poisson tail; only for rows of clients in ``young``, 0 elsewhere)
    and whether the functional-decline outcome happened.
    """
    k_rep = len(reps)
    sub = {k: np.concatenate([v] * k_rep, axis=0) for k, v in base.items()}
    n_base = len(base["age_m"])
    rows = len(sub["age_m"])
    sub["year_g"] = stratified_shock(rng, reps, total, n_base)
    base_adl = np.nan_to_num(np.tile(last_adl, k_rep), nan=0.0)
    base_maple = np.tile(last_maple, k_rep)
    cost = np.zeros(rows)
    emergencies = np.zeros(rows)
    lam_year = np.zeros((rows, len(S)))
    fell = np.zeros(rows, bool)
    for k in range(12):
        was_housing = sub["care"] == 2
        age_now = sub["age_m"] / 12.0
        month, _ = step(sub, rng, int(month_len[m + k]), False, only_feedback=True)
        cost += episode_cost(rng, month, age_now, prices)
        emergencies += month.counts[:, S["emergency"]]
        lam_year += month.lam
        entered = (month.housing_from > 0) & ~was_housing
        a = month.assessed
        low = a & (month.maple >= spec.maple_min) & ~(base_maple >= spec.maple_min)
        rise = a & (month.adl_h >= base_adl + spec.adl_rise)
        fell |= entered | low | rise
    lam_year[:, FEEDBACK] = 0.0
    year_counts = rng.poisson(lam_year)
    year_counts[:, S["emergency"]] = emergencies
    cost += visit_cost(rng, year_counts, prices)
    # Given the path, the year's mental-health/substance contacts are Poisson: take the exact tail.
    p_young = np.zeros(rows)
    ask = np.tile(young, k_rep)
    p_young[ask] = poisson_at_least(spec.young_min_count - emergencies[ask],
                                    lam_year[ask, S["mental_health_substance"]])
    return cost, p_young, fell


def _truth_at(st: State, seed: int, chunk: int, m: int, first_day: np.ndarray, month_len: np.ndarray,
              birth_day: np.ndarray, seen: np.ndarray, last_mh: np.ndarray, last_scale: dict,
              prices: Prices, reps: int, ids: np.ndarray, spec: TruthSpec) -> dict[str, np.ndarray]:
    """Cohorts at 1 January (month ``m``) and outcome frequencies over ``reps`` futures."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk, 1_000_000 + m]))
    t0 = int(first_day[m])
    present = np.flatnonzero(st["alive"] & st["resident"])
    age = completed_years(birth_day[present], t0)
    cohort = {
        "high_use": np.ones(len(present), bool),
        "diabetes_high_use": seen[present, C["diabetes"]],
        "elderly_low_function": (age >= spec.elderly_min_age) & (st["care"][present] != 2),
        "young_adult_mhsu": (age >= spec.young_min_age) & (age <= spec.young_max_age)
        & (last_mh[present] >= t0 - spec.young_lookback_days),
    }
    young = cohort["young_adult_mhsu"]
    # Replicates run in blocks that fit the CPU cache; each block's state is a fresh copy.
    block = max(1, min(reps, MC_BLOCK_ROWS // max(1, len(present))))
    parts = [_futures({k: v[present] for k, v in st.items()}, rng, m, month_len, prices, spec,
                      last_scale["adl_h"][present], last_scale["maple"][present],
                      np.arange(r, min(r + block, reps)), reps, young)
             for r in range(0, reps, block)]
    cost, p_young, fell = (np.concatenate([p[i] for p in parts]) for i in range(3))
    n_sub = len(present)
    as_matrix = lambda x: x.reshape(reps, n_sub).T  # noqa: E731  (replicates side by side)
    young_p, young_se = mean_and_se(as_matrix(p_young))
    elderly_p, elderly_se = mean_and_se(as_matrix(fell))
    return {
        "as_of_day": t0,
        "client": ids[present],
        "cohorts": cohort,
        "archetype": archetype({k: v[present] for k, v in st.items()}, age),
        "cost_samples": as_matrix(cost).astype(np.float32),
        "p_young_adult_mhsu": young_p, "se_young_adult_mhsu": young_se,
        "half_young_adult_mhsu": half_mean(as_matrix(p_young)),
        "p_elderly_low_function": elderly_p, "se_elderly_low_function": elderly_se,
        "half_elderly_low_function": half_mean(as_matrix(fell)),
        "burden": burden({k: v[present] for k, v in st.items()}),
    }
