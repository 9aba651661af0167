"""``sote evaluate-list``: realised figures after the horizon, a marked label-free estimate before it.

One list (``high_use`` scored on 2025-01-01; its horizon ends on the data's last
day, 2025-12-31) on the shared 3,000-client county. Before-the-horizon cases
use the same list on the same tables with the data period cut short, so no
second list is scored; the champion's list of its own validation date (2024-01-01) is scored once more for
the estimate's miss there.
"""
import dataclasses
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import sote.cli_evaluate  # noqa: F401 - registers the command until sote.cli imports it
from features.contract.dataset import DataPeriod
from features.targets.labels import build_labels, population
from models.evaluate_list import disclosed, evaluate_list, output_paths
from models.metrics import age_band
from models.performance_estimate import expected_auroc, simulated_ranges
from sote.cli import app

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")

AS_OF = "2025-01-01"


@pytest.fixture(scope="module")
def scored(trained_3000, tmp_path_factory):
    from models.scoring import score

    root = tmp_path_factory.mktemp("evaluate_list")
    path = root / f"risk_{AS_OF}.parquet"
    score("models:/high_use@champion", trained_3000.tables, AS_OF, path, tracking_uri=trained_3000.uri, reasons=0)
    return path


@pytest.fixture(scope="module")
def at_validation(trained_3000, tmp_path_factory):
    """The champion's list scored on its own validation date (the date its promised figures were measured on)."""
    from models.scoring import score

    valid_as_of = trained_3000.result.config.valid_as_of
    path = tmp_path_factory.mktemp("evaluate_list_valid") / f"risk_{valid_as_of}.parquet"
    score("models:/high_use@champion", trained_3000.tables, valid_as_of, path, tracking_uri=trained_3000.uri,
          reasons=0)
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def realised(trained_3000, scored):
    return evaluate_list(scored, trained_3000.tables, tracking_uri=trained_3000.uri, out=scored.with_name("eval"))


def _cut(tables, end: str):
    """The same tables with the data period ending on ``end`` (records after it dropped)."""
    last = pd.Timestamp(end)
    ev = tables.tables["events"]
    kept = ev[pd.to_datetime(ev["start"]) <= last].reset_index(drop=True)
    return dataclasses.replace(tables, tables={**tables.tables, "events": kept},
                               period=DataPeriod(tables.period.start, last, "dataset.yaml"))


def _top(rank, share):
    return np.argsort(rank, kind="stable")[:max(1, int(round(share * len(rank))))]


def test_realised_figures_equal_a_direct_computation_from_the_labels(trained_3000, scored, realised):
    risk = pd.read_parquet(scored)
    labels = build_labels(trained_3000.tables, AS_OF, "high_use", validate=False).set_index("client_id")["label"]
    y = labels.reindex(risk["client_id"]).to_numpy()
    assert not np.isnan(y).any() and realised.basis == "realised" and not realised.notes
    p, rank = risk["probability"].to_numpy(), risk["rank"].to_numpy()
    whole = realised.overall()
    assert whole["n"] == len(risk) and whole["outcomes"] == y.sum()
    assert whole["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert whole["calibration_gap"] == pytest.approx(p.mean() - y.mean(), abs=1e-12)
    for share, t in ((0.01, "top1pct"), (0.02, "top2pct"), (0.05, "top5pct")):
        top = _top(rank, share)
        assert whole[f"precision_{t}"] == pytest.approx(y[top].mean(), abs=1e-12)
        assert whole[f"recall_{t}"] == pytest.approx(y[top].sum() / y.sum(), abs=1e-12)
    table = realised.table.set_index(["basis", "scope", "group"])
    # each unit: its own top 5 % by the list's rank
    unit = risk["unit"].value_counts().index[0]
    mine = (risk["unit"] == unit).to_numpy()
    row = table.loc[("realised", "unit", unit)]
    top = _top(rank[mine], 0.05)
    assert row["n"] == mine.sum() and row["auroc"] == pytest.approx(roc_auc_score(y[mine], p[mine]), abs=1e-12)
    assert row["precision_top5pct"] == pytest.approx(y[mine][top].mean(), abs=1e-12)
    # an equity group from the clients table at the list date
    people = population(trained_3000.tables.tables["clients"], AS_OF)
    band = age_band(people["age"]).reindex(risk["client_id"]).to_numpy()
    old = band == "75+"
    row = table.loc[("realised", "age_band", "75+")]
    assert row["n"] == old.sum() and row["auroc"] == pytest.approx(roc_auc_score(y[old], p[old]), abs=1e-12)
    assert row["recall_top5pct"] == pytest.approx(y[old][_top(rank[old], 0.05)].sum() / y[old].sum(), abs=1e-12)


def test_promised_figures_come_from_the_lists_training_run(trained_3000, realised):
    trained = trained_3000.result
    assert realised.list_run_id == trained.run_id and realised.promised_from == trained.config.valid_as_of
    metrics = trained.metrics.set_index("model").loc["lightgbm"]
    whole = realised.overall()
    assert whole["promised_auroc"] == pytest.approx(metrics["auroc"])
    assert whole["promised_precision_top5pct"] == pytest.approx(metrics["precision_top5pct"])
    groups = trained.groups.set_index(["grouping", "group"])
    row = realised.table.set_index(["basis", "scope", "group"]).loc[("realised", "sex", "F")]
    assert row["promised_auroc"] == pytest.approx(groups.loc[("sex", "F"), "auroc"])
    assert realised.table.loc[realised.table["scope"] == "unit", "promised_auroc"].isna().all()


def test_without_drift_the_estimate_is_off_by_what_it_was_off_at_validation(scored, realised, at_validation):
    """Without drift the estimate misses the realised figures by as much as it missed the validation figures.

    The estimate takes the calibration as given. On this 3,000-client county
    the champion's isotonic calibration is fitted on a slice of ~480 clients
    (~48 outcomes) and its error does not average out: the estimate's AUROC
    has missed the realised one by -0.013 to +0.055 across 3,000-client
    counties (2024 and 2025 lists, seeds 5-7; this county's champion is
    over-confident at the top: its top decile's mean probability 0.71 against
    0.56 observed). That error belongs to the model, not to the year: on the
    list of the validation date the same estimate misses the AUROC the model
    promised (measured there) by the same amount (this county: +0.057 in 2024,
    +0.055 in 2025; seeds 6 and 7: +0.036 / +0.035, -0.006 / -0.013). So here
    the check is that the two misses agree within what chance allows both
    realised figures (their 95 % intervals; the estimate's own range is too
    narrow for that where the probabilities are over-confident: at the top
    5 % it assumes rates near 0.9 where 0.7-0.8 are realised). The precision
    miss at the top 5 % grows on this county (+0.128 in 2024, +0.210 in
    2025, inside that chance) and grew on seeds 6 and 7 too (+0.015, +0.036):
    /work/spec4/notes-Heval.md. Issue 17's absolute bar (0.02
    AUROC, 20 % relative precision at the top 5 %) needs a calibration slice of
    thousands and is checked on a full-size county by
    benchmarks/bench_evaluate_list.py (docs/monitoring.md).
    """
    real, est = realised.overall("realised"), realised.overall("estimate")
    p_now = pd.read_parquet(scored)["probability"].to_numpy()
    assert est["auroc"] == pytest.approx(expected_auroc(p_now), abs=1e-12)
    assert est["auroc_low"] < est["auroc"] < est["auroc_high"] and est["auroc_high"] - est["auroc_low"] < 0.06
    assert est["outcomes"] == pytest.approx(real["mean_predicted"] * real["n"])
    p_then, rank_then = at_validation["probability"].to_numpy(), at_validation["rank"].to_numpy()
    miss_then = {"auroc": expected_auroc(p_then) - real["promised_auroc"],
                 "precision_top5pct": p_then[_top(rank_then, 0.05)].mean() - real["promised_precision_top5pct"]}
    # chance: each miss is off by the realised figure's own error (95 %: DeLong for the AUROC, Wilson for the
    # precision); the difference of two such errors within sqrt(2) times the half-width
    bounds = {"auroc": ("auroc_low", "auroc_high"),
              "precision_top5pct": ("precision_low_top5pct", "precision_high_top5pct")}
    for figure, (low, high) in bounds.items():
        miss_now = est[figure] - real[figure]
        allowed = np.sqrt(2) * (real[high] - real[low]) / 2
        assert abs(miss_now - miss_then[figure]) < allowed, (figure, miss_now, miss_then[figure], allowed)


def test_expected_auroc_is_the_pairwise_expectation_and_the_centre_of_simulated_draws():
    rng = np.random.default_rng(3)
    p = rng.beta(0.6, 4, size=60)
    p[:5] = p[5]  # ties count one half
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                w = p[i] * (1 - p[j])
                den += w
                num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert expected_auroc(p) == pytest.approx(num / den, abs=1e-12)
    big = rng.beta(0.6, 4, size=3000)
    low, high = simulated_ranges(big, big, {}, draws=200, seed=1)["auroc"]
    assert low < expected_auroc(big) < high and high - low < 0.05
    draws = [roc_auc_score(rng.random(len(big)) < big, big) for _ in range(60)]
    assert np.mean(draws) == pytest.approx(expected_auroc(big), abs=0.005)


def test_before_the_horizon_the_evaluation_is_an_estimate_marked_in_every_output(trained_3000, scored, realised,
                                                                                  tmp_path):
    early = _cut(trained_3000.tables, "2025-06-30")
    ev = evaluate_list(scored, early, tracking_uri=trained_3000.uri, out=tmp_path / "estimate")
    assert ev.basis == "estimate" and set(ev.table["basis"]) == {"estimate"}
    assert any("ESTIMATE" in note for note in ev.notes)
    # the estimate needs no outcome: the same figures as the estimate made beside the realised ones
    pd.testing.assert_frame_equal(ev.table.reset_index(drop=True),
                                  realised.table[realised.table["basis"] == "estimate"].reset_index(drop=True))
    shared = pd.read_csv(ev.paths["csv"])
    assert (shared["basis"] == "estimate").all()
    page = ev.paths["html"].read_text()
    assert "<title>ESTIMATE:" in page and "class='estimate'" in page and page.count("ESTIMATE") >= 4
    assert "Realised —" not in page
    run = mlflow.MlflowClient(tracking_uri=trained_3000.uri).get_run(ev.run_id)
    assert run.data.tags["basis"] == "estimate" and run.data.tags["kind"] == "list_evaluation"
    assert run.data.metrics and all(k.startswith(("estimate_", "promised_")) for k in run.data.metrics)


def test_small_cells_are_blank_in_every_output_and_no_client_id_reaches_mlflow(trained_3000, scored, realised):
    shared = pd.read_csv(realised.paths["csv"], dtype={"group": str})
    full = realised.table
    small = (full["n"] < 50) | (full["outcomes"] < 5) | (full["n"] - full["outcomes"] < 5)
    assert small.any() and (~small).any()
    assert shared.loc[small.to_numpy(), "auroc"].isna().all() and shared.loc[small.to_numpy(), "n"].isna().all()
    assert shared.loc[(~small).to_numpy(), "auroc"].notna().all()
    k = full["k_top1pct"]
    hits = (full["precision_top1pct"] * k).round()
    tiny = (k < 50) | (hits < 5) | (k - hits < 5)
    assert tiny.any() and shared.loc[tiny.to_numpy(), "precision_top1pct"].isna().all()
    pd.testing.assert_frame_equal(disclosed(full).reset_index(drop=True)[["auroc", "precision_top5pct"]],
                                  shared[["auroc", "precision_top5pct"]], check_dtype=False, atol=1e-6)
    ids = set(pd.read_parquet(scored)["client_id"])
    run = mlflow.MlflowClient(tracking_uri=trained_3000.uri).get_run(realised.run_id)
    assert run.data.tags["basis"] == "realised" and "estimate_minus_realised_auroc" in run.data.metrics
    texts = [json.dumps(run.data.tags), json.dumps(run.data.params)]
    root = Path(mlflow.artifacts.download_artifacts(run_id=realised.run_id, tracking_uri=trained_3000.uri))
    texts += [p.read_text() for p in root.rglob("*") if p.is_file()]
    assert len(texts) >= 4
    joined = "\n".join(texts)
    assert not [i for i in ids if i in joined]


def test_drift_in_the_horizon_is_invisible_to_the_estimate(trained_3000, scored, realised):
    """A use shock after the list date, unrelated to any feature: the realised figures fall, the estimate cannot.

    A random fifth of the clients have every event of the horizon recorded three times (concept drift:
    the list and its features are unchanged, only the outcomes move).
    """
    tables = trained_3000.tables
    ev = tables.tables["events"]
    clients = tables.tables["clients"]["client_id"].astype(str).to_numpy()
    chosen = set(np.random.default_rng(7).choice(clients, size=len(clients) // 5, replace=False))
    after = (pd.to_datetime(ev["start"]) >= AS_OF).to_numpy() & ev["client_id"].astype(str).isin(chosen).to_numpy()
    shocked = dataclasses.replace(tables, tables={**tables.tables,
                                                  "events": pd.concat([ev, ev[after], ev[after]], ignore_index=True)})
    drifted = evaluate_list(scored, shocked, tracking_uri=trained_3000.uri, log=False)
    before, now = realised.overall("realised"), drifted.overall("realised")
    estimate = drifted.overall("estimate")
    assert estimate["auroc"] == realised.overall("estimate")["auroc"]
    assert now["auroc"] < before["auroc"] - 0.01
    # the top 5 % is 159 clients: the fall is a few of them (3 on this county, 0.698 -> 0.679; 8 before issue
    # 18's generator calibration), so the check is that it falls, not by how much
    assert now["precision_top5pct"] < before["precision_top5pct"]
    assert (estimate["auroc"] - now["auroc"]) - (estimate["auroc"] - before["auroc"]) > 0.015


runner = CliRunner()


def test_cli_writes_the_evaluation_and_refuses_wrong_options(trained_3000, scored, tmp_path):
    base = tmp_path / "out" / "evaluation"
    ok = runner.invoke(app, ["evaluate-list", "--risklist", str(scored), "--data", str(trained_3000.data),
                             "--out", str(base), "--tracking-uri", trained_3000.uri])
    assert ok.exit_code == 0, ok.output
    assert "realised" in ok.output and "AUROC" in ok.output
    assert all(p.is_file() for p in output_paths(base).values())
    cases = [["--risklist", str(tmp_path / "missing.parquet"), "--data", str(trained_3000.data)],
             ["--risklist", str(scored), "--data", str(tmp_path / "no_folder")],
             ["--risklist", str(scored), "--data", str(trained_3000.data), "--out",
              str(trained_3000.data / "inside")],
             ["--risklist", str(trained_3000.data / "clients.parquet"), "--data", str(trained_3000.data), "--out",
              str(tmp_path / "x")],
             ["--risklist", str(scored)]]
    for args in cases:
        result = runner.invoke(app, ["evaluate-list", *args])
        assert result.exit_code == 2, (args, result.output)
    (tmp_path / "mine.csv").write_text("not sote's\n")
    refused = runner.invoke(app, ["evaluate-list", "--risklist", str(scored), "--data", str(trained_3000.data),
                                  "--out", str(tmp_path / "mine")])
    assert refused.exit_code == 2 and "mine.csv" in refused.output
