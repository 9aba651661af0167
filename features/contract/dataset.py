"""What a data folder declares about itself: its period, and per table a date format and an encoding.

A county's extract covers a period: records after its last day cannot be
true, and an index date (or the horizon a label needs) outside it gives
features or labels made of missing data. The period comes from, in order:

1. ``dataset.yaml`` in the data folder (written by hand for a county's extract)::

       period:
         start: 2019-01-01
         end: 2025-12-31          # or: extracted: 2026-01-15 (the end is the day before)
       tables:
         clients: {date_format: "%d.%m.%Y", encoding: latin-1}

2. the synthetic county's ``manifest.json`` (``period`` or ``config.start``/``config.end``);
3. otherwise it is inferred: the first to the last service-record date
   (events, diagnoses, measurements, assessments), leaving out dates after
   today (such records are errors anyway), and reported as inferred.

:class:`DataPeriod` checks an index date and the horizon it needs, naming the option.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import yaml

from features.contract.dates import DateError

DECLARATION = "dataset.yaml"
SYNTH_MANIFEST = "manifest.json"
#: Columns whose dates must fall inside the period. An episode's ``end`` and a
#: ``moved_out`` may lie after it (a stay or move known to end later).
PERIOD_COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": ("birth_date", "death_date", "moved_in"),
    "events": ("start",),
    "diagnoses": ("date",),
    "measurements": ("date",),
    "assessments": ("date",),
}
#: Dates of service records, from which a period is inferred.
SERVICE_DATES: dict[str, str] = {"events": "start", "diagnoses": "date", "measurements": "date",
                                 "assessments": "date"}
_TABLE_KEYS = {"date_format", "encoding"}


class DeclarationError(ValueError):
    """A ``dataset.yaml`` that cannot be used: names the file, the key and the value."""


class PeriodError(ValueError):
    """A date option, or the horizon it needs, outside the data's period: names the option."""


@dataclass(frozen=True)
class DataPeriod:
    """The first and last day a data set covers, and where that came from.

    Parameters
    ----------
    start, end
        First and last day (inclusive).
    source
        ``dataset.yaml``, ``manifest.json`` or ``inferred`` (from record dates).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    source: str

    @property
    def declared(self) -> bool:
        return self.source != "inferred"

    def describe(self) -> str:
        """``2019-01-01 .. 2025-12-31 (declared in dataset.yaml)``."""
        how = "inferred from the record dates" if not self.declared else f"declared in {self.source}"
        return f"{self.start:%Y-%m-%d} .. {self.end:%Y-%m-%d} ({how})"

    def check(self, as_of, option: str, *, horizon_days: int = 0, purpose: str = "") -> pd.Timestamp:
        """Check an index date T, and the horizon [T, T + horizon_days) it needs, against the period.

        T must lie after the first day (some history before it) and no later
        than the day after the last day; with a horizon, T + horizon_days must
        not pass the day after the last day.

        Raises
        ------
        PeriodError
            Naming ``option``, the date, the period and the latest (or earliest) date allowed.
        """
        t = pd.Timestamp(as_of).normalize()
        after_end = self.end + pd.Timedelta(days=1)
        if t <= self.start:
            raise PeriodError(f"{option} {t:%Y-%m-%d} is not after the first day of the data period "
                              f"{self.describe()}: there is no history before it")
        if t > after_end:
            raise PeriodError(f"{option} {t:%Y-%m-%d} is after the data period {self.describe()}; "
                              f"the latest index date is {after_end:%Y-%m-%d}")
        if horizon_days and t + pd.Timedelta(days=horizon_days) > after_end:
            latest = after_end - pd.Timedelta(days=horizon_days)
            need = f" {purpose}" if purpose else ""
            raise PeriodError(
                f"{option} {t:%Y-%m-%d}{need} needs outcomes up to "
                f"{t + pd.Timedelta(days=horizon_days - 1):%Y-%m-%d} ({horizon_days} days) but the data period "
                f"{self.describe()} ends before that; the latest such date is {latest:%Y-%m-%d}")
        return t


@dataclass(frozen=True)
class Declaration:
    """A folder's ``dataset.yaml`` (or the synthetic county's manifest): period and per-table reading options."""

    period: DataPeriod | None = None
    date_format: dict[str, str] = field(default_factory=dict)
    encoding: dict[str, str] = field(default_factory=dict)


def _day(value, where: str) -> pd.Timestamp:
    if isinstance(value, date):
        return pd.Timestamp(value)
    try:
        return pd.Timestamp(date.fromisoformat(str(value).strip()))
    except ValueError:
        raise DeclarationError(f"{where}: {value!r} is not a date in ISO 8601 form YYYY-MM-DD") from None


def _period_from(raw: dict, where: str, source: str) -> DataPeriod:
    if not isinstance(raw, dict):
        raise DeclarationError(f"{where}: expected start and end (or extracted), got {raw!r}")
    unknown = sorted(set(raw) - {"start", "end", "extracted"})
    if unknown:
        raise DeclarationError(f"{where}: unknown key(s) {unknown}; use start, end or extracted")
    if "start" not in raw or ("end" not in raw) == ("extracted" not in raw):
        raise DeclarationError(f"{where}: give start and either end or extracted")
    start = _day(raw["start"], f"{where}.start")
    end = (_day(raw["end"], f"{where}.end") if "end" in raw
           else _day(raw["extracted"], f"{where}.extracted") - pd.Timedelta(days=1))
    if end < start:
        raise DeclarationError(f"{where}: end {end:%Y-%m-%d} is before start {start:%Y-%m-%d}")
    return DataPeriod(start, end, source)


def read_declaration(data_dir: str | Path) -> Declaration:
    """The declaration of ``data_dir``: ``dataset.yaml`` if present, else the synthetic county's manifest.

    Raises
    ------
    DeclarationError
        If ``dataset.yaml`` is not valid YAML, has unknown keys or bad dates.
    """
    from features.contract.tables import TABLES

    data_dir = Path(data_dir)
    path = data_dir / DECLARATION
    if path.is_file():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise DeclarationError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise DeclarationError(f"{path}: expected a mapping with period and tables")
        unknown = sorted(set(raw) - {"period", "tables"})
        if unknown:
            raise DeclarationError(f"{path}: unknown key(s) {unknown}; use period and tables")
        period = _period_from(raw["period"], f"{path} period", DECLARATION) if "period" in raw else None
        formats, encodings = {}, {}
        for table, opts in (raw.get("tables") or {}).items():
            where = f"{path} tables.{table}"
            if table not in TABLES:
                raise DeclarationError(f"{where}: unknown table; the tables are {list(TABLES)}")
            if not isinstance(opts, dict) or set(opts) - _TABLE_KEYS:
                raise DeclarationError(f"{where}: expected keys among {sorted(_TABLE_KEYS)}, got {opts!r}")
            if "date_format" in opts:
                fmt = str(opts["date_format"])
                if "%" not in fmt:
                    raise DeclarationError(f"{where}.date_format {fmt!r} is not a strftime format such as '%d.%m.%Y'")
                formats[table] = fmt
            if "encoding" in opts:
                import codecs

                try:
                    encodings[table] = codecs.lookup(str(opts["encoding"])).name
                except LookupError:
                    raise DeclarationError(f"{where}.encoding {opts['encoding']!r} is not a known encoding") from None
        return Declaration(period, formats, encodings)
    manifest = data_dir / SYNTH_MANIFEST
    if manifest.is_file():
        try:
            raw = json.loads(manifest.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return Declaration()
        cfg = raw.get("period") or raw.get("config") if isinstance(raw, dict) else None
        if isinstance(cfg, dict) and "start" in cfg and "end" in cfg:
            return Declaration(_period_from({"start": cfg["start"], "end": cfg["end"]}, str(manifest),
                                            SYNTH_MANIFEST))
    return Declaration()


def today() -> pd.Timestamp:
    """Today's date (local); records dated after it are errors in a folder without a declared period."""
    return pd.Timestamp(date.today())


def infer_period(tables: dict[str, pd.DataFrame]) -> DataPeriod | None:
    """The first to the last service-record date (dates after today left out), or None without records."""
    latest_ok = today()
    lows, highs = [], []
    for table, col in SERVICE_DATES.items():
        frame = tables.get(table)
        if frame is None or col not in frame or not len(frame):
            continue
        days = pd.to_datetime(frame[col], errors="coerce")
        days = days[days <= latest_ok]
        if len(days.dropna()):
            lows.append(days.min())
            highs.append(days.max())
    if not lows:
        return None
    return DataPeriod(pd.Timestamp(min(lows)).normalize(), pd.Timestamp(max(highs)).normalize(), "inferred")
