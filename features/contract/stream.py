"""A validated data set on disk: the kept rows as Parquet, read by DuckDB a piece at a time.

:func:`open_dataset` validates a data folder against the contract and writes
the rows it keeps (event costs filled) as one ``<table>.parquet`` per
canonical table into a folder; :class:`ValidatedDataset` hands that folder to
DuckDB, so that a command brings into pandas only the columns and rows a step
needs (:meth:`ValidatedDataset.read`), or everything for small data
(:meth:`ValidatedDataset.to_tables`, what :func:`features.contract.load.load_tables`
returns).

Validation streams, a record batch at a time (the engine is
:mod:`features.contract.stream_scan`): peak memory is a batch and the clients,
not the events table.

A folder written by ``sote validate --out`` (:func:`write_validated_copy`) is a
*validated copy*: its ``.sote-manifest.json`` says so and records each
file's size and modification time. :func:`open_dataset` uses such a folder as
it is, without a second validation, as long as no file changed since.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.costs import load_unit_costs
from features.contract.dataset import DECLARATION, SERVICE_DATES, DataPeriod, read_declaration, today
from features.contract.io import BATCH_ROWS, atomic_dir, hold_temporary, release_temporary
from features.contract.outputs import MANIFEST, check_not_input, temp_name
from features.contract.schemas import DATE_COLUMNS
from features.contract.stream_scan import DUPLICATE_REASON, _stream, _summary  # noqa: F401 - re-exported
from features.contract.tables import TABLES
from features.contract.validation import ValidatedTables, ValidationReport

#: The manifest key that marks a folder as a validated copy.
VALIDATED_KEY = "validated_copy"
QUARANTINE = ".quarantine"


def to_pandas(table: str, arrow: pa.Table) -> pd.DataFrame:
    """An Arrow table of a validated table as pandas, with the dtypes ``load_tables`` gives.

    Text as pandas ``string``, the contract's dates as ``datetime64[s]``,
    numbers as float, dictionary columns as text.
    """
    cols = []
    for col in arrow.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_date(col.type):
            col = col.cast(pa.timestamp("s"))
        cols.append(col)
    arrow = pa.table(cols, names=arrow.column_names)
    frame = arrow.to_pandas(types_mapper=lambda t: pd.StringDtype() if (pa.types.is_string(t) or
                                                                        pa.types.is_large_string(t)) else None)
    dates = DATE_COLUMNS.get(table, ())
    for col in frame.columns:
        if col in dates and pd.api.types.is_datetime64_any_dtype(frame[col]):
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                frame[col] = frame[col].dt.tz_localize(None)
            frame[col] = frame[col].astype("datetime64[s]")
    return frame


class ValidatedDataset:
    """The rows of a data folder that passed validation, as one Parquet file per canonical table.

    Parameters
    ----------
    folder
        Holds ``<table>.parquet`` for every table of
        :data:`features.contract.tables.TABLES`.
    report
        The validation's report (for a validated copy: every row valid).
    period
        The declared period, or one inferred from the kept records.
    quarantine
        Folder with the rejected rows (``<table>.csv`` with a ``reason``), if any.
    temporary
        True if sote created ``folder`` for this object; :meth:`close` then removes it.
    memory_limit
        DuckDB memory limit of :meth:`read` (e.g. ``"1GB"``).
    costs
        Which unit costs filled the event costs (recorded in a validated copy).
    """

    def __init__(self, folder: str | Path, report: ValidationReport, period: DataPeriod | None, *,
                 quarantine: str | Path | None = None, temporary: bool = False, memory_limit: str | None = None,
                 costs: str = ""):
        self.folder = Path(folder)
        self.report = report
        self.period = period
        self.quarantine = Path(quarantine) if quarantine is not None else None
        self.temporary = temporary
        self.memory_limit = memory_limit
        self.costs = costs
        self._finalizer = weakref.finalize(self, release_temporary, str(self.folder)) if temporary else None

    def costs_filled(self, unit_costs: str | Path | None = None) -> bool:
        """Whether the event costs were filled from ``unit_costs`` (the packaged table when None).

        Then every missing cost left is one that table cannot fill.
        """
        return self.costs == _unit_cost_digest(unit_costs, True)

    def paths(self) -> dict[str, Path]:
        """The Parquet file of each canonical table."""
        return {table: self.folder / f"{table}.parquet" for table in TABLES}

    def read(self, table: str, columns: list[str] | None = None, where: str | None = None,
             params: list | None = None) -> pd.DataFrame:
        """Rows and columns of one table, filtered by DuckDB before they reach pandas.

        Parameters
        ----------
        table
            A canonical table name.
        columns
            Columns to read (default: all).
        where
            A DuckDB SQL condition, e.g. ``"start >= ? AND service = ?"``.
        params
            Values for the ``?`` placeholders of ``where``.

        Returns
        -------
        pandas.DataFrame
            With the dtypes :func:`features.contract.load.load_tables` gives.
        """
        import duckdb

        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; the tables are {list(TABLES)}")
        path = self.paths()[table]
        if columns is None and where is None:
            return to_pandas(table, pq.read_table(path))
        names = pq.read_schema(path).names
        if columns is not None:
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise ValueError(f"table '{table}' has no column(s) {unknown}; it has {names}")
        select = "*" if columns is None else ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        sql = f"SELECT {select} FROM read_parquet(?)" + (f" WHERE {where}" if where else "")
        with duckdb.connect() as con:
            no_progress_bar(con)
            if self.memory_limit:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
            arrow = con.sql(sql, params=[str(path), *(params or [])]).to_arrow_table()
        return to_pandas(table, arrow)

    def to_tables(self) -> ValidatedTables:
        """Everything in pandas: the kept tables, the quarantined rows (as text), the report and the period."""
        tables = {table: self.read(table) for table in TABLES}
        quarantine = {}
        for table in TABLES:
            path = self.quarantine / f"{table}.csv" if self.quarantine is not None else None
            if path is not None and path.is_file():
                quarantine[table] = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
            else:
                quarantine[table] = pd.DataFrame({c: pd.Series([], dtype="string")
                                                  for c in [*tables[table].columns, "reason"]})
        return ValidatedTables(tables, quarantine, self.report, self.period)

    def close(self) -> None:
        """Remove the folder if sote created it for this object (a validated copy stays)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def __enter__(self) -> ValidatedDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        rows = ", ".join(f"{t} {n:,}" for t, n in self.report.rows_kept.items())
        return f"ValidatedDataset({self.folder}, {rows})"


# ------------------------------------------------------------------ validated copies

def _unit_cost_digest(unit_costs: str | Path | None, fill_costs: bool) -> str:
    if not fill_costs:
        return "not filled"
    table = load_unit_costs(unit_costs)
    return hashlib.sha256(repr(sorted(table.items())).encode()).hexdigest()[:16]


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_manifest(folder: Path) -> dict:
    try:
        raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def mark_validated(folder: str | Path, *, costs: str, rows: dict[str, int]) -> None:
    """Record in the manifest of ``folder`` that it is a validated copy, with each file's size and mtime."""
    folder = Path(folder)
    raw = _read_manifest(folder)
    files = {f"{t}.parquet": _stamp(folder / f"{t}.parquet") for t in TABLES}
    if (folder / DECLARATION).is_file():
        files[DECLARATION] = _stamp(folder / DECLARATION)
    raw[VALIDATED_KEY] = {"files": files, "unit_costs": costs, "rows": rows}
    tmp = folder / temp_name(MANIFEST)
    try:
        tmp.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)
    finally:
        if tmp.exists():
            tmp.unlink()


def validated_copy(folder: str | Path, *, costs: str) -> dict | None:
    """The validated-copy record of ``folder`` if it is one and unchanged since; else None.

    Unchanged means: the same files (the canonical tables and ``dataset.yaml``)
    with the same sizes and modification times, and event costs filled with the
    same unit-cost table.
    """
    folder = Path(folder)
    mark = _read_manifest(folder).get(VALIDATED_KEY)
    if not isinstance(mark, dict) or mark.get("unit_costs") != costs or not isinstance(mark.get("files"), dict):
        return None
    expected = dict(mark["files"])
    present = {p.name for p in folder.iterdir()}
    for table in TABLES:
        if any(name in present for name in (f"{table}.csv", f"{table}.csv.gz", table)):
            return None  # another file of the table would be read instead of (or beside) the Parquet
    if (DECLARATION in present) != (DECLARATION in expected):
        return None
    for name, stamp in expected.items():
        path = folder / name
        try:
            if _stamp(path) != stamp:
                return None
        except OSError:
            return None
    return mark


def no_progress_bar(con) -> None:
    """Switch DuckDB's progress bar off (it prints into standard output); in Jupyter without
    ipywidgets DuckDB refuses to change the setting at all, and there it draws nothing anyway."""
    import duckdb

    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass


def _service_period(paths: dict[str, Path]) -> DataPeriod | None:
    """The inferred period of validated Parquet tables: min and max service dates, dates after today left out."""
    import duckdb

    lows, highs = [], []
    with duckdb.connect() as con:
        no_progress_bar(con)
        for table, col in SERVICE_DATES.items():
            lo, hi = con.execute(f'SELECT min("{col}"), max("{col}") FROM read_parquet(?) WHERE "{col}" <= ?',
                                 [str(paths[table]), today().to_pydatetime()]).fetchone()
            if lo is not None:
                lows.append(pd.Timestamp(lo))
                highs.append(pd.Timestamp(hi))
    if not lows:
        return None
    return DataPeriod(min(lows).normalize(), max(highs).normalize(), "inferred")


def _open_copy(folder: Path, mark: dict) -> ValidatedDataset:
    paths = {table: folder / f"{table}.parquet" for table in TABLES}
    rows = {table: pq.ParquetFile(paths[table]).metadata.num_rows for table in TABLES}
    report = ValidationReport([], rows, dict(rows))
    period = read_declaration(folder).period or _service_period(paths)
    return ValidatedDataset(folder, report, period, costs=mark["unit_costs"])


# ------------------------------------------------------------------ opening

def open_dataset(data: str | Path, *, lenient: bool = False, quarantine_dir: str | Path | None = None,
                 unit_costs: str | Path | None = None, fill_costs: bool = True, overwrite: bool = False,
                 workdir: str | Path | None = None, memory_limit: str | None = None,
                 batch_rows: int = BATCH_ROWS) -> ValidatedDataset:
    """Validate a data folder (streaming, table by table) and write the kept rows as Parquet.

    Parameters
    ----------
    data
        Folder with one Parquet/CSV file (or Parquet folder) per table and
        optionally ``dataset.yaml``; or a validated copy written by
        ``sote validate --out``, used as it is while its files are unchanged.
    lenient
        Quarantine invalid rows instead of failing.
    quarantine_dir
        Where rejected rows go (``<table>.csv`` with a ``reason`` column,
        ``summary.csv``, ``problems.csv``; written atomically). Outside ``data``.
    unit_costs
        Unit-cost YAML overriding the packaged defaults.
    fill_costs
        Fill missing event costs from the unit-cost table (flagged in ``cost_imputed``).
    overwrite
        Accept a quarantine folder holding other files (only sote's own are replaced).
    workdir
        Where the temporary folder of kept rows is made (default: the system's temporary folder).
    memory_limit
        DuckDB memory limit (e.g. ``"1GB"``) for the steps done in DuckDB.
    batch_rows
        Rows per batch: memory use grows with it, not with the table.

    Returns
    -------
    ValidatedDataset
        Close it (or use it as a context manager) to remove its temporary folder.

    Raises
    ------
    features.contract.validation.ContractError
        If the data break the contract (strict mode) or a table's structure is broken;
        nothing is left behind.
    features.contract.io.UnreadableTable
        If a table file cannot be read at all.
    FileNotFoundError
        If the folder or a table is missing.
    features.contract.outputs.OutputRefused
        If ``quarantine_dir`` overlaps ``data`` or holds other files.
    """
    data = Path(data)
    ds = _reuse_copy(data, _unit_cost_digest(unit_costs, fill_costs), lenient, quarantine_dir, overwrite)
    if ds is not None:
        return ds
    return _validate(data, lenient=lenient, quarantine_dir=quarantine_dir, unit_costs=unit_costs,
                     fill_costs=fill_costs, overwrite=overwrite, workdir=workdir, memory_limit=memory_limit,
                     batch_rows=batch_rows)


def write_empty_quarantine(ds: ValidatedDataset, quarantine_dir: str | Path, *, overwrite: bool = False) -> Path:
    """The quarantine of a validated copy: every table's header with a ``reason``, no rows, and the summary."""
    from features.contract.io import atomic_dir

    with atomic_dir(quarantine_dir, overwrite=overwrite, option="--quarantine") as tmp:
        for table, path in ds.paths().items():
            names = [*pq.read_schema(path).names, "reason"]
            pd.DataFrame(columns=names).to_csv(tmp / f"{table}.csv", index=False)
        _summary(ds.report).to_csv(tmp / "summary.csv", index=False)
        ds.report.summary().to_csv(tmp / "problems.csv", index=False)
    return Path(quarantine_dir)


def _validate(data: Path, *, lenient: bool, quarantine_dir: str | Path | None, unit_costs: str | Path | None,
              fill_costs: bool, overwrite: bool, workdir: str | Path | None, memory_limit: str | None,
              write: bool = True, batch_rows: int = BATCH_ROWS) -> ValidatedDataset:
    declaration = read_declaration(data)
    if not data.is_dir():
        raise FileNotFoundError(f"data directory not found: {data}")
    costs = load_unit_costs(unit_costs) if fill_costs and write else None
    folder = Path(workdir if workdir is not None else tempfile.gettempdir()) / temp_name("validated")
    folder.mkdir()
    hold_temporary(folder)
    quarantine = None
    try:
        with ExitStack() as stack:
            if lenient and quarantine_dir is not None:
                quarantine = stack.enter_context(atomic_dir(quarantine_dir, overwrite=overwrite,
                                                            option="--quarantine"))
            elif lenient:
                quarantine = folder / QUARANTINE
                quarantine.mkdir()
            report, period = _stream(data, folder, lenient=lenient, quarantine=quarantine, costs=costs,
                                     declaration=declaration, write=write, batch_rows=batch_rows)
    except BaseException:
        release_temporary(folder)
        raise
    # complete: no longer removed by a SIGINT (a notebook's interrupt must not take the data set away);
    # close(), garbage collection or the interpreter's exit remove it, and a killed run's folder is swept
    # by sote's next write there
    release_temporary(folder, remove=False)
    if lenient and quarantine_dir is not None:
        quarantine = Path(quarantine_dir)
    return ValidatedDataset(folder, report, period, quarantine=quarantine, temporary=True,
                            memory_limit=memory_limit, costs=_unit_cost_digest(unit_costs, fill_costs))


def _reuse_copy(data: Path, costs: str, lenient: bool, quarantine_dir, overwrite: bool) -> ValidatedDataset | None:
    """The validated copy ``data`` is, opened as it is (with an empty quarantine when lenient), or None.

    Checks first that a lenient run's quarantine folder lies outside ``data``.
    """
    if lenient and quarantine_dir is not None:
        check_not_input(quarantine_dir, [data], "--quarantine")
    mark = validated_copy(data, costs=costs) if data.is_dir() else None
    if mark is None:
        return None
    ds = _open_copy(data, mark)
    if lenient and quarantine_dir is not None:
        write_empty_quarantine(ds, quarantine_dir, overwrite=overwrite)
        ds.quarantine = Path(quarantine_dir)
    return ds


def check_folder(data: str | Path, *, lenient: bool = False, quarantine_dir: str | Path | None = None,
                 overwrite: bool = False, workdir: str | Path | None = None, batch_rows: int = BATCH_ROWS
                 ) -> tuple[ValidationReport, DataPeriod | None]:
    """Validate a folder (streaming) and write only the quarantine, not the kept rows: ``sote validate`` without ``--out``.

    Returns
    -------
    report : ValidationReport
    period : DataPeriod or None
        Declared, or inferred from the kept records.

    Raises
    ------
    features.contract.validation.ContractError
        As :func:`open_dataset`.
    """
    data = Path(data)
    ds = _reuse_copy(data, _unit_cost_digest(None, True), lenient, quarantine_dir, overwrite)
    if ds is not None:
        return ds.report, ds.period
    with _validate(data, lenient=lenient, quarantine_dir=quarantine_dir, unit_costs=None, fill_costs=False,
                   overwrite=overwrite, workdir=workdir, memory_limit=None, write=False,
                   batch_rows=batch_rows) as ds:
        return ds.report, ds.period


def write_validated_copy(dataset: ValidatedDataset, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a validated data set to ``out`` as a validated copy later commands use without validating again.

    One Parquet file per table, ``dataset.yaml`` with the period if it was
    declared, and ``.sote-manifest.json`` marking the folder as a validated copy
    (each file's size and modification time, the unit costs used). A temporary
    data set's files are moved, not copied; ``dataset`` then reads from ``out``.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If ``out`` holds files sote did not write (unless ``overwrite``).
    """
    import yaml

    out = Path(out)
    with atomic_dir(out, overwrite=overwrite, option="--out") as tmp:
        for table, path in dataset.paths().items():
            if dataset.temporary:
                shutil.move(path, tmp / path.name)
            else:
                shutil.copy2(path, tmp / path.name)
        period = dataset.period
        if period is not None and period.declared:
            (tmp / DECLARATION).write_text(yaml.safe_dump(
                {"period": {"start": f"{period.start:%Y-%m-%d}", "end": f"{period.end:%Y-%m-%d}"}}),
                encoding="utf-8")
    mark_validated(out, costs=dataset.costs, rows=dict(dataset.report.rows_kept))
    if dataset.temporary:
        dataset.close()
        dataset.folder, dataset.temporary = out, False
    return out
