"""Base-year rates per age band x sex x need-based segment x service line, with a bootstrap over clients.

Every figure is a ratio of sums over the rows of the base panel
(:class:`scenarios.base.BasePanel`), per cell *band x sex x segment*:

- ``users / residents`` - share of the cell's residents (on 1 January) who used the line;
- ``volume / residents`` - visits or care days per resident (so per client = volume / users);
- ``cost / residents`` - cost at the contract's unit costs per resident;
- apart for those who died during the year and those who did not (proximity to death), and
  for the intervention's top-risk clients;
- the year-on-year moves of the cell's residents: to each segment, died, moved out;
- the entrants of the year (births, in-movers) by the segment they enter.

The use of the year's entrants is carried by the cell they enter, per resident at
the start, so the base year's totals are reproduced. A cell with fewer than
``min_cell_residents`` residents takes the rate of its band and segment over both
sexes, and if that is still too small, of its segment over all ages (decided on
the full sample, kept in every bootstrap round).

Uncertainty: ``rounds`` Poisson(1) bootstrap weights per client (the same for
every figure of a round, so rates, transitions and entrants move together);
round 0 is the full sample (the point estimate).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract.tables import SERVICE_LINES
from scenarios.base import BasePanel, shares
from scenarios.projection import SEXES

V = len(SERVICE_LINES)


@dataclass
class CellSums:
    """Sums per round and cell ``[round, band, sex, segment, ...]``.

    Attributes
    ----------
    exposure, exposure_died
        Residents at the start (all, and those who died during the year).
    entrants
        Entrants of the year (exposure 0) by the cell they entered.
    users, volume, cost
        ``[..., died (0/1), service]``: users, volume and cost of the cell's rows.
    moves
        ``[..., state]``: residents at the start by their state a year later
        (segments, then died, then moved out).
    top_volume, top_cost
        ``{name: [..., service]}``: volume and cost of the rows flagged ``name``.
    """

    exposure: np.ndarray
    exposure_died: np.ndarray
    entrants: np.ndarray
    users: np.ndarray
    volume: np.ndarray
    cost: np.ndarray
    moves: np.ndarray
    top_volume: dict[str, np.ndarray]
    top_cost: dict[str, np.ndarray]


def bootstrap_weights(n: int, rounds: int, seed: int) -> np.ndarray:
    """``[rounds + 1, n]`` weights: row 0 all ones (the full sample), then Poisson(1) rounds."""
    rng = np.random.default_rng(seed)
    w = np.ones((rounds + 1, n), dtype=np.float32)  # small whole numbers: exact in float32, half the memory
    if rounds:
        w[1:] = rng.poisson(1.0, (rounds, n))
    return w


def cell_sums(panel: BasePanel, weights: np.ndarray, flags: dict[str, np.ndarray] | None = None) -> CellSums:
    """Sum the panel's rows into cells for every round of ``weights`` (``[rounds, clients]``, client order).

    Parameters
    ----------
    panel
        The base panel.
    weights
        Bootstrap weights per client id of the panel (rows of one client share their weight).
    flags
        Boolean arrays over the panel's rows (the intervention's top-risk clients).
    """
    rows = panel.rows
    flags = flags or {}
    k, nb, ns = len(panel.segments), len(panel.bands), len(SEXES)
    client_pos = rows["client_id"].factorize()[0]
    row_weight = rows["weight"].to_numpy()
    cell = (rows["band"].to_numpy() * ns + rows["sex"].map({s: i for i, s in enumerate(SEXES)}).to_numpy()) * k \
        + rows["segment"].to_numpy()
    exposure = rows["exposure"].to_numpy()
    died = rows["died"].to_numpy().astype(float)
    used = (panel.volume > 0).astype(float)
    states = np.zeros((len(rows), k + 2))
    states[np.arange(len(rows)), rows["state"].to_numpy()] = exposure
    cols = [exposure[:, None], (exposure * died)[:, None], (1 - exposure)[:, None],
            used * (1 - died)[:, None], used * died[:, None], panel.volume * (1 - died)[:, None],
            panel.volume * died[:, None], panel.cost * (1 - died)[:, None], panel.cost * died[:, None], states]
    cols += [panel.volume * f[:, None] for f in flags.values()] + [panel.cost * f[:, None] for f in flags.values()]
    X = np.hstack(cols)
    ncell = nb * ns * k
    rounds = weights.shape[0]
    out = np.zeros((rounds, ncell, X.shape[1]))
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(ncell + 1))
    for c in range(ncell):  # one cell's clients at a time: no rounds x rows matrix
        idx = order[bounds[c]:bounds[c + 1]]
        if len(idx):
            out[:, c] = (weights[:, client_pos[idx]] * row_weight[idx]) @ X[idx]
    out = out.reshape(rounds, nb, ns, k, X.shape[1])
    pos = 3

    def take(width):
        nonlocal pos
        part = out[..., pos:pos + width]
        pos += width
        return part

    users = np.stack([take(V), take(V)], axis=-2)
    volume = np.stack([take(V), take(V)], axis=-2)
    cost = np.stack([take(V), take(V)], axis=-2)
    moves = take(k + 2)
    tv = {name: take(V) for name in flags}
    tc = {name: take(V) for name in flags}
    return CellSums(out[..., 0], out[..., 1], out[..., 2], users, volume, cost, moves, tv, tc)


def pool(numer: np.ndarray, denom: np.ndarray, point_denom: np.ndarray, min_n: float) -> np.ndarray:
    """``numer / denom`` per cell ``[round, band, sex, segment, ...]`` with the small-cell fallback.

    A cell whose full-sample ``point_denom`` is under ``min_n`` takes the ratio of
    its band and segment over both sexes; under ``min_n`` again, of its segment over
    all bands; with nothing at all, 0.
    """
    extra = numer.ndim - denom.ndim
    d = denom.reshape(denom.shape + (1,) * extra)

    def ratio(n, dd):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(dd > 0, n / np.where(dd > 0, dd, 1), 0.0)

    cell = ratio(numer, d)
    both = ratio(numer.sum(2, keepdims=True), d.sum(2, keepdims=True))
    ages = ratio(numer.sum((1, 2), keepdims=True), d.sum((1, 2), keepdims=True))
    pd_ = point_denom[None]
    small = (pd_ < min_n).reshape(pd_.shape + (1,) * extra)
    small_both = (pd_.sum(2, keepdims=True) < min_n).reshape(small.shape[:2] + (1,) + small.shape[3:])
    pooled = np.where(small_both, np.broadcast_to(ages, cell.shape), np.broadcast_to(both, cell.shape))
    return np.where(small, pooled, cell)


@dataclass
class Rates:
    """Rates per round ``[round, band, sex, segment, ...]`` (round 0: the point estimate).

    Attributes
    ----------
    users, volume, cost
        ``[..., service]`` per resident at the start of the year.
    users_split, volume_split, cost_split
        ``[..., 2, service]``: among those who survived the year (0) and those who died (1).
    death
        Share of residents who died during the year; ``death_pooled`` ``[band, sex]`` over all
        segments (full sample, no small-cell fallback).
    top_volume, top_cost
        ``{name: [..., service]}`` per resident: the flagged clients' part of ``volume`` and ``cost``.
    moves
        ``[round, band, segment, state]`` transition probabilities (both sexes pooled).
    entry
        ``[round, band, sex, segment]`` segment mix of the year's entrants.
    out_rate
        ``[band, sex]`` share of the start's residents who moved out during the year (point).
    """

    users: np.ndarray
    volume: np.ndarray
    cost: np.ndarray
    users_split: np.ndarray
    volume_split: np.ndarray
    cost_split: np.ndarray
    death: np.ndarray
    death_pooled: np.ndarray
    top_volume: dict[str, np.ndarray]
    top_cost: dict[str, np.ndarray]
    moves: np.ndarray
    entry: np.ndarray
    out_rate: np.ndarray


def estimate_rates(sums: CellSums, min_cell: int) -> Rates:
    """Rates, transitions and entrant mixes from the cell sums (see the module docstring)."""
    e, ed = sums.exposure, sums.exposure_died
    es = e - ed
    p = e[0]
    users = pool(sums.users.sum(-2), e, p, min_cell)
    volume = pool(sums.volume.sum(-2), e, p, min_cell)
    cost = pool(sums.cost.sum(-2), e, p, min_cell)

    def split(x):
        return np.stack([pool(x[..., 0, :], es, es[0], min_cell), pool(x[..., 1, :], ed, ed[0], min_cell)], axis=-2)

    death = pool(ed, e, p, min_cell)
    tv = {n: pool(x, e, p, min_cell) for n, x in sums.top_volume.items()}
    tc = {n: pool(x, e, p, min_cell) for n, x in sums.top_cost.items()}
    k = e.shape[-1]
    moves_n = sums.moves.sum(2)                                   # [round, band, segment, state]
    tot = moves_n.sum(-1, keepdims=True)
    all_bands = moves_n.sum(1, keepdims=True)
    m_cell, m_all = shares(moves_n), shares(all_bands)
    small = (tot[0:1] < min_cell)
    moves = np.where(small, np.broadcast_to(m_all, m_cell.shape), m_cell)
    empty = moves.sum(-1) == 0                                    # a segment nobody was in: it stays itself
    ident = np.broadcast_to(np.eye(k, k + 2), moves.shape)
    moves = np.where(empty[..., None], ident, moves)
    ent = sums.entrants                                           # [round, band, sex, segment]
    et = ent.sum(-1, keepdims=True)
    eb = ent.sum(2, keepdims=True)
    mix_cell, mix_both = shares(ent), shares(eb)
    use_both = (et[0:1] < min_cell)
    entry = np.where(use_both, np.broadcast_to(mix_both, ent.shape), mix_cell)
    none = entry.sum(-1) == 0                                     # no entrant of the band at all: the residents' mix
    res_mix = shares(e)
    entry = np.where(none[..., None], res_mix, entry)
    moved = sums.moves[0, ..., k + 1].sum(-1)                     # [band, sex]
    with np.errstate(invalid="ignore", divide="ignore"):
        out_rate = np.where(p.sum(-1) > 0, moved / np.where(p.sum(-1) > 0, p.sum(-1), 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        death_pooled = np.where(p.sum(-1) > 0, ed[0].sum(-1) / np.where(p.sum(-1) > 0, p.sum(-1), 1), 0.0)
    return Rates(users, volume, cost, split(sums.users), split(sums.volume), split(sums.cost), death,
                 death_pooled, tv, tc,
                 moves, entry, out_rate)


def top_risk_flags(panel: BasePanel, segments: tuple[str, ...], top_share: float) -> np.ndarray:
    """Rows in the top ``top_share`` of their segment's residents by last year's cost (ties in: strictly above
    the segment's (1 - top_share) quantile, or everyone with cost when that quantile is 0)."""
    rows = panel.rows
    flag = np.zeros(len(rows), dtype=bool)
    need = panel.state_segment[rows["segment"].to_numpy()]
    for code in [panel.need_segments.index(s) for s in segments]:
        inside = (need == code) & (rows["exposure"].to_numpy() > 0)
        if not inside.any():
            continue
        cost = rows["prior_cost"].to_numpy()[inside]
        cut = np.quantile(cost, 1 - top_share)
        flag[np.flatnonzero(inside)] = (cost > cut) if cut > 0 or top_share < 1 else cost >= 0
    return flag
