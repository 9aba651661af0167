"""The fast path of streaming validation: a record batch that surely breaks no rule, typed in Arrow.

:mod:`features.contract.stream_scan` types every batch in pandas and checks it
with the pandera contract: exact, and about 2 µs of CPU per row. Most batches
of an extract break no rule at all. :meth:`FastPath.typed` decides in Arrow —
per distinct value for text (a record batch's dictionary), with array
comparisons for dates and numbers — whether a batch *surely* passes every rule
of :func:`features.contract.validation.validate_tables` (the reader's, the
contract's, the data period's, the foreign key and the birth and death dates),
and if so gives the batch typed exactly as the pandas path would write it.
Whenever a rule might fail, or a column has a type it does not handle, it
says so (None) and the batch goes the pandas way: problems, messages, example
rows and quarantined rows always come from the pandas path.

The rules are read from the pandera schemas (:data:`features.contract.schemas.SCHEMAS`):
a column check or a dataframe-wide check this module does not know turns the
fast path off for that table. :func:`row_hashes` gives the same 64-bit hash
to equal typed rows whichever path typed them (duplicate events are found from
these hashes, then compared whole).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract.codes import ICD10_CANONICAL, ICPC2_CANONICAL, normalise_codes, normalise_system
from features.contract.costs import UnitCost, episode_days, unit_cost_per_row
from features.contract.dataset import PERIOD_COLUMNS, SERVICE_DATES
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS, SCHEMAS, STRING_COLUMNS
from features.contract.tables import MEASUREMENTS, RAI_SCALES

#: The dataframe-wide checks of each table that :class:`FastPath` evaluates (by the schema's check names).
_WIDE = {"events": {"end_after_start"}, "diagnoses": {"code_matches_system"},
         "measurements": {"value_in_range"}, "assessments": {"value_in_scale"}}
_KNOWN_CHECKS = {"isin", "greater_than_or_equal_to", "less_than_or_equal_to", "str_length"}
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)
_LATER, _CODED = object(), object()  # placeholders of typed()'s columns


@dataclass(frozen=True)
class _Column:
    nullable: bool
    allowed: frozenset | None = None
    low: object = None
    high: object = None
    min_length: int | None = None


def column_rules(table: str) -> dict[str, _Column] | None:
    """The pandera rules of a table's columns as :class:`FastPath` checks them; None if it cannot check them all."""
    schema = SCHEMAS[table].to_schema()
    if table not in _WIDE or {c.name for c in schema.checks} != _WIDE[table] or schema.unique:
        return None
    rules = {}
    for name, col in schema.columns.items():
        kind = {**{c: "text" for c in STRING_COLUMNS[table]}, **{c: "date" for c in DATE_COLUMNS[table]},
                **{c: "number" for c in FLOAT_COLUMNS[table]}}.get(name)
        if kind is None or col.unique or not col.required:
            return None
        spec = {"nullable": bool(col.nullable)}
        for check in col.checks:
            stats = check.statistics or {}
            if check.name not in _KNOWN_CHECKS:
                return None
            if check.name == "isin" and kind == "text":
                spec["allowed"] = frozenset(stats["allowed_values"])
            elif check.name == "str_length" and kind == "text" and stats.get("max_value") is None \
                    and stats.get("exact_value") is None:
                spec["min_length"] = stats["min_value"]
            elif check.name == "greater_than_or_equal_to" and kind != "text":
                spec["low"] = stats["min_value"]
            elif check.name == "less_than_or_equal_to" and kind != "text":
                spec["high"] = stats["max_value"]
            else:
                return None
        rules[name] = _Column(**spec)
    return rules


class FastLookup:
    """The clients lookup of the cross-table rules (valid ids, birth and death dates) as arrays."""

    def __init__(self, lookup: pd.DataFrame):
        self.index = lookup.index
        self.birth = _seconds(lookup["birth_date"])  # NaT is the smallest int64: nothing is before it
        death = _seconds(lookup["death_date"])
        self.death = np.where(death == np.iinfo(np.int64).min, np.iinfo(np.int64).max, death)


def _seconds(days: pd.Series) -> np.ndarray:
    return days.to_numpy(dtype="datetime64[s]").view(np.int64)


def _array(col) -> pa.Array:
    return col.chunk(0) if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1 else (
        col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _plain(t: pa.DataType) -> bool:
    """Types whose values :func:`column_hashes` hashes in Arrow (text, numbers, truth values, dates)."""
    return (_is_text(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_date32(t) or pa.types.is_timestamp(t)
            or (pa.types.is_dictionary(t) and _is_text(t.value_type)))


def _codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """Codes (-1 where missing) into a dictionary of the distinct values; None if not text."""
    if pa.types.is_dictionary(arr.type):
        if not _is_text(arr.type.value_type):
            return None
        values, indices = arr.dictionary, arr.indices
    elif _is_text(arr.type):
        enc = pc.dictionary_encode(arr)
        values, indices = enc.dictionary, enc.indices
    else:
        return None
    if values.null_count:
        return None
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), values


def _strings(values: pa.Array) -> pd.Series:
    return pd.Series(pd.array(values.to_numpy(zero_copy_only=False), dtype="string"))


def _text_unchanged(values: pd.Series) -> bool:
    """True if typing leaves every value as it is (already stripped, none empty): what the pandas path does to text."""
    done = values.str.strip().replace("", pd.NA)
    return bool(done.notna().all() and done.eq(values).all())


class _Text:
    """A text column of a batch: codes, its distinct values, the used ones as strings."""

    def __init__(self, arr: pa.Array, codes: np.ndarray, values: pa.Array):
        self.arr, self.codes, self.values = arr, codes, values
        used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0 if len(codes) else \
            np.zeros(len(values), bool)
        self.used = np.flatnonzero(used)
        self.strings = _strings(values.take(pa.array(self.used)))
        self.missing = bool((codes < 0).any())

    def hashes(self) -> np.ndarray:
        """:func:`column_hashes` of the column, each distinct value hashed once."""
        full = np.full(len(self.values) + 1, _NULL_HASH, dtype=np.uint64)  # the last one for code -1
        full[self.used] = _text_hashes(self.values.take(pa.array(self.used)))
        return full[self.codes]

    def per_row(self, per_value: np.ndarray) -> np.ndarray:
        """``per_value`` (aligned with :attr:`strings`) spread to the rows."""
        full = np.zeros(len(self.values), dtype=per_value.dtype)
        full[self.used] = per_value
        return full[self.codes]


def _epoch_seconds(when) -> int:
    """Seconds since 1970 of a date, the unit of the batches' ``secs`` arrays.

    (``Timestamp.value`` is nanoseconds whatever the Timestamp's unit: comparing it with
    seconds let every date through.)
    """
    return pd.Timestamp(when).value // 1_000_000_000


class FastPath:
    """Checks and types the batches of one table in Arrow, for the batches that surely break no rule.

    Parameters
    ----------
    table
        A canonical table (not ``clients``: it is validated whole, in pandas).
    latest
        The last allowed record date (the declared period's end, or today).
    lookup
        The clients lookup, or None when the cross-table rules are not checked.
    """

    def __init__(self, table: str, latest: pd.Timestamp, lookup: FastLookup | None):
        self.table, self.lookup = table, lookup
        self.rules = column_rules(table)
        self.latest = _epoch_seconds(latest)
        self.unit_costs: dict = {}  # fill_costs' cache

    @property
    def usable(self) -> bool:
        return self.rules is not None

    def typed(self, batch: pa.Table, *, hashes: bool = False) -> tuple[pa.Table, np.ndarray | None] | None:
        """The batch typed as the pandas path types it, if it surely breaks no rule; else None.

        Columns outside the contract are converted through pandas, as the
        pandas path converts them. With ``hashes`` also the rows'
        :func:`row_hashes` (else None).
        """
        if self.rules is None or not batch.num_rows:
            return None
        names = batch.column_names
        if len(set(names)) != len(names) or not set(self.rules) <= set(names) or \
                (self.table == "diagnoses" and "code_raw" in names):
            return None
        cols, texts, secs = {}, {}, {}
        for name in names:
            arr = _array(batch.column(name))
            rule = self.rules.get(name)
            if name in STRING_COLUMNS[self.table]:
                coded = self.table == "diagnoses" and name in ("code", "system")
                found = self._text(arr, rule, normalised=coded)
                if found is None:
                    return None
                texts[name] = found
                cols[name] = _CODED if coded else pc.cast(arr, pa.large_string())
            elif name in DATE_COLUMNS[self.table]:
                found = self._date(arr, rule)
                if found is None:
                    return None
                cols[name], secs[name] = found
            elif name in FLOAT_COLUMNS[self.table]:
                found = self._number(arr, rule)
                if found is None:
                    return None
                cols[name] = found
            elif _plain(arr.type):
                cols[name] = _LATER  # a column outside the contract: converted through pandas below
            else:
                return None
        if not self._wide(cols, texts, secs) or not self._period(secs) or not self._cross(texts, secs):
            return None
        if self.table == "diagnoses":
            coded = _diagnosis_codes(texts["code"], texts["system"], self.rules)
            if coded is None:
                return None
            cols["code"], cols["system"], cols["code_raw"] = coded
        others = [n for n, c in cols.items() if c is _LATER]
        if others:
            from features.contract.io import arrow_to_pandas

            try:
                converted = pa.Table.from_pandas(arrow_to_pandas(batch.select(others)), preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError):
                return None
            for name in others:
                cols[name] = _array(converted.column(name))
        typed = pa.table(list(cols.values()), names=list(cols))
        if not hashes:
            return typed, None
        changed = ("code", "system") if self.table == "diagnoses" else ()
        parts = [texts[n].hashes() if n in texts and n not in changed else
                 _hash_seconds(secs[n]) if n in secs else column_hashes(c) for n, c in cols.items()]
        return typed, _combine(parts)

    # -- one column each
    def _text(self, arr: pa.Array, rule: _Column | None, normalised: bool = False) -> _Text | None:
        found = _codes(arr)
        if found is None:
            return None
        text = _Text(arr, *found)
        if not _text_unchanged(text.strings):
            return None
        if normalised:  # diagnosis codes and systems: checked once normalised (_diagnosis_codes)
            return text
        if rule is not None:
            if text.missing and not rule.nullable:
                return None
            if rule.allowed is not None and not text.strings.isin(rule.allowed).all():
                return None
            if rule.min_length is not None and not (text.strings.str.len() >= rule.min_length).all():
                return None
        return text

    def _date(self, arr: pa.Array, rule: _Column | None) -> tuple[pa.Array, np.ndarray] | None:
        t = arr.type
        if pa.types.is_date32(t):
            days = pc.cast(arr, pa.timestamp("s"))
        elif pa.types.is_timestamp(t) and t.tz is None:
            raw = arr.to_numpy(zero_copy_only=False).view(np.int64)
            per_day = 86_400 * {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
            present = ~np.isnat(arr.to_numpy(zero_copy_only=False))
            if (raw[present] % per_day).any():
                return None  # a time of day: the pandas path drops it
            days = pc.cast(arr, pa.timestamp("s"))
        else:
            return None
        secs = days.to_numpy(zero_copy_only=False).view(np.int64)
        if rule is not None:
            if days.null_count and not rule.nullable:
                return None
            present = secs[secs != np.iinfo(np.int64).min] if days.null_count else secs
            if rule.low is not None and len(present) and present.min() < _epoch_seconds(rule.low):
                return None
            if rule.high is not None and len(present) and present.max() > _epoch_seconds(rule.high):
                return None
        return days, secs

    def _number(self, arr: pa.Array, rule: _Column | None) -> pa.Array | None:
        if not pa.types.is_float64(arr.type):
            return None
        values = arr.to_numpy(zero_copy_only=False)
        if np.isinf(values).any():
            return None  # "finite number": the pandas path names it
        missing = np.isnan(values)
        if rule is not None:
            if missing.any() and not rule.nullable:
                return None
            present = values[~missing]
            if rule.low is not None and (present < rule.low).any():
                return None
            if rule.high is not None and (present > rule.high).any():
                return None
        if missing.any() and arr.null_count != int(missing.sum()):
            arr = pa.array(values, mask=missing)  # NaN is missing, as pandas writes it
        return arr

    # -- rules over several columns
    def _wide(self, cols: dict, texts: dict[str, _Text], secs: dict[str, np.ndarray]) -> bool:
        if self.table == "events":
            start, end = secs["start"], secs["end"]
            both = (start != np.iinfo(np.int64).min) & (end != np.iinfo(np.int64).min)
            return not (end[both] < start[both]).any()
        if self.table == "measurements":
            name = texts["name"]
            lo = name.per_row(name.strings.map({k: v[1] for k, v in MEASUREMENTS.items()}).to_numpy(float))
            hi = name.per_row(name.strings.map({k: v[2] for k, v in MEASUREMENTS.items()}).to_numpy(float))
            value = cols["value"].to_numpy(zero_copy_only=False)
            return bool(((value >= lo) & (value <= hi)).all())
        if self.table == "assessments":
            scale = texts["scale"]
            lo = scale.per_row(scale.strings.map({k: v[0] for k, v in RAI_SCALES.items()}).to_numpy(float))
            hi = scale.per_row(scale.strings.map({k: v[1] for k, v in RAI_SCALES.items()}).to_numpy(float))
            value = cols["value"].to_numpy(zero_copy_only=False)
            return bool(((value >= lo) & (value <= hi) & (np.round(value) == value)).all())
        return True  # diagnoses: code_matches_system, checked with the codes

    def _period(self, secs: dict[str, np.ndarray]) -> bool:
        for col in PERIOD_COLUMNS.get(self.table, ()):
            if col in secs and (secs[col] > self.latest).any():
                return False
        return True

    def _cross(self, texts: dict[str, _Text], secs: dict[str, np.ndarray]) -> bool:
        date_col = SERVICE_DATES.get(self.table)
        if self.lookup is None or date_col not in secs or "client_id" not in texts:
            return True
        ids = texts["client_id"]
        if ids.missing:
            return False
        pos = self.lookup.index.get_indexer(pd.Index(ids.strings))
        if (pos < 0).any():
            return False
        row = ids.per_row(pos)
        when = secs[date_col]
        known = when != np.iinfo(np.int64).min
        return not ((when < self.lookup.birth[row]) & known).any() and \
            not ((when > self.lookup.death[row]) & known).any()


@dataclass
class FastBatch:
    """A batch the fast path took: what the scan of its table records (:func:`check_batch`)."""

    rows: int
    #: The kept rows in the written schema (costs filled), or None when nothing is written.
    table: pa.Table | None
    #: :func:`row_hashes` of the typed rows, or None when not asked for.
    hashes: np.ndarray | None
    #: The first and last service date up to today, or None.
    low: pd.Timestamp | None
    high: pd.Timestamp | None


def check_batch(fast: FastPath, raw: pa.Table, *, hashing: bool, schema: pa.Schema | None,
                costs: dict[str, UnitCost] | None, today: pd.Timestamp) -> FastBatch | None:
    """One untyped batch through the fast path: None if it needs the pandas path.

    Parameters
    ----------
    fast
        The table's fast path.
    raw
        The batch as read.
    hashing
        Also hash the rows (duplicate events).
    schema
        The schema the kept rows are written in (the first batch's), or None when nothing is written;
        a batch that would not match it goes the pandas way.
    costs
        The unit costs to fill missing event costs with, or None.
    today
        Dates after it are left out of the service-date range.
    """
    found = fast.typed(raw, hashes=hashing)
    if found is None:
        return None
    typed, hashes = found
    out = None
    if schema is not None:
        out = typed
        if fast.table == "events" and costs is not None and {"service", "cost_eur", "start",
                                                              "end"} <= set(typed.column_names):
            out = fill_costs(typed, costs, fast.unit_costs)
        if out.schema.names != schema.names or [f.type for f in out.schema] != schema.types:
            return None
        out = pa.Table.from_arrays(out.columns, schema=schema)
    low = high = None
    col = SERVICE_DATES.get(fast.table)
    if col is not None and col in typed.column_names:
        secs = typed.column(col).to_numpy().view(np.int64)
        secs = secs[(secs != np.iinfo(np.int64).min) & (secs <= _epoch_seconds(today))]
        if len(secs):
            low, high = pd.Timestamp(secs.min(), unit="s"), pd.Timestamp(secs.max(), unit="s")
    return FastBatch(typed.num_rows, out, hashes, low, high)


def _diagnosis_codes(code: _Text, system: _Text, rules: dict[str, _Column]
                     ) -> tuple[pa.Array, pa.Array, pa.Array] | None:
    """Normalised codes and systems as the pandas path gives them, if every (code, system) pair is valid."""
    if code.missing or system.missing:
        return None
    systems = normalise_system(system.strings).fillna(system.strings)
    if rules["system"].allowed is not None and not systems.isin(rules["system"].allowed).all():
        return None
    sys_row = np.zeros(len(system.values), np.int64)
    sys_row[system.used] = np.arange(len(system.used))
    pair = pc.dictionary_encode(pa.array(code.codes * len(system.used) + sys_row[system.codes]))
    keys = pair.dictionary.to_numpy(zero_copy_only=False)
    code_of = code.values.take(pa.array(keys // len(system.used)))
    sys_of = systems.iloc[keys % len(system.used)].reset_index(drop=True)
    normal = normalise_codes(_strings(code_of), sys_of)
    if normal.isna().any():
        return None  # malformed for its system, or missing: the pandas path names it
    icd = normal.str.fullmatch(ICD10_CANONICAL).fillna(False)
    icpc = normal.str.fullmatch(ICPC2_CANONICAL).fillna(False)
    if not ((sys_of.eq("ICD-10") & icd) | (sys_of.eq("ICPC-2") & icpc)).all():
        return None
    codes = pa.array(normal.to_numpy(dtype=object), pa.large_string()).take(pair.indices)
    sys_values = pa.array(systems.to_numpy(dtype=object), pa.large_string())
    return codes, sys_values.take(pa.array(sys_row[system.codes])), pc.cast(code.arr, pa.large_string())


def fill_costs(typed: pa.Table, costs: dict[str, UnitCost], cache: dict | None = None) -> pa.Table:
    """:func:`features.contract.costs.fill_missing_costs` on a typed Arrow batch.

    The same arithmetic on the rows without a cost: the unit cost
    (:func:`~features.contract.costs.unit_cost_per_row`) once per distinct
    service and professional (remembered in ``cache`` from batch to batch),
    times the days of care (:func:`~features.contract.costs.episode_days`)
    for per-day services.
    """
    cost = _array(typed.column("cost_eur"))
    values = cost.to_numpy(zero_copy_only=False).astype(float, copy=True)
    imputed = np.zeros(len(values), bool)
    rows = np.flatnonzero(np.isnan(values))
    if len(rows):
        take = pa.array(rows)
        keys = [c for c in ("service", "professional") if c in typed.column_names]
        key, unique = np.zeros(len(rows), np.int64), {}
        for c in keys:
            enc = pc.dictionary_encode(_array(typed.column(c)).take(take))
            part = pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False).astype(np.int64)
            key = key * (len(enc.dictionary) + 1) + part
            unique[c] = (part, pa.concat_arrays([enc.dictionary.cast(pa.large_string()),
                                                 pa.nulls(1, pa.large_string())]))
        which = pc.dictionary_encode(pa.array(key))
        codes = which.indices.to_numpy(zero_copy_only=False)
        first = np.zeros(len(which.dictionary), np.int64)
        first[codes[::-1]] = np.arange(len(codes))[::-1]  # a row of each distinct pair
        unique = pd.DataFrame({c: _strings(values.take(pa.array(part[first]))) for c, (part, values) in unique.items()})
        unit = _unit_costs(unique, costs, {} if cache is None else cache)[codes]
        per_day = unique["service"].map({s: c.per == "day" for s, c in costs.items()}).fillna(False).astype(bool)
        spans = pd.DataFrame({c: pd.Series(_array(typed.column(c)).take(take).to_numpy(zero_copy_only=False))
                              for c in ("start", "end")})
        fill = unit * np.where(per_day.to_numpy(bool)[codes], episode_days(spans).to_numpy(float), 1.0)
        values[rows] = fill
        imputed[rows] = ~np.isnan(fill)
    missing = np.isnan(values)
    cost = pa.array(values, mask=missing if missing.any() else None)
    out = typed.set_column(typed.column_names.index("cost_eur"), "cost_eur", cost)
    return out.append_column("cost_imputed", pa.array(imputed))


def _unit_costs(unique: pd.DataFrame, costs: dict[str, UnitCost], cache: dict) -> np.ndarray:
    """:func:`~features.contract.costs.unit_cost_per_row` of distinct rows, each (service, professional) computed once."""
    keys = list(zip(*(unique[c].astype(object).where(unique[c].notna(), None) for c in unique.columns)))
    new = [i for i, k in enumerate(keys) if k not in cache]
    if new:
        found = unit_cost_per_row(unique.iloc[new].reset_index(drop=True), costs).to_numpy(float)
        cache.update(zip((keys[i] for i in new), found))
    return np.array([cache[k] for k in keys], dtype=float)


# ------------------------------------------------------------------ row hashes

def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a 64-bit integer mixed so that every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _text_hashes(values: pa.Array) -> np.ndarray:
    text = values.to_numpy(zero_copy_only=False).astype(object)
    return pd.util.hash_array(text, categorize=False)


def column_hashes(col) -> np.ndarray:
    """64-bit hashes of a typed column's values (an Arrow array or a pandas Series); equal values, equal hashes.

    A pandas column is hashed as its Arrow conversion. Text hashes by its
    characters whatever its encoding (plain or dictionary), dates by the
    second, numbers and truth values by their float64 value (-0.0 as 0.0); a
    missing value has one hash. Other types hash with pandas, by their text.
    """
    if isinstance(col, pd.Series):
        try:
            col = pa.array(col)
        except (pa.ArrowException, TypeError, ValueError):
            return _pandas_hashes(col)
    arr = _array(col)
    t = arr.type
    if not _plain(t):
        return _pandas_hashes(pd.Series(arr.to_pylist(), dtype=object))
    if pa.types.is_dictionary(t) or _is_text(t):
        codes, values = _codes(arr) or (None, None)
        if codes is None:  # a dictionary holding a missing value
            return _pandas_hashes(pd.Series(arr.to_pylist(), dtype=object))
        return np.append(_text_hashes(values), _NULL_HASH)[codes]
    if pa.types.is_temporal(t):
        return _hash_seconds(pc.cast(arr, pa.timestamp("s"), safe=False).to_numpy(zero_copy_only=False)
                             .view(np.int64))
    values = pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False) + 0.0  # -0.0 + 0.0 is 0.0
    out = _mix(values.view(np.uint64))
    out[np.isnan(values)] = _NULL_HASH
    return out


def _hash_seconds(secs: np.ndarray) -> np.ndarray:
    out = _mix(secs.view(np.uint64))
    out[secs == np.iinfo(np.int64).min] = _NULL_HASH  # NaT
    return out


def _pandas_hashes(col: pd.Series) -> np.ndarray:
    missing = pd.isna(col).to_numpy(bool)
    values = np.where(missing, "", col.to_numpy(dtype=object)).astype(object)
    out = pd.util.hash_array(values, categorize=False)
    out[missing] = _NULL_HASH
    return out


def row_hashes(columns) -> np.ndarray:
    """64-bit hashes of whole rows from their columns' :func:`column_hashes`, in order."""
    return _combine([column_hashes(col) for col in columns])


def _combine(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.uint64)
    out = parts[0].copy()
    for h in parts[1:]:
        out *= _PRIME  # wraps modulo 2**64
        out ^= h
    return _mix(out)


def frame_hashes(frame: pd.DataFrame) -> np.ndarray:
    """:func:`row_hashes` of a typed pandas batch."""
    return row_hashes([frame.iloc[:, i] for i in range(frame.shape[1])])
