"""The demo's scenario step on the small county: its outputs, the MLflow run, and the event rows it reads from a
validated dataset being those of the whole tables (so the panel, and every figure, is the same)."""
import json

import numpy as np
import pandas as pd
import pytest

from scenarios.demo_step import base_year_frames, demo_scenarios
from scenarios.projection_synth import county_projection, full_years

BASE, TO = 2024, 2025


@pytest.fixture(scope="module")
def dataset(sc_county):
    from features.contract.stream import open_dataset

    with open_dataset(sc_county) as ds:
        yield ds


def test_base_year_rows_of_a_dataset_equal_those_of_the_tables(dataset, sc_tables):
    lazy = base_year_frames(dataset, BASE)["events"]
    eager = base_year_frames(sc_tables, BASE)["events"]
    key = ["client_id", "service", "start"]
    assert len(lazy) == len(eager) < len(sc_tables.tables["events"])
    pd.testing.assert_frame_equal(lazy.sort_values(key).reset_index(drop=True)[eager.columns],
                                  eager.sort_values(key).reset_index(drop=True), check_dtype=False)


def test_demo_step_writes_outputs_and_tracks_the_run(dataset, sc_county, sc_tables, sc_histories, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "scenarios"
    summary = demo_scenarios(dataset, sc_county, out, base_year=BASE, to_year=TO, bootstrap=3,
                             histories=sc_histories, tracking_uri=uri, lang="en")
    assert {p.name for p in out.iterdir()} >= {"scenarios.parquet", "scenarios.csv", "scenarios.html",
                                               "projection.csv"}
    assert "made from the records" in summary["projection"] and summary["bootstrap"] == 3
    assert set(summary["scenarios"]) >= {"demographic", "dynamics", "combined"}
    dyn = summary["scenarios"]["dynamics"]
    assert dyn[f"cost_eur_{BASE}"] > 0 and dyn[f"places_24h_{TO}"] >= 0
    json.dumps(summary)                                    # the demo puts it in demo_summary.json

    got = pd.read_parquet(out / "scenarios.parquet")
    # the projection made from the records is the county's own (the rows read equal the tables', test above)
    made = pd.read_csv(out / "projection.csv")
    want = county_projection(sc_tables, full_years("2019-01-01", "2025-12-31"), TO)
    np.testing.assert_allclose(made["population"].sum(), want["population"].sum(), rtol=1e-6)
    assert set(got["year"]) == {BASE, TO} and set(got["scenario"]) == set(summary["scenarios"])
    total = got[(got["scenario"] == "dynamics") & (got["year"] == BASE) & (got["municipality"] == "(all)")
                & (got["segment"] == "(all)") & (got["service"] == "(all)") & (got["measure"] == "cost")
                & (got["variant"] == "base")]["value"].iloc[0]
    assert total == pytest.approx(dyn[f"cost_eur_{BASE}"], abs=0.1)

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(summary["run_id"])
    assert run.data.params["base_year"] == str(BASE) and run.data.params["bootstrap"] == "3"
