"""The projection layout: the pandera loader, the grid the engine reads, the StatFin PxWeb converter."""
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.projection import MAX_AGE, ProjectionError, load_projection, projection_grid, validate_projection
from scenarios.statfin import read_statfin_csv, statfin_projection

DATA = Path(__file__).parent / "samples"


def _frame(**over):
    rows = [{"municipality": m, "sex": s, "age": a, "year": y, "variant": "base", "population": 10.0, "deaths": 0.1}
            for m in ("A", "B") for s in ("F", "M") for a in range(MAX_AGE + 1) for y in (2024, 2025)]
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


def test_sample_projection_loads_and_spreads_bands():
    path = resources.files("scenarios.samples").joinpath("sample_projection.csv")
    proj = load_projection(Path(str(path)))
    raw = pd.read_csv(Path(str(path)))
    assert proj["population"].sum() == pytest.approx(raw["population"].sum())   # nothing lost in the spreading
    assert set(proj["age"]) == set(range(MAX_AGE + 1))
    five = proj[(proj["municipality"] == "Hyvinkää") & (proj["sex"] == "F") & (proj["year"] == 2024)
                & proj["age"].between(0, 4)]["population"]
    assert np.allclose(five, 1190.2 / 5)
    grid = projection_grid(proj, ["Hyvinkää", "Pornainen"], [2024, 2025, 2026])
    assert grid.population.shape == (1, 2, 2, MAX_AGE + 1, 3)


def test_bad_rows_are_named_all_at_once():
    df = _frame()
    df.loc[3, "population"] = -5.0
    df.loc[7, "sex"] = "Q"
    with pytest.raises(ProjectionError) as err:
        validate_projection(df, "p.csv")
    msg = str(err.value)
    assert "p.csv" in msg and "population" in msg and "row 3" in msg and "sex" in msg and "row 7" in msg
    assert "'Q'" in msg


def test_missing_column_repeated_key_and_non_integer_age():
    with pytest.raises(ProjectionError, match=r"missing column\(s\) \['deaths'\]"):
        validate_projection(_frame().drop(columns="deaths"))
    with pytest.raises(ProjectionError, match="repeated key"):
        validate_projection(pd.concat([_frame(), _frame().iloc[:2]], ignore_index=True))
    df = _frame()
    df["age"] = df["age"].astype(float)
    df.loc[5, "age"] = 2.5
    with pytest.raises(ProjectionError, match=r"column age: not an integer in 1 row\(s\): row 5"):
        validate_projection(df)


def test_deaths_above_the_start_population_are_refused():
    df = _frame()
    df.loc[(df["year"] == 2025) & (df["age"] == 80), "deaths"] = 50.0   # 10 people at the start of 2025
    with pytest.raises(ProjectionError, match="deaths above the population"):
        validate_projection(df)


def test_grid_names_a_missing_municipality_year_or_cell():
    proj = validate_projection(_frame())
    with pytest.raises(ProjectionError, match=r"municipality \['C'\]"):
        projection_grid(proj, ["A", "C"], [2024])
    with pytest.raises(ProjectionError, match=r"year \[2026\]"):
        projection_grid(proj, ["A"], [2024, 2026])
    holed = validate_projection(_frame().query("not (municipality == 'B' and age == 77 and sex == 'M')"))
    with pytest.raises(ProjectionError, match="B, M, 77, 2024"):
        projection_grid(holed, ["A", "B"], [2024, 2025])


def test_statfin_wide_finnish_export():
    pop = read_statfin_csv(DATA / "statfin_vaenn_fi.csv")
    assert set(pop["municipality"]) == {"Hyvinkää", "Pornainen"}          # codes stripped, totals dropped
    assert set(pop["sex"]) == {"F", "M"} and set(pop["year"]) == {2024, 2025}
    row = pop[(pop["municipality"] == "Hyvinkää") & (pop["sex"] == "M") & (pop["age_band"] == "1")
              & (pop["year"] == 2025)]
    assert row["population"].tolist() == [199.0]
    assert len(pop) == 2 * 2 * 4 * 2


def test_statfin_with_deaths_export_gives_the_layout():
    proj = statfin_projection(DATA / "statfin_vaenn_fi.csv", DATA / "statfin_deaths_en.csv")
    assert list(proj.columns) == ["municipality", "sex", "age", "year", "variant", "population", "deaths"]
    old = proj[(proj["municipality"] == "Hyvinkää") & (proj["sex"] == "F") & (proj["age"] == 100)]
    assert old["population"].tolist() == [14.0, 15.0] and old["deaths"].tolist() == [1.5, 1.5]


def test_statfin_deaths_from_rates():
    rates = pd.DataFrame({"sex": ["F", "M"] * 101, "age": np.repeat(np.arange(101), 2), "rate": 0.01})
    proj = statfin_projection(DATA / "statfin_vaenn_fi.csv", death_rates=rates)
    r = proj[(proj["municipality"] == "Hyvinkää") & (proj["sex"] == "M") & (proj["age"] == 0)]
    assert r["deaths"].tolist() == pytest.approx([2.01, 2.01])   # 1 % of the start population (2024: its own)


def test_statfin_bad_export_names_line_and_value():
    with pytest.raises(ProjectionError) as err:
        read_statfin_csv(DATA / "statfin_bad.csv")
    msg = str(err.value)
    assert "line 2: sex 'Molemmat'" in msg and "line 3" in msg and "'..'" in msg
