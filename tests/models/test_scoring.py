"""Batch scoring and case-manager reports on a small county with a registered model.

The model is trained with a county's own feature spec (the packaged one without
``bmi``), so every test here also shows that a custom spec trains, registers and scores.
"""
import hashlib
import json
from importlib import resources

import mlflow

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county
from models.risklists import unit_view
from models.scoring import RiskList, ScoringError, score
from models.train import TrainConfig, train
from sote.cli import app
from worklist.report import write_report


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    data = root / "county"
    generate_county(data, SynthConfig(clients=2_500, seed=41, truth_reps=1, workers=1))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tables = load_tables(data)
    default = resources.files("features.config").joinpath("features.yaml").read_text()
    assert "  bmi: {lookback_days: 730}\n" in default
    (root / "county_spec.yaml").write_text(default.replace("  bmi: {lookback_days: 730}\n", ""))
    train(tables, TrainConfig(target="high_use", spec=str(root / "county_spec.yaml")), register=True, tracking_uri=uri)
    return data, tables, uri, root


def test_a_custom_spec_without_one_feature_trains_registers_and_scores(setup):
    from features.histories.build import build_features
    from features.provenance import frame_digest

    data, tables, uri, root = setup
    spec_path = root / "county_spec.yaml"
    mlflow.set_tracking_uri(uri)
    version = mlflow.MlflowClient().get_model_version_by_alias("high_use", "champion")
    model = mlflow.pyfunc.load_model("models:/high_use@champion").unwrap_python_model()
    assert "bmi_last" not in model.columns and "hba1c_last" in model.columns
    assert "bmi_last" not in model.spec().column_names() and model.spec_yaml == spec_path.read_text()
    assert mlflow.artifacts.load_text(f"runs:/{version.run_id}/model_spec/features.yaml") == spec_path.read_text()
    out = root / "custom.parquet"
    sidecar = score("models:/high_use@champion", tables, "2025-01-01", out, tracking_uri=uri, reasons=0)
    features = build_features(tables, "2025-01-01", spec=spec_path)
    assert "bmi_last" not in features and len(features) == sidecar["rows"] and sidecar["outside_cohort"] == 0
    assert pd.read_parquet(out)["data_digest"].iloc[0] == frame_digest(features, with_key=True)


def test_risk_list_is_complete_ranked_explained_and_valid(setup):
    data, tables, uri, root = setup
    out = root / "lists" / "risk.parquet"
    sidecar = score("models:/high_use@champion", tables, "2025-01-01", out, chunk_size=700, tracking_uri=uri)
    risk = pd.read_parquet(out)
    RiskList.validate(risk)
    assert sidecar["rows"] == len(risk) and sidecar["model_version"] == "1"
    assert sidecar["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert json.loads(out.with_name("risk.parquet.json").read_text())["as_of"] == "2025-01-01"
    assert risk["rank"].tolist() == list(range(1, len(risk) + 1))
    assert risk["probability"].is_monotonic_decreasing
    assert risk["reasons_en"].iloc[0].count("|") >= 1 and "risk" in risk["reasons_en"].iloc[0]
    assert risk["reasons_fi"].str.contains("riskiä").any() and risk["reasons_sv"].str.contains("risken").any()
    assert risk["segment"].notna().all()


def test_scoring_is_deterministic_whatever_the_chunk_size(setup):
    _, tables, uri, root = setup
    a, b = root / "a.parquet", root / "b.parquet"
    score("models:/high_use@champion", tables, "2025-01-01", a, chunk_size=333, tracking_uri=uri)
    score("models:/high_use@champion", tables, "2025-01-01", b, chunk_size=5_000, tracking_uri=uri)
    assert a.read_bytes() == b.read_bytes()


def test_a_failed_run_leaves_the_previous_list_intact(setup, monkeypatch):
    _, tables, uri, root = setup
    out = root / "keep.parquet"
    score("models:/high_use@champion", tables, "2025-01-01", out, tracking_uri=uri)
    before = out.read_bytes()
    import models.scoring as scoring

    def broken(*args, **kwargs):
        raise RuntimeError("killed mid-run")

    monkeypatch.setattr(scoring, "_reasons", broken)
    with pytest.raises(RuntimeError):
        score("models:/high_use@champion", tables, "2024-06-01", out, tracking_uri=uri)
    assert out.read_bytes() == before
    assert not [p for p in root.iterdir() if p.name.startswith(".keep.parquet")]


def test_bad_input_gives_clear_errors(setup, tmp_path):
    data, tables, uri, _ = setup
    with pytest.raises(ScoringError, match="cannot load model"):
        score("models:/nope@champion", tables, "2025-01-01", tmp_path / "x.parquet", tracking_uri=uri)
    with pytest.raises(ScoringError, match="outside the data"):
        score("models:/high_use@champion", tables, "2031-01-01", tmp_path / "x.parquet", tracking_uri=uri)
    runner = CliRunner()
    res = runner.invoke(app, ["score", "--model", "models:/nope@champion", "--data", str(data), "--as-of",
                              "2025-01-01", "--out", str(tmp_path / "x.parquet"), "--tracking-uri", uri])
    assert res.exit_code == 2 and "cannot load model" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_report_shows_only_the_requested_unit_and_marks_new_clients(setup, tmp_path):
    data, tables, uri, root = setup
    now, before = root / "now.parquet", root / "before.parquet"
    score("models:/high_use@champion", tables, "2025-01-01", now, tracking_uri=uri)
    score("models:/high_use@champion", tables, "2024-01-01", before, tracking_uri=uri)
    risk = pd.read_parquet(now)
    unit = risk["unit"].value_counts().index[0]
    paths = write_report(now, tmp_path / "r.html", previous=before, unit=unit, top=30, lang="sv")
    html = paths["html"].read_text()
    csv = pd.read_csv(paths["csv"])
    assert set(csv["unit"]) == {unit} and len(csv) == 30
    others = set(risk.loc[risk["unit"] != unit, "client_id"])
    assert not any(cid in html for cid in others)
    assert "Risklista" in html and paths["xlsx"].stat().st_size > 0
    prev_view = unit_view(pd.read_parquet(before), unit, 30)
    assert csv["new_on_list"].sum() == (~csv["client_id"].isin(prev_view["client_id"])).sum()
    with pytest.raises(ValueError, match="no clients"):
        unit_view(risk, "atlantis", 10)


def test_explain_share_explains_the_top_of_every_unit_and_marks_the_rest(setup, tmp_path):
    _, tables, uri, root = setup
    full, part = root / "full.parquet", tmp_path / "part.parquet"
    if not full.exists():
        score("models:/high_use@champion", tables, "2025-01-01", full, tracking_uri=uri)
    sidecar = score("models:/high_use@champion", tables, "2025-01-01", part, tracking_uri=uri, explain_share=0.25,
                    chunk_size=400)
    a, b = pd.read_parquet(full), pd.read_parquet(part)
    assert a["client_id"].tolist() == b["client_id"].tolist() and (a["probability"] == b["probability"]).all()
    within = b.groupby("unit")["rank"].rank(method="first")
    size = b.groupby("unit")["rank"].transform("size")
    expect = within <= (0.25 * size).apply(lambda x: max(1, -(-x // 1)))
    assert (b["reasons_en"].notna() == expect).all()
    assert sidecar["explained"] == int(expect.sum()) < len(b)
    # the explained rows carry exactly the reasons a full run gives them
    for lang in ("fi", "sv", "en"):
        assert (b.loc[expect, f"reasons_{lang}"] == a.loc[expect, f"reasons_{lang}"]).all()
    unit = b["unit"].value_counts().index[0]
    html = write_report(part, tmp_path / "r.html", unit=unit, top=len(b), lang="en")["html"].read_text()
    assert "not explained" in html and "&lt;NA&gt;" not in html and "<NA>" not in html
    with pytest.raises(ScoringError, match="explain share"):
        score("models:/high_use@champion", tables, "2025-01-01", tmp_path / "x.parquet", tracking_uri=uri,
              explain_share=0)


def test_lists_flag_current_heavy_users_and_say_whom_they_rank(setup, tmp_path):
    from features.targets.labels import current_use_flags
    from models.risklists import cohort_text, read_risklist

    _, tables, uri, _ = setup
    out = tmp_path / "flags.parquet"
    sidecar = score("models:/high_use@champion", tables, "2025-01-01", out, tracking_uri=uri, explain_share=0.2)
    risk = read_risklist(out)
    flags = current_use_flags(tables, "2025-01-01").set_index("client_id")
    assert risk["intensive_ongoing"].tolist() == flags.loc[risk["client_id"], "intensive_ongoing"].tolist()
    assert risk["prior_high_use"].tolist() == flags.loc[risk["client_id"], "prior_top"].tolist()
    assert sidecar["intensive_ongoing"] == int(flags["intensive_ongoing"].sum()) > 0  # the whole population
    top = risk.head(sidecar["top"]["clients"])
    assert sidecar["top"]["prior_high_use"] == pytest.approx(top["prior_high_use"].mean())
    assert sidecar["top"]["intensive_ongoing"] == pytest.approx(top["intensive_ongoing"].mean())
    mix = sidecar["top"]["reason_types"]
    assert mix["clients"] == len(top) and mix["change"] + mix["level"] + mix["demographic"] == pytest.approx(1.0)
    for lang in ("fi", "sv", "en"):
        assert sidecar["cohort"][lang] == cohort_text(None, lang) == risk.attrs["sote_list"]["cohort"][lang]
    assert sidecar["list_kind"] == "all" and "capacity" in sidecar["purpose"]["en"]
    # explained rows carry one reason type per reason; no probability is printed as the isotonic cap
    explained = risk[risk["reasons_en"].notna() & (risk["reasons_en"] != "")]
    assert (explained["reasons_en"].str.count(r" \| ") == explained["reason_types"].str.count(r"\|")).all()
    bounded = risk["probability_bound"] == "over"
    assert (risk.loc[bounded, "probability"] >= risk.loc[~bounded, "probability"].max()).all()
    assert sidecar["probability_bounds"]["over_rows"] == int(bounded.sum())


def test_probabilities_in_blocks_equal_the_whole_table(trained_3000, monkeypatch):
    """ServiceNeedModel.predict_proba predicts PREDICT_ROWS rows at a time: the same numbers, in row order."""
    import numpy as np

    import models.pyfunc
    from features.histories.build import ClientHistories

    model = trained_3000.result.model
    with ClientHistories(trained_3000.tables) as h:
        table = h.features("2024-01-01")
    whole = model.estimator.predict_proba(model.features(table))
    monkeypatch.setattr(models.pyfunc, "PREDICT_ROWS", 97)  # many blocks, the last one short
    assert len(table) % 97 and len(table) > 10 * 97
    got = model.predict_proba(table)
    assert got.shape == (len(table), 2)
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_array_equal(model.predict_proba(table.iloc[::-1])[:, 1], whole[::-1, 1])
