"""``sote segment`` and ``sote segment-transitions``: thin commands over the segmentation library."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from sote.app import ExitCode, app, check_writable, console, fail


def _date(value: str, option: str) -> pd.Timestamp:
    from sote.options import cli_date

    return cli_date(value, option)


def _k(value: str) -> int | str:
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 2:
        fail(f"--k must be 'auto' or a whole number of at least 2, got {value!r}", 2)
    return int(value)


def _load(data: Path):
    """The folder validated into a dataset (a context manager: a temporary copy is removed on leaving)."""
    from features.contract.stream import open_dataset
    from features.contract.validation import ContractError

    try:
        return open_dataset(data)
    except ContractError as err:
        console.print(err.report.to_text(), markup=False)
        fail(f"{data} breaks the data contract; run `sote validate {data}` for details", ExitCode.DATA_INVALID)
    except FileNotFoundError as err:
        fail(str(err))


def _features_at(tables, as_of: pd.Timestamp) -> pd.DataFrame:
    from segmentation.snapshots import features_at

    try:
        return features_at(tables, as_of)
    except ValueError as err:  # no client resident at the date
        fail(str(err))


@app.command()
def segment(
    data: Path = typer.Option(..., help="Folder with the canonical tables."),
    as_of: str = typer.Option(..., "--as-of", help="Index date (YYYY-MM-DD)."),
    method: str = typer.Option("kmeans", help="auto | kmeans | gmm | hdbscan | grid | needs"),
    k: str = typer.Option("auto", help="Number of segments or 'auto'."),
    out: Path = typer.Option(..., help="Segment file (.parquet or .csv): client_id, segment, segment_name "
                                       "(and rule, for needs: which rule placed the client)."),
    cohort: Optional[str] = typer.Option(None, help="Segment only this target's cohort (e.g. young_adult_mhsu)."),
    needs_config: Optional[Path] = typer.Option(None, "--needs-config",
                                                help="Need-based segments YAML for --method needs."),
    report: Optional[Path] = typer.Option(None, help="Write a readable HTML report here."),
    lang: str = typer.Option("fi", help="Label language of the grid and need-based segments: fi | sv | en."),
    seed: int = typer.Option(0, help="Seed of every random step."),
    track: bool = typer.Option(False, help="Log the segmentation (aggregates only) as an MLflow run."),
    experiment: str = typer.Option("sote-segments", help="MLflow experiment for --track."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: local store in ./mlruns)."),
) -> None:
    """Segment the clients resident at a date, with profiles and cost concentration."""
    from features.contract.io import write_table
    from segmentation.report import segmentation_html, write_html
    from segmentation.segments import ALL_METHODS
    from segmentation.snapshots import segment_at
    from segmentation.tracking import track_segmentation

    if method not in ALL_METHODS:
        fail(f"--method must be one of {', '.join(ALL_METHODS)}", 2)
    if out.suffix not in (".parquet", ".csv"):
        fail(f"--out {out}: use a .parquet or .csv file name", 2)
    from sote.options import check_period, guard_file

    guard_file(out, "--out", inputs=[data])
    guard_file(report, "--report", inputs=[data, out])
    check_writable(out, report)  # before any work: never --out written and --report failed
    t = _date(as_of, "--as-of")
    check_period(data, [(t, "--as-of", 0, "")])
    with _load(data) as tables:
        with console.status(f"building client histories as of {t.date()}"):
            features = _features_at(tables, t)
        with console.status(f"segmenting {len(features):,} clients ({method})"):
            try:  # the next-year cost enters the profiles only when the data cover that whole year
                segments = segment_at(tables, t, method, _k(k), features=features, random_state=seed, lang=lang,
                                      cohort=cohort, needs_config=needs_config)
            except ValueError as err:
                fail(str(err))
    result, next_cost, features = segments.result, segments.next_year_cost, segments.features
    assignments = result.assignments
    if method == "needs":
        assignments = assignments.assign(rule=result.model.rules(features)["conditions"].to_numpy())
    write_table(assignments, out)
    comparison = None
    if report or track:
        from segmentation.compare import compare_methods, synthetic_archetypes
        from segmentation.segments import segment_clients

        label = f"auto ({result.method})" if method == "auto" else method
        results = {label: result}
        for rule in ("needs", "grid"):  # the declared segmentations beside the chosen one
            if rule != method:
                results[rule] = segment_clients(features, rule, lang=lang)
        comparison = compare_methods(features, results, next_cost,
                                     synthetic_archetypes(data, t, features["client_id"]))
    html = segmentation_html(result, features, str(t.date()), next_cost, comparison) if (report or track) else None
    if report is not None:
        write_html(html, report)
    if track:
        run_id = track_segmentation(result, features, str(t.date()), html, experiment, tracking_uri,
                                    comparison=comparison)
        console.print(f"logged to MLflow run {run_id} (experiment {experiment})")
    cols = [c for c in ("segment", "segment_name", "clients", "client_share", "next_year_cost_share")
            if c in result.profiles]
    console.print(result.profiles[cols].to_string(index=False), markup=False)
    console.print(f"segments written to {out}" + (f", report to {report}" if report else ""))


@app.command("segment-transitions")
def segment_transitions(
    data: Path = typer.Option(..., help="Folder with the canonical tables."),
    date_from: str = typer.Option(..., "--from", help="Earlier index date (segments are defined here)."),
    date_to: str = typer.Option(..., "--to", help="Later index date."),
    out: Path = typer.Option(..., help="HTML report (Sankey diagram, transition matrix, flows)."),
    method: str = typer.Option("kmeans", help="auto | kmeans | gmm | hdbscan | grid | needs"),
    k: str = typer.Option("auto", help="Number of segments or 'auto'."),
    cohort: Optional[str] = typer.Option(None, help="Follow only this target's cohort at --from "
                                                    "(e.g. young_adult_mhsu)."),
    flows_out: Optional[Path] = typer.Option(None, "--flows", help="Also write the flows table (.csv/.parquet)."),
    seed: int = typer.Option(0, help="Seed of every random step."),
) -> None:
    """How clients move between segments from one date to another (segments fitted at the earlier date)."""
    from features.contract.io import write_table
    from segmentation.report import write_html
    from segmentation.snapshots import segment_at, transitions_between

    t0, t1 = _date(date_from, "--from"), _date(date_to, "--to")
    if t1 <= t0:
        fail("--to must be after --from", 2)
    from sote.options import check_period, guard_file

    guard_file(out, "--out", inputs=[data])
    guard_file(flows_out, "--flows", inputs=[data, out])
    check_writable(out, flows_out)
    check_period(data, [(t0, "--from", 0, ""), (t1, "--to", 0, "")])
    with _load(data) as tables:
        with console.status("building client histories at both dates"):
            f0, f1 = _features_at(tables, t0), _features_at(tables, t1)
        try:
            fitted = segment_at(tables, t0, method, _k(k), features=f0, random_state=seed, lang="fi", cohort=cohort)
            moves = transitions_between(fitted, t1, features=f1)
        except ValueError as err:
            fail(str(err))
    write_html(moves.html(), out)
    if flows_out is not None:
        write_table(moves.flows, flows_out)
    console.print(moves.matrix.to_string(), markup=False)
    console.print(f"report written to {out}")
