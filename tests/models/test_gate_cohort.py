"""A useless model fails the quality gate and is not registered; a cohort model scores only its cohort.

(That a custom feature spec trains, registers and scores is shown in test_scoring.py.)
"""
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.targets.labels import population
from models.scoring import RiskList, score
from sote.app import ExitCode
from sote.cli import app

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('gate_store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def useless(county_3000, store):
    """``sote train --target young_adult_mhsu --register`` on the 3,000-client county (96 validation cohort
    members): the command's result and the MLflow run it logged."""
    # --seed 1: since issue 18's calibration the default seed's client-disjoint calibration slice holds one
    # outcome, so training stops before the gate
    res = CliRunner().invoke(app, ["train", "--data", str(county_3000), "--target", "young_adult_mhsu",
                                   "--register", "--tracking-uri", store, "--experiment", "gate", "--seed", "1"])
    runs = mlflow.MlflowClient(store).search_runs(
        [mlflow.MlflowClient(store).get_experiment_by_name("gate").experiment_id])
    assert len(runs) == 1, res.output
    return res, runs[0]


def test_a_useless_model_on_a_tiny_cohort_fails_the_gate_and_is_not_registered(useless, store):
    res, run = useless
    assert res.exit_code == ExitCode.QUALITY_GATE, res.output
    assert "quality gate failed" in res.output and "no better than chance" in res.output
    assert "Traceback" not in res.output
    assert run.data.tags["quality_gate"] == "failed"
    assert run.data.metrics["valid_auroc"] == 0.5 and run.data.metrics["valid_auroc_lower95"] == 0.5
    assert mlflow.MlflowClient(store).search_model_versions("name='young_adult_mhsu'") == []
    decision = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/registry_decision.txt")
    assert decision.startswith("not registered: quality gate failed")


def test_a_cohort_model_scores_only_its_own_cohort(useless, tables_3000, store, tmp_path):
    out = tmp_path / "mhsu.parquet"
    model_uri = mlflow.MlflowClient(store).search_logged_models([useless[1].info.experiment_id])[0].model_uri
    sidecar = score(model_uri, tables_3000, "2025-01-01", out, tracking_uri=store, reasons=0)
    risk = RiskList.validate(pd.read_parquet(out))
    t = pd.Timestamp("2025-01-01")
    pop = population(tables_3000.tables["clients"], t)
    events = tables_3000.tables["events"]
    recent = events[(events["service"] == "mental_health_substance") & (events["start"] < t)
                    & (events["start"] >= t - pd.Timedelta(days=365))]
    eligible = set(pop.index[(pop["age"] >= 18) & (pop["age"] <= 29)]) & set(recent["client_id"].astype(str))
    assert set(risk["client_id"]) == eligible and 0 < len(risk) < len(pop)
    assert sidecar["resident"] == len(pop) and sidecar["outside_cohort"] == len(pop) - len(risk)
    assert risk["percentile"].max() == 100.0 and risk["rank"].tolist() == list(range(1, len(risk) + 1))
    assert json.loads(out.with_name("mhsu.parquet.json").read_text())["outside_cohort"] > 2000
    assert np.isfinite(risk["probability"]).all()
