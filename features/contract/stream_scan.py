"""The streaming validation engine behind :func:`features.contract.stream.open_dataset`.

Each table is read in record batches and checked with the functions of
:mod:`features.contract.validation` batch by batch (the ``clients`` table
whole first: it gives the lookup for the other tables); problems found in
different batches are merged into the report
:func:`~features.contract.validation.validate_tables` gives on the whole
tables; exact duplicate events come from 64-bit row hashes spilled to files.
Peak memory is a batch and the clients, not the events table.

:func:`_stream` runs it over a folder: a :class:`_Run` holds the shared
state, a :class:`_Scan` validates one table (its problems gathered in
:class:`_Merged`), :class:`_RowHashes` and :func:`_duplicates` find the
duplicate events, and the kept rows are written as ``<table>.parquet`` and the
rejected ones to the quarantine.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.costs import fill_missing_costs
from features.contract.dataset import PERIOD_COLUMNS, SERVICE_DATES, DataPeriod, Declaration, today
from features.contract.io import (
    ParseProblem,
    arrow_to_pandas,
    iter_arrow_batches,
    iter_batches,
    read_rows,
    require_table,
    type_batch,
)
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS
from features.contract.stream_fast import FastBatch, FastLookup, FastPath, check_batch, frame_hashes
from features.contract.stream_pool import Pool, read_task, tasks, workers
from features.contract.tables import TABLES
from features.contract.validation import (
    DUPLICATE_RULE,
    EXAMPLES,
    ContractError,
    Problem,
    ValidationReport,
    _code_problems,
    _pandera_problems,
    _parse_problems,
    _period_problems,
    client_lookup,
    dated_problems,
    rule_problems,
    split_rows,
)

#: Problem categories in the order validate_tables reports them (each for every table in turn).
_CATEGORIES = ("parse", "code", "rules", "period", "cross")
_CROSS_ORDER = ("foreign key: client_id not in a valid clients row", "dated before the client's birth_date",
                "dated after the client's death_date")
_PARTS = 64
_RECORD = np.dtype([("h", "<u8"), ("p", "<i8")])
DUPLICATE_REASON = f"(all): {DUPLICATE_RULE}"
#: Check and type in Arrow the batches that surely break no rule (:mod:`features.contract.stream_fast`);
#: False sends every batch through pandas (the tests compare the two).
FAST = True
_HEAD = 1_000  # rows of each table typed and checked in pandas first


class _Merged:
    """One problem (table, column, rule) gathered over batches: whole-table positions, the first examples."""

    def __init__(self, problem: Problem, first: int):
        self.table, self.column, self.rule = problem.table, problem.column, problem.rule
        self.structural = problem.rows is None
        self.first = first
        self.rows: list[np.ndarray] = []
        self.examples: list[pd.DataFrame] = []
        self.shown = 0

    def add(self, problem: Problem, offset: int) -> None:
        if problem.rows is None:
            return
        self.rows.append(problem.rows + offset)
        if self.shown < EXAMPLES and len(problem.examples):
            shown = problem.examples.iloc[:EXAMPLES - self.shown]
            self.examples.append(shown)
            self.shown += len(shown)

    def problem(self) -> Problem:
        if self.structural:
            return Problem(self.table, self.column, self.rule, None)
        rows = np.concatenate(self.rows) if self.rows else np.array([], dtype=np.int64)
        examples = (self.examples[0] if len(self.examples) == 1
                    else pd.concat(self.examples) if self.examples else pd.DataFrame())
        return Problem(self.table, self.column, self.rule, rows, examples)


class _RowHashes:
    """64-bit hashes of every event row with its position, spread over files by their top bits (not in memory)."""

    def __init__(self, folder: Path):
        folder.mkdir()
        self.paths = [folder / f"{i:02d}.bin" for i in range(_PARTS)]
        self.files = [open(p, "wb") for p in self.paths]

    def add(self, hashes: np.ndarray, offset: int) -> None:
        """Store the rows' hashes (:func:`~features.contract.stream_fast.row_hashes`) with their positions."""
        part = (hashes >> np.uint64(58)).astype(np.uint8)
        order = np.argsort(part, kind="stable")  # a radix sort for 8-bit keys: linear
        rec = np.empty(len(hashes), _RECORD)
        rec["h"], rec["p"] = hashes[order], offset + order
        bounds = np.searchsorted(part[order], np.arange(_PARTS + 1))
        for i in np.flatnonzero(np.diff(bounds)):
            self.files[i].write(rec[bounds[i]:bounds[i + 1]].tobytes())

    def close(self) -> None:
        for f in self.files:
            f.close()

    def candidates(self) -> np.ndarray:
        """Sorted positions of the rows whose hash occurs more than once (possible duplicates)."""
        self.close()
        found = []
        for path in self.paths:
            rec = np.fromfile(path, dtype=_RECORD)
            if len(rec) < 2:
                continue
            ordered = np.sort(rec["h"])
            twice = ordered[1:][ordered[1:] == ordered[:-1]]
            if len(twice):
                found.append(rec["p"][np.isin(rec["h"], np.unique(twice))])
        return np.sort(np.concatenate(found)) if found else np.array([], dtype=np.int64)


class _Run:
    """One streaming validation of a folder: shared state of the table scans."""

    def __init__(self, data: Path, folder: Path, *, lenient: bool, write: bool, quarantine: Path | None,
                 costs: dict | None, declaration: Declaration, batch_rows: int):
        self.data, self.folder, self.lenient, self.write = data, folder, lenient, write
        self.quarantine, self.costs, self.declaration, self.batch_rows = quarantine, costs, declaration, batch_rows
        self.period = declaration.period
        self.work = folder / ".work"
        self.work.mkdir()
        self.lookup: pd.DataFrame | None = None
        self.fast_lookup: FastLookup | None = None
        self.pool: Pool | None = None
        self.problem_seen = False
        self.scans: dict[str, _Scan] = {}
        self.duplicates: Problem | None = None

    @property
    def writing(self) -> bool:
        return self.write and (self.lenient or not self.problem_seen)


class _Scan:
    """The validation of one table, batch by batch: problems merged, kept rows written, rejected rows quarantined."""

    def __init__(self, run: _Run, table: str, path: Path):
        self.run, self.table, self.path = run, table, path
        self.merged: dict[str, dict[tuple[str, str], _Merged]] = {c: {} for c in _CATEGORIES}
        self.batches = self.rows = self.kept = 0
        self.columns: list[str] | None = None
        self.writer: pq.ParquetWriter | None = None
        self.qfile = None
        self.low = self.high = None
        self.hashes = None
        self.kept_pos = self.q_pos = None
        self.fast: FastPath | None = None
        self.fast_batches = 0
        if table == "events":
            self.kept_pos = open(run.work / "kept.pos", "wb")
            self.q_pos = open(run.work / "quarantined.pos", "wb")

    # -- one batch
    def batch(self, frame: pd.DataFrame, parse: list[ParseProblem]) -> dict[str, list[Problem]]:
        """Validate one typed batch (labelled by whole-table positions); return its problems by category."""
        run, table = self.run, self.table
        offset = int(frame.index[0]) if len(frame) else self.rows
        found = {"parse": _parse_problems(parse, {table: frame}),
                 "code": _code_problems({table: frame}) if table == "diagnoses" else []}
        unreadable = {(p.table, p.column): p.rows for p in found["parse"] + found["code"] if p.rows is not None}
        found["rules"] = rule_problems(table, frame, unreadable)
        found["period"] = _period_problems({table: frame}, run.period)
        found["cross"] = dated_problems(table, frame, run.lookup) if run.lookup is not None else []
        ordered = []
        for cat in _CATEGORIES:
            for p in found[cat]:
                merged = self.merged[cat].get((p.column, p.rule))
                if merged is None:
                    merged = self.merged[cat][(p.column, p.rule)] = _Merged(p, len(self.merged[cat]))
                merged.add(p, offset)
                ordered.append(p)
        if ordered:
            run.problem_seen = True
        if self.columns is None:
            self.columns = list(frame.columns)
        if table == "events" and run.lookup is not None and len(frame):
            if self.hashes is None:
                self.hashes = _RowHashes(run.work / "hashes")
            self.hashes.add(frame_hashes(frame), offset)
        bad_rows = np.unique(np.concatenate([p.rows for p in ordered if p.rows is not None] or
                                            [np.array([], dtype=np.int64)]))
        if len(bad_rows):
            kept, rejected = split_rows(table, frame, ordered, parse)
        else:
            kept, rejected = frame.reset_index(drop=True), None
        self.batches += 1
        self.rows += len(frame)
        self.kept += len(kept)
        self._dates(kept)
        if run.lenient and run.quarantine is not None and rejected is not None and len(rejected):
            self._quarantine(rejected)
            if self.q_pos is not None:
                self.q_pos.write((bad_rows + offset).astype(np.int64).tobytes())
        if run.writing:
            self._write(kept)
            if self.kept_pos is not None:
                keep = np.ones(len(frame), bool)
                keep[bad_rows] = False
                self.kept_pos.write((np.flatnonzero(keep) + offset).astype(np.int64).tobytes())
        return found

    def arrow_batch(self, raw: pa.Table, offset: int, date_format: str | None, *, fast: bool = True) -> None:
        """Validate one untyped Arrow batch: in Arrow if it surely breaks no rule, else as :meth:`batch` does.

        ``fast=False``: through pandas (a worker's fast path already refused it).
        """
        if FAST and fast and not self.batches and self.table != "clients" and raw.num_rows > _HEAD:
            # the table's first rows go through pandas (see _fast_ready); the rest of the batch may not need to
            self.arrow_batch(raw.slice(0, _HEAD), offset, date_format)
            raw, offset = raw.slice(_HEAD), offset + _HEAD
        done = self._fast(raw, offset) if fast and self._fast_ready() else False
        if not done:
            frame, parse = type_batch(self.table, arrow_to_pandas(raw), offset, date_format)
            self.batch(frame, parse)

    def parallel_ready(self) -> bool:
        """Whether the rest of the table may go to worker processes (the fast path is on and has what it needs)."""
        return self._fast_ready() and not (self.run.writing and self.writer is None)

    def _fast_ready(self) -> bool:
        # the first batch goes through pandas: it fixes the written schema and finds a broken structure
        if not FAST or self.table == "clients" or not self.batches:
            return False
        if any(m.structural for merged in self.merged.values() for m in merged.values()):
            return False
        if self.fast is None:
            period = self.run.period
            latest = period.end if period is not None and period.declared else today()
            self.fast = FastPath(self.table, latest, self.run.fast_lookup)
        return self.fast.usable

    def _fast(self, raw: pa.Table, offset: int) -> bool:
        """The fast path (:func:`~features.contract.stream_fast.check_batch`); False if the batch needs pandas."""
        if self.run.writing and self.writer is None:
            return False
        found = check_batch(self.fast, raw, **self.fast_options())
        if found is None:
            return False
        self.take_fast(found, offset)
        return True

    def fast_options(self) -> dict:
        """The arguments of :func:`~features.contract.stream_fast.check_batch` for this table now."""
        run = self.run
        return dict(hashing=self.table == "events" and run.lookup is not None,
                    schema=self.writer.schema if run.writing and self.writer is not None else None,
                    costs=run.costs, today=today())

    def take_fast(self, found: FastBatch, offset: int) -> None:
        """Record a batch the fast path took: counts, hashes, dates, and its rows written."""
        run, n = self.run, found.rows
        if found.hashes is not None and n:
            if self.hashes is None:
                self.hashes = _RowHashes(run.work / "hashes")
            self.hashes.add(found.hashes, offset)
        self.batches += 1
        self.fast_batches += 1
        self.rows += n
        self.kept += n
        if found.low is not None:
            self.low = found.low if self.low is None else min(self.low, found.low)
            self.high = found.high if self.high is None else max(self.high, found.high)
        if run.writing and found.table is not None:
            self.writer.write_table(found.table)
            if self.kept_pos is not None:
                self.kept_pos.write(np.arange(offset, offset + n, dtype=np.int64).tobytes())

    def _dates(self, kept: pd.DataFrame) -> None:
        col = SERVICE_DATES.get(self.table)
        if col is None or col not in kept or not len(kept):
            return
        days = kept[col]
        days = days[days <= today()]
        if days.notna().any():
            lo, hi = days.min(), days.max()
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)

    def _quarantine(self, rejected: pd.DataFrame) -> None:
        first = self.qfile is None
        if first:
            self.qfile = open(self.run.quarantine / f"{self.table}.csv", "w", encoding="utf-8", newline="")
        rejected.to_csv(self.qfile, index=False, header=first)

    def _write(self, kept: pd.DataFrame) -> None:
        # (a table missing a column fails validation, and this output is discarded: nothing to fill then)
        if self.table == "events" and self.run.costs is not None and {"service", "cost_eur", "start",
                                                                      "end"} <= set(kept):
            kept = fill_missing_costs(kept, self.run.costs)
        arrow = pa.Table.from_pandas(kept, preserve_index=False)
        if self.writer is None:
            # statistics only for the dates (what DuckDB prunes row groups on): writing is ~30 % faster
            dates = [c for c in DATE_COLUMNS[self.table] if c in arrow.column_names]
            self.writer = pq.ParquetWriter(self.run.folder / f"{self.table}.parquet", arrow.schema,
                                           write_statistics=dates or False)
        elif arrow.schema != self.writer.schema:
            arrow = arrow.cast(self.writer.schema)
        self.writer.write_table(arrow)

    # -- the whole table
    def problems(self, category: str) -> list[Problem]:
        """This table's problems of one category, in the order validate_tables gives them."""
        merged = list(self.merged[category].values())
        if category == "parse":
            order = [*DATE_COLUMNS[self.table], *FLOAT_COLUMNS[self.table]]
            merged.sort(key=lambda m: (order.index(m.column) if m.column in order else len(order), m.first))
        elif category == "period":
            order = list(PERIOD_COLUMNS.get(self.table, ()))
            merged.sort(key=lambda m: (order.index(m.column) if m.column in order else len(order), m.first))
        elif category == "cross":
            merged.sort(key=lambda m: (_CROSS_ORDER.index(m.rule) if m.rule in _CROSS_ORDER else 3, m.first))
        elif category == "rules" and self.batches > 1 and len(merged) > 1:
            merged = self._rule_order(merged)
        return [m.problem() for m in merged]

    def _rule_order(self, merged: list[_Merged]) -> list[_Merged]:
        # pandera reports a table's rules in the schema's order; one example row of each rule found in
        # some batch, validated together, gives that order for rules never seen in the same batch
        samples = [m.examples[0].iloc[:1] for m in merged if m.examples]
        if not samples:
            return merged
        sample = pd.concat(samples)
        sample = sample.loc[~sample.index.duplicated()]
        rank = {(p.column, p.rule): i for i, p in enumerate(_pandera_problems(self.table, sample))}
        return sorted(merged, key=lambda m: (rank.get((m.column, m.rule), len(rank)), m.first))

    def close(self) -> None:
        """Finish the files of this table (an empty Parquet with the columns if nothing was kept)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        elif self.run.writing:
            self._write(pd.DataFrame({c: pd.Series([], dtype="string") for c in self.columns or []}))
            self.writer.close()
            self.writer = None
        if self.run.lenient and self.run.quarantine is not None:
            if self.qfile is None:
                pd.DataFrame(columns=[*(self.columns or []), "reason"]).to_csv(
                    self.run.quarantine / f"{self.table}.csv", index=False)
            else:
                self.qfile.close()
        self.abandon()

    def abandon(self) -> None:
        """Close whatever is still open (after a failure: the files are discarded with the folder)."""
        for f in (self.writer, self.qfile, self.kept_pos, self.q_pos, self.hashes):
            if f is not None:
                f.close()
        self.writer = self.qfile = self.kept_pos = self.q_pos = None


def _duplicates(run: _Run, scan: _Scan) -> None:
    """Exact duplicate event rows: hashes collected over every batch, whole rows compared where they collide."""
    if scan.hashes is None:
        return
    candidates = scan.hashes.candidates()
    if not len(candidates):
        return
    rows = read_rows(scan.path, "events", candidates, declaration=run.declaration, batch_rows=run.batch_rows)
    dup = rows.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    positions = rows.index.to_numpy(np.int64)[dup]
    run.duplicates = Problem("events", "(all)", DUPLICATE_RULE, positions,
                             rows.iloc[np.flatnonzero(dup)[:EXAMPLES]])
    run.problem_seen = True
    if run.lenient:
        _move_duplicates(run, scan, rows.loc[positions])


def _move_duplicates(run: _Run, scan: _Scan, dups: pd.DataFrame) -> None:
    """Lenient: take the duplicates out of the kept events and into the quarantine, in row order."""
    positions = dups.index.to_numpy(np.int64)
    quarantined = np.fromfile(run.work / "quarantined.pos", dtype=np.int64)
    moved = ~np.isin(positions, quarantined)
    del quarantined
    scan.kept -= int(moved.sum())
    if run.writing:
        path, tmp = run.folder / "events.parquet", run.work / "events.parquet"
        source = pq.ParquetFile(path)
        with open(run.work / "kept.pos", "rb") as pos_file, pq.ParquetWriter(tmp, source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=run.batch_rows):
                pos = np.fromfile(pos_file, dtype=np.int64, count=batch.num_rows)
                keep = pa.array(~np.isin(pos, positions))
                writer.write_table(pa.Table.from_batches([batch], schema=source.schema_arrow).filter(keep))
        os.replace(tmp, path)
    if run.quarantine is None:
        return
    # the rows moved, as the quarantine's CSV writes them
    buf = io.StringIO()
    dups.loc[moved].assign(reason=DUPLICATE_REASON).to_csv(buf, index=False)
    buf.seek(0)
    new = pd.read_csv(buf, dtype=str, keep_default_na=False)
    new_pos = positions[moved]
    src, tmp = run.quarantine / "events.csv", run.work / "events.csv"
    header, j = True, 0
    with open(tmp, "w", encoding="utf-8", newline="") as out, open(run.work / "quarantined.pos", "rb") as pos_file:
        with pd.read_csv(src, dtype=str, keep_default_na=False, chunksize=run.batch_rows) as reader:
            for chunk in reader:
                if not len(chunk):  # a quarantine holding only its header (no other rejected event)
                    continue
                pos = np.fromfile(pos_file, dtype=np.int64, count=len(chunk))
                twice = np.isin(pos, positions)
                if twice.any():
                    chunk.loc[twice, "reason"] = chunk.loc[twice, "reason"] + "; " + DUPLICATE_REASON
                k = int(np.searchsorted(new_pos, pos[-1], side="right"))
                both = pd.concat([chunk, new.iloc[j:k]], ignore_index=True)
                order = np.argsort(np.concatenate([pos, new_pos[j:k]]), kind="stable")
                both.iloc[order].to_csv(out, index=False, header=header)
                header, j = False, k
        if j < len(new) or header:
            new.iloc[j:].to_csv(out, index=False, header=header)
    os.replace(tmp, src)


def _summary(report: ValidationReport) -> pd.DataFrame:
    summary = pd.DataFrame({
        "table": list(report.rows_in),
        "rows_in": list(report.rows_in.values()),
        "rows_kept": [report.rows_kept[t] for t in report.rows_in],
    })
    summary["rows_quarantined"] = summary["rows_in"] - summary["rows_kept"]
    return summary


def _parallel(run: _Run, scan: _Scan, path: Path, date_format: str | None) -> bool:
    """Validate a large Parquet table with worker processes (:mod:`features.contract.stream_pool`); False if not."""
    n = workers() if FAST else 0
    jobs = tasks(path, run.batch_rows) if n else None
    if not jobs:
        return False
    groups, offset = jobs[0]
    for raw in read_task(path, scan.table, groups, run.batch_rows):
        scan.arrow_batch(raw, offset, date_format)
        offset += raw.num_rows
    if scan.parallel_ready():
        if run.pool is None:
            period = run.period
            spill = run.work / "pool"
            spill.mkdir()
            run.pool = Pool(n, run.lookup, period.end if period is not None and period.declared else today(), spill)
        run.pool.run(scan, path, jobs[1:], run.batch_rows, date_format)
        return True
    for groups, offset in jobs[1:]:  # the fast path is off for this table: one process, batch by batch
        for raw in read_task(path, scan.table, groups, run.batch_rows):
            scan.arrow_batch(raw, offset, date_format)
            offset += raw.num_rows
    return True


def _stream(data: Path, folder: Path, *, lenient: bool, quarantine: Path | None, costs: dict | None,
            declaration: Declaration, write: bool, batch_rows: int) -> tuple[ValidationReport, DataPeriod | None]:
    paths = {table: require_table(data, table) for table in TABLES}
    run = _Run(data, folder, lenient=lenient, write=write, quarantine=quarantine, costs=costs,
               declaration=declaration, batch_rows=batch_rows)
    failed = True
    try:
        for table in TABLES:
            scan = run.scans[table] = _Scan(run, table, paths[table])
            fmt = declaration.date_format.get(table)
            batches = iter_batches(paths[table], table, encoding=declaration.encoding.get(table),
                                   batch_rows=batch_rows)
            if table == "clients":  # whole: ids unique, and the lookup of every other table's rows
                raw = list(batches)
                frame, parse = type_batch(table, pd.concat(raw, ignore_index=True) if len(raw) > 1 else raw[0],
                                          0, fmt)
                found = scan.batch(frame, parse)
                bad = [p.rows for cat in ("parse", "code", "rules") for p in found[cat] if p.rows is not None]
                run.lookup = client_lookup(frame, np.unique(np.concatenate(bad)) if bad else
                                           np.array([], dtype=np.int64))
                run.fast_lookup = FastLookup(run.lookup) if run.lookup is not None and FAST else None
                del raw, frame
            elif _parallel(run, scan, paths[table], fmt):
                pass
            else:
                offset = 0
                arrow = iter_arrow_batches(paths[table], table, batch_rows=batch_rows)
                for raw in arrow if arrow is not None else batches:
                    if arrow is not None:
                        scan.arrow_batch(raw, offset, fmt)
                    else:
                        frame, parse = type_batch(table, raw, offset, fmt)
                        scan.batch(frame, parse)
                    offset += len(raw)
            scan.close()
            if table == "events":
                _duplicates(run, scan)
        failed = False
    finally:
        if run.pool is not None:
            run.pool.close(failed=failed)
        for scan in run.scans.values():
            scan.abandon()
        shutil.rmtree(run.work, ignore_errors=True)
    problems = [p for cat in _CATEGORIES for table in TABLES for p in run.scans[table].problems(cat)]
    if run.duplicates is not None:
        problems.append(run.duplicates)
    rows_in = {table: run.scans[table].rows for table in TABLES}
    report = ValidationReport(problems, rows_in, dict(rows_in))
    if report.structural or (problems and not lenient):
        raise ContractError(report)
    report.rows_kept = {table: run.scans[table].kept for table in TABLES}
    if quarantine is not None:
        _summary(report).to_csv(quarantine / "summary.csv", index=False)
        report.summary().to_csv(quarantine / "problems.csv", index=False)
    period = declaration.period
    lows = [s.low for s in run.scans.values() if s.low is not None]
    if period is None and lows:
        highs = [s.high for s in run.scans.values() if s.high is not None]
        period = DataPeriod(pd.Timestamp(min(lows)).normalize(), pd.Timestamp(max(highs)).normalize(), "inferred")
    return report, period
