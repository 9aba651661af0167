"""``sote validate``, ``sote synth`` and ``sote demo``: thin commands over the data contract, the synthetic county and the demo."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from features.config.defaults import COUNTY_CLIENTS, COUNTY_SEED, DATA_END, DATA_START
from features.contract.validation import ContractError
from sote.app import SPARK_MASTER, ExitCode, app, check_writable, console, fail, progress_bar, quiet_libraries


@app.command()
def validate(
    data: Path = typer.Argument(..., help="Folder with the canonical tables (Parquet or CSV)."),
    lenient: bool = typer.Option(False, help="Keep valid rows; quarantine the rest instead of failing."),
    quarantine: Optional[Path] = typer.Option(None, help="Folder for rejected rows and their reasons (with --lenient)."),
    out: Optional[Path] = typer.Option(None, help="Write the kept, cost-filled tables here as Parquet."),
    unit_costs: Optional[Path] = typer.Option(None, help="Unit-cost YAML overriding the defaults."),
    overwrite: bool = typer.Option(False, help="Write into --out / --quarantine folders that hold other files "
                                               "(only sote's own files are ever replaced)."),
    engine: str = typer.Option("duckdb", help="duckdb (this process streams the tables) or spark (the same checks "
                                              "and report, run per bucket of clients by the executors; Parquet "
                                              "tables, strict mode, no --out)."),
    spark_master: Optional[str] = SPARK_MASTER,
) -> None:
    """Check a data folder against the contract and report every problem at once.

    Validation streams table by table in batches, so memory does not grow with
    the tables. With --out the kept, cost-filled tables are written as a
    validated copy: later commands given that folder (--data) use it without
    validating again, as long as its files are unchanged. With --engine spark
    the checks run on a Spark cluster and give the same report.
    """
    from features.contract.stream import check_folder, open_dataset, write_validated_copy
    from sote.cli_features import check_engine
    from sote.options import guard_dir

    check_engine(engine, spark_master)
    if engine == "spark":
        unsupported = [flag for flag, given in (("--lenient", lenient), ("--quarantine", quarantine is not None),
                                                ("--out", out is not None)) if given]
        if unsupported:
            fail(f"{', '.join(unsupported)} with --engine spark: the Spark checks are strict and write nothing (a "
                 "quarantine and the validated copy are one process's work: drop --engine spark)",
                 ExitCode.USER_ERROR)
        _spark_validate(data, unit_costs, spark_master)
        return
    if quarantine is not None and not lenient:
        fail("--quarantine needs --lenient (a strict run keeps nothing and rejects nothing)", ExitCode.USER_ERROR)
    if lenient and quarantine is None:
        fail("--lenient needs --quarantine QDIR: the rejected rows and their reasons must be written somewhere",
             ExitCode.USER_ERROR)
    guard_dir(quarantine, "--quarantine", overwrite=overwrite, inputs=[data, out])
    guard_dir(out, "--out", overwrite=overwrite, inputs=[data, quarantine])
    check_writable(folders=(out, quarantine))
    dataset = None
    try:
        if out is None:
            if unit_costs is not None:  # nothing is costed without --out, but a broken file is still an error
                from features.contract.costs import load_unit_costs

                load_unit_costs(unit_costs)
            report, period = check_folder(data, lenient=lenient, quarantine_dir=quarantine, overwrite=overwrite)
        else:
            # the kept rows are written beside --out (in its nearest existing folder), so that the validated
            # copy is a rename, not a copy
            workdir = next(p for p in out.resolve().parents if p.is_dir())
            dataset = open_dataset(data, lenient=lenient, quarantine_dir=quarantine, unit_costs=unit_costs,
                                   overwrite=overwrite, workdir=workdir)
            report, period = dataset.report, dataset.period
    except ContractError as err:
        console.print(err.report.to_text(), highlight=False, markup=False)
        fail(f"{data} breaks the data contract ({len(err.report.problems)} problem(s))", ExitCode.DATA_INVALID)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    _print_counts(report)
    if period is not None:
        console.print(f"data period: {period.describe()}", highlight=False)
    if quarantine is not None:
        console.print(f"rejected rows and reasons written to {quarantine}/", highlight=False)
    if dataset is not None:
        try:
            write_validated_copy(dataset, out, overwrite=overwrite)
        except ValueError as err:
            fail(str(err))
        finally:
            dataset.close()
        console.print(f"valid tables written to {out}/ (a validated copy: commands given it as --data do not "
                      "validate again)", highlight=False)


def _print_counts(report) -> None:
    """A validation report without examples, then each table's rows in, kept and quarantined."""
    console.print(report.to_text(examples=False), highlight=False, markup=False)
    for table, n in report.rows_in.items():
        rejected = n - report.rows_kept[table]
        console.print(f"{table:>13}: {n:>12,} rows in, {report.rows_kept[table]:>12,} kept, {rejected:>10,} quarantined")


def _spark_validate(data: Path, unit_costs: Optional[Path], master: Optional[str]) -> None:
    """``sote validate --engine spark``: the contract checks on the executors, the one-process report and exit codes."""
    from features.contract.validate_spark import SparkCheckUnsupported, check_contract_spark
    from sote.cli_features import spark_engine

    if not data.is_dir():
        fail(f"data directory not found: {data}")
    if unit_costs is not None:  # nothing is costed here, but a broken file is still an error
        from features.contract.costs import load_unit_costs

        load_unit_costs(unit_costs)
    spark = spark_engine(master)
    try:
        with console.status(f"Spark: checking {data} against the data contract"):
            report = check_contract_spark(data, spark)
    except ContractError as err:
        console.print(err.report.to_text(), highlight=False, markup=False)
        fail(f"{data} breaks the data contract ({len(err.report.problems)} problem(s))", ExitCode.DATA_INVALID)
    except (FileNotFoundError, SparkCheckUnsupported, ValueError) as err:
        fail(str(err))
    finally:
        spark.close()
    _print_counts(report)
    console.print(f"checked on Spark ({master or 'local'}); nothing written", highlight=False)


def _county_projection(folder: Path, config) -> dict:
    """The county's own ``projection.csv`` (scenarios; a layer features/synth may not import)."""
    from scenarios.projection_synth import write_county_projection

    return {"projection": write_county_projection(folder, config.start, config.end)}


def run_synth(out: Path, config, overwrite: bool = False) -> dict:
    """Generate the synthetic county and its ``projection.csv`` with a progress bar; return its manifest."""
    from features.synth import generate_county

    with progress_bar() as bar:
        task = bar.add_task(f"simulating {config.clients:,} residents", total=None)
        manifest = generate_county(out, config, progress=lambda done, total: bar.update(task, completed=done,
                                                                                        total=total),
                                   overwrite=overwrite, extra_outputs=_county_projection)
    return manifest


@app.command()
def synth(
    out: Path = typer.Option(..., help="Folder to write the tables, truth.parquet and manifest.json into."),
    clients: int = typer.Option(COUNTY_CLIENTS, help="Residents at the start date."),
    seed: int = typer.Option(COUNTY_SEED, help="Seed of every random step."),
    start: str = typer.Option(DATA_START, help="First day of the data (first of a month)."),
    end: str = typer.Option(DATA_END, help="Last day of the data (last of a month)."),
    county: str = typer.Option("keski-uusimaa", help="County preset: keski-uusimaa or ita-uusimaa."),
    dirty: bool = typer.Option(False, help="Inject realistic data faults (for testing validation)."),
    truth_reps: int = typer.Option(32, help="Replicate futures per client behind the true probabilities."),
    workers: int = typer.Option(2, help="Processes to simulate with (the output does not depend on it)."),
    overwrite: bool = typer.Option(False, help="Write into a folder that holds other files (only sote's own "
                                               "files are ever replaced)."),
) -> None:
    """Generate a synthetic county with known ground truth (Parquet) and its own population projection.

    Besides the tables, truth.parquet and manifest.json, the folder gets projection.csv: the
    county's population and deaths by municipality, sex and age to 2030 (variants base and
    no_migration; docs/scenarios.md), the input of sote scenarios.
    """
    from features.synth import SynthConfig
    from sote.options import cli_date, guard_dir

    start, end = f"{cli_date(start, '--start'):%Y-%m-%d}", f"{cli_date(end, '--end'):%Y-%m-%d}"
    guard_dir(out, "--out", overwrite=overwrite)
    check_writable(folders=(out,))
    try:
        config = SynthConfig(clients=clients, seed=seed, start=start, end=end, county=county, dirty=dirty,
                             truth_reps=truth_reps, workers=workers)
        manifest = run_synth(out, config, overwrite)
    except ValueError as err:
        fail(str(err))
    rows = ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items())
    console.print(f"wrote {out}/ in {manifest['seconds']} s: {rows}; truth {manifest['truth_rows']:,} rows")
    proj = manifest["projection"]
    console.print(f"population projection {proj['file']}: " + (
        f"{proj['observed_years'][0]}-{proj['projected_years'][1]} ({', '.join(proj['variants'])}), "
        "a cohort-component trend from the county's own records" if proj["written"] else proj["reason"]),
        highlight=False)
    if manifest["faults_injected"]:
        console.print(f"faults injected: {manifest['faults_injected']}")


@app.command()
def demo(
    out: Path = typer.Option(Path("out"), help="Folder for every output of the demo."),
    clients: Optional[int] = typer.Option(None, help="Residents of the synthetic county (default 199,000)."),
    seed: Optional[int] = typer.Option(None, help="Seed of every random step (default 2024)."),
    workers: Optional[int] = typer.Option(None, help="Processes for the simulation (default 2)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Demo configuration YAML (sample: docs/demo.yaml); "
                                                             "options given on the command line win over it."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI (default: local store ./mlruns)."),
    worklist_db: Optional[str] = typer.Option(None, "--worklist-db",
                                              help="Worklist database the lists and demo users go to (default: "
                                                   "$SOTE_WORKLIST_DB or sqlite:///var/worklist.db; never inside "
                                                   "--out)."),
    overwrite: bool = typer.Option(False, help="Write into a folder that holds other files (only sote's own "
                                               "files are ever replaced)."),
) -> None:
    """The main job end to end on the built-in synthetic county.

    Synthetic county → validation → client histories → segments → models for
    the targets (tracked and registered in MLflow) → risk lists → reports → the worklist database
    (lists, client directory, demo users; see docs/worklist.md) → monitoring (out/monitoring/: drift
    between the previous and the current list, and how the previous list did; docs/monitoring.md).
    """
    from features.contract.outputs import OutputRefused, check_store_outside
    from sote.demo import load_demo_config, run_demo
    from sote.options import guard_dir

    try:
        settings = load_demo_config(config, clients=clients, seed=seed, workers=workers, tracking_uri=tracking_uri,
                                    worklist_db=worklist_db)
    except (ValueError, FileNotFoundError) as err:  # the file, the key and the value named
        fail(str(err), ExitCode.USER_ERROR)
    guard_dir(out, "--out", overwrite=overwrite)
    try:
        check_store_outside(settings.tracking_uri, out, "--out")
    except OutputRefused as err:
        fail(str(err), ExitCode.USER_ERROR)
    from sote.cli_worklist import open_database
    from sote.demo_worklist import check_outside
    from worklist.db import default_url

    try:
        check_outside(settings.worklist_db or default_url(), out)
    except ValueError as err:
        fail(str(err), ExitCode.USER_ERROR)
    open_database(settings.worklist_db)[1].dispose()  # a bad URL or an unreachable database fails now, not at the end
    quiet_libraries()
    try:
        result = run_demo(out, settings,
                          say=lambda msg: console.print(msg, highlight=False, soft_wrap=True))
    except ValueError as err:
        fail(str(err))
    cols = [c for c in ("target", "lightgbm_auroc", "prior_cost_auroc", "age_sex_comorbidity_auroc", "oracle_auroc",
                        "calibration_error", "precision_top5pct") if c in result.metrics]
    console.print(result.metrics[cols].round(3).to_string(index=False), markup=False, soft_wrap=True)
    console.print("time per step (s): " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()), soft_wrap=True)
    import mlflow

    # the store the demo wrote to (--tracking-uri, the environment's, or ./mlruns), not always the default
    console.print(f"outputs in {out}/ (see README: What the demo writes); MLflow UI: "
                  f"mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}", soft_wrap=True)
    serve = ("make serve" if out.resolve() == Path("out").resolve() and settings.worklist_db is None
             else f"sote serve --data {out / 'county'}" + (f" --db {settings.worklist_db}" if settings.worklist_db
                                                            else ""))
    console.print(f"open the worklist: {serve}, then http://127.0.0.1:8000/ (demo users and passwords: "
                  f"{result.worklist['users_file']})", highlight=False, soft_wrap=True)
