"""Two scenarios side by side for one municipality (scenarios.compare), on the small county, base year 2021."""
import numpy as np
import pytest

from scenarios.compare import compare_chart, compare_two
from scenarios.run import ALL, project_scenarios


@pytest.fixture(scope="module")
def table(sc_tables, sc_histories, sc_observed):
    return project_scenarios(sc_tables, sc_observed, base_year=2021, to_year=2023, bootstrap=3,
                             scenarios=["dynamics", "early_support"], histories=sc_histories).table


def test_compare_two_reads_the_table(table):
    muni = "Hyvinkää"
    cmp = compare_two(table, muni, "dynamics", "early_support")
    assert (cmp["year"] == 2023).all() and (cmp["base_year"] == 2021).all()
    np.testing.assert_allclose(cmp["difference"], cmp["b"] - cmp["a"])
    total = cmp[(cmp["service"] == ALL) & (cmp["measure"] == "cost")].iloc[0]
    want = table[(table["scenario"] == "early_support") & (table["municipality"] == muni)
                 & (table["segment"] == ALL) & (table["service"] == ALL) & (table["measure"] == "cost")
                 & (table["year"] == 2023) & (table["variant"] == table["variant"].iloc[0])]["value"].iloc[0]
    assert total["b"] == pytest.approx(want)
    housing = cmp[(cmp["service"] == "housing_24h") & (cmp["measure"] == "cost")].iloc[0]
    assert housing["b"] <= housing["a"] and housing["line"] == "24-hour housing"  # the intervention lowers it
    assert set(cmp["measure"]) == {"clients", "volume", "places_24h", "cost"}
    assert (cmp["a_low"] <= cmp["a"]).all() and (cmp["b"] <= cmp["b_high"]).all()


def test_compare_names_what_is_missing(table):
    with pytest.raises(ValueError, match="no municipality 'Espoo'"):
        compare_two(table, "Espoo", "dynamics", "early_support")
    with pytest.raises(ValueError, match=r"no scenario\(s\) \['combined'\]"):
        compare_two(table, "Hyvinkää", "dynamics", "combined")
    with pytest.raises(ValueError, match="no year 2030"):
        compare_two(table, "Hyvinkää", "dynamics", "early_support", year=2030)


def test_compare_chart_is_an_svg_with_both_scenarios(table):
    svg = compare_chart(table, "Hyvinkää", "dynamics", "early_support", service="housing_24h",
                        measure="places_24h", labels={"dynamics": "Segment dynamics", "early_support": "Early"})
    assert svg.startswith("<svg") and "Segment dynamics" in svg and "Early" in svg and "<polygon" in svg
