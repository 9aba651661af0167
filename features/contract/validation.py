"""Lazy validation of the canonical tables, with a quarantine for lenient runs.

One run reports every problem at once: per table, column and rule, how many
rows break it and a few example rows. Strict mode raises
:class:`ContractError`; lenient mode keeps the good rows and returns every
rejected row with its reasons, so that ``kept + rejected == input`` always.
Problems with a table's structure (a missing column, a wrong type) cannot be
quarantined row by row and fail even a lenient run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.contract.dataset import PERIOD_COLUMNS, DataPeriod, today
from features.contract.io import ParseProblem
from features.contract.schemas import CHECK_COLUMNS, SCHEMAS
from features.contract.tables import TABLES

EXAMPLES = 3
_DATED = {"events": "start", "diagnoses": "date", "measurements": "date", "assessments": "date"}


@dataclass
class Problem:
    """One broken rule: ``rows`` are positions in the table, or None for a structural problem."""

    table: str
    column: str
    rule: str
    rows: np.ndarray | None
    examples: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def count(self) -> int:
        return 0 if self.rows is None else len(self.rows)


@dataclass
class ValidationReport:
    """Every problem found, and the row counts of each table before and after."""

    problems: list[Problem]
    rows_in: dict[str, int]
    rows_kept: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def structural(self) -> list[Problem]:
        return [p for p in self.problems if p.rows is None]

    def summary(self) -> pd.DataFrame:
        """One row per problem: table, column, rule, count of rows."""
        return pd.DataFrame(
            [(p.table, p.column, p.rule, p.count if p.rows is not None else "table") for p in self.problems],
            columns=["table", "column", "rule", "rows"],
        )

    def to_text(self, examples: bool = True) -> str:
        """A readable report naming table, column, rule, count and example rows."""
        if self.ok:
            return "all tables valid: " + ", ".join(f"{t} {n:,} rows" for t, n in self.rows_in.items())
        lines = [f"{len(self.problems)} problem(s) found:"]
        for p in self.problems:
            where = "whole table" if p.rows is None else f"{p.count:,} row(s)"
            lines.append(f"- table '{p.table}', column '{p.column}': {p.rule} ({where})")
            if examples and not p.examples.empty:
                lines.extend("    " + ln for ln in p.examples.to_string(max_colwidth=40).splitlines())
        return "\n".join(lines)


class ContractError(ValueError):
    """Raised by a strict validation that found problems (or a broken table structure); carries the report."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.to_text())
        self.report = report


@dataclass
class ValidatedTables:
    """Result of a validation: the kept tables, the quarantined rows and the report."""

    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: ValidationReport
    #: The data's period (declared, or inferred from the kept records); set by ``load_tables``.
    period: DataPeriod | None = None


def _problem(table: str, column: str, rule: str, frame: pd.DataFrame, rows: np.ndarray) -> Problem:
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    return Problem(table, column, rule, rows, frame.iloc[rows[:EXAMPLES]])


def _pandera_problems(table: str, frame: pd.DataFrame) -> list[Problem]:
    try:
        SCHEMAS[table].validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    problems = []
    # A dataframe-wide check is reported once per column by pandera; name it once, by its column.
    column = cases["column"].fillna("(table)").astype(str)
    wide = cases["schema_context"].eq("DataFrameSchema") & cases["check"].astype(str).isin(list(CHECK_COLUMNS))
    column = column.mask(wide, cases["check"].astype(str).map(CHECK_COLUMNS))
    missing = cases["check"].astype(str).eq("column_in_dataframe")
    column = column.mask(missing, cases["failure_case"].astype(str))
    check = cases["check"].astype(str).mask(missing, "required column missing")
    cases = cases.assign(column=column, check=check)
    if wide.any():
        cases = cases.drop_duplicates(["column", "check", "index"])
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        if group["index"].isna().all():
            detail = ", ".join(map(str, group["failure_case"].head(EXAMPLES)))
            rule = check if check == "required column missing" else f"{check}: {detail}"
            problems.append(Problem(table, column, rule, None))
            continue
        positions = frame.index.get_indexer(group["index"].dropna().astype(np.int64).unique())
        if check == "field_uniqueness":
            # The first occurrence of a duplicated id is the one kept.
            ids = frame[column]
            positions = np.flatnonzero(ids.duplicated(keep="first").to_numpy())
            check = "unique: duplicate value (first occurrence kept)"
        problems.append(_problem(table, column, check, frame, positions))
    return problems


def _take(column: pd.Series, pos: np.ndarray, index: pd.Index) -> pd.Series:
    """``column``'s values at positions ``pos``; missing where ``pos`` is -1."""
    values = pd.concat([column, pd.Series([pd.NaT], dtype=column.dtype)], ignore_index=True).to_numpy()
    return pd.Series(values[pos], index=index)  # -1 picks the appended NaT


def _duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """Exact ``frame.duplicated(keep="first")``, comparing whole rows only where 64-bit row hashes collide."""
    candidates = pd.util.hash_pandas_object(frame, index=False).duplicated(keep=False).to_numpy()
    dup = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        dup[np.flatnonzero(candidates)] = frame.loc[candidates].duplicated(keep="first").to_numpy()
    return dup


def client_lookup(clients: pd.DataFrame, bad_clients: np.ndarray) -> pd.DataFrame | None:
    """Birth and death dates of the valid clients by ``client_id``; None if ``clients`` lacks those columns.

    ``bad_clients`` are the positions of the clients rows that break a rule
    (their records then break the foreign key); a duplicated id keeps its first row.
    """
    if not {"client_id", "birth_date", "death_date"} <= set(clients.columns):
        return None
    good = clients.drop(index=clients.index[bad_clients]) if len(bad_clients) else clients
    return good.drop_duplicates("client_id").set_index("client_id")[["birth_date", "death_date"]]


def dated_problems(table: str, frame: pd.DataFrame, lookup: pd.DataFrame) -> list[Problem]:
    """The foreign key, and dates before the client's birth or after their death, of one dated table.

    ``frame`` may be a batch of the table: the rules look at one row at a time.
    """
    date_col = _DATED.get(table)
    if date_col is None or not {"client_id", date_col} <= set(frame.columns):
        return []
    problems = []
    # one hash lookup per distinct id, then plain array indexing for every row
    codes, uniques = pd.factorize(frame["client_id"], use_na_sentinel=True)
    pos = np.append(lookup.index.get_indexer(uniques), -1)[codes]  # a missing id (code -1) picks the -1
    known = pos >= 0
    if not known.all():
        problems.append(_problem(table, "client_id", "foreign key: client_id not in a valid clients row",
                                 frame, np.flatnonzero(~known)))
    birth, death = (_take(lookup[c], pos, frame.index) for c in ("birth_date", "death_date"))
    when = frame[date_col]
    before = (when < birth).fillna(False).to_numpy(bool)
    if before.any():
        problems.append(_problem(table, date_col, "dated before the client's birth_date", frame,
                                 np.flatnonzero(before)))
    after = (when > death).fillna(False).to_numpy(bool)
    if after.any():
        problems.append(_problem(table, date_col, "dated after the client's death_date", frame,
                                 np.flatnonzero(after)))
    return problems


DUPLICATE_RULE = "duplicate row (first copy kept)"


def _cross_table_problems(tables: dict[str, pd.DataFrame], bad_clients: np.ndarray) -> list[Problem]:
    lookup = client_lookup(tables["clients"], bad_clients)
    if lookup is None:
        return []
    problems = []
    for table in _DATED:
        frame = tables.get(table)
        if frame is not None:
            problems.extend(dated_problems(table, frame, lookup))
    events = tables.get("events")
    if events is not None and len(events):
        dup = _duplicated_rows(events)
        if dup.any():
            problems.append(_problem("events", "(all)", DUPLICATE_RULE, events, np.flatnonzero(dup)))
    return problems


def _period_problems(tables: dict[str, pd.DataFrame], period: DataPeriod | None) -> list[Problem]:
    """Records dated after the declared period's end (or, without a declared period, after today)."""
    if period is not None and period.declared:
        latest, rule = period.end, f"dated after the end of the data period {period.describe()}"
    else:
        latest = today()
        rule = f"dated after today ({latest:%Y-%m-%d}): impossible in an extract (the folder declares no period)"
    problems = []
    for table, columns in PERIOD_COLUMNS.items():
        frame = tables.get(table)
        if frame is None:
            continue
        for col in columns:
            if col in frame and pd.api.types.is_datetime64_any_dtype(frame[col]):
                late = (frame[col] > latest).fillna(False).to_numpy(bool)
                if late.any():
                    problems.append(_problem(table, col, rule, frame, np.flatnonzero(late)))
    return problems


def _parse_problems(parse: list[ParseProblem], tables: dict[str, pd.DataFrame]) -> list[Problem]:
    out = []
    for pp in parse:
        frame = tables[pp.table]
        rows = frame.index.get_indexer(pp.index)
        examples = frame.iloc[rows[:EXAMPLES]].assign(**{f"{pp.column}_raw": pp.raw.iloc[:EXAMPLES].to_numpy()})
        out.append(Problem(pp.table, pp.column, pp.rule, np.unique(rows), examples))
    return out


def _code_problems(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    diag = tables.get("diagnoses")
    if diag is None or "code_raw" not in diag:
        return []
    bad = (diag["code"].isna() & diag["code_raw"].notna()).to_numpy(bool)
    if not bad.any():
        return []
    return [_problem("diagnoses", "code", "malformed code for its system (cannot be normalised)", diag,
                     np.flatnonzero(bad))]


def validate_tables(
    tables: dict[str, pd.DataFrame],
    *,
    lenient: bool = False,
    parse_problems: list[ParseProblem] | None = None,
    period: DataPeriod | None = None,
) -> ValidatedTables:
    """Validate the canonical tables against their contracts, all rules at once.

    Parameters
    ----------
    tables
        Table name to DataFrame, as returned by :func:`features.contract.io.read_tables`.
    lenient
        Keep the valid rows and quarantine the rest instead of raising.
    parse_problems
        Values the reader could not parse, reported alongside the schema rules;
        their raw text is what the quarantine shows for them.
    period
        The data's declared period: records after its end are problems.
        Without a declared one, records dated after today are.

    Returns
    -------
    ValidatedTables
        Kept tables (index reset), quarantined rows with a ``reason`` column
        (values that could not be parsed keep their raw text), report.

    Raises
    ------
    ContractError
        In strict mode if any rule is broken, and in lenient mode if a table's
        structure is broken (those rows cannot be quarantined one by one).
    """
    tables = {name: frame.reset_index(drop=True) for name, frame in tables.items()}
    problems = _parse_problems(parse_problems or [], tables) + _code_problems(tables)
    unreadable = {(p.table, p.column): p.rows for p in problems if p.rows is not None}
    for table in TABLES:
        if table in tables:
            problems.extend(rule_problems(table, tables[table], unreadable))
    bad_clients = np.concatenate([p.rows for p in problems if p.table == "clients" and p.rows is not None] or
                                 [np.array([], dtype=np.int64)])
    problems.extend(_period_problems(tables, period))
    problems.extend(_cross_table_problems(tables, np.unique(bad_clients)))
    rows_in = {t: len(f) for t, f in tables.items()}
    report = ValidationReport(problems, rows_in, dict(rows_in))
    if report.structural or (problems and not lenient):
        raise ContractError(report)

    kept, quarantine = {}, {}
    for table, frame in tables.items():
        kept[table], quarantine[table] = split_rows(table, frame, problems, parse_problems or [])
        report.rows_kept[table] = len(kept[table])
    return ValidatedTables(kept, quarantine, report)


def rule_problems(table: str, frame: pd.DataFrame, unreadable: dict[tuple[str, str], np.ndarray]
                  ) -> list[Problem]:
    """The pandera contract's problems of one table (or batch), a value already reported as unreadable left out.

    ``unreadable`` maps (table, column) to the positions of values that could
    not be read (or normalised): missing after reading, they are reported once,
    as unreadable, not again as missing.
    """
    out = []
    for p in _pandera_problems(table, frame):
        seen = unreadable.get((p.table, p.column))
        if seen is not None and p.rows is not None and p.rule.startswith("not_nullable"):
            rest = np.setdiff1d(p.rows, seen)
            if not len(rest):
                continue
            p = _problem(p.table, p.column, p.rule, frame, rest)
        out.append(p)
    return out


def row_reasons(table: str, frame: pd.DataFrame, problems: list[Problem]) -> pd.Series:
    """Each row's broken rules (``column: rule; `` for each, in the problems' order); empty if none."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    for p in problems:
        if p.table == table and p.count:
            reasons.iloc[p.rows] = reasons.iloc[p.rows] + f"{p.column}: {p.rule}; "
    return reasons


def split_rows(table: str, frame: pd.DataFrame, problems: list[Problem], parse_problems: list[ParseProblem]
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kept rows (index reset) and rejected rows with a ``reason`` column, raw text for unreadable values.

    ``frame`` may be a batch: ``problems`` hold positions in it, ``parse_problems``
    labels of its index.
    """
    reasons = row_reasons(table, frame, problems)
    rejected = reasons.ne("").to_numpy()
    kept = frame.loc[~rejected].reset_index(drop=True)
    bad = frame.loc[rejected]
    for pp in parse_problems:
        if pp.table == table and len(pp.index):
            # the quarantine shows what the source said, not the missing value it could not be read as
            col = bad[pp.column]
            if pd.api.types.is_datetime64_any_dtype(col):
                col = col.dt.strftime("%Y-%m-%d")  # days as written in the contract, not "… 00:00:00"
            bad = bad.assign(**{pp.column: col.astype(object)})
            bad.loc[pp.index, pp.column] = pp.raw.to_numpy(dtype=object)
    return kept, bad.assign(reason=reasons[rejected].str.rstrip("; ")).reset_index(drop=True)
