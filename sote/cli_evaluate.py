"""``sote evaluate-list``: how did a risk list do -- realised once its horizon has passed, estimated before."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sote.app import app, check_writable, console, fail, quiet_libraries


@app.command("evaluate-list")
def evaluate_list(
    risklist: Path = typer.Option(..., help="Risk list written by `sote score` (.parquet or .csv)."),
    data: Path = typer.Option(..., help="Folder with the canonical tables: the list's date and, for realised "
                                        "figures, its whole horizon."),
    out: Optional[Path] = typer.Option(None, help="Base name: writes <base>.csv and <base>.html (default: "
                                                  "<list>_evaluation beside the list; for a list in a batch "
                                                  "job's date folder, <job out>/evaluation_<date> beside that "
                                                  "folder, which a rerun of the date replaces)."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store of the model's training run and of the "
                                                          "evaluation run (default: ./mlruns)."),
) -> None:
    """How did the list do: AUROC, calibration, precision and recall at each unit's top 1/2/5 %.

    Once the list's horizon has passed (the data reach as-of + horizon): realised figures from the
    recorded outcomes, for the whole list, per unit and per equity group (sex, language, age band,
    municipality), next to what the model promised at training (its run's validation metrics) and
    to the label-free estimate. Before the horizon: that estimate only, from the list's calibrated
    probabilities, marked ESTIMATE in every output. Small cells are blanked; an MLflow run in
    experiment sote-list-evaluation records the aggregates (never a client id).
    """
    from models.evaluate_list import evaluate_list as run_evaluation
    from models.evaluate_list import output_paths
    from sote.options import guard_file

    if not risklist.exists():  # a file, or a Parquet folder (sote score --engine spark)
        fail(f"--risklist {risklist}: no such file")
    if not data.is_dir():
        fail(f"--data {data}: no such folder" if not data.exists() else f"--data {data} is not a folder")
    base = out if out is not None else default_out(risklist)
    try:
        paths = output_paths(base)
    except ValueError as err:
        fail(str(err))
    for path in paths.values():
        guard_file(path, "--out", inputs=[data, risklist])
    check_writable(*paths.values())
    quiet_libraries()
    with console.status("evaluating the list"):
        result = run_evaluation(risklist, data, tracking_uri=tracking_uri, out=base)
    whole = result.overall(shared=True)  # what is printed leaves the analysts' tables: small cells blank
    mark = "ESTIMATE (label-free, the horizon has not passed)" if result.basis == "estimate" else "realised"
    console.print(f"{result.target} list of {result.as_of.date()}: {mark}", highlight=False, soft_wrap=True)
    figures = [f"{label} {_shown(whole.get(key))}" for key, label in (
        ("auroc", "AUROC"), ("precision_top1pct", "precision top 1 %"), ("precision_top2pct", "precision top 2 %"),
        ("precision_top5pct", "precision top 5 %"), ("promised_auroc", "promised AUROC"))]
    console.print(("estimated: " if result.basis == "estimate" else "") + "; ".join(figures),
                  highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    console.print("written: " + ", ".join(str(p) for p in result.paths.values())
                  + (f"; MLflow run {result.run_id}" if result.run_id else ""), highlight=False, soft_wrap=True)


def default_out(risklist: Path) -> Path:
    """Where the evaluation of ``risklist`` goes without ``--out``: beside the list, but never inside a batch folder.

    A ``sote batch`` date folder (``<out>/<date>/`` holding the job's ``summary.json``) is replaced as a
    whole when the date is run again, so the evaluation of its list goes beside the folder:
    ``<out>/evaluation_<date>`` (``<out>/evaluation_<date>_<stem>`` for a list not named ``risklist``).
    """
    from sote.batch import SUMMARY

    folder = risklist.parent
    if (folder / SUMMARY).is_file():
        suffix = "" if risklist.stem == "risklist" else f"_{risklist.stem}"
        return folder.parent / f"evaluation_{folder.name}{suffix}"
    return risklist.with_name(risklist.stem + "_evaluation")


def _shown(value) -> str:
    """A figure to 3 decimals, or "–" when it is missing or suppressed."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{value:.3f}" if value == value else "–"
