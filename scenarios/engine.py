"""Project a scenario: population x segment mix x rates, year by year, for every bootstrap round.

For service year *y*, per municipality *m*, sex *s*, one-year age *a*, segment *k*
and service line *v*:

    figure[m, k, v] = sum over s, a of  N[m, s, a] x mix[m, s, a, k] x rate[band(a), s, k, v]

``N`` is the population at the start of the year (the base year: the residents
on 1 January in the records; later: the projection's population of *y - 1*).
``mix`` is the segment mix: fixed at the base year's per municipality, band and
sex (**demographic**), or (**dynamics**) observed on 1 January after the base
year and then rolled forward as a Markov chain over one-year ages - each cohort
moves with its band's transition matrix among those who stay, the year's
entrants (births at age 0, in-movers) join with their band's entrant mix in the
proportion the projection's population implies. Modifiers (healthy ageing,
proximity to death, intervention) change ``rate`` and, for healthy ageing, the
age at which mixes and transitions are read (:mod:`scenarios.spec`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract.tables import SERVICE_LINES
from scenarios.base import BasePanel, band_index, shares
from scenarios.projection import MAX_AGE, SEXES, ProjectionGrid
from scenarios.rates import Rates
from scenarios.spec import Scenario

AGES = np.arange(MAX_AGE + 1)


def age_lookup(bands: tuple[int, ...], shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bands to read for each one-year age when use is ``shift`` years younger: (band_lo, band_hi, frac).

    The year of age ``[a, a + 1)`` read ``shift`` years younger covers ``[x, x + 1)``,
    ``x = a - shift``: a share ``1 - frac`` of whole age ``floor(x)`` and ``frac`` of the
    next, ``frac = x - floor(x)``; so the figure at ``a`` is ``(1 - frac) x band(floor x)
    + frac x band(floor x + 1)`` (ages below 0 read age 0).
    """
    x = np.clip(AGES - shift, 0, MAX_AGE)
    lo_age = np.floor(x).astype(int)
    frac = x - lo_age
    return band_index(lo_age, bands), band_index(np.minimum(lo_age + 1, MAX_AGE), bands), frac


def expand(x: np.ndarray, axis: int, lookup) -> np.ndarray:
    """Bands on ``axis`` of ``x`` to one-year ages (the new axis replaces it), via :func:`age_lookup`."""
    lo, hi, frac = lookup
    a = np.take(x, lo, axis=axis)
    if not frac.any():
        return a
    b = np.take(x, hi, axis=axis)
    shape = [1] * a.ndim
    shape[axis] = len(frac)
    f = frac.reshape(shape)
    return (1 - f) * a + f * b


def by_age(x: np.ndarray, look) -> np.ndarray:
    """Rates ``[round, band, sex, ...]`` as ``[round, sex, age, ...]`` (:func:`expand` on the band axis)."""
    return np.swapaxes(expand(x, 1, look), 1, 2)


def apply_rates(nm: np.ndarray, rate: np.ndarray, look) -> np.ndarray:
    """``sum over s, a of nm[r, m, s, a, k] x rate[r, band(a), s, k, v]`` -> ``[r, m, k, v]``.

    People are first summed into the bands they read (each age's share ``1 - frac`` to its
    lower band, ``frac`` to the upper: :func:`age_lookup`), so the product runs over the
    bands, not the 101 ages.
    """
    lo, hi, frac = look
    weights = np.zeros((len(lo), rate.shape[1]))
    np.add.at(weights, (np.arange(len(lo)), lo), 1 - frac)
    np.add.at(weights, (np.arange(len(lo)), hi), frac)
    by_band = np.einsum("rmsak,ab->rmsbk", nm, weights, optimize=True)
    return np.einsum("rmsbk,rbskv->rmkv", np.broadcast_to(by_band, (rate.shape[0],) + by_band.shape[1:]), rate,
                     optimize=True)


@dataclass
class BaseState:
    """What the engine needs of the base year besides the rates.

    Attributes
    ----------
    municipalities
        The county's municipalities (sorted; the projection's grid uses the same order).
    start_population
        ``[m, s, a]`` residents on 1 January of the base year (records).
    mix_band
        ``[m, s, band, k]`` segment mix on 1 January of the base year per municipality, sex and band
        (a cell without residents takes the county's mix of its band and sex), so the base year
        reproduces the records.
    next_mix
        ``[m, s, a, k]`` segment mix on 1 January after the base year (records; an empty cell: the
        county's mix of the band and sex).
    base_clients
        ``[m, k, v]`` real clients of the base year (residents on 1 January who used the line) and
        ``base_residents`` ``[m, k]``: for small-cell suppression.
    """

    municipalities: tuple[str, ...]
    start_population: np.ndarray
    mix_band: np.ndarray
    next_mix: np.ndarray
    base_clients: np.ndarray
    base_residents: np.ndarray


def base_state(panel: BasePanel) -> BaseState:
    """The base year's populations and segment mixes (see :class:`BaseState`)."""
    rows = panel.rows
    munis = tuple(sorted(rows.loc[rows["exposure"] > 0, "municipality"].unique()))
    m = rows["municipality"].map({x: i for i, x in enumerate(munis)}).to_numpy()
    s = rows["sex"].map({x: i for i, x in enumerate(SEXES)}).to_numpy()
    k = len(panel.segments)
    nb = len(panel.bands)
    w = rows["weight"].to_numpy()
    start = (rows["exposure"] > 0).to_numpy() & (m >= 0)
    n0 = np.zeros((len(munis), len(SEXES), MAX_AGE + 1))
    np.add.at(n0, (m[start], s[start], rows["age"].to_numpy()[start]), w[start])
    c0 = np.zeros((len(munis), len(SEXES), nb, k))
    np.add.at(c0, (m[start], s[start], rows["band"].to_numpy()[start], rows["segment"].to_numpy()[start]), w[start])
    county0 = shares(c0.sum(0), 1.0 / k)
    mix_band = shares(c0, np.broadcast_to(county0[None], c0.shape))  # an empty cell: the county's mix
    # 1 January after the base year: stayers in their new segment, and the year's entrants
    state = rows["state"].to_numpy()
    seg1 = np.where(rows["exposure"].to_numpy() > 0, state, rows["segment"].to_numpy())
    at1 = (seg1 < k) & (m >= 0)
    age1 = rows["age1"].to_numpy()
    c1 = np.zeros((len(munis), len(SEXES), MAX_AGE + 1, k))
    np.add.at(c1, (m[at1], s[at1], age1[at1], seg1[at1]), w[at1])
    band1 = band_index(AGES, panel.bands)
    cb = np.zeros((len(SEXES), nb, k))
    np.add.at(cb, (s[at1], band1[age1[at1]], seg1[at1]), w[at1])
    county1 = shares(cb, 1.0 / k)[:, band1, :]                       # [s, a, k]
    next_mix = shares(c1, np.broadcast_to(county1[None], c1.shape))
    used = panel.volume > 0
    bc = np.zeros((len(munis), k, len(SERVICE_LINES)))
    seg0 = rows["segment"].to_numpy()
    np.add.at(bc, (m[start], seg0[start]), used[start] * w[start, None])
    br = np.zeros((len(munis), k))
    np.add.at(br, (m[start], seg0[start]), w[start])
    return BaseState(munis, n0, mix_band, next_mix, bc, br)


@dataclass
class ScenarioRun:
    """One scenario on one projection variant: ``[year, round, municipality, segment(, service)]`` arrays."""

    scenario: str
    variant: str
    years: tuple[int, ...]
    residents: np.ndarray
    clients: np.ndarray
    volume: np.ndarray
    cost: np.ndarray


def _intervention_active(scenario: Scenario, year: int, base_year: int) -> bool:
    iv = scenario.intervention
    if iv is None or iv.reach == 0:
        return False
    return year >= (iv.from_year if iv.from_year is not None else base_year + 1)


def run_scenario(name: str, scenario: Scenario, panel: BasePanel, state: BaseState, rates: Rates,
                 grid: ProjectionGrid | None, variant: str | None, years: tuple[int, ...]) -> ScenarioRun:
    """Project one scenario over ``years`` (the first is the base year) for every bootstrap round.

    Parameters
    ----------
    name, scenario
        The scenario's name and declaration.
    panel, state, rates
        The base year (:func:`scenarios.base.build_panel`, :func:`base_state`,
        :func:`scenarios.rates.estimate_rates`).
    grid, variant
        The projection (``years[0]`` .. ``years[-1] - 1`` population, ``years[1:]`` deaths)
        and the variant; None for a run over the base year only.
    """
    base = panel.base_year
    k = len(panel.segments)
    seg_mask = np.zeros(k, bool)
    top_name = f"{name}:top"
    if scenario.intervention is not None:
        wanted = [panel.need_segments.index(x) for x in scenario.intervention.segments]
        seg_mask = np.isin(panel.state_segment, wanted)
        reduction = np.array([scenario.intervention.reduction.get(v, 0.0) for v in SERVICE_LINES])
    rounds = rates.users.shape[0]
    out = {key: [] for key in ("residents", "clients", "volume", "cost")}
    mix = None
    for y in years:
        shift = scenario.healthy_ageing.years_per_decade * (y - base) / 10 if scenario.healthy_ageing else 0.0
        look = age_lookup(panel.bands, shift)
        if y == base:
            n = state.start_population
        else:
            n = grid.at(variant, y - 1)
        if scenario.model == "demographic" or y == base:
            mix = expand(state.mix_band, 2, look)[None]                      # [1, m, s, a, k]
        elif y == base + 1:
            mix = state.next_mix[None]
        else:
            mix = _roll(mix, y - 1, panel, state, rates, grid, variant, age_lookup(panel.bands, shift))
        nm = n[None, ..., None] * mix                                        # [r, m, s, a, k]
        out["residents"].append(np.broadcast_to(nm.sum((2, 3)), (rounds, len(state.municipalities), k)))
        for key, rate, split in (("clients", rates.users, rates.users_split), ("volume", rates.volume,
                                                                                 rates.volume_split),
                                 ("cost", rates.cost, rates.cost_split)):
            if scenario.proximity_to_death and y > base:
                deaths = grid.at(variant, y, "deaths")
                with np.errstate(invalid="ignore", divide="ignore"):
                    q_now = np.where(n > 0, deaths / np.where(n > 0, n, 1), 0.0)       # [m, s, a]
                q_ref = expand(rates.death_pooled, 0, age_lookup(panel.bands)).T       # [s, a]
                ratio = np.where(q_ref[None] > 0, q_now / np.where(q_ref[None] > 0, q_ref[None], 1), 1.0)
                q = np.clip(by_age(rates.death, look)[:, None] * ratio[None, ..., None], 0, 1)  # [r, m, s, a, k]
                fig = apply_rates(nm * (1 - q), split[..., 0, :], look) + apply_rates(nm * q, split[..., 1, :], look)
            else:
                fig = apply_rates(nm, rate, look)
            if key != "clients" and _intervention_active(scenario, y, base):
                tops = (rates.top_volume if key == "volume" else rates.top_cost)[top_name]
                share = seg_mask[None, None, None, :, None] * reduction * scenario.intervention.reach  # [.., k, v]
                fig = fig - apply_rates(nm, tops * share, look)
            out[key].append(fig)
    return ScenarioRun(name, variant or "records", tuple(years), *(np.stack(out[x]) for x in
                                                                    ("residents", "clients", "volume", "cost")))


def _roll(mix: np.ndarray, year: int, panel: BasePanel, state: BaseState, rates: Rates, grid: ProjectionGrid,
          variant: str, look) -> np.ndarray:
    """Segment mix at the start of ``year + 1`` from the mix at the start of ``year`` (one Markov step).

    Each one-year cohort moves with its band's transitions among those still resident
    (died and moved out leave it); the people the projection adds beyond the stayers
    (births, in-movers) enter with the entrant mix of their band and sex.
    """
    k = len(panel.segments)
    rounds = rates.moves.shape[0]
    mix = np.broadcast_to(mix, (rounds,) + mix.shape[1:])
    n_start = grid.at(variant, year - 1)                                    # [m, s, a]
    n_next = grid.at(variant, year)
    deaths = grid.at(variant, year, "deaths")
    moves = expand(rates.moves[..., :k], 1, look)                           # [r, a, k, k]
    surv = np.einsum("rmsak,rakj->rmsaj", mix, moves, optimize=True)
    surv = shares(surv, mix)
    out_rate = rates.out_rate[band_index(AGES, panel.bands)].T               # [s, a]
    stay = np.maximum(n_start * (1 - out_rate[None]) - deaths, 0.0)         # [m, s, a]
    entry = rates.entry[:, band_index(AGES, panel.bands)]                   # [r, a, s, k]
    entry = np.moveaxis(entry, 2, 1)[:, None]                               # [r, 1, s, a, k]
    new = np.empty_like(surv)
    stay_in = stay[..., :-1].copy()
    surv_in = surv[..., :-1, :] * stay_in[None, ..., None]
    surv_in[..., -1, :] += surv[..., -1, :] * stay[None, ..., -1, None]     # the open age keeps its own
    stay_in[..., -1] += stay[..., -1]
    target = n_next[..., 1:]
    fill = np.maximum(target - stay_in, 0.0)
    total = stay_in + fill
    with np.errstate(invalid="ignore", divide="ignore"):
        mixed = (surv_in + fill[None, ..., None] * entry[..., 1:, :]) / np.where(total > 0, total, 1)[None, ..., None]
    new[..., 1:, :] = np.where(total[None, ..., None] > 0, mixed, entry[..., 1:, :])
    new[..., 0, :] = entry[..., 0, :]
    return new
