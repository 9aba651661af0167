"""Backtest on the synthetic county (base 2021 -> 2024, the population that actually lived there), and the
county's own cohort-component projection."""
import numpy as np
import pandas as pd
import pytest

from features.contract.tables import SERVICE_LINES
from scenarios.backtest import backtest, backtest_summary
from scenarios.projection_synth import cohort_component, observed_projection


@pytest.fixture(scope="module")
def bt(sc_tables, sc_histories):
    return backtest(sc_tables, 2021, 2024, histories=sc_histories)


def test_backtest_compares_every_line_and_year(bt):
    assert set(bt["year"]) == {2022, 2023, 2024} and set(bt["scenario"]) == {"demographic", "dynamics"}
    assert set(bt["service"]) == set(SERVICE_LINES) | {"(all)"}
    seen = bt[bt["observed"] > 0]
    assert np.isfinite(seen["ape"]).all()
    summary = backtest_summary(bt)
    # a sanity bound on the small (1,500-resident) county, where the noise of a few heavy users dominates
    assert (summary["total_cost_ape"] < 0.25).all(), summary.to_string()


def test_observed_projection_counts_the_residents(sc_tables):
    from scenarios.base import residents_at

    obs = observed_projection(sc_tables, [2022])
    clients = sc_tables.tables["clients"]
    assert obs["population"].sum() == pytest.approx(residents_at(clients, "2023-01-01").sum())
    dead = clients["death_date"].between("2022-01-01", "2022-12-31") & residents_at(clients, "2022-01-01")
    assert obs["deaths"].sum() == pytest.approx(dead.sum())


def test_cohort_component_projection(sc_tables):
    proj = cohort_component(sc_tables, 2021, 2024)
    obs = observed_projection(sc_tables, range(2021, 2025)).groupby("year")["population"].sum()
    total = proj.groupby(["variant", "year"])["population"].sum()
    assert total[("base", 2021)] == pytest.approx(obs[2021])             # starts from the records
    assert abs(total[("base", 2024)] / obs[2024] - 1) < 0.05             # three years on, within 5 %
    assert total[("no_migration", 2024)] < total[("base", 2024)]         # the county gains by moving in
    deaths = proj[proj["year"] > 2021].groupby("variant")["deaths"].sum()
    assert (deaths > 0).all()


@pytest.mark.slow
def test_segment_dynamics_beats_the_demographic_model(tmp_path_factory):
    """20,000 residents (seed 1): the dynamics model's total-cost error in 2024 and its mean cost error over the
    major lines and years are below the demographic model's (docs/scenarios.md has the figures)."""
    from features.contract.load import load_tables
    from features.synth import SynthConfig, generate_county

    path = tmp_path_factory.mktemp("bt20k") / "county"
    generate_county(path, SynthConfig(clients=20_000, seed=1, truth_reps=1, workers=1))
    summary = backtest_summary(backtest(load_tables(path), 2021, 2024)).set_index(["scenario", "year"])
    dyn, dem = summary.loc["dynamics"], summary.loc["demographic"]
    assert dyn.loc[2024, "total_cost_ape"] < dem.loc[2024, "total_cost_ape"]
    assert dyn["mean_cost_ape"].mean() < dem["mean_cost_ape"].mean()
