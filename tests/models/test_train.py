"""Training on a small synthetic county: temporal validation, baselines, MLflow round trip, privacy, SHAP."""
import re

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county
from models.explain import contributions
from models.train import TrainConfig, train


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "county"
    generate_county(path, SynthConfig(clients=8_000, seed=31, truth_reps=8, workers=1))
    return path


@pytest.fixture(scope="module")
def trained(county, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    result = train(county, TrainConfig(target="high_use", train_as_of="2023-01-01", valid_as_of="2024-01-01"),
                   register=True, tracking_uri=uri)
    return result, uri


def test_model_beats_baselines_and_approaches_the_oracle(trained):
    result, _ = trained
    m = result.metrics.set_index("model")
    assert m.loc["lightgbm", "auroc"] > max(m.loc["prior_cost", "auroc"], m.loc["age_sex_comorbidity", "auroc"]) + 0.01
    assert m.loc["lightgbm", "auroc"] > 0.95 * m.loc["oracle", "auroc"]
    assert m.loc["lightgbm", "calibration_error"] < 0.03
    assert set(result.groups["grouping"]) == {"sex", "language", "age_band", "municipality"}


def test_registered_pyfunc_round_trip_returns_the_same_probabilities(trained, county):
    result, uri = trained
    mlflow.set_tracking_uri(uri)
    assert result.promoted and result.version == "1"
    loaded = mlflow.pyfunc.load_model("models:/high_use@champion")
    from features.histories.build import build_features

    X = build_features(load_tables(county), "2024-01-01").head(500)
    proba = result.model.predict_proba(X)
    assert proba.shape == (500, 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(loaded.predict(X), proba[:, 1], rtol=0, atol=1e-12)
    assert loaded.unwrap_python_model().spec().column_names() == result.model.spec().column_names()


def test_no_client_identifier_in_any_logged_artifact(trained, county):
    result, uri = trained
    mlflow.set_tracking_uri(uri)
    ids = set(pd.read_parquet(county / "clients.parquet", columns=["client_id"])["client_id"])
    root = mlflow.artifacts.download_artifacts(run_id=result.run_id)
    import pathlib

    files = [p for p in pathlib.Path(root).rglob("*") if p.is_file()]
    assert any(p.name == "model_card.md" for p in files) and any(p.suffix == ".png" for p in files)
    model_files = mlflow.artifacts.download_artifacts(result.model_uri)
    files += [p for p in pathlib.Path(model_files).rglob("*") if p.is_file()]
    for path in files:
        tokens = set(re.findall(rb"[0-9a-f]{12}", path.read_bytes()))
        assert not {t.decode() for t in tokens} & ids, path


def test_temporal_split_is_enforced(county, tmp_path):
    with pytest.raises(ValueError, match="at least one horizon after"):
        train(county, TrainConfig(train_as_of="2023-01-01", valid_as_of="2023-07-01"), log=False)
    with pytest.raises(ValueError, match="data end"):
        train(county, TrainConfig(train_as_of="2024-01-01", valid_as_of="2025-06-01"), log=False)


def test_shap_contributions_add_up_to_the_raw_score(trained, county):
    result, _ = trained
    from features.histories.build import build_features

    X = result.model.frame(build_features(load_tables(county), "2024-01-01").head(300))
    contrib, base = contributions(result.model.booster, X)
    raw = result.model.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy() + base, raw, atol=1e-8)
    reasons = result.model.explain(X.assign(client_id="x").head(5), lang="en")
    assert all(len(r) <= 5 for r in reasons) and any("raises risk" in s for r in reasons for s in r)


def test_a_model_failing_the_gate_is_not_registered_and_a_worse_challenger_keeps_the_champion(trained, county):
    from models.gate import QualityGateError
    from models.registry import champion_challenger

    result, uri = trained
    assert result.gate.passed and result.gate.auroc_lower > 0.5
    with pytest.raises(QualityGateError, match="worse than the .* baseline") as failed:
        train(county, TrainConfig(target="high_use", train_as_of="2023-01-01", valid_as_of="2024-01-01",
                                  n_estimators=1, num_leaves=2, early_stopping_rounds=1),
              register=True, tracking_uri=uri)
    weak = failed.value.result
    assert weak.version is None and weak.promoted is False and "not registered" in weak.decision
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name='high_use'")] == ["1"]
    assert client.get_run(weak.run_id).data.tags["quality_gate"] == "failed"
    # registered by hand, the weak model still loses the champion / challenger comparison
    version = mlflow.register_model(weak.model_uri, "high_use").version
    from features.targets.labels import build_training_set

    validation = build_training_set(load_tables(county), ["2024-01-01"], "high_use")
    promoted, decision = champion_challenger("high_use", str(version), validation,
                                             validation["label"].to_numpy(int), weak.gate.auroc)
    assert not promoted and "champion kept" in decision
    assert str(client.get_model_version_by_alias("high_use", "champion").version) == "1"


def test_calibration_at_the_top_and_the_reason_mix_are_logged_and_in_the_card(trained):
    from models.calibration import calibration_at_top

    result, uri = trained
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(result.run_id)
    top = result.top_calibration.set_index("share")
    assert list(top.index) == [0.02, 0.05] and (top["n"] > 0).all()
    assert top.loc[0.05, "gap"] == pytest.approx(top.loc[0.05, "predicted"] - top.loc[0.05, "observed"])
    for pct, share in ((2, 0.02), (5, 0.05)):
        assert run.data.metrics[f"valid_top{pct}pct_observed"] == pytest.approx(top.loc[share, "observed"])
        assert run.data.metrics[f"valid_top{pct}pct_calibration_gap"] == pytest.approx(top.loc[share, "gap"])
    # the observed rate within the top 5 % is the model's precision there (same ranking, same rows)
    assert top.loc[0.05, "observed"] == pytest.approx(result.metrics.set_index("model").loc["lightgbm",
                                                                                             "precision_top5pct"])
    mix = result.top["reason_types"]
    assert mix["reasons"] <= 3 * mix["clients"] and mix["clients"] == result.top["clients"]
    assert mix["change"] + mix["level"] + mix["demographic"] == pytest.approx(1.0)
    assert run.data.metrics["valid_top5pct_reason_change_share"] == pytest.approx(mix["change"])
    assert 0 <= run.data.metrics["valid_top5pct_prior_high_use_share"] <= 1
    card = mlflow.artifacts.load_text(f"runs:/{result.run_id}/model_card.md")
    assert "## Where the list is read" in card and "top 2 %: predicted" in card and "change features" in card
    assert "In plain words:** On this list: every resident" in card
    assert calibration_at_top([0, 1], [0.2, 0.8], shares=(0.5,))["observed"].iloc[0] == 1.0


def test_label_bias_and_the_oracle_limit_are_logged_and_in_the_card(trained):
    """Training runs the label-bias check on the validation date and logs the oracle's corrected AUROC."""
    result, uri = trained
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(result.run_id)
    bias = result.bias
    assert bias is not None and str(bias.clients) == run.data.params["n_valid"]
    judged = bias.table[~bias.table["small_cell"]]
    assert run.data.metrics["label_bias_judged"] == len(judged) > 0
    assert run.data.metrics["label_bias_flags"] == bias.table["flagged"].sum()
    assert run.data.metrics["label_bias_flags_unexplained"] == len(bias.unexplained)
    assert run.data.tags["label_bias"] in {"ok", "explained", "flagged"}
    oracle = result.oracle
    assert oracle["auroc"] == pytest.approx(result.metrics.set_index("model").loc["oracle", "auroc"])
    assert oracle["auroc_limit"] == pytest.approx(2 * oracle["auroc"] - oracle["auroc_half"])
    assert run.data.metrics["valid_oracle_auroc_limit"] == pytest.approx(oracle["auroc_limit"])
    assert run.data.metrics["valid_oracle_auroc_half"] == pytest.approx(oracle["auroc_half"])
    card = mlflow.artifacts.load_text(f"runs:/{result.run_id}/model_card.md")
    assert "## Label bias: need at equal predicted risk" in card and "Not run for this model" not in card
    assert "| 14 | label bias (need at equal predicted risk) | yes | label bias section |" in card
    assert f"{oracle['auroc_limit']:.3f} corrected for the noise" in card
