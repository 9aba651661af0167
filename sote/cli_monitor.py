"""``sote monitor``: drift between a reference and current feature tables or risk lists (a thin layer over models.monitor)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sote.app import ExitCode, app, console, fail, quiet_libraries


@app.command()
def monitor(
    current: Path = typer.Option(..., help="Current feature table or risk list (.parquet or .csv)."),
    out: Path = typer.Option(..., help="Base name of the report: writes <base>.html and <base>.csv (a .html/.csv "
                                       "suffix is dropped)."),
    reference: Optional[Path] = typer.Option(None, help="Reference feature table or risk list, of the same kind as "
                                                        "--current. Without it, --model's training distribution "
                                                        "(stored with the model) is the reference."),
    model: Optional[str] = typer.Option(None, help="Model (models:/high_use@champion): scores feature tables for the "
                                                   "score's drift, and tags the run with its version."),
    config: Optional[Path] = typer.Option(None, help="Thresholds YAML (default: the packaged "
                                                     "models/config/monitoring.yaml)."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns)."),
    log: bool = typer.Option(True, help="Log the comparison as a run of the MLflow experiment sote-monitoring."),
    fail_on_drift: bool = typer.Option(False, help="Exit with status 5 when the verdict is act."),
) -> None:
    """Compare current data with a reference: PSI, Jensen-Shannon distance, missing and unseen values per feature,
    the score's PSI, the share above the risk bands per unit and the segment shares.

    Verdict ok, watch or act (the worst level found; thresholds in the config). Only aggregates are written
    and logged; exit status 0 whatever the verdict unless --fail-on-drift.
    """
    from models.drift import load_monitoring_config
    from models.monitor import monitor as run_monitor
    from features.histories.engine import SUCCESS
    from models.monitor import output_paths

    from sote.app import check_writable
    from sote.options import guard_file

    if reference is None and model is None:
        fail("give --reference, or --model to compare with the model's training distribution")
    for option, path in (("--current", current), ("--reference", reference), ("--config", config)):
        # a feature table or risk list may be a Parquet folder an engine wrote (sote ... --engine spark), which
        # carries the SUCCESS marker; any other folder is a wrong option
        engine_folder = option != "--config" and path is not None and (path / SUCCESS).is_file()
        if path is not None and not (path.is_file() or engine_folder):
            fail(f"{option} {path}: no such file" if not path.exists() else
                 f"{option} {path} is a folder, not a file or a Parquet folder written by sote (no {SUCCESS} marker)")
    for option, path in (("--current", current), ("--reference", reference)):
        if path is not None and path.is_file() and path.suffix not in (".parquet", ".csv"):
            fail(f"{option} {path}: use a .parquet or .csv file (a feature table or a risk list)")
    thresholds = load_monitoring_config(config)  # a bad config is named before any work
    paths = output_paths(out)
    for path in paths.values():
        guard_file(path, "--out", inputs=[current, reference])
    check_writable(*paths.values())
    quiet_libraries()
    with console.status("comparing"):
        result = run_monitor(reference, current, model_uri=model, tracking_uri=tracking_uri, thresholds=thresholds,
                             out=out, log=log)
    counts = result.counts()
    console.print(f"verdict: {result.verdict} ({counts['act']} feature(s) act, {counts['watch']} watch, "
                  f"{counts['ok']} ok" + (f"; score PSI {result.score_psi:.3f}" if result.score_psi is not None
                                          else "") + ")", markup=False, highlight=False)
    table = result.table
    flagged = table[(table["section"] == "feature") & (table["level"] != "ok")].sort_values("value", ascending=False)
    if len(flagged):
        console.print(flagged[["name", "statistic", "value", "missing_change", "level"]].head(10).round(3)
                      .to_string(index=False), markup=False, highlight=False)
    console.print("written: " + ", ".join(str(p) for p in result.paths.values())
                  + (f"; MLflow run {result.run_id}" if result.run_id else ""), markup=False, highlight=False,
                  soft_wrap=True)
    if fail_on_drift and result.verdict == "act":
        fail("drift above the act threshold (--fail-on-drift)", ExitCode.DRIFT)
