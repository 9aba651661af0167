"""``sote batch``: one scheduled job (validate → features → score → monitor → publish) for one as-of date."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from sote.app import ExitCode, app, console, fail, quiet_libraries


@app.command()
def batch(
    config: Path = typer.Option(..., "--config", help="The job's YAML (sample: docs/job.yaml)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Index date (YYYY-MM-DD), overriding the job's "
                                                              "as_of (for cron: --as-of $(date +%Y-%m-01))."),
) -> None:
    """Run a scheduled job for one date and print its JSON summary on standard output.

    Outputs go to <out>/<as_of>/, moved into place together when every step has succeeded.

    Each run appends a line to <out>/batch_log.jsonl; a rerun with the same inputs rewrites the same bytes.

    Exit status: 0 ok, 3 data invalid, 5 drift (only with fail_on_drift: true), 2 job file or model, 1 failed.
    """
    from sote.batch import load_job, run_batch

    if as_of is not None:
        from sote.options import cli_date

        as_of = f"{cli_date(as_of, '--as-of'):%Y-%m-%d}"
    try:
        job = load_job(config, as_of=as_of)
    except (ValueError, FileNotFoundError) as err:  # the file, the key and the value named
        fail(str(err), ExitCode.USER_ERROR)
    quiet_libraries()
    # a scheduled job's log holds the steps, not MLflow's download bars (the user's own setting wins)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    result = run_batch(job, say=lambda message: console.print(message, highlight=False, soft_wrap=True))
    typer.echo(json.dumps(result.summary, indent=2, ensure_ascii=False, default=str))
    summary = result.summary
    if result.exit_code == ExitCode.DATA_INVALID and hasattr(result.error, "report"):
        console.print(result.error.report.to_text(), highlight=False, soft_wrap=True)
    if "error" in summary:
        fail(f"{summary['error']['step']}: {summary['error']['message']}", result.exit_code)
    drift = summary["drift"]
    verdict = f"; drift {drift['verdict']} against {drift['reference']}" if drift["verdict"] else ""
    run = summary["mlflow_run"]
    console.print(f"{job.as_of}: {summary['steps'][2]['rows_out']:,} clients listed in {job.folder}/{verdict}; "
                  f"MLflow run {run['run_id']}" + (" (the existing run of this date and data)" if run["reused"]
                                                   else ""), highlight=False, soft_wrap=True)
    if result.exit_code == ExitCode.DRIFT:
        fail(f"drift {drift['verdict']} reaches drift_level {job.drift_level} (fail_on_drift: true); the outputs "
             f"and the drift report are in {job.folder}/", ExitCode.DRIFT)
