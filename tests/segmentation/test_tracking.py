"""A segmentation logged to MLflow: choice, stability, profiles and report, and never a client id."""
import dataclasses
import re
from xml.etree import ElementTree
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from features.histories.build import build_features
from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county
from segmentation.report import segmentation_html
from segmentation.segments import horizon_cost, segment_clients
from features.provenance import frame_digest
from segmentation.tracking import track_segmentation, use_experiment


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    path = tmp_path_factory.mktemp("segtrack") / "county"
    generate_county(path, SynthConfig(clients=1_500, seed=8, truth_reps=1, workers=1))
    tables = load_tables(path)
    X = build_features(tables, "2023-01-01")
    cost = horizon_cost(tables.tables["events"], X["client_id"], pd.Timestamp("2023-01-01"))
    result = segment_clients(X, "kmeans", "auto", next_year_cost=cost, k_range=(2, 4), n_bootstrap=2)
    return X, cost, result


def test_run_records_choice_stability_profiles_and_no_client_ids(segmented, tmp_path):
    X, cost, result = segmented
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from segmentation.compare import compare_methods

    comparison = compare_methods(X, {"kmeans": result, "needs": segment_clients(X, "needs")}, cost)
    html = segmentation_html(result, X, "2023-01-01", cost, comparison)
    run_id = track_segmentation(result, X, "2023-01-01", html, experiment="seg-test", tracking_uri=uri,
                                comparison=comparison)
    run = mlflow.MlflowClient(uri).get_run(run_id)
    assert run.data.params["method"] == "kmeans" and run.data.params["features_digest"] == frame_digest(X)
    m = run.data.metrics
    assert m["segments"] == result.model.k_ == len(result.profiles) and m["clients"] == len(X)
    assert m["stability_ari"] == pytest.approx(result.model.stability_)
    chosen = result.model.scores_.set_index("k").loc[result.model.k_, "silhouette"]
    assert m["silhouette"] == pytest.approx(chosen)
    assert m["cost_gini"] == pytest.approx(result.concentration["gini"])
    picked = result.model.scores_[result.model.scores_["chosen"].astype(bool)].iloc[0]
    assert m["chosen_eta2"] == pytest.approx(picked["eta2"]) and m["chosen_eta2_bands"] == pytest.approx(
        picked["eta2_bands"])
    assert run.data.params["select"] == "planner" and run.data.params["min_segment_share"] == "0.01"
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "a"),
                                                     tracking_uri=uri))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"segments/profiles.csv", "segments/k_selection.csv", "segments/segments.html",
            "segments/concentration.json", "segments/cost_share_by_segment.csv", "segments/method_comparison.csv"} <= files
    k_sel = pd.read_csv(local / "segments/k_selection.csv")
    assert {"stability", "min_share", "eta2", "eta2_bands", "eligible", "chosen"} <= set(k_sel.columns)
    assert list(pd.read_csv(local / "segments/method_comparison.csv")["method"]) == ["kmeans", "needs"]
    profiles = pd.read_csv(local / "segments/profiles.csv")
    full = result.profiles.set_index("segment")["clients"]
    assert profiles["suppressed"].tolist() == (full < 50).tolist()  # small cells blanked, the rest as computed
    assert profiles.loc[~profiles["suppressed"], "clients"].tolist() == full[full >= 50].tolist()
    assert profiles.loc[profiles["suppressed"], "clients"].isna().all()
    text = "\n".join((local / f).read_text(errors="ignore") for f in files)
    assert not any(cid in text for cid in X["client_id"])


def test_digest_ignores_client_ids_but_not_values(segmented):
    X, _, _ = segmented
    renamed = X.assign(client_id=X["client_id"] + "x")
    assert frame_digest(renamed) == frame_digest(X)
    changed = X.copy()
    changed.loc[0, "age"] = changed.loc[0, "age"] + 1
    assert frame_digest(changed) != frame_digest(X)


def test_digest_does_not_depend_on_row_order_but_can_include_ids(segmented):
    X, _, _ = segmented
    shuffled = X.sample(frac=1.0, random_state=3)
    assert frame_digest(shuffled) == frame_digest(X)
    renamed = X.assign(client_id=X["client_id"] + "x")
    assert frame_digest(renamed, with_key=True) != frame_digest(X, with_key=True)
    assert len(frame_digest(X)) == 16


def test_one_set_up_creates_the_experiment_once_with_artifacts_beside_the_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    first = use_experiment("setup-test", uri)
    assert use_experiment("setup-test", uri) == first
    experiment = mlflow.MlflowClient(uri).get_experiment(first)
    assert experiment.name == "setup-test"
    assert experiment.artifact_location == (tmp_path / "store" / "artifacts").as_uri()
    assert mlflow.get_experiment_by_name("setup-test").experiment_id == first  # the active store is that one


def _tables(html: str) -> list[pd.DataFrame]:
    """The HTML tables of a report as frames of strings (the page itself is HTML, each table well-formed XML)."""
    frames = []
    for text in re.findall(r"<table.*?</table>", html, flags=re.S):
        root = ElementTree.fromstring(text)
        rows = [[(cell.text or "").strip() for cell in tr] for tr in root.iter("tr")]
        frames.append(pd.DataFrame(rows[1:], columns=rows[0]))
    return frames


def test_reports_suppress_segments_and_flows_under_the_small_cell_limit(segmented):
    from segmentation.report import transitions_html

    X, cost, result = segmented
    profiles = result.profiles.copy()
    profiles.loc[profiles.index[0], "clients"] = 7  # one segment made small
    html = segmentation_html(dataclasses.replace(result, profiles=profiles), X, "2023-01-01", cost)
    assert "under 50 clients: their figures are suppressed" in html
    cost_rows = next(f for f in _tables(html) if "cost_per_client_eur" in f.columns and "suppressed" in f.columns)
    hidden = cost_rows[cost_rows["suppressed"] == "True"]
    small = int((profiles["clients"] < 50).sum())  # the one made small, and any the segmentation found under 50
    assert small >= 1 and len(hidden) == small
    assert set(hidden[["clients", "cost_per_client_eur"]].to_numpy().ravel()) <= {"NaN", "<NA>"}
    assert (cost_rows.loc[cost_rows["suppressed"] == "False", "cost_per_client_eur"] != "NaN").all()
    flows = pd.DataFrame({"from_segment": ["a", "a", "b"], "to_segment": ["a", "b", "b"], "clients": [120, 3, 80]})
    matrix = pd.DataFrame([[120, 3], [0, 80]], index=pd.Index(["a", "b"], name="from_segment"), columns=["a", "b"])
    shares, flow_table = _tables(transitions_html(flows, matrix, "2023-01-01", "2024-01-01"))
    assert shares.set_index("from_segment").loc["a", "b"] == "NaN" and shares.set_index("from_segment").loc["a", "a"] != "NaN"
    assert flow_table["clients"].tolist() == ["120", "<NA>", "80"]
