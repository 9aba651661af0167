"""``sote features`` and ``sote labels``: thin commands over features.histories.build and features.targets.labels."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from sote.app import SPARK_MASTER, ExitCode, app, check_writable, console, fail


def _as_of(value: str) -> pd.Timestamp:
    from sote.options import cli_date

    return cli_date(value, "--as-of")


def _check_out(out: Path, data: Path) -> None:
    """Before any work: a .parquet/.csv name, outside the data, not replacing a file sote did not write."""
    from sote.options import guard_file

    if out.suffix not in (".parquet", ".csv"):
        fail(f"--out {out}: use a .parquet or .csv file name", ExitCode.USER_ERROR)
    guard_file(out, "--out", inputs=[data])


def spark_engine(master: Optional[str]):
    """A Spark engine on ``master`` (None: local), or a clear failure when pyspark or Java is missing."""
    from features.histories.engine_spark import SparkEngine, SparkUnavailable

    try:
        with console.status(f"starting Spark ({master or 'local'})"):
            return SparkEngine(master=master)
    except SparkUnavailable as err:
        fail(str(err), ExitCode.USER_ERROR)


def check_engine(engine: str, spark_master: Optional[str]) -> None:
    """``--engine`` is duckdb or spark; ``--spark-master`` goes with spark only."""
    if engine not in ("duckdb", "spark"):
        fail(f"--engine must be duckdb or spark, got {engine!r}", ExitCode.USER_ERROR)
    if spark_master and engine != "spark":
        fail("--spark-master goes with --engine spark", ExitCode.USER_ERROR)


def check_spark_out(out: Path, data: Path) -> None:
    """With ``--engine spark`` ``--out`` is a Parquet folder Spark writes: not a .csv, not over another's files."""
    from sote.options import guard_dir

    if out.suffix == ".csv":
        fail(f"--out {out}: Spark writes a Parquet folder; give a folder name", ExitCode.USER_ERROR)
    guard_dir(out, "--out", inputs=[data])


def _write(frame: pd.DataFrame, out: Path) -> None:
    from features.contract.io import write_table

    write_table(frame, out)


@app.command()
def features(
    data: Path = typer.Option(..., help="Folder with the canonical tables (Parquet or CSV)."),
    as_of: str = typer.Option(..., "--as-of", help="Index date T (YYYY-MM-DD); only records before T are used."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv), written atomically (with --engine spark: "
                                       "a folder)."),
    spec: Optional[Path] = typer.Option(None, help="Feature spec YAML (default: features/config/features.yaml)."),
    validate: bool = typer.Option(True, help="Validate and cost-fill the tables first (--no-validate scans "
                                             "already-valid Parquet in place, faster)."),
    engine: str = typer.Option("duckdb", help="duckdb (in-process; --out is a file) or spark (--out is a Parquet "
                                              "folder partitioned by municipality, written by Spark)."),
    spark_master: Optional[str] = SPARK_MASTER,
) -> None:
    """Build the client-history feature table as of a date: one row per client alive and resident at T."""
    from features.histories.build import ClientHistories
    from features.histories.spec import SpecError
    from features.contract.validation import ContractError

    from sote.options import check_period

    t = _as_of(as_of)
    check_engine(engine, spark_master)
    if engine == "spark":
        check_spark_out(out, data)
    else:
        _check_out(out, data)
    check_writable(out)
    check_period(data, [(t, "--as-of", 0, "")])
    try:
        if engine == "spark":
            _spark_features(data, spec, validate, t, out, spark_master)
            return
        with console.status(f"reading {data}"):  # validated once into Parquet that DuckDB scans
            histories = ClientHistories(data, spec, validate=validate)
        if out.suffix == ".parquet":
            _duckdb_features(histories, data, t, out, validate)
            return
        with histories, console.status(f"building features as of {t:%Y-%m-%d}"):
            table = histories.features(t)
    except ContractError as err:
        console.print(err.report.to_text(), highlight=False, markup=False)
        fail(f"{data} breaks the data contract ({len(err.report.problems)} problem(s))", ExitCode.DATA_INVALID)
    except (FileNotFoundError, SpecError, ValueError) as err:
        fail(str(err))
    if not table["client_id"].is_unique:  # --no-validate trusts the folder: the key is checked anyway
        dup = int(table["client_id"].duplicated().sum())
        fail(f"{data}: {dup:,} client_id value(s) occur more than once in the feature table (duplicate clients "
             f"rows); nothing written. Run `sote validate {data}` (or drop --no-validate)", ExitCode.DATA_INVALID)
    _write(table, out)
    console.print(f"{len(table):,} clients x {table.shape[1] - 1} features as of {t:%Y-%m-%d} written to {out}")


def _duplicate_clients(engine) -> int:
    """How many ``client_id`` values of the registered ``clients`` table are repeats (0 for a valid table)."""
    return int(engine.query("SELECT count(*) - count(DISTINCT client_id) AS n FROM clients")["n"].iloc[0])


def _duckdb_features(histories, data: Path, t: pd.Timestamp, out: Path, validate: bool) -> None:
    """A .parquet ``--out``: DuckDB writes the table share by share (``COPY``), sorted by client; nothing in pandas."""
    from features.histories.output import write_features

    with histories:
        # a validated table has one row per client; --no-validate trusts the folder, so the key is checked first
        dup = 0 if validate else _duplicate_clients(histories.engine)
        if dup:
            fail(f"{data}: {dup:,} client_id value(s) occur more than once in the clients table (duplicate clients "
                 f"rows); nothing written. Run `sote validate {data}` (or drop --no-validate)", ExitCode.DATA_INVALID)
        with console.status(f"building features as of {t:%Y-%m-%d} into {out}"):
            rows = write_features(histories, t, out, partition_by=None, sort=True)
    console.print(f"{rows:,} clients x {len(histories.spec.columns())} features as of {t:%Y-%m-%d} written to {out}")


def _spark_features(data: Path, spec, validate: bool, t: pd.Timestamp, out: Path, master: Optional[str]) -> None:
    """``sote features --engine spark``: validate first (the same contract errors), then Spark writes the folder."""
    from contextlib import nullcontext

    from features.contract.stream import open_dataset
    from features.histories.build import ClientHistories
    from features.histories.output import write_features

    with console.status(f"reading {data}"):
        dataset = open_dataset(data) if validate else None  # raises ContractError before Spark starts
    with dataset if dataset is not None else nullcontext():
        engine = spark_engine(master)
        try:
            with ClientHistories(dataset if dataset is not None else data, spec, validate=False, engine=engine) as h:
                with console.status(f"Spark: building features as of {t:%Y-%m-%d} into {out}"):
                    dup = _duplicate_clients(engine)
                    if dup:
                        fail(f"{data}: {dup:,} client_id value(s) occur more than once in the clients table; nothing "
                             f"written. Run `sote validate {data}` (or drop --no-validate)", ExitCode.DATA_INVALID)
                    write_features(h, t, out)
                rows = engine.spark.read.parquet(str(out)).count()  # from the files' footers
        finally:
            engine.close()
    console.print(f"{rows:,} clients x {len(h.spec.columns())} features as of {t:%Y-%m-%d} written by Spark to {out} "
                  "(Parquet folder partitioned by municipality)")


@app.command()
def labels(
    data: Path = typer.Option(..., help="Folder with the canonical tables (Parquet or CSV)."),
    as_of: str = typer.Option(..., "--as-of", help="Index date T (YYYY-MM-DD); the outcome looks at [T, T + horizon)."),
    target: str = typer.Option(..., help="Target name declared in the targets file."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv), written atomically (with --engine spark: "
                                       "a Parquet folder)."),
    targets: Optional[Path] = typer.Option(None, help="Targets YAML (default: features/config/targets.yaml)."),
    engine: str = typer.Option("duckdb", help="duckdb (in-process; --out is a file) or spark (the same rules run "
                                              "per bucket of clients by the executors; --out is a Parquet folder)."),
    spark_master: Optional[str] = SPARK_MASTER,
) -> None:
    """Write one row per cohort member of a target with its 0/1 label."""
    from features.targets.labels import TargetError, build_labels, get_target
    from features.contract.validation import ContractError

    from sote.options import check_period, horizon_days

    t = _as_of(as_of)
    check_engine(engine, spark_master)
    if engine == "spark":
        check_spark_out(out, data)
    else:
        _check_out(out, data)
    check_writable(out)
    check_period(data, [(t, "--as-of", horizon_days(target, targets), f"for {target} labels")])
    try:
        if engine == "spark":
            get_target(target, targets)  # an unknown target fails before Spark starts
            _spark_labels(data, t, target, targets, out, spark_master)
            return
        with console.status(f"labelling {target} as of {t:%Y-%m-%d}"):
            table = build_labels(data, t, target, targets=targets)
    except ContractError as err:
        console.print(err.report.to_text(), highlight=False, markup=False)
        fail(f"{data} breaks the data contract ({len(err.report.problems)} problem(s))", ExitCode.DATA_INVALID)
    except (FileNotFoundError, TargetError, ValueError) as err:
        fail(str(err))
    _write(table, out)
    console.print(f"{target}: {len(table):,} cohort members, {int(table['label'].sum()):,} positive "
                  f"({table['label'].mean() if len(table) else 0:.1%}) as of {t:%Y-%m-%d} written to {out}")


def _spark_labels(data: Path, t: pd.Timestamp, target: str, targets, out: Path, master: Optional[str]) -> None:
    """``sote labels --engine spark``: validate first (the same contract errors), then Spark labels and writes."""
    from features.contract.stream import open_dataset
    from features.targets.labels_spark import build_labels_spark

    with console.status(f"reading {data}"):
        dataset = open_dataset(data)  # raises ContractError before Spark starts
    with dataset:
        spark = spark_engine(master)
        try:
            with console.status(f"Spark: labelling {target} as of {t:%Y-%m-%d} into {out}"):
                info = build_labels_spark(dataset, t, target, out, engine=spark, targets=targets)
        finally:
            spark.close()
    n, positive = info["rows"], info["positive"]
    console.print(f"{target}: {n:,} cohort members, {positive:,} positive ({positive / n if n else 0:.1%}) as of "
                  f"{t:%Y-%m-%d} written by Spark to {out} (Parquet folder)")
