"""``sote batch``: the scheduled job on the shared 3,000-client county (trained_3000).

Exit statuses (config error or a date outside the data 2, invalid data 3, drift with fail_on_drift 5), the
summary's numbers, idempotence byte for byte with one MLflow run per date and
data, and no client id in the batch run.
"""
import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import sote.cli_batch  # noqa: F401 - registers `sote batch` on the app
from sote.app import app
from sote.batch import EXPERIMENT, RUN_LOG, load_job

# one xdist worker builds the shared 3,000-client county and its champion once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("county_3000")

runner = CliRunner()


def _job(tmp_path: Path, trained, name: str = "job.yaml", **settings) -> Path:
    job = {"data": str(trained.data), "as_of": "2024-01-01", "out": str(tmp_path / "batch"),
           "tracking_uri": trained.uri, "reasons": 2, "explain_share": 0.05, **settings}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    return path


def _run(config: Path, *extra: str):
    res = runner.invoke(app, ["batch", "--config", str(config), *extra])
    summary = json.loads(res.stdout) if res.stdout.strip().startswith("{") else None
    return res, summary


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _batch_runs(uri: str) -> list:
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def _drifted_reference(tmp_path: Path, trained) -> Path:
    """The 2024-01-01 feature table with every cost ten times higher: a reference the current data drifted far from."""
    from features.histories.build import ClientHistories
    from models.scoring import load_model

    spec = load_model("models:/high_use@champion", trained.uri).model.spec()
    features = ClientHistories(trained.tables, spec).features("2024-01-01")
    costs = [c for c in features.columns if c.startswith("cost_") or "_cost_" in c]
    assert len(costs) >= 5
    features[costs] = features[costs] * 10
    path = tmp_path / "reference.parquet"
    features.to_parquet(path, index=False)
    return path


def _monitor_runs(uri: str) -> int:
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.MlflowClient().get_experiment_by_name("sote-monitoring")
    return 0 if experiment is None else len(mlflow.MlflowClient().search_runs([experiment.experiment_id]))


def test_batch_twice_same_bytes_one_mlflow_run_drift_exits_5(tmp_path, trained_3000):
    config = _job(tmp_path, trained_3000, reference=str(_drifted_reference(tmp_path, trained_3000)),
                  fail_on_drift=True)
    before, monitored = len(_batch_runs(trained_3000.uri)), _monitor_runs(trained_3000.uri)
    first, summary = _run(config)
    assert first.exit_code == 5, first.output  # ExitCode.DRIFT
    assert "drift act reaches drift_level act" in first.output
    folder = tmp_path / "batch" / "2024-01-01"
    tables = trained_3000.tables
    rows_in = sum(tables.report.rows_in.values())
    risk = pd.read_parquet(folder / "risklist.parquet")
    features = pd.read_parquet(folder / "features.parquet")
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == ["validate", "features", "score", "monitor", "publish"]
    assert all(s["status"] == "ok" for s in steps.values())
    assert steps["validate"]["rows_in"] == steps["validate"]["rows_out"] == rows_in
    assert summary["quarantined"]["total"] == 0
    assert steps["features"]["rows_out"] == len(features) == steps["score"]["rows_in"]
    assert steps["score"]["rows_out"] == len(risk) > 2_000  # high_use: everyone resident at the date
    drift = summary["drift"]
    assert drift["verdict"] == "act" and drift["features_act"] >= 3 and drift["score_psi"] >= 0
    report = pd.read_csv(folder / "drift.csv").set_index("name")
    assert report.loc["cost_total_730d", "level"] == "act" and report.loc["cost_total_730d", "value"] > 0.25
    assert set(summary["seconds"]) >= {"validate", "features", "score", "monitor", "publish"}
    assert summary["status"] == "drift" and summary["exit_status"] == 5
    assert not summary["mlflow_run"]["reused"] and drift["run_id"]
    from features.provenance import file_digest

    assert summary["outputs"] == {name: file_digest(folder / name) for name in (
        "drift.csv", "drift.html", "features.parquet", "risklist.parquet", "risklist.parquet.json", "summary.json")}
    written = json.loads((folder / "summary.json").read_text())
    assert "seconds" not in written and "started" not in written  # times live in the run log only
    assert written["mlflow_run_id"] == summary["mlflow_run"]["run_id"]
    sidecar = json.loads((folder / "risklist.parquet.json").read_text())
    assert "seconds" not in sidecar and sidecar["rows"] == len(risk)
    bytes_before = _files(folder)

    second, again = _run(config)
    assert second.exit_code == 5, second.output
    assert _files(folder) == bytes_before  # byte for byte, summary.json and the drift report included
    assert again["mlflow_run"] == {"run_id": summary["mlflow_run"]["run_id"], "reused": True}
    assert again["drift"]["run_id"] == drift["run_id"]  # the first run's monitor run, reported
    runs = _batch_runs(trained_3000.uri)
    assert len(runs) == before + 1 and _monitor_runs(trained_3000.uri) == monitored + 1
    log = [json.loads(line) for line in (tmp_path / "batch" / RUN_LOG).read_text().splitlines()]
    assert [line["mlflow_run"]["reused"] for line in log] == [False, True]
    assert all(line["seconds"]["score"] > 0 and line["exit_status"] == 5 for line in log)

    # the run holds aggregates only: no client id in its tags, params or summary artifact
    run = next(r for r in runs if r.info.run_id == summary["mlflow_run"]["run_id"])
    logged = json.dumps([run.data.tags, run.data.params, run.data.metrics])
    logged += Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="summary.json",
                                                       dst_path=str(tmp_path / "art"))).read_text()
    ids = set(risk["client_id"].astype(str))
    assert not [i for i in ids if i in logged]
    assert run.data.metrics["list_rows"] == len(risk) and run.data.tags["sote.drift_verdict"] == "act"


@pytest.mark.parametrize(("verdict", "settings", "breach"), [
    ("act", {"fail_on_drift": False}, False), ("act", {"fail_on_drift": True}, True),
    ("watch", {"fail_on_drift": True}, False), ("watch", {"fail_on_drift": True, "drift_level": "watch"}, True),
    ("ok", {"fail_on_drift": True, "drift_level": "watch"}, False), (None, {"fail_on_drift": True}, False),
])
def test_drift_ends_the_job_only_with_fail_on_drift_at_its_level(verdict, settings, breach):
    from sote.batch import JobConfig, breaches

    assert breaches(verdict, JobConfig(data="d", as_of="2024-01-01", out="o", **settings)) is breach


def test_invalid_data_exits_3_and_lenient_quarantines(tmp_path, trained_3000):
    data = tmp_path / "data"
    shutil.copytree(trained_3000.data, data)
    events = pd.read_parquet(data / "events.parquet")
    events["service"] = events["service"].astype(str)
    events.loc[events.index[:7], "service"] = "teleport"  # not a service line of the contract
    events.to_parquet(data / "events.parquet", index=False)

    strict, summary = _run(_job(tmp_path, trained_3000, data=str(data), monitor=False))
    assert strict.exit_code == 3, strict.output
    assert summary["status"] == "data invalid" and summary["error"]["step"] == "validate"
    assert "teleport" in strict.output
    assert not (tmp_path / "batch" / "2024-01-01").exists()  # nothing published

    late, summary = _run(_job(tmp_path, trained_3000, "late.yaml", data=str(trained_3000.data), monitor=False),
                         "--as-of", "2031-01-01")
    # a date the data do not cover is a wrong date, not invalid data: 2, as check_period gives every command
    assert late.exit_code == 2 and "after the data period" in summary["error"]["message"]
    assert summary["status"] == "failed" and summary["error"]["step"] == "validate"

    # lenient: the bad rows are quarantined and the job goes on (here to a model that is not there: status 2)
    quarantine = tmp_path / "quarantine"
    lenient, summary = _run(_job(tmp_path, trained_3000, "lenient.yaml", data=str(data), lenient=True,
                                 quarantine=str(quarantine), model="models:/no_such_model@champion"))
    assert lenient.exit_code == 2, lenient.output
    assert summary["quarantined"]["total"] == 7 and summary["quarantined"]["tables"] == {"events": 7}
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [("validate", "ok"), ("features", "failed")]
    assert summary["error"]["step"] == "features" and "no_such_model" in summary["error"]["message"]
    rejected = pd.read_csv(quarantine / "2024-01-01" / "events.csv")
    assert len(rejected) == 7 and rejected["reason"].str.contains("service").all()
    assert not (tmp_path / "batch" / "2024-01-01").exists()
    log = [json.loads(line) for line in (tmp_path / "batch" / RUN_LOG).read_text().splitlines()]
    assert [line["exit_status"] for line in log] == [3, 2, 2]  # failed runs are logged too


def test_previous_is_the_newest_earlier_date_with_features_and_a_list(tmp_path):
    from sote.batch import JobConfig, _reference, previous_folder

    out = tmp_path / "batch"
    for day, files in (("2023-07-01", 2), ("2023-10-01", 2), ("2023-12-01", 1), ("2024-04-01", 2), ("notes", 2)):
        (out / day).mkdir(parents=True)
        for name in ("features.parquet", "risklist.parquet")[:files]:
            (out / day / name).write_bytes(b"")
    job = JobConfig(data="d", as_of="2024-01-01", out=str(out), reference="previous")
    assert previous_folder(job) == out / "2023-10-01"  # 2023-12-01 has no list, 2024-04-01 is later
    assert _reference(job) == (out / "2023-10-01" / "features.parquet", "previous (2023-10-01)")
    first = JobConfig(data="d", as_of="2023-07-01", out=str(out), reference="previous")
    assert _reference(first) == (None, "model (no earlier date under out)")
    with pytest.raises(FileNotFoundError, match="reference nope.parquet: file not found"):
        _reference(JobConfig(data="d", as_of="2024-01-01", out=str(out), reference="nope.parquet"))


@pytest.mark.parametrize(("settings", "named"), [
    ({"colour": "red"}, "unknown key(s) ['colour']"),
    ({"explain_share": 2}, "explain_share: expected a value <= 1"),
    ({"as_of": "1.1.2024"}, "not a date in ISO 8601 form"),
    ({"quarantine": "q"}, "quarantine needs lenient"),
    ({"drift_level": "panic"}, "drift_level: 'panic' is not one of"),
    ({"fail_on_drift": "yes"}, "fail_on_drift: expected true or false"),
])
def test_config_errors_exit_2_naming_the_key(tmp_path, settings, named):
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"data": "d", "as_of": "2024-01-01", "out": "o", **settings}))
    res = runner.invoke(app, ["batch", "--config", str(config)])
    assert res.exit_code == 2 and named in res.output and str(config) in res.output
    assert not (tmp_path / "o").exists()


def test_config_refusals_before_any_work(tmp_path):
    missing = runner.invoke(app, ["batch", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    data = tmp_path / "d"
    data.mkdir()
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({"data": str(data), "as_of": "2024-01-01", "out": str(data / "o")}))
    inside, summary = _run(config)
    assert inside.exit_code == 2 and "inside the input" in summary["error"]["message"]
    assert load_job(config, as_of="2024-03-01").as_of == "2024-03-01"


def test_evaluate_list_default_out_stays_out_of_a_batch_date_folder(tmp_path):
    """A rerun of a date replaces its folder as a whole: the evaluation of its list must not live in it."""
    from sote.batch import SUMMARY
    from sote.cli_evaluate import default_out

    folder = tmp_path / "batch" / "2024-01-01"
    folder.mkdir(parents=True)
    assert default_out(folder / "risklist.parquet") == folder / "risklist_evaluation"  # no summary: not a job's
    (folder / SUMMARY).write_text("{}")
    assert default_out(folder / "risklist.parquet") == tmp_path / "batch" / "evaluation_2024-01-01"
    assert default_out(folder / "other.parquet") == tmp_path / "batch" / "evaluation_2024-01-01_other"
    assert default_out(tmp_path / "risk_2024.parquet") == tmp_path / "risk_2024_evaluation"
