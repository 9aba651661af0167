"""A county's own population, observed and projected: the layout of :mod:`scenarios.projection` from its records.

- :func:`observed_projection` - the population that actually lived there (residents
  on 1 January of the next year, i.e. 31 December) and the deaths of each year, by
  municipality, sex and age: the backtest's "actual" projection.
- :func:`county_rates` - the county's own demographic rates over some years: deaths and
  moving out per resident of each sex and five-year age group, births per woman
  aged 15-49, and the in-movers of a year by sex, age and municipality.
- :func:`cohort_component` - a small cohort-component projection from those rates,
  starting from the last observed year, with variants ``base`` (with migration) and
  ``no_migration``. This is how the synthetic county's ``projection.csv`` is made, so
  the demo runs offline; it is a trend calculation from the county's own records, not
  Statistics Finland's projection.

Ages are completed years on 31 December (100 = 100 and over). Deaths of a year are
counted at the age the person had on 31 December of the year before (the age the
engine reads them at); a client of sex ``X`` counts half as F and half as M.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.base import age_at, residents_at
from scenarios.projection import KEYS, MAX_AGE, SEXES, validate_projection

#: Share of births that are boys (Statistics Finland, long-run about 51 %).
BOY_SHARE = 0.512
FERTILE = (15, 49)


def _clients(tables) -> pd.DataFrame:
    frames = tables.tables if hasattr(tables, "tables") else tables
    c = frames["clients"].copy()
    for col in ("moved_in", "moved_out"):
        if col not in c:
            c[col] = pd.NaT
    return c


def _by_sex(frame: pd.DataFrame) -> pd.DataFrame:
    """Sex X as half F and half M (``weight`` column)."""
    frame = frame.assign(weight=1.0)
    other = ~frame["sex"].isin(SEXES)
    if not other.any():
        return frame
    halves = [frame[other].assign(sex=s, weight=0.5) for s in SEXES]
    return pd.concat([frame[~other], *halves], ignore_index=True)


def _count(frame: pd.DataFrame, munis, value: str) -> pd.Series:
    idx = pd.MultiIndex.from_product([munis, SEXES, range(MAX_AGE + 1)], names=["municipality", "sex", "age"])
    return frame.groupby(["municipality", "sex", "age"])["weight"].sum().reindex(idx, fill_value=0.0).rename(value)


def observed_projection(tables, years, variant: str = "observed") -> pd.DataFrame:
    """The records' own population (31 December) and deaths per year, in the projection layout."""
    c = _clients(tables)
    munis = sorted(c["municipality"].astype(str).unique())
    out = []
    for y in years:
        start, end = pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y + 1}-01-01")
        res = c[residents_at(c, end)]
        pop = _by_sex(pd.DataFrame({"municipality": res["municipality"].astype(str), "sex": res["sex"].astype(str),
                                    "age": age_at(res["birth_date"], end)}))
        at_start = c[residents_at(c, start)]
        d = at_start[at_start["death_date"].notna() & (at_start["death_date"] < end)]
        dead = _by_sex(pd.DataFrame({"municipality": d["municipality"].astype(str), "sex": d["sex"].astype(str),
                                     "age": np.minimum(age_at(d["birth_date"], start), MAX_AGE)}))
        frame = pd.concat([_count(pop, munis, "population"), _count(dead, munis, "deaths")], axis=1).reset_index()
        out.append(frame.assign(year=int(y), variant=variant))
    return validate_projection(pd.concat(out, ignore_index=True)[KEYS + ["population", "deaths"]], "records")


@dataclass
class CountyRates:
    """Demographic rates of a county's records (see :func:`county_rates`).

    Attributes
    ----------
    death, out
        ``[sex, age]`` deaths and moves out per resident at the start of the year.
    fertility
        Births per woman aged 15-49 at the start of the year, per year.
    inflow
        ``[municipality, sex, age]`` in-movers per year (average).
    birth_share
        Share of the county's births per municipality (of its women 15-49).
    municipalities
        Order of the municipality axis.
    """

    death: np.ndarray
    out: np.ndarray
    fertility: float
    inflow: np.ndarray
    birth_share: np.ndarray
    municipalities: tuple[str, ...]


def _grouped(num: np.ndarray, den: np.ndarray, width: int = 5) -> np.ndarray:
    """Ratios pooled over ``width``-year age groups (the last open), spread back to one-year ages."""
    g = np.minimum(np.arange(MAX_AGE + 1) // width, MAX_AGE // width)
    out = np.zeros_like(num)
    for i in np.unique(g):
        n, d = num[:, g == i].sum(1), den[:, g == i].sum(1)
        out[:, g == i] = np.where(d > 0, n / np.where(d > 0, d, 1), 0.0)[:, None]
    return out


def county_rates(tables, years) -> CountyRates:
    """Deaths, moves out, births and in-movers per year over ``years`` (full years in the records)."""
    c = _clients(tables)
    munis = tuple(sorted(c["municipality"].astype(str).unique()))
    mi = {m: i for i, m in enumerate(munis)}
    exp = np.zeros((2, MAX_AGE + 1))
    dead = np.zeros_like(exp)
    out = np.zeros_like(exp)
    inflow = np.zeros((len(munis), 2, MAX_AGE + 1))
    births = 0.0
    women = 0.0
    women_m = np.zeros(len(munis))
    births_m = np.zeros(len(munis))
    for y in years:
        start, end = pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y + 1}-01-01")
        res = c[residents_at(c, start)]
        f = _by_sex(pd.DataFrame({"sex": res["sex"].astype(str).to_numpy(), "age": age_at(res["birth_date"], start),
                                  "m": res["municipality"].astype(str).map(mi).to_numpy(dtype=np.int64),
                                  "died": (res["death_date"].notna() & (res["death_date"] < end)).to_numpy(),
                                  "out": (res["moved_out"].notna() & (res["moved_out"] <= end)
                                          & ~(res["death_date"].notna() & (res["death_date"] < end))).to_numpy()}))
        s = (f["sex"] == "M").to_numpy().astype(int)
        a, w = f["age"].to_numpy(), f["weight"].to_numpy()
        np.add.at(exp, (s, a), w)
        np.add.at(dead, (s, a), w * f["died"].to_numpy())
        np.add.at(out, (s, a), w * f["out"].to_numpy())
        fertile = (s == 0) & (a >= FERTILE[0]) & (a <= FERTILE[1])
        women += w[fertile].sum()
        np.add.at(women_m, f["m"].to_numpy()[fertile], w[fertile])
        born = c[(c["birth_date"] >= start) & (c["birth_date"] < end) & c["moved_in"].isna()]
        births += len(born)
        np.add.at(births_m, born["municipality"].astype(str).map(mi).to_numpy(dtype=np.int64), 1.0)
        movers = c[c["moved_in"].notna() & (c["moved_in"] > start) & (c["moved_in"] <= end)]
        m = _by_sex(pd.DataFrame({"sex": movers["sex"].astype(str).to_numpy(),
                                  "age": age_at(movers["birth_date"], end),
                                  "m": movers["municipality"].astype(str).map(mi).to_numpy(dtype=np.int64)}))
        np.add.at(inflow, (m["m"].to_numpy(), (m["sex"] == "M").to_numpy().astype(int), m["age"].to_numpy()),
                  m["weight"].to_numpy())
    n = max(len(list(years)), 1)
    share = births_m / births_m.sum() if births_m.sum() > 0 else women_m / max(women_m.sum(), 1)
    return CountyRates(_grouped(dead, exp), _grouped(out, exp), births / women if women else 0.0, inflow / n,
                       share, munis)


def cohort_component(tables, start_year: int, end_year: int, *, rate_years=None,
                     variants=("base", "no_migration")) -> pd.DataFrame:
    """Project the county's population from 31 December of ``start_year`` to ``end_year``.

    Parameters
    ----------
    tables
        Validated tables (or a mapping of name -> DataFrame).
    start_year
        Last observed year: its population and deaths are the records' own.
    end_year
        Last projected year.
    rate_years
        Years whose records give the rates (default: the three years up to ``start_year``).
    variants
        ``base`` (deaths, births, moves out and in at the county's rates) and/or
        ``no_migration`` (deaths and births only).

    Returns
    -------
    pandas.DataFrame
        The projection layout for ``start_year`` .. ``end_year`` (validated).

    Notes
    -----
    Each year: survivors ``P[a + 1, y] = P[a, y - 1] x (1 - death - out)`` (the open age
    keeps its own), deaths ``P[a, y - 1] x death``, births = fertility x women 15-49 at the
    start, split by the municipality's share of births and 51.2 % boys, plus the yearly
    in-movers by municipality, sex and age (arriving during the year, counted on
    31 December).
    """
    rate_years = list(rate_years) if rate_years is not None else list(range(start_year - 2, start_year + 1))
    r = county_rates(tables, rate_years)
    obs = observed_projection(tables, [start_year], "observed")
    frames = []
    for variant in variants:
        migration = variant == "base"
        pop = obs.set_index(["municipality", "sex", "age"])["population"]
        p = np.stack([[pop.loc[m, s].reindex(range(MAX_AGE + 1), fill_value=0).to_numpy() for s in SEXES]
                      for m in r.municipalities])                       # [m, s, a]
        frames.append(obs.assign(variant=variant))
        for y in range(start_year + 1, end_year + 1):
            deaths = p * r.death[None]
            leave = p * r.out[None] if migration else 0.0
            surv = np.maximum(p - deaths - leave, 0.0)
            nxt = np.zeros_like(p)
            nxt[:, :, 1:] = surv[:, :, :-1]
            nxt[:, :, -1] += surv[:, :, -1]
            women = p[:, 0, FERTILE[0]:FERTILE[1] + 1].sum()
            born = r.fertility * women * r.birth_share
            nxt[:, 1, 0] += born * BOY_SHARE
            nxt[:, 0, 0] += born * (1 - BOY_SHARE)
            if migration:
                nxt += r.inflow
            idx = pd.MultiIndex.from_product([r.municipalities, SEXES, range(MAX_AGE + 1)],
                                             names=["municipality", "sex", "age"])
            frames.append(pd.DataFrame({"population": nxt.ravel(), "deaths": deaths.ravel()}, index=idx)
                          .reset_index().assign(year=y, variant=variant))
            p = nxt
    return validate_projection(pd.concat(frames, ignore_index=True)[KEYS + ["population", "deaths"]],
                               "cohort-component projection")


def death_rates(tables, years) -> pd.DataFrame:
    """``sex, age, rate``: the county's deaths per resident at the start of the year (five-year groups)."""
    r = county_rates(tables, years)
    return pd.DataFrame({"sex": np.repeat(SEXES, MAX_AGE + 1), "age": np.tile(np.arange(MAX_AGE + 1), 2),
                         "rate": r.death.ravel()})


#: The synthetic county's projection runs to this year at least (the issue's horizon).
PROJECTION_END = 2030
#: File name of a county's own projection beside its tables.
PROJECTION_FILE = "projection.csv"


def full_years(start, end) -> list[int]:
    """Calendar years wholly inside the data period ``start`` .. ``end`` (inclusive dates)."""
    first = pd.Timestamp(start).year + (pd.Timestamp(start) != pd.Timestamp(f"{pd.Timestamp(start).year}-01-01"))
    last = pd.Timestamp(end).year - (pd.Timestamp(end) != pd.Timestamp(f"{pd.Timestamp(end).year}-12-31"))
    return list(range(first, last + 1))


def county_projection(tables, years, end_year: int | None = None) -> pd.DataFrame:
    """A county's own projection file: the observed years of its records, then a cohort-component projection.

    Parameters
    ----------
    tables
        The county's tables (only ``clients`` is read).
    years
        Full calendar years of the records (:func:`full_years`). The last one starts the
        projection; it and up to two years before it are the records' own population and
        deaths (so a scenario may take any of them as its base year), and the rates are
        averaged over them.
    end_year
        Last projected year (default: :data:`PROJECTION_END`, or the year after the last
        full year if that is later).

    Returns
    -------
    pandas.DataFrame
        The layout of :mod:`scenarios.projection`, variants ``base`` and ``no_migration``
        (validated); the observed years are the same in both.

    Raises
    ------
    ValueError
        If ``years`` is empty (the records hold no full calendar year).
    """
    years = sorted(int(y) for y in years)
    if not years:
        raise ValueError("county projection: the records hold no full calendar year to start from")
    last = years[-1]
    end_year = end_year if end_year is not None else max(PROJECTION_END, last + 1)
    observed = years[-3:]
    proj = cohort_component(tables, last, end_year, rate_years=observed)
    earlier = observed[:-1]
    if not earlier:
        return proj
    past = observed_projection(tables, earlier, "observed")
    frames = [past.assign(variant=v) for v in proj["variant"].unique()]
    out = pd.concat([*frames, proj], ignore_index=True).sort_values(["variant", "year"], kind="stable")
    return validate_projection(out.reset_index(drop=True), "county projection")


def write_county_projection(folder, start, end, end_year: int | None = None) -> dict:
    """Write ``projection.csv`` beside a county's ``clients.parquet`` (a synthetic county's own projection).

    The clients table is read as written (a ``--dirty`` county's duplicated client ids
    count once; an invalid sex code counts half F, half M, as the contract's ``X``).

    Parameters
    ----------
    folder
        The folder holding ``clients.parquet``; ``projection.csv`` is written into it atomically.
    start, end
        The data period (first and last day).
    end_year
        Last projected year (see :func:`county_projection`).

    Returns
    -------
    dict
        A manifest entry: file, years observed and projected, variants, rows and method; or
        ``{"written": False, "reason": ...}`` when the period holds no full calendar year.
    """
    import pyarrow.parquet as pq

    from features.contract.io import atomic_path
    from features.contract.stream import to_pandas

    years = full_years(start, end)
    if not years:
        return {"file": PROJECTION_FILE, "written": False,
                "reason": f"the data period {start} .. {end} holds no full calendar year"}
    clients = to_pandas("clients", pq.read_table(Path(folder) / "clients.parquet"))
    clients = clients.drop_duplicates("client_id", keep="first")
    proj = county_projection({"clients": clients}, years, end_year)
    with atomic_path(Path(folder) / PROJECTION_FILE) as tmp:
        proj.to_csv(tmp, index=False, float_format="%.4f")
    return {"file": PROJECTION_FILE, "written": True, "rows": int(len(proj)),
            "observed_years": years[-3:], "projected_years": [years[-1] + 1, int(proj["year"].max())],
            "variants": sorted(proj["variant"].unique().tolist()),
            "method": "cohort-component trend from the county's own records (scenarios.projection_synth); "
                      "not Statistics Finland's projection"}
