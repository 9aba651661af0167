"""One call from a data directory to validated, cost-filled tables."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from features.contract.dataset import DECLARATION, DataPeriod
from features.contract.io import atomic_dir
from features.contract.tables import TABLES
from features.contract.validation import ValidatedTables


def load_tables(
    data_dir: str | Path,
    *,
    lenient: bool = False,
    quarantine_dir: str | Path | None = None,
    unit_costs: str | Path | None = None,
    fill_costs: bool = True,
    overwrite: bool = False,
) -> ValidatedTables:
    """Read, validate and cost-fill the canonical tables of ``data_dir``, all in pandas.

    The validation streams (:func:`features.contract.stream.open_dataset`); only the
    result is brought into memory whole. Commands that need a part of it read from
    the :class:`~features.contract.stream.ValidatedDataset` instead.

    Parameters
    ----------
    data_dir
        Folder with one Parquet/CSV file (or Parquet folder) per table, and
        optionally ``dataset.yaml`` (period, date formats, encodings).
    lenient
        Quarantine invalid rows instead of failing.
    quarantine_dir
        Where rejected rows go, one ``<table>.csv`` each with a ``reason``
        column (written atomically, only in lenient mode). It must lie outside
        ``data_dir`` and hold nothing sote did not write (see ``overwrite``).
    unit_costs
        Unit-cost YAML file overriding the packaged defaults.
    fill_costs
        Fill missing event costs from the unit-cost table (flagged in ``cost_imputed``).
    overwrite
        Accept a quarantine folder that holds other files (only sote's own are replaced).

    Returns
    -------
    ValidatedTables
        With ``period`` set: the declared period, or one inferred from the kept records.
        The quarantined rows are read back from the quarantine's CSV files, as text.

    Raises
    ------
    features.contract.validation.ContractError
        If the data break the contract (strict mode) or a table's structure is broken.
    features.contract.io.UnreadableTable
        If a table file cannot be read at all.
    features.contract.outputs.OutputRefused
        If ``quarantine_dir`` overlaps ``data_dir`` or holds other files.
    """
    from features.contract.stream import open_dataset

    with open_dataset(data_dir, lenient=lenient, quarantine_dir=quarantine_dir, unit_costs=unit_costs,
                      fill_costs=fill_costs, overwrite=overwrite) as dataset:
        return dataset.to_tables()


def write_quarantine(result: ValidatedTables, quarantine_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write every rejected row with its reason, plus a summary, into ``quarantine_dir`` atomically.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If the folder holds files sote did not write (unless ``overwrite``).
    """
    with atomic_dir(quarantine_dir, overwrite=overwrite, option="--quarantine") as tmp:
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


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path, *, period: DataPeriod | None = None,
                 overwrite: bool = False) -> Path:
    """Write canonical tables as Parquet files into ``out_dir``, as one atomic folder.

    A declared ``period`` is carried over into the folder's ``dataset.yaml``,
    so that later commands check their dates against it.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If the folder holds files sote did not write (unless ``overwrite``).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite, option="--out") as tmp:
        for table in TABLES:
            if table in tables:
                tables[table].to_parquet(tmp / f"{table}.parquet", index=False)
        if period is not None and period.declared:
            (tmp / DECLARATION).write_text(yaml.safe_dump(
                {"period": {"start": f"{period.start:%Y-%m-%d}", "end": f"{period.end:%Y-%m-%d}"}}),
                encoding="utf-8")
    return out_dir
