"""Backtest: project from an earlier base year with the population that actually lived there, compare with the records.

On a county whose later years are in the records (the synthetic county's are),
:func:`backtest` runs the scenarios from ``base_year`` to ``to_year`` on the
observed population and deaths (:func:`scenarios.projection_synth.observed_projection`)
and compares clients, volume (visits or care days) and cost per service line, and
in total, with what the records show in each later year: the absolute percentage
error (APE).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract.tables import SERVICE_LINES
from scenarios.base import observed_totals
from scenarios.projection_synth import observed_projection
from scenarios.run import ALL, project_scenarios
from scenarios.spec import load_scenarios

#: Service lines whose error the docs call "major" (most of the cost).
MAJOR_LINES = ("specialist_outpatient", "inpatient", "housing_24h", "home_care", "disability_services",
               "primary_care_visit", "emergency")


def backtest(tables, base_year: int, to_year: int, *, scenarios=("demographic", "dynamics"), config=None,
             needs_config=None, unit_costs=None, histories=None) -> pd.DataFrame:
    """Projected against recorded figures per scenario, year after the base year, service line and measure.

    Returns
    -------
    pandas.DataFrame
        ``scenario, year, service, measure, projected, observed, ape`` (``service`` ``(all)``:
        total cost); ``ape`` = |projected - observed| / observed (missing when nothing was observed).
    """
    cfg = load_scenarios(config)
    projection = observed_projection(tables, range(base_year, to_year + 1))
    result = project_scenarios(tables, projection, base_year=base_year, to_year=to_year, config=cfg,
                               needs_config=needs_config, unit_costs=unit_costs, bootstrap=0,
                               scenarios=list(scenarios), histories=histories)
    t = result.table
    t = t[(t["municipality"] == ALL) & (t["segment"] == ALL) & (t["year"] > base_year)]
    rows = []
    for year in range(base_year + 1, to_year + 1):
        obs = observed_totals(tables, year, unit_costs)
        for name in scenarios:
            part = t[(t["scenario"] == name) & (t["year"] == year)].set_index(["service", "measure"])["value"]
            for v in SERVICE_LINES:
                volume = "care_days" if (v, "care_days") in part.index else "contacts"
                for measure, col in (("clients", "clients"), (volume, "volume"), ("cost", "cost")):
                    rows.append((name, year, v, measure, part[(v, measure)], obs.loc[v, col]))
            rows.append((name, year, ALL, "cost", part[(ALL, "cost")], obs["cost"].sum()))
    out = pd.DataFrame(rows, columns=["scenario", "year", "service", "measure", "projected", "observed"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ape"] = np.where(out["observed"] > 0, (out["projected"] - out["observed"]).abs() / out["observed"], np.nan)
    return out


def backtest_summary(bt: pd.DataFrame, lines=MAJOR_LINES) -> pd.DataFrame:
    """Per scenario and year: total-cost APE, the mean and the largest cost APE of ``lines``, and the
    mean APE of clients and volume over ``lines``."""
    cost = bt[bt["measure"] == "cost"]
    total = cost[cost["service"] == ALL].set_index(["scenario", "year"])["ape"].rename("total_cost_ape")
    major = bt[bt["service"].isin(lines)]
    by = major.groupby(["scenario", "year", major["measure"].where(major["measure"].isin(["clients", "cost"]),
                                                                      "volume")])["ape"]
    wide = by.mean().unstack().rename(columns=lambda c: f"mean_{c}_ape")
    worst = major[major["measure"] == "cost"].groupby(["scenario", "year"])["ape"].max().rename("max_line_cost_ape")
    return pd.concat([total, wide, worst], axis=1).reset_index()
