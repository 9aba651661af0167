"""``sote scenarios``: outputs, the MLflow run (aggregates only, small cells left out) and the messages of bad input."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def projection(sc_observed, tmp_path_factory):
    path = tmp_path_factory.mktemp("proj") / "projection.csv"
    sc_observed.to_csv(path, index=False)
    return path


def _args(county, projection, out, *extra):
    return ["scenarios", "--data", str(county), "--projection", str(projection), "--base-year", "2021",
            "--to", "2023", "--out", str(out), "--bootstrap", "5", *extra]


def test_scenarios_writes_table_report_and_mlflow_run(sc_county, sc_tables, projection, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "scen"
    res = runner.invoke(app, _args(sc_county, projection, out, "--tracking-uri", uri, "--lang", "en"))
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "scenarios.parquet")
    assert len(pd.read_csv(out / "scenarios.csv")) == len(table)
    assert set(table["year"]) == {2021, 2022, 2023}
    html = (out / "scenarios.html").read_text()
    assert "<svg" in html and "Scenarios side by side" in html
    mlflow.set_tracking_uri(uri)
    run = mlflow.search_runs(experiment_names=["sote-scenarios"]).iloc[0]
    assert run["params.base_year"] == "2021" and run["params.bootstrap"] == "5"
    client = mlflow.MlflowClient()
    local = client.download_artifacts(run["run_id"], "scenarios", str(tmp_path / "art"))
    aggregates = pd.read_csv(f"{local}/aggregates.csv")
    assert len(aggregates) and (aggregates["base_clients"] >= 50).all()      # small cells left out
    assert (table["base_clients"] < 50).any()                                # ... but kept in the tidy table
    ids = set(sc_tables.tables["clients"]["client_id"].astype(str))
    for name in ("aggregates.csv", "config.json", "scenarios.html"):
        text = open(f"{local}/{name}", encoding="utf-8").read()
        assert not any(i in text for i in list(ids)[:500]), name


def test_projection_missing_a_municipality_is_named(sc_county, sc_observed, tmp_path):
    path = tmp_path / "p.csv"
    sc_observed[sc_observed["municipality"] != "Pornainen"].to_csv(path, index=False)
    res = runner.invoke(app, _args(sc_county, path, tmp_path / "o", "--no-track"))
    assert res.exit_code == ExitCode.USER_ERROR
    assert "municipality ['Pornainen']" in res.output


def test_negative_count_and_unknown_key_are_named(sc_county, sc_observed, tmp_path):
    path = tmp_path / "p.csv"
    bad = sc_observed.copy()
    bad.loc[10, "population"] = -1
    bad.to_csv(path, index=False)
    res = runner.invoke(app, _args(sc_county, path, tmp_path / "o", "--no-track"))
    assert res.exit_code == ExitCode.USER_ERROR and "row 10" in res.output and "population" in res.output
    cfg = tmp_path / "s.yaml"
    cfg.write_text("scenarios: {a: {labels: {fi: a, sv: a, en: a}, reach: 0.2}}")
    res = runner.invoke(app, _args(sc_county, tmp_path / "p.csv", tmp_path / "o", "--no-track", "--config", str(cfg)))
    assert res.exit_code == ExitCode.USER_ERROR and "unknown key(s) ['reach']" in res.output
