"""Reading and writing the canonical tables (Parquet or CSV), atomically and safely.

A data directory holds one file or folder per table: ``clients.parquet``,
``events.csv``, ``events/`` (a Parquet dataset), ... Reading types every
column and turns values that cannot be parsed (a date such as ``2023-13-45``,
a day-first ``13.12.1973`` without a declared format, a cost of ``inf``)
into missing values, remembering them with their raw text as
:class:`ParseProblem` so that validation names them instead of losing them.
Dates follow :mod:`features.contract.dates`; a folder's ``dataset.yaml``
(:mod:`features.contract.dataset`) may declare a table's date format and
text encoding.

Writing goes through :func:`atomic_path` and :func:`atomic_dir`: a temporary
of sote's own naming beside the target, renamed into place only when
complete, removed on failure, on SIGTERM and on SIGINT, and swept by the next
write into the same folder if a run was killed outright. Both keep the rule
of :mod:`features.contract.outputs`: nothing sote did not write is replaced.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.codes import normalise_codes, normalise_system
from features.contract.dataset import SERVICE_DATES, DataPeriod, Declaration, infer_period, read_declaration
from features.contract.dates import date_rule, parse_date_column
from features.contract.distinct import categorical_to_string, per_unique
from features.contract.outputs import (
    MANIFEST,
    OutputRefused,
    TEMP_PATTERN,
    foreign_entries,
    make_dirs,
    owned,
    record,
    temp_name,
)
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS, STRING_COLUMNS
from features.contract.tables import TABLES

#: When this process started: temporaries of dead processes older than this are litter.
PROCESS_START = time.time()


class UnreadableTable(ValueError):
    """A table file that cannot be read at all (wrong encoding, damaged Parquet, broken CSV); names the file."""


@dataclass
class ParseProblem:
    """Rows of one column whose raw value could not be read as the column's type."""

    table: str
    column: str
    rule: str
    index: pd.Index
    raw: pd.Series


def require_table(data_dir: str | Path, table: str) -> Path:
    """:func:`find_table`, or FileNotFoundError naming the table and the file names looked for."""
    path = find_table(data_dir, table)
    if path is None:
        raise FileNotFoundError(
            f"table '{table}' not found in {data_dir} (expected {table}.parquet, {table}.csv or {table}/)")
    return path


def find_table(data_dir: str | Path, table: str) -> Path | None:
    """Path of a table in ``data_dir`` (Parquet file, CSV file or Parquet folder), or None."""
    data_dir = Path(data_dir)
    for name in (f"{table}.parquet", f"{table}.csv", f"{table}.csv.gz", table):
        path = data_dir / name
        if path.exists():
            return path
    return None


def _is_parquet(path: Path) -> bool:
    return path.is_dir() or path.suffix == ".parquet"


def _read_csv(path: Path, table: str, encoding: str | None, columns: list[str] | None = None) -> pd.DataFrame:
    declared = encoding is not None
    encoding = encoding or "utf-8"
    try:
        return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding=encoding,
                           usecols=columns)
    except UnicodeDecodeError as err:
        hint = ("" if declared else f"; if it is Latin-1 (a Windows or Excel export), declare it in "
                f"{path.parent / 'dataset.yaml'}: tables: {{{table}: {{encoding: latin-1}}}}")
        raise UnreadableTable(f"table '{table}' ({path}) is not {encoding} text: byte "
                              f"{err.object[err.start:err.start + 1]!r} at byte {err.start:,} cannot be "
                              f"decoded{hint}") from None
    except pd.errors.EmptyDataError:
        raise UnreadableTable(f"table '{table}' ({path}) is empty: not even a header line") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise UnreadableTable(f"table '{table}' ({path}) cannot be read as CSV: {str(err).strip()}") from None


def _read_parquet(path: Path, table: str, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise UnreadableTable(f"table '{table}' ({path}) cannot be read as Parquet (damaged or incomplete "
                              f"file?): {str(err).strip()}") from None


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    # Dates arrive as date32; pandas wants datetime64 for vectorised comparisons.
    cols = [c.cast(pa.timestamp("s")) if pa.types.is_date(c.type) else c for c in table.columns]
    frame = pa.table(cols, names=table.column_names).to_pandas()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = categorical_to_string(frame[col])
    return frame


def _read_file(path: Path, table: str, encoding: str | None = None) -> pd.DataFrame:
    if _is_parquet(path):
        return _arrow_to_pandas(_read_parquet(path, table))
    return _read_csv(path, table, encoding)


#: Rows per batch when a table is read in batches (:func:`iter_batches`).
BATCH_ROWS = 500_000


def _parquet_arrow_batches(path: Path, table: str, batch_rows: int) -> Iterator[pa.Table]:
    def unreadable(err: Exception) -> UnreadableTable:
        return UnreadableTable(f"table '{table}' ({path}) cannot be read as Parquet (damaged or incomplete "
                               f"file?): {str(err).strip()}")

    try:
        if path.is_dir():
            import pyarrow.dataset as pads

            # as pq.read_table reads a folder: hive partitions, their values as dictionary (text) columns
            dataset = pads.dataset(path, format="parquet",
                                   partitioning=pads.HivePartitioning.discover(infer_dictionary=True))
            schema, batches = dataset.schema, dataset.to_batches(batch_size=batch_rows)
        else:
            source = pq.ParquetFile(path)
            schema, batches = source.schema_arrow, source.iter_batches(batch_size=batch_rows)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise unreadable(err) from None
    empty = True
    try:
        for table in coalesce(batches, schema, batch_rows):
            empty = False
            yield table
    except (pa.ArrowException, OSError, ValueError) as err:
        raise unreadable(err) from None
    if empty:
        yield schema.empty_table()


def coalesce(batches: Iterator[pa.RecordBatch], schema: pa.Schema, batch_rows: int) -> Iterator[pa.Table]:
    """Record batches gathered into tables of at least ``batch_rows`` rows (the last may be smaller; none empty).

    A Parquet reader gives at most a row group per batch (122,880 rows in a DuckDB-written file): gathering them
    keeps the cost per batch of validation small.
    """
    parts, rows = [], 0
    for batch in batches:
        if not batch.num_rows:
            continue
        parts.append(batch)
        rows += batch.num_rows
        if rows >= batch_rows:
            yield pa.Table.from_batches(parts, schema=schema)
            parts, rows = [], 0
    if parts:
        yield pa.Table.from_batches(parts, schema=schema)


def _parquet_batches(path: Path, table: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    for batch in _parquet_arrow_batches(path, table, batch_rows):
        yield _arrow_to_pandas(batch)


def iter_arrow_batches(path: str | Path, table: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table] | None:
    """A Parquet table read in Arrow batches, untyped (what :func:`iter_batches` converts to pandas); None for CSV.

    Raises
    ------
    UnreadableTable
        As :func:`iter_batches`.
    """
    path = Path(path)
    return _parquet_arrow_batches(path, table, batch_rows) if _is_parquet(path) else None


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An untyped Arrow batch as :func:`iter_batches` gives it in pandas (dates as ``datetime64``, text as strings)."""
    return _arrow_to_pandas(table)


def _csv_batches(path: Path, table: str, encoding: str | None, batch_rows: int) -> Iterator[pd.DataFrame]:
    declared = encoding is not None
    encoding = encoding or "utf-8"

    def unreadable(err: Exception) -> UnreadableTable:
        if isinstance(err, UnicodeDecodeError):
            hint = ("" if declared else f"; if it is Latin-1 (a Windows or Excel export), declare it in "
                    f"{path.parent / 'dataset.yaml'}: tables: {{{table}: {{encoding: latin-1}}}}")
            return UnreadableTable(f"table '{table}' ({path}) is not {encoding} text: byte "
                                   f"{err.object[err.start:err.start + 1]!r} cannot be decoded{hint}")
        if isinstance(err, pd.errors.EmptyDataError):
            return UnreadableTable(f"table '{table}' ({path}) is empty: not even a header line")
        return UnreadableTable(f"table '{table}' ({path}) cannot be read as CSV: {str(err).strip()}")

    options = dict(dtype="string", keep_default_na=False, na_values=[""], encoding=encoding)
    try:
        reader = pd.read_csv(path, chunksize=batch_rows, **options)
        empty = True
        with reader:
            while True:
                frame = next(reader, None)
                if frame is None:
                    break
                empty = False
                yield frame
        if empty:
            yield pd.read_csv(path, nrows=0, **options)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise unreadable(err) from None


def iter_batches(path: str | Path, table: str, *, encoding: str | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """A table file read in batches of ``batch_rows`` rows, untyped, as :func:`read_tables` reads it whole.

    Each batch is what reading the whole file gives for those rows (Parquet
    through Arrow, dates as ``datetime64``; CSV as text); type it with
    :func:`type_batch`. A table without rows gives one empty batch that
    still has the columns.

    Raises
    ------
    UnreadableTable
        If the file cannot be read (encoding, damaged Parquet, broken CSV),
        naming the file; possibly only after earlier batches were given.
    """
    path = Path(path)
    if _is_parquet(path):
        return _parquet_batches(path, table, batch_rows)
    return _csv_batches(path, table, encoding, batch_rows)


def type_batch(table: str, frame: pd.DataFrame, offset: int = 0, date_format: str | None = None
               ) -> tuple[pd.DataFrame, list[ParseProblem]]:
    """Type one batch as :func:`read_tables` types a whole table; rows labelled from ``offset``.

    Typing is value by value, so a batch typed alone equals the same rows of
    the whole table typed at once; the labels (``offset`` onwards) are the
    rows' positions in the whole table, and the :class:`ParseProblem` indexes
    use them.
    """
    frame = frame.set_axis(pd.RangeIndex(offset, offset + len(frame)), axis=0)
    return _typed(table, frame, date_format)


def read_column(path: Path, column: str, table: str, declaration: Declaration | None = None) -> pd.Series:
    """One date column of a table file, strictly parsed (bad values missing); empty if the column is absent."""
    declaration = declaration or Declaration()
    try:
        if _is_parquet(path):
            names = pq.ParquetDataset(path).schema.names if path.is_dir() else pq.read_schema(path).names
            if column not in names:
                return pd.Series([], dtype="datetime64[s]")
            raw = _arrow_to_pandas(_read_parquet(path, table, [column]))[column]
        else:
            header = pd.read_csv(path, nrows=0, encoding=declaration.encoding.get(table) or "utf-8").columns
            if column not in header:
                return pd.Series([], dtype="datetime64[s]")
            raw = _read_csv(path, table, declaration.encoding.get(table), [column])[column].str.strip()
    except (UnreadableTable, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            pa.ArrowException, OSError, ValueError):
        return pd.Series([], dtype="datetime64[s]")  # validation names the problem
    return parse_date_column(raw, declaration.date_format.get(table))[0]


def _strip_text(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(raw) or raw.dtype == object:
        return raw.astype("string").str.strip().replace("", pd.NA)
    return raw


def _typed(table: str, frame: pd.DataFrame, date_format: str | None = None
           ) -> tuple[pd.DataFrame, list[ParseProblem]]:
    problems: list[ParseProblem] = []
    frame = frame.copy()
    for col in STRING_COLUMNS[table]:
        if col in frame:
            values = frame[col]
            if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
                values = values.astype("string")  # e.g. client ids stored as integers: the digits are the id
            frame[col] = per_unique(values, lambda u: u.str.strip().replace("", pd.NA))
    for col in DATE_COLUMNS[table]:
        if col not in frame:
            continue
        raw = _strip_text(frame[col])
        parsed, bad = parse_date_column(raw, date_format)
        if bad.any():
            rule = date_rule(date_format)
            if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
                rule = "a date (ISO 8601 YYYY-MM-DD), not a number: numbers are never read as years or days"
            problems.append(ParseProblem(table, col, rule, frame.index[bad],
                                         raw[bad].astype(str).astype("string")))
        frame[col] = parsed
    for col in FLOAT_COLUMNS[table]:
        if col not in frame:
            continue
        raw = _strip_text(frame[col])
        if pd.api.types.is_bool_dtype(raw):
            parsed = pd.Series(np.nan, index=raw.index)
        elif pd.api.types.is_numeric_dtype(raw):
            parsed = raw.astype(float)
        else:
            parsed = pd.to_numeric(raw.astype("string") if raw.dtype == object else raw, errors="coerce")
            parsed = parsed.astype(float)
        finite = np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
        bad = ~finite & raw.notna().to_numpy(bool)
        if bad.any():
            problems.append(ParseProblem(table, col, "finite number (not text, inf or nan)", frame.index[bad],
                                         raw[bad].astype(str).astype("string")))
            parsed = parsed.where(finite)
        frame[col] = parsed
    if table == "diagnoses" and {"code", "system"} <= set(frame.columns):
        # once per distinct spelling (a few), not per row
        frame["system"] = per_unique(frame["system"], normalise_system).fillna(frame["system"])
        frame["code_raw"] = frame["code"]
        frame["code"] = normalise_codes(frame["code"], frame["system"])
    return frame, problems


def read_tables(data_dir: str | Path, tables: tuple[str, ...] = TABLES, *,
                declaration: Declaration | None = None) -> tuple[dict[str, pd.DataFrame], list[ParseProblem]]:
    """Read and type the canonical tables of ``data_dir``.

    Parameters
    ----------
    data_dir
        The data folder.
    tables
        Which tables to read.
    declaration
        Date formats and encodings per table; default: the folder's ``dataset.yaml``.

    Returns
    -------
    tables : dict
        Table name to DataFrame, with dates as ``datetime64[s]`` days, numbers as
        float and text as pandas strings. Diagnosis codes are normalised (the raw
        code is kept in ``code_raw``).
    problems : list of ParseProblem
        Values that could not be parsed, with their raw text; validation reports them.

    Raises
    ------
    FileNotFoundError
        If the directory or a required table is missing.
    UnreadableTable
        If a file cannot be read at all (encoding, damaged Parquet, broken CSV).
    features.contract.dataset.DeclarationError
        If the folder's ``dataset.yaml`` is invalid.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    declaration = declaration if declaration is not None else read_declaration(data_dir)
    out: dict[str, pd.DataFrame] = {}
    problems: list[ParseProblem] = []
    for table in tables:
        path = require_table(data_dir, table)
        out[table], found = _typed(table, _read_file(path, table, declaration.encoding.get(table)),
                                   declaration.date_format.get(table))
        problems.extend(found)
    return out, problems


# ------------------------------------------------------------------ interrupted writes

_live: dict[Path, None] = {}
_lock = threading.Lock()
_previous: dict[int, object] = {}
_installed_by: int | None = None


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


def _on_signal(signum, frame) -> None:  # pragma: no cover - exercised through a subprocess
    if os.getpid() == _installed_by:
        for path in list(_live):
            _remove(path)
        _live.clear()
    _restore()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _restore() -> None:
    global _installed_by
    for signum, handler in _previous.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, TypeError):
            pass
    _previous.clear()
    _installed_by = None


def _register(path: Path) -> None:
    global _installed_by
    with _lock:
        if not _live and threading.current_thread() is threading.main_thread() and _installed_by is None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                _previous[signum] = signal.getsignal(signum)
                signal.signal(signum, _on_signal)
            _installed_by = os.getpid()
        _live[path] = None


def _unregister(path: Path) -> None:
    with _lock:
        _live.pop(path, None)
        if not _live and _installed_by == os.getpid():
            _restore()


@contextmanager
def _guarded(path: Path) -> Iterator[Path]:
    """Hold ``path`` as a live temporary: removed on SIGTERM/SIGINT while held, and when the block ends."""
    _register(path)
    try:
        yield path
    finally:
        _remove(path)
        _unregister(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_stale(folder: str | Path) -> list[Path]:
    """Remove sote's temporaries in ``folder`` left by a killed run; return what was removed.

    Only names of sote's own pattern (:data:`features.contract.outputs.TEMP_PATTERN`)
    are touched, and only those whose process no longer runs and that are
    older than this process.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = TEMP_PATTERN.match(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            if entry.lstat().st_mtime >= PROCESS_START:
                continue
        except OSError:
            continue
        _remove(entry)
        removed.append(entry)
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failed or interrupted (SIGTERM, SIGINT) write leaves any previous file at
    ``path`` intact and no partial file behind. The file is recorded as sote's
    in its folder's ``.sote-manifest.json``.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If ``path`` exists and was not written by sote, or is a folder.
    """
    path = Path(path)
    if path.name == MANIFEST:
        raise OutputRefused(f"{path}: {MANIFEST} is sote's own record and cannot be an output")
    if path.is_dir():
        raise OutputRefused(f"{path} is a folder; give a file name")
    if path.exists() and path.name not in owned(path.parent):
        raise OutputRefused(f"{path} exists and was not written by sote (not listed in "
                            f"{path.parent / MANIFEST}); sote never replaces other files: move it or choose "
                            "another name")
    make_dirs(path.parent)
    sweep_stale(path.parent)
    with _guarded(path.parent / temp_name(path.name)) as tmp_path:
        tmp_path.touch()
        yield tmp_path
        os.replace(tmp_path, path)
        record(path.parent, [path.name])


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and not TEMP_PATTERN.match(p.name))


@contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False, option: str = "output folder") -> Iterator[Path]:
    """Like :func:`atomic_path` for a folder: build it aside, then move it into place.

    A folder that sote wrote earlier (everything in it listed in its
    manifest) is swapped whole. A folder that also holds other files is
    refused unless ``overwrite``; then sote's entries are moved in one by one,
    its earlier entries that the new output lacks are removed, and the other
    files stay untouched. The new folder's manifest lists what sote wrote.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If ``path`` is a file, holds files sote did not write (without
        ``overwrite``), or a new entry would replace such a file; the
        message names ``option``.
    """
    from features.contract.outputs import check_output_dir

    path = Path(path)
    check_output_dir(path, option, overwrite=overwrite)
    make_dirs(path.parent)
    sweep_stale(path.parent)
    with _guarded(path.parent / temp_name(path.name)) as tmp:
        tmp.mkdir()
        yield tmp
        new = _entries(tmp)
        record(tmp, new, exact=True)
        if not path.exists():
            os.replace(tmp, path)
        else:
            foreign = foreign_entries(path)
            if not foreign:
                with _guarded(path.parent / temp_name(path.name, "old")) as old:
                    os.replace(path, old)
                    os.replace(tmp, path)
            else:
                if not overwrite:
                    check_output_dir(path, option, overwrite=False)
                clash = sorted(set(new) & set(foreign))
                if clash:
                    raise OutputRefused(f"{path}: sote would replace {', '.join(clash[:5])}, which it did not "
                                        "write; move them or choose another folder")
                before = owned(path)
                for name in new:
                    target = path / name
                    if target.is_dir() and not target.is_symlink():
                        aside = path / temp_name(name, "old")
                        os.replace(target, aside)
                        os.replace(tmp / name, target)
                        _remove(aside)
                    else:
                        os.replace(tmp / name, target)
                for name in sorted(before - set(new)):
                    _remove(path / name)
                record(path, new, exact=True)
        record(path.parent, [path.name])


def read_rows(path: str | Path, table: str, positions: np.ndarray, *, declaration: Declaration | None = None,
              batch_rows: int = BATCH_ROWS) -> pd.DataFrame:
    """The typed rows of a table file at ``positions`` (sorted, whole-table positions), labelled by them.

    A second pass over the file that types only those rows (typing is value by
    value, so they equal the same rows of the whole table typed at once). A
    Parquet file is read only in the row groups that hold them.
    """
    path = Path(path)
    declaration = declaration or Declaration()
    parts, offset = [], 0
    fmt = declaration.date_format.get(table)

    def take(raw: pd.DataFrame, start: int) -> None:
        lo, hi = np.searchsorted(positions, [start, start + len(raw)])
        if hi > lo:
            sub = raw.iloc[positions[lo:hi] - start]
            parts.append(_typed(table, sub.set_axis(pd.Index(positions[lo:hi]), axis=0), fmt)[0])

    if path.is_file() and path.suffix == ".parquet":
        source = pq.ParquetFile(path)
        for i in range(source.metadata.num_row_groups):
            n = source.metadata.row_group(i).num_rows
            lo, hi = np.searchsorted(positions, [offset, offset + n])
            if hi > lo:
                take(_arrow_to_pandas(source.read_row_group(i)), offset)
            offset += n
    else:
        for raw in iter_batches(path, table, encoding=declaration.encoding.get(table), batch_rows=batch_rows):
            take(raw, offset)
            offset += len(raw)
    return pd.concat(parts) if len(parts) > 1 else parts[0]


def hold_temporary(path: str | Path) -> None:
    """Register a temporary file or folder of sote's: removed on SIGTERM/SIGINT until :func:`release_temporary`."""
    _register(Path(path))


def release_temporary(path: str | Path, *, remove: bool = True) -> None:
    """Stop guarding a temporary registered with :func:`hold_temporary`; remove it unless ``remove`` is False."""
    if remove:
        _remove(Path(path))
    _unregister(Path(path))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame to Parquet or CSV (by suffix) atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path


def data_period(data_dir: str | Path) -> DataPeriod | None:
    """The period of a data folder, cheaply: declared, else inferred from the service-record dates.

    Reads only the date columns (Parquet) or the date column of each table
    (CSV, strictly parsed; unreadable values are left to validation).
    """
    decl = read_declaration(data_dir)
    if decl.period is not None:
        return decl.period
    columns = {}
    for table, col in SERVICE_DATES.items():
        path = find_table(data_dir, table)
        if path is None:
            continue
        columns[table] = pd.DataFrame({col: read_column(path, col, table, decl)})
    return infer_period(columns)
