"""``sote score`` and ``sote report``: batch scoring and case-manager reports."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from sote.app import SPARK_MASTER, ExitCode, app, progress_bar, console, fail, quiet_libraries


@app.command()
def score(
    model: str = typer.Option("models:/high_use@champion", help="Registered model URI (models:/name@alias)."),
    data: Path = typer.Option(..., help="Folder with the canonical tables."),
    as_of: str = typer.Option(..., "--as-of", help="Index date (YYYY-MM-DD)."),
    out: Path = typer.Option(..., help="Risk list (.parquet or .csv), written atomically; sidecar <out>.json."),
    chunk_size: int = typer.Option(50_000, help="Clients scored per chunk."),
    reasons: int = typer.Option(5, min=0, help="Plain-language reasons per client (0 for none)."),
    explain_share: float = typer.Option(1.0, help="Share of each unit's highest-ranked clients who get reasons "
                                                  "(1 = everyone; 0.2 is 5x faster and covers every list a "
                                                  "case manager reads)."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: ./mlruns)."),
    engine: str = typer.Option("duckdb", help="duckdb (in-process; --out is a file) or spark (features, scores, "
                                              "ranks and reasons computed by Spark; --out is a Parquet folder "
                                              "partitioned by unit)."),
    spark_master: Optional[str] = SPARK_MASTER,
) -> None:
    """Score a model's cohort at a date into an explained risk list.

    Features are rebuilt with the feature spec the model carries; residents outside the model's
    cohort (e.g. anyone not 18-29 with mental-health or substance contacts, for young_adult_mhsu)
    are left out of the list and counted in the sidecar (outside_cohort).
    """
    from features.contract.validation import ContractError
    from models.scoring import ScoringError
    from models.scoring import score as run_score

    from sote.cli_features import check_engine, check_spark_out
    from sote.options import check_period, cli_date, guard_file

    t = cli_date(as_of, "--as-of")
    check_engine(engine, spark_master)
    if engine == "spark":
        check_spark_out(out, data)
    else:
        guard_file(out, "--out", inputs=[data])
    guard_file(out.with_name(out.name + ".json"), "--out (its sidecar)", inputs=[data])
    check_period(data, [(t, "--as-of", 0, "")])
    quiet_libraries()
    try:
        with progress_bar() as bar:
            task = bar.add_task("scoring", total=None)
            report = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
            if engine == "spark":
                sidecar = _score_on_spark(model, data, t, out, reasons, explain_share, tracking_uri, spark_master,
                                          report)
            else:
                sidecar = run_score(model, data, t, out, chunk_size=chunk_size, reasons=reasons,
                                    explain_share=explain_share, tracking_uri=tracking_uri, progress=report)
    except ContractError as err:
        console.print(err.report.to_text(), markup=False)
        fail(f"{data} breaks the data contract; run `sote validate {data}`", ExitCode.DATA_INVALID)
    except (ScoringError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    outside = (f"; {sidecar['outside_cohort']:,} residents outside the model's cohort left out"
               if sidecar["outside_cohort"] else "")
    console.print(f"risk list of {sidecar['rows']:,} clients written to {out} "
                  f"(model {sidecar['model_name']} v{sidecar['model_version']}, {sidecar['seconds']} s){outside}",
                  markup=False, highlight=False)
    console.print(sidecar["cohort"]["en"], markup=False, highlight=False)
    flagged = [f"{sidecar[key]:,} {what}" for key, what in (
        ("intensive_ongoing", "already in intensive services"), ("prior_high_use", "in last year's top decile of cost"))
        if sidecar.get(key)]
    if flagged:
        console.print("flagged: " + "; ".join(flagged), markup=False, highlight=False)
    over = sidecar.get("probability_bounds", {})
    if over.get("over_rows"):
        console.print(f"{over['over_rows']:,} probabilities in the top calibration bin are shown as over "
                      f"{100 * over['over']:g} %, not as the capped value", markup=False, highlight=False)


def _score_on_spark(model, data, t, out, reasons, explain_share, tracking_uri, master, progress) -> dict:
    """``sote score --engine spark``: the data validated first (the same contract errors), then Spark scores."""
    from features.contract.stream import open_dataset
    from models.scoring_spark import score_spark

    from sote.cli_features import spark_engine

    with open_dataset(data) as dataset:  # raises ContractError before Spark starts
        engine = spark_engine(master)
        try:
            return score_spark(model, dataset, t, out, engine=engine, reasons=reasons, explain_share=explain_share,
                               tracking_uri=tracking_uri, progress=progress)
        finally:
            engine.close()


@app.command()
def report(
    risklist: Path = typer.Option(..., help="Risk list written by `sote score` (.parquet or .csv)."),
    out: Path = typer.Option(..., help="Base name of the report: writes <base>.html, <base>.csv and <base>.xlsx "
                                       "(a .html/.htm/.csv/.xlsx suffix is dropped, so no output overwrites "
                                       "another); all three or none."),
    unit: Optional[str] = typer.Option(None, help="Show only this unit's clients (a case manager's own unit)."),
    previous: Optional[Path] = typer.Option(None, help="The previous risk list, to mark who is new."),
    top: int = typer.Option(100, min=1, help="Show the N highest-ranked clients (N >= 1)."),
    lang: str = typer.Option("fi", help="fi | sv | en"),
) -> None:
    """A case manager's report: their unit's ranked clients, risk band, segment, reasons, who is new.

    Text cells of the CSV and Excel exports that a spreadsheet would run as a formula (starting with
    = + - @, tab or carriage return) get a leading apostrophe.
    """
    from sote.app import check_writable
    from worklist.report import report_paths, write_report

    if lang not in ("fi", "sv", "en"):
        fail(f"--lang must be fi, sv or en, got {lang!r}")
    from sote.options import guard_file

    for path in report_paths(out).values():
        guard_file(path, "--out", inputs=[risklist, previous])
    check_writable(*report_paths(out).values())  # before reading anything: all outputs or none
    paths = write_report(risklist, out, previous=previous, unit=unit, top=top, lang=lang)
    console.print("written: " + ", ".join(str(p) for p in paths.values()), highlight=False, soft_wrap=True)
