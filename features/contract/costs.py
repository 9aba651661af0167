"""Unit-cost table and filling of missing event costs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.config.loader import build, config_error, read_yaml
from features.contract.tables import SERVICE_LINES


@dataclass(frozen=True)
class UnitCost:
    """Cost of one service line: ``eur`` per visit or per episode day."""

    eur: float = field(metadata={"ge": 0})
    per: str = field(default="visit", metadata={"choices": ("visit", "day")})
    by_professional: dict[str, float] = field(default_factory=dict, metadata={"ge": 0})


@dataclass(frozen=True)
class _UnitCostFile:
    services: dict[str, UnitCost] = field(default_factory=dict)


def load_unit_costs(path: str | Path | None = None) -> dict[str, UnitCost]:
    """Read a unit-cost YAML file (the packaged DOMAIN.md defaults when ``path`` is None).

    Raises
    ------
    features.config.loader.ConfigError
        (a ``ValueError``) naming the file, the key and the value: a service line
        missing or unknown, a negative cost, an unknown ``per``, or invalid YAML.
    FileNotFoundError
        If ``path`` does not exist.
    """
    raw, source = read_yaml(path, "unit_costs.yaml")
    table = build(_UnitCostFile, raw, f"unit-cost table {source}").services
    unknown = sorted(set(table) - set(SERVICE_LINES))
    missing = sorted(set(SERVICE_LINES) - set(table))
    if unknown or missing:
        raise config_error(f"unit-cost table {source}", "services", f"unknown services {unknown}, missing {missing}")
    return table


def unit_cost_per_row(events: pd.DataFrame, costs: dict[str, UnitCost]) -> pd.Series:
    """Unit cost of each event row (per visit, or per day for ``per: day`` lines).

    Each distinct (service, professional) pair is costed once and its rate taken back
    per row (a per-row text split cost ~1.6 µs of CPU an event; the pairs number a few hundred).
    """
    base = events["service"].map({s: c.eur for s, c in costs.items()}).astype(float)
    overrides = {(s, p): v for s, c in costs.items() for p, v in c.by_professional.items()}
    if not (overrides and "professional" in events) or not len(events):
        return base
    pairs = pd.DataFrame({"service": events["service"], "professional": events["professional"]})
    codes = pairs.groupby(["service", "professional"], sort=False, dropna=False, observed=True).ngroup().to_numpy()
    first = np.zeros(codes.max() + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the first row of each pair
    distinct = pairs.iloc[first]
    rate = base.to_numpy()[first].copy()
    special = pd.Series(overrides)
    prof = distinct["professional"].astype("string")
    for who in (prof.str.split(".", n=1).str[0], prof):  # role first, the exact value wins
        key = pd.MultiIndex.from_arrays([distinct["service"].astype("string"), who])
        hit = np.asarray(key.isin(special.index))
        if hit.any():
            rate[hit] = special.reindex(key[hit]).to_numpy()
    return pd.Series(rate[codes], index=events.index, dtype=float)


def episode_days(events: pd.DataFrame) -> pd.Series:
    """Days of care of each event: inclusive day count for episodes, 1 for open or point events."""
    days = (events["end"] - events["start"]).dt.days + 1
    return days.where(days.notna() & (days >= 1), 1).astype(float)


def fill_missing_costs(events: pd.DataFrame, costs: dict[str, UnitCost] | None = None) -> pd.DataFrame:
    """Fill missing ``cost_eur`` from the unit-cost table; mark filled rows in ``cost_imputed``.

    An open episode (no ``end``) is costed as one day: its length is not known
    yet. Rows whose service has no unit cost keep a missing cost.
    """
    costs = load_unit_costs() if costs is None else costs
    out = events.copy()
    missing = out["cost_eur"].isna().to_numpy()
    imputed = np.zeros(len(out), dtype=bool)
    if missing.any():
        sub = out.loc[missing]
        unit = unit_cost_per_row(sub, costs)
        per_day = sub["service"].map({s: c.per == "day" for s, c in costs.items()}).fillna(False).astype(bool)
        fill = unit * np.where(per_day, episode_days(sub), 1.0)
        out.loc[missing, "cost_eur"] = fill.to_numpy()
        imputed[missing] = fill.notna().to_numpy()
    out["cost_imputed"] = imputed
    return out
