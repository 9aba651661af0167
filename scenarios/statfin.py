"""Statistics Finland's PxWeb CSV export of the municipal population projection, converted into the layout.

StatFin's projection tables (``vaenn``: population projection by age and sex by
area) are exported from the PxWeb service as CSV: a quoted title line, a blank
line, then a header and one row per area x sex x age, the years either as
columns (``"2024 Väestö 31.12."``, ``"2025 Population 31 Dec"``) or as a
``Vuosi``/``Year`` column with one value column. Separators are ``;`` (the
Finnish export) or ``,``; missing values are ``.`` or ``..``. Labels may be
Finnish, Swedish or English; areas may carry their code (``KU106 Hyvinkää``,
``106 Hyvinkää``). Totals (``Yhteensä``, ``Total``, ``Totalt``) are dropped.

:func:`read_statfin_csv` returns the population part; deaths come from a second
export of the same shape (the projected deaths table) or, when there is none,
from the county's own death rates (:func:`scenarios.projection_synth.derive_deaths`).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.projection import MAX_AGE, ProjectionError, _band_bounds, validate_projection

_AREA = ("alue", "area", "område", "kunta", "municipality", "kommun")
_SEX = ("sukupuoli", "sex", "kön")
_AGE = ("ikä", "age", "ålder", "ika")
_YEAR = ("vuosi", "year", "år")
_INFO = ("tiedot", "information", "uppgifter")
_SEX_VALUES = {"miehet": "M", "males": "M", "män": "M", "men": "M", "mies": "M",
               "naiset": "F", "females": "F", "kvinnor": "F", "women": "F", "nainen": "F"}
_TOTALS = {"yhteensä", "total", "totalt", "sum", "kaikki ikäluokat", "all ages", "koko maa", "whole country", "hela landet"}
_MISSING = {".", "..", "...", "-", ""}


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp1252"):  # PxWeb offers UTF-8 and Windows-1252 ("ANSI") exports
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ProjectionError(f"StatFin export {path}: neither UTF-8 nor Windows-1252 text")


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, h in enumerate(header):
        if h.strip().lower() in names:
            return i
    return None


def _header_row(rows: list[list[str]], source: str) -> int:
    for i, row in enumerate(rows):
        if _find(row, _AREA) is not None and _find(row, _AGE) is not None:
            return i
    raise ProjectionError(f"StatFin export {source}: no header row naming an area (Alue/Area/Område) and an age "
                          f"(Ikä/Age/Ålder) column in the first {len(rows)} lines")


def _area_name(text: str) -> str:
    """``KU106 Hyvinkää`` / ``106 Hyvinkää`` / ``MK01 Uusimaa`` -> the name without its code."""
    return re.sub(r"^(?:[A-Z]{2,3})?\d{1,4}\s+", "", text.strip())


def read_statfin_csv(path: str | Path, *, value: str = "population", variant: str = "statfin") -> pd.DataFrame:
    """The rows of a PxWeb CSV export as a long table: municipality, sex, age_band, year, variant, ``value``.

    Parameters
    ----------
    path
        The CSV file as PxWeb exports it.
    value
        Name of the value column: ``population`` or ``deaths``.
    variant
        The projection variant these figures are (written to ``variant``).

    Raises
    ------
    ProjectionError
        No header row, no year columns, an unknown sex label or a value that is
        not a number; the message names the file, the line and the value.
    """
    path = Path(path)
    text = _decode(path)
    head = text.splitlines()[:10]  # the title line may hold commas: the header decides
    delim = ";" if max(line.count(";") for line in head) >= max(line.count(",") for line in head) else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    h = _header_row(rows, str(path))
    header = [c.strip() for c in rows[h]]
    i_area, i_sex, i_age = _find(header, _AREA), _find(header, _SEX), _find(header, _AGE)
    i_year, i_info = _find(header, _YEAR), _find(header, _INFO)
    if i_sex is None:
        raise ProjectionError(f"StatFin export {path}: no sex column (Sukupuoli/Sex/Kön) in the header {header}")
    dims = {i for i in (i_area, i_sex, i_age, i_year, i_info) if i is not None}
    if i_year is None:  # years as columns: "2024 Väestö 31.12."
        year_cols = {i: int(m.group(1)) for i, c in enumerate(header)
                     if i not in dims and (m := re.match(r"^(\d{4})\b", c))}
        if not year_cols:
            raise ProjectionError(f"StatFin export {path}: no Vuosi/Year column and no column headed by a year "
                                  f"in {header}")
    else:
        values = [i for i in range(len(header)) if i not in dims]
        if len(values) != 1:
            raise ProjectionError(f"StatFin export {path}: with a year column, expected one value column, got "
                                  f"{[header[i] for i in values]}")
        year_cols = {values[0]: None}
    out, bad = [], []
    for n, row in enumerate(rows[h + 1:], start=h + 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            bad.append(f"line {n}: {len(row)} fields, the header has {len(header)}")
            continue
        area, sex_raw, age = row[i_area].strip(), row[i_sex].strip().lower(), row[i_age].strip()
        if sex_raw in _TOTALS or age.lower() in _TOTALS or area.lower() in _TOTALS:
            continue
        if sex_raw not in _SEX_VALUES:
            bad.append(f"line {n}: sex {row[i_sex]!r} (expected Miehet/Naiset, Males/Females, Män/Kvinnor)")
            continue
        age_band = age.replace(" ", "")
        try:
            _band_bounds(age_band)
        except ValueError:
            bad.append(f"line {n}: age {age!r}")
            continue
        for i, year in year_cols.items():
            cell = row[i].strip().replace("\u00a0", "").replace(" ", "")
            if cell in _MISSING:
                bad.append(f"line {n}: {header[i]} is missing ({cell!r})")
                continue
            try:
                number = float(cell.replace(",", ".")) if delim == ";" else float(cell)
            except ValueError:
                bad.append(f"line {n}: {header[i]} = {cell!r} is not a number")
                continue
            y = year if year is not None else int(re.match(r"^\d{4}", row[i_year].strip()).group(0))
            out.append((_area_name(area), _SEX_VALUES[sex_raw], age_band, y, variant, number))
    if bad:
        raise ProjectionError(f"StatFin export {path}: {len(bad)} problem(s): " + "; ".join(bad[:5]))
    if not out:
        raise ProjectionError(f"StatFin export {path}: no rows by area, sex and age (only totals?)")
    return pd.DataFrame(out, columns=["municipality", "sex", "age_band", "year", "variant", value])


def statfin_projection(population_csv: str | Path, deaths_csv: str | Path | None = None, *,
                       death_rates: pd.DataFrame | None = None, variant: str = "statfin") -> pd.DataFrame:
    """A projection in the layout from StatFin exports (population, and deaths or the county's death rates).

    Parameters
    ----------
    population_csv
        PxWeb CSV of the projected population (31 December) by area, sex and age.
    deaths_csv
        PxWeb CSV of projected deaths in the same shape, if available.
    death_rates
        Otherwise: a table ``sex, age, rate`` (deaths per resident at the start of
        the year), e.g. :func:`scenarios.projection_synth.death_rates` of the county;
        deaths of year *y* = rate x population at the end of *y - 1*.

    Raises
    ------
    ProjectionError
        If neither deaths source is given, or the result breaks the layout.
    """
    pop = read_statfin_csv(population_csv, variant=variant)
    keys = ["municipality", "sex", "age_band", "year", "variant"]
    if deaths_csv is not None:
        deaths = read_statfin_csv(deaths_csv, value="deaths", variant=variant)
        frame = pop.merge(deaths, on=keys, how="left")
        gap = frame["deaths"].isna()
        if gap.any():
            ex = frame.loc[gap, keys].head(5).to_dict("records")
            raise ProjectionError(f"StatFin deaths {deaths_csv}: no deaths for {int(gap.sum())} population row(s), e.g. {ex}")
        return validate_projection(frame, str(population_csv))
    if death_rates is None:
        raise ProjectionError("a StatFin projection needs deaths: give the deaths export or the county's death rates")
    one = validate_projection(pop.assign(deaths=0.0), str(population_csv))
    rates = death_rates.set_index(["sex", "age"])["rate"]
    q = rates.reindex(pd.MultiIndex.from_frame(one[["sex", "age"]])).fillna(0.0).to_numpy()
    prev = one.assign(year=one["year"] + 1).set_index(["municipality", "sex", "age", "year", "variant"])["population"]
    start = prev.reindex(pd.MultiIndex.from_frame(one[["municipality", "sex", "age", "year", "variant"]]))
    start = start.fillna(one["population"].set_axis(start.index)).to_numpy()  # first year: its own population
    one["deaths"] = np.minimum(q * start, start)
    one.attrs["deaths_derived"] = True
    return validate_projection(one.assign(age=one["age"].clip(upper=MAX_AGE)), str(population_csv))
