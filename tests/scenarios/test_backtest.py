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


def test_full_years_of_a_period():
    from scenarios.projection_synth import full_years

    assert full_years("2019-01-01", "2025-12-31") == list(range(2019, 2026))
    assert full_years("2019-02-01", "2025-11-30") == list(range(2020, 2025))
    assert full_years("2019-03-01", "2019-12-31") == []


def test_sote_synth_writes_the_county_s_own_projection(tmp_path):
    """`sote synth` adds projection.csv (observed 2023-2025, then the cohort-component trend to 2030), listed in
    the manifest and in the folder's record of sote's own files."""
    import json

    from typer.testing import CliRunner

    from features.contract.load import load_tables
    from features.contract.outputs import owned
    from scenarios.projection import load_projection
    from sote.cli import app

    out = tmp_path / "county"
    res = CliRunner().invoke(app, ["synth", "--out", str(out), "--clients", "150", "--seed", "4",
                                   "--truth-reps", "1", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "projection.csv" in owned(out) and "projection.csv: 2023-2030" in res.output
    entry = json.loads((out / "manifest.json").read_text())["projection"]
    assert entry["written"] and entry["observed_years"] == [2023, 2024, 2025] and entry["projected_years"] == [2026,
                                                                                                             2030]
    proj = load_projection(out / "projection.csv")
    assert set(proj["year"]) == set(range(2023, 2031)) and set(proj["variant"]) == {"base", "no_migration"}
    observed = observed_projection(load_tables(out), [2023, 2024, 2025]).groupby("year")[["population", "deaths"]].sum()
    for variant in ("base", "no_migration"):
        got = proj[(proj["variant"] == variant) & (proj["year"] <= 2025)].groupby("year")[["population", "deaths"]]
        np.testing.assert_allclose(got.sum().to_numpy(), observed.to_numpy(), atol=1e-3)   # 4 decimals in the CSV
    later = proj[proj["year"] == 2030].groupby("variant")["population"].sum()
    assert later["no_migration"] < later["base"]
