"""pandera contracts of the five canonical input tables.

Each model checks what can be checked inside one table (types, allowed values,
ranges, uniqueness, end >= start). Rules that need two tables (foreign keys,
events before birth or after death) live in :mod:`features.contract.validation`, which
runs everything lazily and reports every problem at once.
"""
from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features.contract.codes import ICD10_CANONICAL, ICPC2_CANONICAL
from features.contract.tables import (
    CODE_SYSTEMS,
    LANGUAGES,
    MEASUREMENTS,
    RAI_INSTRUMENTS,
    RAI_SCALES,
    SERVICE_LINES,
    SEXES,
)

_EARLIEST = pd.Timestamp("1890-01-01")
_LATEST = pd.Timestamp("2100-01-01")


def _has(df: pd.DataFrame, *columns: str) -> bool:
    """True if every column is present; a missing one is reported once, by the column check, not here."""
    return all(c in df.columns for c in columns)


def _passes(df: pd.DataFrame) -> pd.Series:
    return pd.Series(True, index=df.index)


class _Table(pa.DataFrameModel):
    class Config:
        strict = False  # extra columns pass through; counties carry their own
        coerce = False  # types are fixed by features.contract.io, so a bad value is reported, not guessed


class Clients(_Table):
    """One row per client (pseudonymous id)."""

    client_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    birth_date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, le=_LATEST)
    sex: Series[str] = pa.Field(isin=list(SEXES))
    municipality: Series[str] = pa.Field(str_length={"min_value": 1})
    language: Series[str] = pa.Field(isin=list(LANGUAGES))
    death_date: Series[pd.Timestamp] = pa.Field(nullable=True, ge=_EARLIEST, le=_LATEST)
    unit: Series[str] = pa.Field(str_length={"min_value": 1})
    moved_in: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    moved_out: Series[pd.Timestamp] | None = pa.Field(nullable=True)

    @pa.dataframe_check(error="death_date before birth_date")
    def death_after_birth(cls, df: pd.DataFrame) -> Series[bool]:
        if not _has(df, "death_date", "birth_date"):
            return _passes(df)
        # a missing or unreadable birth_date is reported by its own rule, not as a death before it
        return df["death_date"].isna() | df["birth_date"].isna() | (df["death_date"] >= df["birth_date"])


class Events(_Table):
    """One row per service contact or episode (inpatient stay, 24 h housing)."""

    client_id: Series[str]
    start: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, le=_LATEST)
    end: Series[pd.Timestamp] = pa.Field(nullable=True)
    service: Series[str] = pa.Field(isin=list(SERVICE_LINES))
    professional: Series[str] = pa.Field(nullable=True)
    cost_eur: Series[float] = pa.Field(nullable=True, ge=0)
    unit: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="end before start")
    def end_after_start(cls, df: pd.DataFrame) -> Series[bool]:
        if not _has(df, "end", "start"):
            return _passes(df)
        return df["end"].isna() | df["start"].isna() | (df["end"] >= df["start"])


class Diagnoses(_Table):
    """One row per recorded diagnosis; codes are already normalised."""

    client_id: Series[str]
    date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, le=_LATEST)
    code: Series[str] = pa.Field(nullable=False)
    system: Series[str] = pa.Field(isin=list(CODE_SYSTEMS))

    @pa.dataframe_check(error="code is not a valid code of its system")
    def code_matches_system(cls, df: pd.DataFrame) -> Series[bool]:
        if not _has(df, "code", "system"):
            return _passes(df)
        icd = df["code"].str.fullmatch(ICD10_CANONICAL).fillna(False)
        icpc = df["code"].str.fullmatch(ICPC2_CANONICAL).fillna(False)
        return (df["system"].eq("ICD-10") & icd) | (df["system"].eq("ICPC-2") & icpc)


class Measurements(_Table):
    """One row per lab or vital value, in the units of ``contract.MEASUREMENTS``."""

    client_id: Series[str]
    date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, le=_LATEST)
    name: Series[str] = pa.Field(isin=list(MEASUREMENTS))
    value: Series[float]

    @pa.dataframe_check(error="value outside the plausible range of its measurement")
    def value_in_range(cls, df: pd.DataFrame) -> Series[bool]:
        if not _has(df, "name", "value"):
            return _passes(df)
        lo = df["name"].map({k: v[1] for k, v in MEASUREMENTS.items()}).astype(float)
        hi = df["name"].map({k: v[2] for k, v in MEASUREMENTS.items()}).astype(float)
        return ((df["value"] >= lo) & (df["value"] <= hi)).fillna(False)


class Assessments(_Table):
    """One row per RAI scale score of an assessment."""

    client_id: Series[str]
    date: Series[pd.Timestamp] = pa.Field(ge=_EARLIEST, le=_LATEST)
    instrument: Series[str] = pa.Field(isin=list(RAI_INSTRUMENTS))
    scale: Series[str] = pa.Field(isin=list(RAI_SCALES))
    value: Series[float]

    @pa.dataframe_check(error="value outside the range of its RAI scale")
    def value_in_scale(cls, df: pd.DataFrame) -> Series[bool]:
        if not _has(df, "scale", "value"):
            return _passes(df)
        lo = df["scale"].map({k: v[0] for k, v in RAI_SCALES.items()}).astype(float)
        hi = df["scale"].map({k: v[1] for k, v in RAI_SCALES.items()}).astype(float)
        whole = df["value"].round() == df["value"]
        return ((df["value"] >= lo) & (df["value"] <= hi) & whole).fillna(False)


#: The column each dataframe-wide check is about, for reports.
CHECK_COLUMNS: dict[str, str] = {
    "death_date before birth_date": "death_date",
    "end before start": "end",
    "code is not a valid code of its system": "code",
    "value outside the plausible range of its measurement": "value",
    "value outside the range of its RAI scale": "value",
}

SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "clients": Clients,
    "events": Events,
    "diagnoses": Diagnoses,
    "measurements": Measurements,
    "assessments": Assessments,
}

#: Columns of each table parsed as dates when read from CSV or Parquet.
DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": ("birth_date", "death_date", "moved_in", "moved_out"),
    "events": ("start", "end"),
    "diagnoses": ("date",),
    "measurements": ("date",),
    "assessments": ("date",),
}
STRING_COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": ("client_id", "sex", "municipality", "language", "unit"),
    "events": ("client_id", "service", "professional", "unit"),
    "diagnoses": ("client_id", "code", "system"),
    "measurements": ("client_id", "name"),
    "assessments": ("client_id", "instrument", "scale"),
}
FLOAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": (),
    "events": ("cost_eur",),
    "diagnoses": (),
    "measurements": ("value",),
    "assessments": ("value",),
}


def required_columns(table: str) -> list[str]:
    """Columns a table must have (optional ones such as ``moved_in`` excluded)."""
    schema = SCHEMAS[table].to_schema()
    return [name for name, col in schema.columns.items() if col.required]
