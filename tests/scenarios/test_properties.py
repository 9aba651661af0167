"""Properties of the projection (on the unsuppressed figures), on the small synthetic county, base year 2021."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.contract.tables import SERVICE_LINES
from scenarios.run import ALL, project_scenarios
from scenarios.spec import HealthyAgeing, Intervention, load_scenarios

BASE, TO = 2021, 2024


@pytest.fixture(scope="module")
def cfg():
    c = load_scenarios()
    scen = dict(c.scenarios)
    scen["no_reach"] = dataclasses.replace(scen["early_support"],
                                           intervention=dataclasses.replace(scen["early_support"].intervention,
                                                                            reach=0.0))
    scen["no_shift"] = dataclasses.replace(scen["dynamics"], healthy_ageing=HealthyAgeing(0.0))
    return dataclasses.replace(c, scenarios=scen, bootstrap=20)


def _run(tables, histories, projection, cfg, names):
    return project_scenarios(tables, projection, base_year=BASE, to_year=TO, config=cfg, scenarios=names,
                             histories=histories)


@pytest.fixture(scope="module")
def result(sc_tables, sc_histories, sc_observed, cfg):
    return _run(sc_tables, sc_histories, sc_observed, cfg, list(cfg.scenarios))


def _figures(result, scenario):
    t = result.table
    return t[t["scenario"] == scenario].set_index(["variant", "year", "municipality", "segment", "service",
                                                   "measure"])


def test_zero_population_gives_zero_need(sc_tables, sc_histories, sc_observed, cfg):
    zero = sc_observed.assign(population=0.0, deaths=0.0)
    r = _run(sc_tables, sc_histories, zero, cfg, ["demographic", "dynamics", "combined"])
    later = r.table[r.table["year"] > BASE]
    assert len(later) and (later[["value", "low", "high"]].abs().to_numpy() < 1e-9).all()


def test_doubling_the_population_doubles_every_count(sc_tables, sc_histories, sc_observed, cfg, result):
    double = sc_observed.assign(population=sc_observed["population"] * 2, deaths=sc_observed["deaths"] * 2)
    r = _run(sc_tables, sc_histories, double, cfg, ["demographic", "dynamics", "proximity_to_death", "combined"])
    for name in ("demographic", "dynamics", "proximity_to_death", "combined"):
        a = _figures(result, name)
        b = _figures(r, name)
        later = a.index.get_level_values("year") > BASE
        assert np.allclose(b.loc[later, "value"], 2 * a.loc[later, "value"], rtol=1e-9, atol=1e-6), name
        assert np.allclose(b.loc[later, "high"], 2 * a.loc[later, "high"], rtol=1e-9, atol=1e-6), name


def test_intervention_reaching_nobody_equals_its_model(result):
    a, b = _figures(result, "no_reach"), _figures(result, "dynamics")
    assert np.array_equal(a[["value", "low", "high"]].to_numpy(), b[["value", "low", "high"]].to_numpy())
    c = _figures(result, "no_shift")
    assert np.allclose(c["value"], b["value"])                       # healthy ageing by 0 years: no change


def test_intervention_lowers_only_its_segments_lines_and_years(result):
    iv = result.config.scenarios["early_support"].intervention
    a, b = _figures(result, "early_support")["value"], _figures(result, "dynamics")["value"]
    diff = (b - a)
    assert (diff >= -1e-9).all()
    moved = diff[diff > 1e-6].index
    assert set(moved.get_level_values("year")) <= set(range(BASE + 1, TO + 1))
    assert set(moved.get_level_values("segment")) <= set(iv.segments) | {ALL}
    assert set(moved.get_level_values("service")) <= set(iv.reduction) | {ALL}
    assert set(moved.get_level_values("measure")) <= {"contacts", "care_days", "places_24h", "cost"}
    assert len(moved)                                                # and it does lower something


def test_intervals_contain_the_point(result):
    t = result.table
    assert (t["low"] <= t["value"] + 1e-6).all() and (t["value"] <= t["high"] + 1e-6).all()
    later = t[(t["year"] > BASE) & (t["measure"] == "cost") & (t["service"] == ALL) & (t["municipality"] == ALL)
              & (t["segment"] == ALL)]
    assert (later["high"] > later["low"]).all()                       # the bootstrap does spread


def test_base_year_reproduces_the_panel(sc_tables, sc_histories, sc_observed, cfg):
    exact = dataclasses.replace(cfg, min_cell_residents=1, bootstrap=0)
    r = _run(sc_tables, sc_histories, sc_observed, exact, ["demographic", "dynamics"])
    panel = r.panel
    t = r.table
    base = t[(t["year"] == BASE) & (t["municipality"] == ALL) & (t["segment"] == ALL)]
    for name in ("demographic", "dynamics"):
        part = base[base["scenario"] == name].set_index(["service", "measure"])["value"]
        assert part[(ALL, "cost")] == pytest.approx(panel.cost.dot(np.ones(len(SERVICE_LINES))).
                                                    dot(panel.rows["weight"]), rel=1e-9)
        assert part[(ALL, "residents")] == pytest.approx(panel.residents["weight"].sum())
        j = SERVICE_LINES.index("housing_24h")
        assert part[("housing_24h", "places_24h")] == pytest.approx(
            (panel.volume[:, j] * panel.rows["weight"]).sum() / 365)


def test_tidy_table_columns_and_no_client_ids(result):
    t = result.table
    assert list(t.columns) == ["scenario", "variant", "year", "municipality", "segment", "service", "measure",
                               "value", "low", "high", "base_clients"]
    assert set(t["measure"]) == {"residents", "clients", "contacts", "care_days", "places_24h", "cost"}
    ids = set(result.panel.rows["client_id"])
    for col in ("municipality", "segment", "service"):
        assert not set(t[col]) & ids


def test_age_lookup_reads_younger_ages_for_healthy_ageing():
    from scenarios.engine import age_lookup

    bands = (0, 7, 18, 30, 45, 65, 75, 85)
    lo, hi, frac = age_lookup(bands, 0.0)
    assert not frac.any() and lo[75] == 6 and lo[74] == 5
    lo, hi, frac = age_lookup(bands, 0.5)          # 75-year-olds read half as 74, half as 75
    assert (lo[75], hi[75], frac[75]) == (5, 6, 0.5)
    lo, hi, frac = age_lookup(bands, 2.0)          # 86-year-olds read as 84
    assert lo[86] == 6 and frac[86] == 0 and lo[0] == 0


def test_housing_and_home_care_are_states_but_the_table_has_need_segments(result):
    panel = result.panel
    assert "frailty+housing_24h" in panel.segments and "frailty+home_care" in panel.segments
    assert len(panel.segments) == 3 * len(panel.need_segments)
    t = result.table
    assert set(t["segment"]) == set(panel.need_segments) | {ALL}
    res = t[(t["measure"] == "residents") & (t["municipality"] == ALL) & (t["scenario"] == "dynamics")]
    total = res[res["segment"] == ALL].set_index("year")["value"]
    assert np.allclose(res[res["segment"] != ALL].groupby("year", observed=True)["value"].sum(), total)
    for service in ("housing_24h", "home_care"):
        inside = panel.rows["segment"].isin([i for i, s in enumerate(panel.segments) if s.endswith("+" + service)])
        j = list(SERVICE_LINES).index(service)
        # those in the service on 1 January use it during the year far more often than the rest
        used = panel.volume[:, j] > 0
        assert inside.any() and used[inside.to_numpy()].mean() > 3 * used[~inside.to_numpy()].mean()
