"""The ``sote`` command: a thin layer over the library API."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from features.validation import ContractError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Client segmentation and service-need prediction for wellbeing services counties.")
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Client segmentation and service-need prediction for wellbeing services counties."""


def fail(message: str, code: int = 1) -> None:
    """Print an error without a traceback and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def validate(
    data: Path = typer.Argument(..., help="Folder with the canonical tables (Parquet or CSV)."),
    lenient: bool = typer.Option(False, help="Keep valid rows; quarantine the rest instead of failing."),
    quarantine: Optional[Path] = typer.Option(None, help="Folder for rejected rows and their reasons (with --lenient)."),
    out: Optional[Path] = typer.Option(None, help="Write the kept, cost-filled tables here as Parquet."),
    unit_costs: Optional[Path] = typer.Option(None, help="Unit-cost YAML overriding the defaults."),
) -> None:
    """Check a data folder against the contract and report every problem at once."""
    from features.load import load_tables, write_tables

    if quarantine is not None and not lenient:
        fail("--quarantine needs --lenient (a strict run keeps nothing and rejects nothing)", 2)
    try:
        result = load_tables(data, lenient=lenient, quarantine_dir=quarantine, unit_costs=unit_costs)
    except ContractError as err:
        console.print(err.report.to_text(), highlight=False, markup=False)
        fail(f"{data} breaks the data contract ({len(err.report.problems)} problem(s))")
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    report = result.report
    console.print(report.to_text(examples=False), highlight=False, markup=False)
    for table, n in report.rows_in.items():
        rejected = n - report.rows_kept[table]
        console.print(f"{table:>13}: {n:>12,} rows in, {report.rows_kept[table]:>12,} kept, {rejected:>10,} quarantined")
    if quarantine is not None and not report.ok:
        console.print(f"rejected rows and reasons written to {quarantine}/")
    if out is not None:
        write_tables(result.tables, out)
        console.print(f"valid tables written to {out}/")


def main() -> None:  # pragma: no cover - console entry point
    app()
