"""One strict date parser for data columns and one for command-line options.

Finnish exports write dates day first (``13.12.1973``, ``4.7.1976``); a parser
that guesses turns ``4.7.1976`` into 7 April. So nothing is guessed:

- A date column holds ISO 8601 dates (``YYYY-MM-DD``), optionally with a time
  of day (``2021-03-04T10:30``, dropped: columns hold days) and an offset
  (``2021-03-04T23:30:00Z``, ``+02:00``): a timestamp with an offset is
  converted to the Finnish local date (Europe/Helsinki) first, so
  ``2021-03-04T23:30:00Z`` is 5 March.
- A source may declare another format per table (``date_format: "%d.%m.%Y"``
  in the folder's ``dataset.yaml``, see :mod:`features.contract.dataset`);
  then that format, and only it, is accepted.
- Numbers in a date column (a ``birth_date`` of ``1973``) are errors, never
  years or days since 1970.
- Command-line dates are ISO ``YYYY-MM-DD`` only (:func:`parse_cli_date`).

Strings are parsed once per distinct value and spread back to the rows, so
a column of millions of rows with a few thousand distinct days costs little.
"""
from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

#: The local time zone of Finnish registers: offsets are converted to its date.
LOCAL_ZONE = "Europe/Helsinki"

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_CLI_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateError(ValueError):
    """A date that cannot be read by the declared rules: names the option or column and the value."""


def parse_cli_date(value: str | date | pd.Timestamp, option: str) -> pd.Timestamp:
    """A command-line date: ISO 8601 ``YYYY-MM-DD`` only, as a midnight Timestamp.

    Parameters
    ----------
    value
        The text given on the command line (a date or Timestamp passes through, normalised).
    option
        The option's name (``--as-of``), used in the message.

    Raises
    ------
    DateError
        If ``value`` is not a valid ISO date; the message names ``option`` and the value.
    """
    if isinstance(value, (pd.Timestamp, date)):
        return pd.Timestamp(value).normalize()
    text = str(value).strip()
    if not _CLI_DAY.match(text):
        hint = " (day first? write it as YYYY-MM-DD)" if re.match(r"^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$", text) else ""
        raise DateError(f"{option} {value!r} is not a date in ISO 8601 form YYYY-MM-DD{hint}")
    try:
        return pd.Timestamp(date.fromisoformat(text))
    except ValueError:
        raise DateError(f"{option} {value!r} is not a calendar date (YYYY-MM-DD)") from None


def date_rule(date_format: str | None) -> str:
    """The rule a date column is held to, as a report names it."""
    if date_format is None:
        return "ISO 8601 date (YYYY-MM-DD); day-first or other formats must be declared (date_format)"
    return f"date in the declared format {date_format!r}"


def _strings_to_days(uniques: pd.Series, date_format: str | None) -> pd.Series:
    """Distinct strings to days (datetime64[s]); NaT where a value breaks the rule."""
    out = pd.Series(pd.NaT, index=uniques.index, dtype="datetime64[s]")
    if not len(uniques):
        return out
    text = uniques.astype(str)
    if date_format is not None:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(LOCAL_ZONE).dt.tz_localize(None)
        return parsed.dt.normalize().astype("datetime64[s]")
    iso = text.str.match(_ISO)
    day = iso & text.str.match(_ISO_DAY)
    if day.any():
        out[day] = pd.to_datetime(text[day], format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
    timed = iso & ~day
    if timed.any():
        aware = timed & text.str.contains(_OFFSET) & text.str.contains(r"[T ]", regex=True)
        naive = timed & ~aware
        if naive.any():
            parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
            out[naive] = parsed.dt.normalize().astype("datetime64[s]")
        if aware.any():
            parsed = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
            out[aware] = parsed.dt.tz_convert(LOCAL_ZONE).dt.tz_localize(None).dt.normalize().astype("datetime64[s]")
    return out


def parse_date_column(values: pd.Series, date_format: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """Read a date column strictly.

    Parameters
    ----------
    values
        The column as read: text (CSV, Parquet strings), datetimes (Parquet
        dates or timestamps, naive or with a time zone) or anything else.
    date_format
        A declared ``strftime`` format for text; None means ISO 8601 only.

    Returns
    -------
    days : pandas.Series
        ``datetime64[s]`` at midnight; timestamps with a time zone are
        converted to the Finnish local date first. NaT where missing or bad.
    bad : numpy.ndarray
        True where a value is present but breaks the rule (unreadable text,
        a number, a day-first string without a declared format).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        days = values.dt.tz_convert(LOCAL_ZONE).dt.tz_localize(None).dt.normalize().astype("datetime64[s]")
        return days, np.zeros(len(values), bool)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.normalize().astype("datetime64[s]"), np.zeros(len(values), bool)
    present = values.notna().to_numpy(bool)
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        # a year, an Excel serial or days since 1970: never a date here
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]"), present
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniq = pd.Series(uniques, dtype=object)
    is_text = uniq.map(lambda v: isinstance(v, str)).to_numpy(bool)
    is_time = uniq.map(lambda v: isinstance(v, (pd.Timestamp, date))).to_numpy(bool)
    parsed = pd.Series(pd.NaT, index=uniq.index, dtype="datetime64[s]")
    if is_text.any():
        text = uniq[is_text].str.strip()
        parsed[is_text] = _strings_to_days(text, date_format)
    if is_time.any():
        stamps = [pd.Timestamp(v) for v in uniq[is_time]]
        parsed[is_time] = [(s.tz_convert(LOCAL_ZONE).tz_localize(None) if s.tzinfo else s).normalize()
                           for s in stamps]
    arr = np.append(parsed.to_numpy(dtype="datetime64[s]"), np.datetime64("NaT", "s"))
    days = pd.Series(arr[codes], index=values.index, dtype="datetime64[s]")  # code -1 picks the NaT
    bad = present & days.isna().to_numpy(bool)
    return days, bad
