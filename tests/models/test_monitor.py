"""Drift monitoring (models.monitor) on the 3,000-client county: identical data, shifted data, the model's stored
reference, risk lists, the report and the MLflow run, and that no client id reaches any output."""
import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.provenance import frame_digest
from models.drift import MonitoringConfig
from models.monitor import EXPERIMENT, monitor

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")

MODEL = "models:/high_use@champion"


@pytest.fixture(scope="module")
def features(trained_3000):
    from features.histories.build import build_features

    return {d: build_features(trained_3000.tables, d) for d in ("2023-01-01", "2024-01-01")}


@pytest.fixture(scope="module")
def risklist(trained_3000, tmp_path_factory):
    from models.risklists import read_risklist
    from models.scoring import score

    path = tmp_path_factory.mktemp("risk") / "risk_2024.parquet"
    score(MODEL, trained_3000.tables, "2024-01-01", path, tracking_uri=trained_3000.uri, reasons=0)
    return path, read_risklist(path)


def _ids(*frames) -> set[str]:
    return set().union(*(set(f["client_id"].astype(str)) for f in frames))


def _run_text(uri: str, run_id: str, dst: Path) -> str:
    """Every artifact, parameter, tag and metric name and value of a run, as one text."""
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(dst), tracking_uri=uri))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert {"drift.csv", "drift.html"} <= {p.name for p in files}
    parts = [p.read_text(encoding="utf-8", errors="ignore") for p in files]
    parts += [f"{k}={v}" for d in (run.data.params, run.data.tags, run.data.metrics) for k, v in d.items()]
    parts.append(run.info.run_name or "")
    return "\n".join(parts)


def test_identical_tables_give_psi_zero_and_verdict_ok(features, tmp_path):
    X = features["2024-01-01"]
    result = monitor(X, X.copy(), log=False, out=tmp_path / "same.html")
    t = result.table
    feats = t[t["section"] == "feature"]
    assert result.verdict == "ok" and len(feats) == X.shape[1] - 1
    few = feats["value"].isna()  # under 50 clients with a value: no distribution is written or compared
    assert few.any() and feats.loc[few, "note"].str.contains("under 50 values").all()
    assert (feats.loc[~few, "value"] == 0).all()
    blank = feats["missing_change"].isna()  # a missing count (or its complement) of 1 to 49 clients: not shown
    assert (feats.loc[~blank, "missing_change"] == 0).all() and feats.loc[blank, "cur_missing"].isna().all()
    for name in feats.loc[blank, "name"]:
        missing = int(X[name].isna().sum())
        assert 0 < missing < 50 or 0 < len(X) - missing < 50, name
    assert set(feats["statistic"]) == {"psi", "js"}
    assert feats.set_index("name").loc["municipality", "statistic"] == "js"
    seg = t[(t["section"] == "segment") & (t["statistic"] == "js")]
    assert seg["value"].iloc[0] == 0  # the need x resources grid cut at the reference's points
    assert result.paths == {"html": tmp_path / "same.html", "csv": tmp_path / "same.csv"}
    csv = pd.read_csv(result.paths["csv"])
    assert len(csv) == len(t) and list(csv.columns) == list(t.columns)


def test_a_shifted_feature_acts_and_unseen_levels_and_missing_values_are_reported(features, tmp_path):
    X = features["2024-01-01"]
    Y = X.copy()
    Y["age"] = Y["age"] + 15  # everyone 15 years older
    rows = np.arange(len(Y))
    Y["unit"] = Y["unit"].astype(object)
    Y.loc[rows % 20 == 0, "unit"] = "vantaa_uusi"  # 5 %: a unit the reference never had
    Y["cost_total_365d"] = Y["cost_total_365d"].where(rows % 5 != 0)  # 20 % missing
    result = monitor(X, Y, log=False, out=tmp_path / "shifted")
    t = result.table.set_index("name")
    assert result.verdict == "act"
    assert t.loc["age", "level"] == "act" and t.loc["age", "value"] >= 0.25
    unit = t.loc["unit"]
    assert unit["level"] == "act" and unit["unseen"].startswith("vantaa_uusi (")
    assert unit["unseen_share"] == pytest.approx((rows % 20 == 0).mean())
    cost = t.loc["cost_total_365d"]
    assert cost["level"] == "act" and cost["missing_change"] == pytest.approx(0.2, abs=0.001)
    assert cost["value"] < 0.01  # the values that remain are a random fifth: their distribution did not move
    untouched = result.table[(result.table["section"] == "feature")
                             & ~result.table["name"].isin(["age", "unit", "cost_total_365d"])]
    assert (untouched["level"] == "ok").all()
    html = result.paths["html"].read_text(encoding="utf-8")
    assert "Most drifted features" in html and html.count("data:image/png;base64") == 1
    assert "<td>age</td>" in html and "vantaa_uusi" in html
    counts = result.counts()
    assert counts["act"] >= 3 and counts["act"] + counts["watch"] + counts["ok"] == len(X.columns) - 1


def test_the_models_stored_reference_matches_its_own_training_rows_and_logs_a_clean_run(trained_3000, features,
                                                                                        tmp_path):
    result = trained_3000.result
    ref = result.reference
    assert ref["digest"] == result.digests["training_rows"] and ref["as_of"] == "2023-01-01"
    for summary in ref["features"].values():  # binned summaries, every bin over the small-cell limit
        counts = summary["counts"] or [] if summary["kind"] == "numeric" else list(summary["counts"].values())
        assert all(c >= 50 for c in counts)
        assert summary["missing"] is None or summary["missing"] == 0 or 50 <= summary["missing"] <= summary["n"] - 50
    assert set(ref["features"]) == set(result.model.columns) and "client_id" not in json.dumps(ref)
    # the training date's own features against the stored summary: nothing moved
    X = features["2023-01-01"]
    same = monitor(None, X, model_uri=MODEL, tracking_uri=trained_3000.uri, log=True, out=tmp_path / "train")
    t = same.table
    assert same.verdict == "ok" and same.score_psi == pytest.approx(0.0, abs=1e-12)
    assert (t.loc[t["section"] == "feature", "value"].dropna() == 0).all()
    assert (t.loc[(t["section"] == "unit") & ~t["suppressed"], "value"] == 0).all()
    assert same.model == {"name": "high_use", "version": result.version, "run_id": result.run_id}
    run = mlflow.MlflowClient(trained_3000.uri).get_run(same.run_id)
    experiment = mlflow.MlflowClient(trained_3000.uri).get_experiment(run.info.experiment_id)
    assert experiment.name == EXPERIMENT
    tags = run.data.tags
    assert tags["model_version"] == result.version and tags["model_name"] == "high_use"
    assert tags["reference_digest"] == result.digests["training_rows"]
    assert tags["current_digest"] == frame_digest(X) and tags["verdict"] == "ok"
    assert run.data.metrics["score_psi"] == 0 and run.data.metrics["features_act"] == 0
    text = _run_text(trained_3000.uri, same.run_id, tmp_path / "artifacts")
    ids = _ids(X, features["2024-01-01"])
    assert not set(re.findall(r"[0-9a-f]{12}", text)) & ids
    for path in same.paths.values():
        assert not set(re.findall(r"[0-9a-f]{12}", path.read_text(encoding="utf-8"))) & ids


def test_risk_lists_compare_score_units_and_segments_and_leak_no_client_id(trained_3000, risklist, tmp_path):
    path, risk = risklist
    same = monitor(path, path, model_uri=MODEL, tracking_uri=trained_3000.uri, log=False)
    assert same.verdict == "ok" and same.score_psi == 0
    assert set(same.table["section"]) == {"feature", "score", "unit", "segment"}
    assert set(same.table.loc[same.table["section"] == "feature", "name"]) == {
        "unit", "municipality", "intensive_ongoing", "prior_high_use"}
    risen = risk.copy()
    risen["probability"] = np.minimum(1.0, risen["probability"] * 2.5)  # every score up
    ids = {cid for cid in risk["client_id"]}
    risen.loc[risen.index[:3], "unit"] = risen["client_id"].iloc[:3].to_numpy()  # a unit equal to a client id
    result = monitor(path, risen, model_uri=MODEL, tracking_uri=trained_3000.uri, log=True,
                     thresholds=MonitoringConfig(plotted=4), out=tmp_path / "risen")
    assert result.verdict == "act" and result.score_psi >= 0.25
    units = result.table[(result.table["section"] == "unit") & ~result.table["suppressed"]]
    raised = units[units["statistic"] == "share_raised"]
    assert len(raised) and (raised["current"] >= raised["reference"]).all() and (raised["value"] > 0).any()
    base = risk["probability"].mean()
    for r in raised.itertuples():
        mine = risen.loc[risen["unit"] == r.name, "probability"]
        assert r.current == pytest.approx((mine >= 1.5 * base).mean())
    small = result.table[(result.table["section"] == "unit") & result.table["suppressed"]]
    assert small["value"].isna().all() and small["reference"].isna().all()  # the 3-client "units": blanked
    unit_row = result.table.set_index("name").loc["unit"]
    assert "withheld (equal to a client id)" in unit_row["unseen"]
    text = _run_text(trained_3000.uri, result.run_id, tmp_path / "a")
    text += "".join(p.read_text(encoding="utf-8") for p in result.paths.values())
    assert not set(re.findall(r"[0-9a-f]{12}", text)) & ids


def test_inputs_of_different_kinds_or_no_reference_are_refused(features, risklist):
    with pytest.raises(ValueError, match="both be feature tables or both risk lists"):
        monitor(features["2024-01-01"], risklist[1], log=False)
    with pytest.raises(ValueError, match="no reference"):
        monitor(None, features["2024-01-01"], log=False)


def test_a_few_clients_in_a_new_level_raise_watch_but_their_share_is_not_shown():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"client_id": [f"r{i}" for i in range(2_000)], "unit": rng.choice(["a", "b"], 2_000),
                        "cost": rng.gamma(1.0, 100.0, 2_000)})
    cur = ref.assign(client_id=[f"c{i}" for i in range(2_000)])
    cur.loc[:9, "unit"] = "c_new"  # 10 clients: 0.5 % of the list, a small cell
    cur.loc[:19, "cost"] = np.nan  # 20 missing
    result = monitor(ref, cur, log=False)
    t = result.table.set_index("name")
    assert t.loc["unit", "level"] == "watch" and t.loc["unit", "unseen"] == "c_new (<50)"
    assert np.isnan(t.loc["unit", "unseen_share"])
    assert t.loc["cost", "level"] == "ok" and np.isnan(t.loc["cost", "cur_missing"])  # 1 % missing: under 0.05
    assert result.verdict == "watch"
