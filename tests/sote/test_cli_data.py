"""The data commands of the CLI: synth, validate, demo (on tiny counties)."""
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from sote.cli import app

runner = CliRunner()


def test_synth_then_validate_strict_and_lenient(tmp_path):
    out = tmp_path / "county"
    res = runner.invoke(app, ["synth", "--out", str(out), "--clients", "400", "--seed", "3", "--truth-reps", "1",
                              "--workers", "1", "--dirty"])
    assert res.exit_code == 0, res.output
    assert (out / "truth.parquet").exists() and (out / "manifest.json").exists()

    strict = runner.invoke(app, ["validate", str(out)])
    assert strict.exit_code == 3  # ExitCode.DATA_INVALID
    assert "breaks the data contract" in strict.output and "table 'events'" in strict.output

    q = tmp_path / "q"
    lenient = runner.invoke(app, ["validate", str(out), "--lenient", "--quarantine", str(q), "--out",
                                  str(tmp_path / "clean")])
    assert lenient.exit_code == 0, lenient.output
    summary = pd.read_csv(q / "summary.csv").set_index("table")
    assert (summary["rows_kept"] + summary["rows_quarantined"] == summary["rows_in"]).all()
    assert summary["rows_quarantined"].sum() > 0
    again = runner.invoke(app, ["validate", str(tmp_path / "clean")])
    assert again.exit_code == 0 and "all tables valid" in again.output


def test_validate_errors_are_messages_not_tracebacks(tmp_path):
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "data directory not found" in missing.output
    assert "Traceback" not in missing.output
    bad = runner.invoke(app, ["validate", str(tmp_path), "--quarantine", str(tmp_path / "q")])
    assert bad.exit_code == 2 and "--lenient" in bad.output


def test_validate_on_spark_refuses_what_only_one_process_writes_before_spark_starts(tmp_path):
    """--engine spark checks strictly and writes nothing: --lenient, --quarantine and --out are user errors."""
    for extra in (["--lenient", "--quarantine", str(tmp_path / "q")], ["--out", str(tmp_path / "copy")]):
        res = runner.invoke(app, ["validate", str(tmp_path), "--engine", "spark", *extra])
        assert res.exit_code == 2 and "with --engine spark" in res.output and "Traceback" not in res.output
        assert extra[-2] in res.output
    assert not (tmp_path / "q").exists() and not (tmp_path / "copy").exists()
    for args, says in ((["--engine", "polars"], "duckdb or spark"),
                       (["--spark-master", "spark://127.0.0.1:7077"], "goes with --engine spark")):
        res = runner.invoke(app, ["validate", str(tmp_path), *args])
        assert res.exit_code == 2 and says in res.output


def test_synth_rejects_a_bad_start_date(tmp_path):
    res = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--clients", "10", "--start", "2019-01-15"])
    assert res.exit_code == 2 and "first day of a month" in res.output


@pytest.mark.e2e
def test_demo_runs_end_to_end_on_a_small_county(tmp_path):
    out = tmp_path / "out"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    worklist = f"sqlite:///{tmp_path / 'var' / 'worklist.db'}"
    # two of the five targets (the whole-population list and the reported one; training on a cohort target
    # is tested in tests/models/test_gate_cohort.py) and few replicate futures keep this short; the demo's
    # config file is exercised on the way
    config = tmp_path / "demo.yaml"
    config.write_text("truth_reps: 4\ntargets: [high_use, rising_high_use]\n")
    res = runner.invoke(app, ["demo", "--out", str(out), "--clients", "2500", "--workers", "1", "--config",
                              str(config), "--tracking-uri", uri, "--worklist-db", worklist])
    assert res.exit_code == 0, res.output
    assert f"mlflow ui --backend-store-uri {uri}" in " ".join(res.output.split())  # the store it wrote to
    realism = pd.read_csv(out / "realism.csv")
    assert {"any_contact_share", "top10_cost_share", "cost_per_resident_eur"} <= set(realism["figure"])
    metrics = pd.read_csv(out / "model_metrics.csv").set_index("target")
    assert set(metrics.index) == {"high_use", "rising_high_use"}
    assert "high_use" in metrics.index and metrics.loc["high_use", "lightgbm_auroc"] > 0.75
    risk = pd.read_parquet(out / "risklists" / "high_use.parquet")
    assert risk["rank"].min() == 1 and risk["client_id"].is_unique
    summary = json.loads((out / "demo_summary.json").read_text())
    shown = summary["report_target"]  # rising_high_use, unless its model failed the quality gate on this small county
    shown_risk = pd.read_parquet(out / "risklists" / f"{shown}.parquet")
    assert len(sorted((out / "reports").glob(f"{shown}_*.html"))) == shown_risk["unit"].nunique()
    if shown != "high_use":  # the whole-population list is kept for capacity planning, labelled and apart
        assert len(sorted((out / "reports" / "capacity").glob("high_use_*.html"))) == risk["unit"].nunique()
    for name in ("segments.html", "segments_grid.html", "segment_transitions.html", "segments.parquet"):
        assert (out / name).exists(), name
    # the scenario step: every shipped scenario to 2030 in the table, and the report
    scen = pd.read_parquet(out / "scenarios" / "scenarios.parquet")
    assert scen["year"].max() == 2030 and scen["scenario"].nunique() == len(summary["scenarios"]["scenarios"])
    assert (out / "scenarios" / "scenarios.html").exists()
    # the worklist step: both lists of each reported target in the database (outside --out), users, passwords
    reported = 1 + (shown != "high_use")
    assert summary["worklist"]["imported"] == 2 * reported
    users = tmp_path / "var" / "demo-users.txt"
    assert summary["worklist"]["users_file"] == str(users) and users.stat().st_mode & 0o777 == 0o600
    assert {"admin_demo", "analyst_demo", "lead_demo"} <= set(summary["worklist"]["users_created"])
    assert f"demo users and their passwords: {users}" in res.output
    # the monitoring step: the current high_use list against the previous one, and how the previous one did
    assert {p.name for p in (out / "monitoring").iterdir()} >= {"drift.html", "drift.csv", "evaluation.html",
                                                                 "evaluation.csv"}
    assert summary["monitoring"]["drift_verdict"] in ("ok", "watch", "act")
    assert summary["monitoring"]["evaluation_basis"] == "realised" and summary["monitoring"]["evaluation_auroc"] > 0.7
