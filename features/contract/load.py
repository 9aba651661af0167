"""One call from a data directory to validated, cost-filled tables."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contract.tables import TABLES
from features.contract.costs import fill_missing_costs, load_unit_costs
from features.contract.io import atomic_dir, read_tables, write_table
from features.contract.validation import ValidatedTables, validate_tables


def load_tables(
    data_dir: str | Path,
    *,
    lenient: bool = False,
    quarantine_dir: str | Path | None = None,
    unit_costs: str | Path | None = None,
    fill_costs: bool = True,
) -> ValidatedTables:
    """Read, validate and cost-fill the canonical tables of ``data_dir``.

    Parameters
    ----------
    data_dir
        Folder with one Parquet/CSV file (or Parquet folder) per table.
    lenient
        Quarantine invalid rows instead of failing.
    quarantine_dir
        Where rejected rows go, one ``<table>.csv`` each with a ``reason``
        column (written atomically, only in lenient mode).
    unit_costs
        Unit-cost YAML file overriding the packaged defaults.
    fill_costs
        Fill missing event costs from the unit-cost table (flagged in ``cost_imputed``).

    Raises
    ------
    features.contract.validation.ContractError
        If the data break the contract (strict mode) or a table's structure is broken.
    """
    tables, problems = read_tables(data_dir)
    result = validate_tables(tables, lenient=lenient, parse_problems=problems)
    if lenient and quarantine_dir is not None:
        write_quarantine(result, quarantine_dir)
    if fill_costs:
        result.tables["events"] = fill_missing_costs(result.tables["events"], load_unit_costs(unit_costs))
    return result


def write_quarantine(result: ValidatedTables, quarantine_dir: str | Path) -> Path:
    """Write every rejected row with its reason, plus a summary, into ``quarantine_dir`` atomically."""
    with atomic_dir(quarantine_dir) as tmp:
        for table, frame in result.quarantine.items():
            frame.to_csv(tmp / f"{table}.csv", index=False)
        summary = pd.DataFrame({
            "table": list(result.report.rows_in),
            "rows_in": list(result.report.rows_in.values()),
            "rows_kept": [result.report.rows_kept[t] for t in result.report.rows_in],
        })
        summary["rows_quarantined"] = summary["rows_in"] - summary["rows_kept"]
        summary.to_csv(tmp / "summary.csv", index=False)
        result.report.summary().to_csv(tmp / "problems.csv", index=False)
    return Path(quarantine_dir)


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> Path:
    """Write canonical tables as Parquet files into ``out_dir``, each atomically."""
    out_dir = Path(out_dir)
    for table in TABLES:
        if table in tables:
            write_table(tables[table], out_dir / f"{table}.parquet")
    return out_dir
