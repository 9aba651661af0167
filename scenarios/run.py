"""Run the declared scenarios on a county and a projection: the library call behind ``sote scenarios``.

>>> from features.contract.load import load_tables
>>> from scenarios.run import project_scenarios
>>> result = project_scenarios(load_tables("out/county"), "out/county/projection.csv",
...                            base_year=2024, to_year=2030)             # doctest: +SKIP
>>> result.table   # tidy: scenario, variant, year, municipality, segment, service, measure, value, low, high
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract.costs import UnitCost
from features.contract.tables import EPISODE_SERVICES, SERVICE_LINES
from scenarios.base import BasePanel, build_panel, residents_at
from scenarios.engine import BaseState, ScenarioRun, base_state, run_scenario
from scenarios.projection import ProjectionError, load_projection, projection_grid, validate_projection
from scenarios.rates import bootstrap_weights, cell_sums, estimate_rates, top_risk_flags
from scenarios.spec import ScenariosConfig, check_segments, load_scenarios

ALL = "(all)"
#: Measures of the tidy table.
MEASURES = ("residents", "clients", "contacts", "care_days", "places_24h", "cost")


@dataclass
class ScenarioResult:
    """The figures of every scenario, variant, year, municipality, segment and service line.

    Attributes
    ----------
    table
        Tidy: ``scenario, variant, year, municipality, segment, service, measure, value, low, high,
        base_clients`` (``(all)`` rows sum municipalities, segments or, for cost, service lines;
        ``base_clients``: real clients of the base year behind the row, for small-cell rules).
    runs
        The raw :class:`scenarios.engine.ScenarioRun` arrays (round 0 the point estimate), over the
        states of the dynamics (``panel.segments``); the table sums them into the need-based segments.
    config, panel, state
        What the run used.
    """

    table: pd.DataFrame
    runs: list[ScenarioRun]
    config: ScenariosConfig
    panel: BasePanel
    state: BaseState
    years: tuple[int, ...]
    meta: dict = field(default_factory=dict)


def _projection(projection) -> pd.DataFrame:
    if isinstance(projection, pd.DataFrame):
        return validate_projection(projection, "projection")
    return load_projection(projection)


def project_scenarios(tables, projection, *, base_year: int, to_year: int, config: str | Path | ScenariosConfig
                      | None = None, needs_config: str | Path | None = None,
                      unit_costs: dict[str, UnitCost] | None = None, bootstrap: int | None = None,
                      scenarios: list[str] | None = None, histories=None) -> ScenarioResult:
    """Base-year rates and dynamics of a county, projected to ``to_year`` under every declared scenario.

    Parameters
    ----------
    tables
        Validated tables (``load_tables``) or a mapping of name -> DataFrame.
    projection
        A projection file or DataFrame in the layout (:mod:`scenarios.projection`).
    base_year, to_year
        Base year (a full year of records, and 1 January after it) and last year.
    config
        Scenarios file or config (the packaged ``scenarios.yaml`` when None).
    needs_config, unit_costs
        Need-based segments YAML and unit-cost table (the packaged ones when None).
    bootstrap
        Rounds of the bootstrap (the config's when None).
    scenarios
        Names of the scenarios to run (all when None).

    Raises
    ------
    scenarios.projection.ProjectionError
        If the projection lacks a municipality, a year or a cell the run needs.
    features.config.loader.ConfigError
        If the scenarios file is wrong (names the key).
    """
    cfg = config if isinstance(config, ScenariosConfig) else load_scenarios(config)
    if to_year <= base_year:
        raise ValueError(f"the last year ({to_year}) must be after the base year ({base_year})")
    names = list(cfg.scenarios) if scenarios is None else list(scenarios)
    unknown = [n for n in names if n not in cfg.scenarios]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; declared: {list(cfg.scenarios)}")
    proj = _projection(projection)
    years = tuple(range(base_year, to_year + 1))
    frames = tables.tables if hasattr(tables, "tables") else tables
    clients = frames["clients"]
    munis = clients.loc[residents_at(clients, f"{base_year}-01-01"), "municipality"].astype(str).unique()
    grid = projection_grid(proj, munis, years, "projection")   # before any work: a gap is named at once
    panel = build_panel(tables, base_year, cfg.age_bands, needs_config=needs_config, unit_costs=unit_costs,
                        histories=histories, ongoing=cfg.ongoing_states)
    check_segments(cfg, panel.need_segments)
    state = base_state(panel)
    if state.municipalities != grid.municipalities:
        grid = projection_grid(proj, state.municipalities, years, "projection")
    flags = {f"{n}:top": top_risk_flags(panel, cfg.scenarios[n].intervention.segments,
                                        cfg.scenarios[n].intervention.top_share)
             for n in names if cfg.scenarios[n].intervention is not None}
    rounds = cfg.bootstrap if bootstrap is None else bootstrap
    n_clients = panel.rows["client_id"].nunique()
    weights = bootstrap_weights(n_clients, rounds, cfg.seed)
    rates = estimate_rates(cell_sums(panel, weights, flags), cfg.min_cell_residents)
    runs = [run_scenario(n, cfg.scenarios[n], panel, state, rates, grid, v, years)
            for n in names for v in grid.variants]
    table = tidy(runs, panel, state, cfg.interval)
    return ScenarioResult(table, runs, cfg, panel, state, years,
                          {"rounds": rounds, "variants": grid.variants, "clients": int(n_clients)})


def _summary(draws: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point (round 0) and the central ``interval`` of the bootstrap rounds (round 0 when there are none).

    A percentile interval can miss the full-sample point in a skewed small cell or
    with few rounds; the interval is then extended to the point, so it always holds it.
    """
    point = draws[:, 0]
    if draws.shape[1] < 2:
        return point, point, point
    lo, hi = np.quantile(draws[:, 1:], [(1 - interval) / 2, (1 + interval) / 2], axis=1)
    return point, np.minimum(lo, point), np.maximum(hi, point)


def _with_totals(x: np.ndarray, seg_axis: int, muni_axis: int) -> np.ndarray:
    """Append the sum over municipalities and over segments as an extra last index on each axis."""
    x = np.concatenate([x, x.sum(muni_axis, keepdims=True)], axis=muni_axis)
    return np.concatenate([x, x.sum(seg_axis, keepdims=True)], axis=seg_axis)


def tidy(runs: list[ScenarioRun], panel: BasePanel, state: BaseState, interval: float) -> pd.DataFrame:
    """The runs as one long table (see :class:`ScenarioResult`); text columns are categorical."""
    munis = list(state.municipalities) + [ALL]
    segs = list(panel.need_segments) + [ALL]
    services = [ALL] + list(SERVICE_LINES)
    onehot = np.eye(len(panel.need_segments))[panel.state_segment]     # [state, need segment]

    def need(x, axis):
        """States summed into their need-based segments on ``axis``."""
        return np.moveaxis(np.tensordot(np.moveaxis(x, axis, -1), onehot, axes=1), -1, axis)

    bc = _with_totals(need(state.base_clients, 1), 1, 0)                 # [m+1, k+1, v]
    br = _with_totals(need(state.base_residents, 1), 1, 0)               # [m+1, k+1]
    cols = {c: [] for c in ("scenario", "variant", "year", "municipality", "segment", "service", "measure",
                            "value", "low", "high", "base_clients")}
    scen_names = list(dict.fromkeys(r.scenario for r in runs))
    variants = list(dict.fromkeys(r.variant for r in runs))
    for run in runs:
        years = np.array(run.years)
        grid = [g.ravel() for g in np.meshgrid(np.arange(len(years)), np.arange(len(munis)), np.arange(len(segs)),
                                               indexing="ij")]
        n = grid[0].size

        def emit(draws, service, measure, base):
            p, lo, hi = _summary(draws, interval)            # draws [year, round, m+1, k+1]
            cols["scenario"].append(np.full(n, scen_names.index(run.scenario)))
            cols["variant"].append(np.full(n, variants.index(run.variant)))
            cols["year"].append(years[grid[0]])
            cols["municipality"].append(grid[1])
            cols["segment"].append(grid[2])
            cols["service"].append(np.full(n, services.index(service)))
            cols["measure"].append(np.full(n, MEASURES.index(measure)))
            cols["value"].append(p.ravel())
            cols["low"].append(lo.ravel())
            cols["high"].append(hi.ravel())
            cols["base_clients"].append(np.broadcast_to(base, p.shape).ravel())

        emit(_with_totals(need(run.residents, 3), 3, 2), ALL, "residents", br[None])
        clients = _with_totals(need(run.clients, 3), 3, 2)
        volume = _with_totals(need(run.volume, 3), 3, 2)
        cost = _with_totals(need(run.cost, 3), 3, 2)
        for j, v in enumerate(SERVICE_LINES):
            emit(clients[..., j], v, "clients", bc[None, ..., j])
            emit(volume[..., j], v, "care_days" if v in EPISODE_SERVICES else "contacts", bc[None, ..., j])
            if v == "housing_24h":
                emit(volume[..., j] / 365.0, v, "places_24h", bc[None, ..., j])
            emit(cost[..., j], v, "cost", bc[None, ..., j])
        emit(cost.sum(-1), ALL, "cost", br[None])
    data = {c: np.concatenate(v) for c, v in cols.items()}
    labels = {"scenario": scen_names, "variant": variants, "municipality": munis, "segment": segs,
              "service": services, "measure": list(MEASURES)}
    out = pd.DataFrame({c: (pd.Categorical.from_codes(data[c], labels[c]) if c in labels else data[c])
                        for c in cols})
    out["year"] = out["year"].astype("int64")
    return out


def check_projection_years(projection: pd.DataFrame, base_year: int, to_year: int) -> None:
    """Refuse early a projection that lacks a year the run needs (``base_year`` .. ``to_year``)."""
    have = set(projection["year"])
    lack = [y for y in range(base_year, to_year + 1) if y not in have]
    if lack:
        raise ProjectionError(f"projection: no rows for year {lack}; the run needs {base_year}-{to_year}")
