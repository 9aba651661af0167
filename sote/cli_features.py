"""``sote features`` and ``sote labels``: thin commands over features.histories.build and features.targets.labels."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from sote.app import ExitCode, app, check_writable, console, fail


def _as_of(value: str) -> pd.Timestamp:
    from sote.options import cli_date

    return cli_date(value, "--as-of")


def _check_out(out: Path, data: Path) -> None:
    """Before any work: a .parquet/.csv name, outside the data, not replacing a file sote did not write."""
    from sote.options import guard_file

    if out.suffix not in (".parquet", ".csv"):
        fail(f"--out {out}: use a .parquet or .csv file name", ExitCode.USER_ERROR)
    guard_file(out, "--out", inputs=[data])


def _write(frame: pd.DataFrame, out: Path) -> None:
    from features.contract.io import write_table

    write_table(frame, out)


@app.command()
def features(
    data: Path = typer.Option(..., help="Folder with the canonical tables (Parquet or CSV)."),
    as_of: str = typer.Option(..., "--as-of", help="Index date T (YYYY-MM-DD); only records before T are used."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv), written atomically."),
    spec: Optional[Path] = typer.Option(None, help="Feature spec YAML (default: features/config/features.yaml)."),
    validate: bool = typer.Option(True, help="Validate and cost-fill the tables first (--no-validate scans "
                                             "already-valid Parquet in place, faster)."),
) -> None:
    """Build the client-history feature table as of a date: one row per client alive and resident at T."""
    from features.histories.build import ClientHistories
    from features.histories.spec import SpecError
    from features.contract.validation import ContractError

    from sote.options import check_period

    t = _as_of(as_of)
    _check_out(out, data)
    check_writable(out)
    check_period(data, [(t, "--as-of", 0, "")])
    try:
        with console.status(f"reading {data}"):  # validated once into Parquet that DuckDB scans
            histories = ClientHistories(data, spec, validate=validate)
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


@app.command()
def labels(
    data: Path = typer.Option(..., help="Folder with the canonical tables (Parquet or CSV)."),
    as_of: str = typer.Option(..., "--as-of", help="Index date T (YYYY-MM-DD); the outcome looks at [T, T + horizon)."),
    target: str = typer.Option(..., help="Target name declared in the targets file."),
    out: Path = typer.Option(..., help="Output file (.parquet or .csv), written atomically."),
    targets: Optional[Path] = typer.Option(None, help="Targets YAML (default: features/config/targets.yaml)."),
) -> None:
    """Write one row per cohort member of a target with its 0/1 label."""
    from features.targets.labels import TargetError, build_labels
    from features.contract.validation import ContractError

    from sote.options import check_period, horizon_days

    t = _as_of(as_of)
    _check_out(out, data)
    check_writable(out)
    check_period(data, [(t, "--as-of", horizon_days(target, targets), f"for {target} labels")])
    try:
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
