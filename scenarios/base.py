"""The base year, client by client: who lived where, their need-based segment, their use and what came next.

One row per resident on 1 January of the base year (``T0``) and per entrant of
the year (born or moved in, resident on 1 January of the next year, ``T1``):
municipality, sex, age and age band, the need-based segment
(:mod:`segmentation.needs`) at ``T0`` (entrants: at ``T1``), the use of every
service line during the base year (visits, or care days inside the year for
episode lines), its cost at the contract's unit costs, and the state at ``T1``:
a segment, ``died`` or ``moved_out``. Rates (:mod:`scenarios.rates`) and the
segment dynamics (:mod:`scenarios.dynamics`) are sums over these rows.

A client of sex ``X`` (the contract allows it; projections have F and M) is
counted half as F and half as M (two rows of weight 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract.costs import UnitCost, load_unit_costs, unit_cost_per_row
from features.contract.tables import EPISODE_SERVICES, SERVICE_LINES
from scenarios.projection import MAX_AGE, SEXES

DIED, MOVED = "died", "moved_out"


def shares(x: np.ndarray, fallback: np.ndarray | float = 0.0) -> np.ndarray:
    """``x`` divided by its sum over the last axis; ``fallback`` where that sum is zero."""
    tot = x.sum(-1, keepdims=True)
    return np.where(tot > 0, x / np.where(tot > 0, tot, 1), fallback)


def band_index(age, bands: tuple[int, ...]) -> np.ndarray:
    """Index of the age band of each age (``bands`` are the lower bounds, the first 0)."""
    return np.searchsorted(np.asarray(bands), np.asarray(age), side="right") - 1


def band_labels(bands: tuple[int, ...]) -> list[str]:
    """``[0, 7, 18, ..., 85]`` -> ``["0-6", "7-17", ..., "85+"]``."""
    return [f"{lo}-{hi - 1}" for lo, hi in zip(bands[:-1], bands[1:])] + [f"{bands[-1]}+"]


def residents_at(clients: pd.DataFrame, when) -> pd.Series:
    """Which clients are resident at ``when``: born before, not dead before, moved in by and not out by then.

    The same rule as the feature table's population (docs/targets.md, "Population at T").
    """
    t = pd.Timestamp(when)
    born = clients["birth_date"] < t
    alive = clients["death_date"].isna() | (clients["death_date"] >= t)
    moved_in = clients["moved_in"].isna() | (clients["moved_in"] <= t) if "moved_in" in clients else True
    not_out = clients["moved_out"].isna() | (clients["moved_out"] > t) if "moved_out" in clients else True
    return born & alive & moved_in & not_out


def age_at(birth: pd.Series, when) -> np.ndarray:
    """Completed years at ``when``, capped at the open age ``MAX_AGE``."""
    t = pd.Timestamp(when)
    b = pd.to_datetime(birth)
    years = t.year - b.dt.year - ((b.dt.month > t.month) | ((b.dt.month == t.month) & (b.dt.day > t.day)))
    return np.minimum(years.to_numpy(dtype=np.int64), MAX_AGE)


def year_use(events: pd.DataFrame, start, end, costs: dict[str, UnitCost]) -> pd.DataFrame:
    """Each client's use of each service line in [start, end): volume (visits or care days) and cost.

    Visits count by their start date; an episode (inpatient, 24-hour housing)
    counts its days inside the window (an open episode: one day at its start,
    as the contract costs it). Cost = volume x the unit cost (per visit or per
    day, professional overrides included): base-year prices of the contract.

    Returns
    -------
    pandas.DataFrame
        Columns ``client_id``, ``service``, ``volume``, ``cost`` (one row per client and line used).
    """
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    ev = events[["client_id", "start", "end", "service"] + (["professional"] if "professional" in events else [])]
    episode = ev["service"].astype(str).isin(EPISODE_SERVICES).to_numpy()
    s = pd.to_datetime(ev["start"])
    e = pd.to_datetime(ev["end"]).fillna(s)
    lo = s.where(s > t0, t0)
    hi = e.where(e < t1 - pd.Timedelta(days=1), t1 - pd.Timedelta(days=1))
    days = ((hi - lo).dt.days + 1).clip(lower=0).to_numpy(dtype=float)
    in_window = ((s >= t0) & (s < t1)).to_numpy()
    volume = np.where(episode, days, in_window.astype(float))
    keep = volume > 0
    part = ev.loc[keep]
    out = pd.DataFrame({"client_id": part["client_id"].astype(str).to_numpy(),
                        "service": part["service"].astype(str).to_numpy(), "volume": volume[keep]})
    out["cost"] = out["volume"] * unit_cost_per_row(part, costs).to_numpy()
    return out.groupby(["client_id", "service"], as_index=False, sort=False)[["volume", "cost"]].sum()


@dataclass
class BasePanel:
    """The base year as rows (see the module docstring).

    Attributes
    ----------
    rows
        ``client_id, municipality, sex, age, age1, band, segment, exposure, weight, state, died, prior_cost``:
        ``exposure`` 1 for residents at T0, 0 for entrants; ``segment`` and ``state`` are segment codes,
        ``state`` K for died and K + 1 for moved out; ``prior_cost`` the cost of the 365 days before T0;
        ``age`` is the age at T0 (entrants: at T1), ``age1`` the age at T1.
    volume, cost
        ``[row, service]`` arrays (service order :data:`SERVICE_LINES`).
    segments
        Names of the states (codes are positions): the need-based segments, then, for each
        service of ``ongoing``, each segment's clients with an episode of it running on the date
        (``frailty+housing_24h``).
    need_segments
        The need-based segments; ``state_segment[code]`` is the position of a state's segment.
    labels
        Need segment name -> {fi, sv, en} label.
    base_year, bands
        The base year and the age bands' lower bounds.
    """

    rows: pd.DataFrame
    volume: np.ndarray
    cost: np.ndarray
    segments: tuple[str, ...]
    labels: dict[str, dict[str, str]]
    base_year: int
    bands: tuple[int, ...]
    need_segments: tuple[str, ...] = ()
    state_segment: np.ndarray | None = None

    @property
    def residents(self) -> pd.DataFrame:
        """Rows resident at T0 (exposure 1)."""
        return self.rows[self.rows["exposure"] > 0]


def _segments(tables, when, needs_config, histories=None):
    from segmentation.needs import NeedSegments
    from segmentation.snapshots import features_at

    features = features_at(tables, when, histories=histories)
    model = NeedSegments(needs_config).fit(features)
    return features, model


#: A visit service counts as "ongoing" at T for a client with a visit in the days before T (a regular client).
VISIT_WINDOW_DAYS = 30


def _ongoing_code(events: pd.DataFrame, when, ids: pd.Index, ongoing: tuple[str, ...]) -> np.ndarray:
    """0, or 1 + the position of the first service of ``ongoing`` the client is in at ``when``.

    An episode service (24-hour housing, inpatient care) is ongoing with an episode running at
    ``when`` (:func:`features.targets.labels.ongoing_clients`); a visit service (home care) with a
    visit in the :data:`VISIT_WINDOW_DAYS` days before ``when``.
    """
    from features.targets.labels import ongoing_clients

    t = pd.Timestamp(when)
    code = np.zeros(len(ids), dtype=int)
    for i, service in reversed(list(enumerate(ongoing))):
        if service in EPISODE_SERVICES:
            inside = ongoing_clients(events, t, service).astype(str)
        else:
            start = pd.to_datetime(events["start"])
            hit = (events["service"].astype(str) == service) & (start < t) \
                & (start >= t - pd.Timedelta(days=VISIT_WINDOW_DAYS))
            inside = pd.Index(events.loc[hit, "client_id"].astype(str).unique())
        code = np.where(ids.isin(inside), i + 1, code)
    return code


def build_panel(tables, base_year: int, bands: tuple[int, ...], *, needs_config: str | Path | None = None,
                unit_costs: dict[str, UnitCost] | None = None, histories=None,
                ongoing: tuple[str, ...] = ()) -> BasePanel:
    """The base-year panel of a county.

    Parameters
    ----------
    tables
        Validated tables (``features.contract.load.load_tables``) or a mapping of name -> DataFrame.
    base_year
        The base year; the data must cover it and 1 January of the next year.
    bands
        Lower bounds of the age bands (the first 0).
    needs_config
        Need-based segments YAML (the packaged one when None).
    unit_costs
        Unit-cost table (the contract's packaged one when None).
    histories
        A :class:`features.histories.build.ClientHistories` to reuse its cache.
    ongoing
        Services (``housing_24h``, ``home_care``) that split each segment into the clients in the
        service on the date and the others (states of the dynamics); the first listed wins.

    Raises
    ------
    ValueError
        If nobody is resident on 1 January of the base year or of the next year.
    """
    frames = tables.tables if hasattr(tables, "tables") else tables
    costs = load_unit_costs() if unit_costs is None else unit_costs
    t0, t1 = pd.Timestamp(f"{base_year}-01-01"), pd.Timestamp(f"{base_year + 1}-01-01")
    from segmentation.snapshots import features_at

    # each date's feature table (~2 kB a resident) is let go as soon as its segments are known
    f0, model = _segments(frames, t0, needs_config, histories)
    need = tuple(s.name for s in model.config_.segments)
    kn = len(need)
    ids_0 = pd.Index(f0["client_id"].astype(str))
    seg0 = pd.Series(model.predict(f0) + kn * _ongoing_code(frames["events"], t0, ids_0, ongoing), index=ids_0)
    prior_cost = pd.Series(f0["cost_total_365d"].to_numpy(), index=ids_0)
    del f0
    f1 = features_at(frames, t1, histories=histories)
    ids_1 = pd.Index(f1["client_id"].astype(str))
    seg1 = pd.Series(model.predict(f1) + kn * _ongoing_code(frames["events"], t1, ids_1, ongoing), index=ids_1)
    del f1
    names = need + tuple(f"{n}+{service}" for service in ongoing for n in need)
    labels = {s.name: dict(s.labels) for s in model.config_.segments}
    k = len(names)
    clients = frames["clients"].copy()
    clients["client_id"] = clients["client_id"].astype(str)
    clients = clients.set_index("client_id")
    ids0 = seg0.index
    entrants = seg1.index.difference(ids0)
    ids = ids0.append(entrants)
    c = clients.loc[ids]
    death = c["death_date"]
    died = (death.notna() & (death >= t0) & (death < t1)).to_numpy()
    state = seg1.reindex(ids).to_numpy(dtype=float)
    state = np.where(died, k, np.where(np.isnan(state), k + 1, state)).astype(int)
    is_entrant = np.r_[np.zeros(len(ids0), bool), np.ones(len(entrants), bool)]
    segment = np.where(is_entrant, seg1.reindex(ids).to_numpy(dtype=float), seg0.reindex(ids).to_numpy(dtype=float))
    age = np.where(is_entrant, age_at(c["birth_date"], t1), age_at(c["birth_date"], t0))
    age1 = age_at(c["birth_date"], t1)
    prior = prior_cost.reindex(ids).fillna(0.0).to_numpy()
    rows = pd.DataFrame({"client_id": ids.to_numpy(), "municipality": c["municipality"].astype(str).to_numpy(),
                         "sex": c["sex"].astype(str).to_numpy(), "age": age, "age1": age1,
                         "band": band_index(age, bands), "segment": segment.astype(int),
                         "exposure": (~is_entrant).astype(float), "weight": 1.0, "state": state,
                         "died": died, "prior_cost": prior})
    use = year_use(frames["events"], t0, t1, costs)
    use = use[use["client_id"].isin(set(ids))]
    r = pd.Index(ids).get_indexer(use["client_id"])
    v = pd.Index(SERVICE_LINES).get_indexer(use["service"])
    volume = np.zeros((len(ids), len(SERVICE_LINES)))
    cost = np.zeros_like(volume)
    np.add.at(volume, (r, v), use["volume"].to_numpy())
    np.add.at(cost, (r, v), use["cost"].to_numpy())
    rows, volume, cost = _split_unknown_sex(rows, volume, cost)
    return BasePanel(rows, volume, cost, names, labels, int(base_year), tuple(bands), need,
                     np.arange(k) % kn)


def _split_unknown_sex(rows: pd.DataFrame, volume: np.ndarray, cost: np.ndarray):
    """Rows of sex X become an F and an M row of half the weight (projections have two sexes)."""
    other = ~rows["sex"].isin(SEXES).to_numpy()
    if not other.any():
        return rows, volume, cost
    keep = rows[~other]
    halves = [rows[other].assign(sex=s, weight=rows.loc[other, "weight"] * 0.5) for s in SEXES]
    out = pd.concat([keep, *halves], ignore_index=True)
    idx = np.r_[np.flatnonzero(~other), np.flatnonzero(other), np.flatnonzero(other)]
    return out, volume[idx], cost[idx]


def observed_totals(tables, year: int, unit_costs: dict[str, UnitCost] | None = None) -> pd.DataFrame:
    """What the county's records show for one year, per service line: clients, volume and cost.

    Everyone counts who used the line during the year (residents at its start and
    entrants alike), with the same volume and cost rules as the panel.
    """
    frames = tables.tables if hasattr(tables, "tables") else tables
    costs = load_unit_costs() if unit_costs is None else unit_costs
    use = year_use(frames["events"], f"{year}-01-01", f"{year + 1}-01-01", costs)
    out = use.groupby("service").agg(clients=("client_id", "nunique"), volume=("volume", "sum"),
                                     cost=("cost", "sum"))
    return out.reindex(list(SERVICE_LINES)).fillna(0.0)
