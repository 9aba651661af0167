"""``sote ingest synthea`` and ``sote ingest omop``: thin commands over features.adapters."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from features.adapters.common import KEY_ENV, REJECTED_FILE, REPORT_FILE
from sote.app import ExitCode, app, console, fail

ingest = typer.Typer(no_args_is_help=True, add_completion=False,
                     help="Convert a real data format (Synthea CSV, OMOP CDM 5.4) into the canonical tables.")
app.add_typer(ingest, name="ingest")

_KEY_HELP = (f"Key of the pseudonymous client ids (HMAC-SHA256). Default: ${KEY_ENV}, else a public key "
             "(the report says so).")
_MAPS_HELP = "YAML merged over the packaged adapter maps (service lines, LOINC codes)."
_SNOMED_HELP = "YAML extending the packaged SNOMED CT -> ICD-10 table."
_OVERWRITE_HELP = "Write into a folder that holds other files (only sote's own files are ever replaced)."


def _summary(report: dict, out: Path) -> None:
    table = Table(title=f"{report['source']} -> {out}", title_justify="left")
    for col in ("source table", "rows in", "rows out", "rejected", "main reasons"):
        table.add_column(col, justify="right" if col.startswith(("rows", "rej")) else "left")
    for name, s in report["sources"].items():
        reasons = sorted(s["rejected_by_reason"].items(), key=lambda kv: -kv[1])[:2]
        table.add_row(name, f"{s['rows_in']:,}", f"{s['rows_out']:,}", f"{s['rejected']:,}",
                      "; ".join(f"{r} ({n:,})" for r, n in reasons))
    console.print(table)
    for source, by_reason in report["unmapped"].items():
        for reason, codes in by_reason.items():
            top = ", ".join(f"{c['code']}" + (f" {c['detail']}" if "detail" in c else "") + f" ({c['rows']:,})"
                            for c in codes[:5])
            more = f", … {len(codes) - 5} more" if len(codes) > 5 else ""
            console.print(Text.assemble((source, "bold"), f" {reason}: {len(codes):,} code(s): {top}{more}"),
                          highlight=False)
    console.print("service lines: " + ", ".join(f"{k} {v:,}" for k, v in report["service_lines"].items()))
    for note in report["notes"]:
        console.print(Text.assemble(("note:", "yellow"), f" {note}"), highlight=False)
    console.print(f"tables written to {out}/ (Parquet); every rejected row with its reason in "
                  f"{out / REJECTED_FILE}; the mapping report in {out / REPORT_FILE}")


def _run(convert, out: Path, check: bool, src: Path | None = None, overwrite: bool = False) -> None:
    from features.adapters import AdapterError
    from features.contract.load import load_tables
    from features.contract.validation import ContractError
    from sote.options import guard_dir

    guard_dir(out, "--out", overwrite=overwrite, inputs=[src])
    try:
        with console.status("converting"):
            result = convert()
        result.write(out, overwrite=overwrite)
    except AdapterError as err:
        fail(str(err))
    _summary(result.report, out)
    if check:
        try:
            load_tables(out)
        except ContractError as err:  # pragma: no cover - the adapters enforce the contract
            console.print(err.report.to_text(), highlight=False, markup=False)
            fail(f"{out} breaks the data contract; please report this as an adapter bug", ExitCode.FAILED)
        console.print(f"{out} passes the data contract (sote validate {out})")


@ingest.command("synthea")
def synthea(
    src: Path = typer.Argument(..., help="Folder of the Synthea CSV export (patients.csv, encounters.csv, …)."),
    out: Path = typer.Option(..., help="Folder to write the canonical tables into (replaced atomically)."),
    key: Optional[str] = typer.Option(None, envvar=KEY_ENV, show_envvar=True, help=_KEY_HELP),
    timezone: str = typer.Option("UTC", help="IANA zone of the generating machine: Synthea writes timestamps in "
                                            "UTC but birth and death dates in local time."),
    cost: str = typer.Option("total", help="total (TOTAL_CLAIM_COST), base (BASE_ENCOUNTER_COST) or unit "
                                          "(leave costs to the unit-cost table)."),
    eur_per_usd: Optional[float] = typer.Option(None, help="Exchange rate for the USD costs (default: maps file)."),
    language: str = typer.Option("other", help="Language of every client (fi, sv or other)."),
    maps: Optional[Path] = typer.Option(None, help=_MAPS_HELP),
    snomed_map: Optional[Path] = typer.Option(None, help=_SNOMED_HELP),
    check: bool = typer.Option(True, help="Load the written folder with strict validation afterwards."),
    overwrite: bool = typer.Option(False, help=_OVERWRITE_HELP),
) -> None:
    """Convert a Synthea CSV export: patients, encounters, conditions, observations."""
    from features.adapters import ingest_synthea

    _run(lambda: ingest_synthea(src, key=key, timezone=timezone, cost=cost, eur_per_usd=eur_per_usd,
                                language=language, maps=maps, snomed_map=snomed_map), out, check, src, overwrite)


@ingest.command("omop")
def omop(
    src: Path = typer.Argument(..., help="Folder of OMOP CDM 5.4 tables (CSV or Parquet, lower or upper case)."),
    out: Path = typer.Option(..., help="Folder to write the canonical tables into (replaced atomically)."),
    key: Optional[str] = typer.Option(None, envvar=KEY_ENV, show_envvar=True, help=_KEY_HELP),
    language: str = typer.Option("other", help="Language of every client (the CDM records none)."),
    default_unit: str = typer.Option("unassigned", help="Unit of clients without a care site."),
    eur_per_usd: Optional[float] = typer.Option(None, help="Exchange rate for COST rows in USD."),
    maps: Optional[Path] = typer.Option(None, help=_MAPS_HELP),
    snomed_map: Optional[Path] = typer.Option(None, help=_SNOMED_HELP),
    check: bool = typer.Option(True, help="Load the written folder with strict validation afterwards."),
    overwrite: bool = typer.Option(False, help=_OVERWRITE_HELP),
) -> None:
    """Convert an OMOP CDM 5.4 data set: person, death, visit_occurrence, condition_occurrence, measurement, cost."""
    from features.adapters import ingest_omop

    _run(lambda: ingest_omop(src, key=key, language=language, default_unit=default_unit, eur_per_usd=eur_per_usd,
                             maps=maps, snomed_map=snomed_map), out, check, src, overwrite)
