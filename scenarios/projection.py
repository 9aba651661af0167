"""The population projection a scenario runs on: its layout, a validated loader and the grid the engine reads.

Layout (one row per municipality x sex x age x year x variant; CSV or Parquet):

============  =======  ==================================================================
column        type     meaning
============  =======  ==================================================================
municipality  text     as in the clients table (``Hyvinkää``), one projection per area
sex           text     ``F`` or ``M`` (the contract's ``X`` has no projection; see docs)
age           integer  completed years 0..``MAX_AGE``; the last age is open (100 = 100+).
                       Instead of ``age`` a file may give ``age_band`` (``0-4``, ``85-89``,
                       ``100+``): the band's people are spread evenly over its years
year          integer  calendar year
variant       text     projection variant (``base``, ``no_migration``, ...)
population    number   residents on 31 December of ``year`` (Statistics Finland's convention)
deaths        number   deaths during ``year`` among the people of that age (age at death)
============  =======  ==================================================================

Counts may be fractional (projections are expectations) but never negative.
The need of service year *y* is driven by the residents at its start, i.e. the
``population`` of year *y - 1*; ``deaths`` of year *y* give its mortality.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

#: The last, open age of the grid (100 = 100 and over).
MAX_AGE = 100
#: Sexes a projection has (the contract's ``X`` is counted with the projection's own split: see docs).
SEXES = ("F", "M")
KEYS = ["municipality", "sex", "age", "year", "variant"]
#: How many example rows an error message shows.
EXAMPLES = 5


class ProjectionError(ValueError):
    """A projection that cannot be used; the message names the file, the column, the rule and example rows."""


class ProjectionSchema(pa.DataFrameModel):
    """pandera contract of a projection in one-year ages (after ``age_band`` is spread)."""

    municipality: Series[str] = pa.Field(str_length={"min_value": 1})
    sex: Series[str] = pa.Field(isin=list(SEXES))
    age: Series[int] = pa.Field(ge=0, le=MAX_AGE)
    year: Series[int] = pa.Field(ge=1900, le=2200)
    variant: Series[str] = pa.Field(str_length={"min_value": 1})
    population: Series[float] = pa.Field(ge=0)
    deaths: Series[float] = pa.Field(ge=0)

    @pa.dataframe_check(error="deaths above the population at the start of the year (previous year's population)")
    def deaths_not_above_population(cls, df: pd.DataFrame) -> Series[bool]:
        prev = df.assign(year=df["year"] + 1).set_index(["municipality", "sex", "age", "year", "variant"])["population"]
        start = prev.reindex(pd.MultiIndex.from_frame(df[["municipality", "sex", "age", "year", "variant"]]))
        # the first year has no start population in the file; a death count there is not checked
        return pd.Series(~(df["deaths"].to_numpy() > start.to_numpy() + 1e-9), index=df.index)

    class Config:
        strict = False
        coerce = False
        unique = KEYS


def _band_bounds(text: str) -> tuple[int, int]:
    """``"85-89"`` -> (85, 89); ``"100+"`` / ``"100-"`` -> (100, MAX_AGE); ``"7"`` -> (7, 7)."""
    t = str(text).strip().replace("–", "-").replace(" ", "")
    m = re.fullmatch(r"(\d+)(?:-(\d+)?|\+)?", t)
    if not m:
        raise ValueError(t)
    lo = int(m.group(1))
    if t.endswith("+") or t.endswith("-"):
        return lo, MAX_AGE
    hi = int(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise ValueError(t)
    return lo, min(hi, MAX_AGE)


def _spread_bands(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per one-year age: each band's population and deaths divided evenly over its ages."""
    bounds = []
    bad = []
    for i, band in zip(df.index, df["age_band"]):
        try:
            bounds.append(_band_bounds(band))
        except ValueError:
            bounds.append((0, -1))
            bad.append((i, band))
    if bad:
        raise ProjectionError(f"projection {source}: column age_band: expected 'a-b', 'a+' or 'a', "
                              f"{len(bad)} row(s), e.g. " + ", ".join(f"row {i}: {v!r}" for i, v in bad[:EXAMPLES]))
    lo = np.array([b[0] for b in bounds])
    width = np.array([b[1] - b[0] + 1 for b in bounds])
    rep = df.loc[df.index.repeat(width)].copy()
    offset = np.concatenate([np.arange(w) for w in width]) if len(width) else np.array([], int)
    rep["age"] = np.repeat(lo, width) + offset
    for col in ("population", "deaths"):
        if col in rep:
            rep[col] = pd.to_numeric(rep[col], errors="coerce") / np.repeat(width, width)
    return rep.drop(columns="age_band")


def _example_rows(frame: pd.DataFrame, index) -> str:
    rows = frame.loc[list(index)[:EXAMPLES]]
    return "; ".join(f"row {i}: " + ", ".join(f"{k}={v!r}" for k, v in r.items()) for i, r in rows.iterrows())


def validate_projection(frame: pd.DataFrame, source: str = "<frame>") -> pd.DataFrame:
    """Check a projection in the layout and return it typed, in one-year ages, sorted by the keys.

    Parameters
    ----------
    frame
        The projection (``age`` or ``age_band``; ``variant`` may be left out: ``base``).
    source
        Name used in messages (the file).

    Raises
    ------
    ProjectionError
        Naming every broken rule with its column and example rows (pandera, lazily:
        all problems at once): a missing column, an unknown sex, a negative count,
        a non-integer age or year, a repeated key, deaths above the population.
    """
    df = frame.copy()
    df.columns = [str(c).strip() for c in df.columns]
    if "variant" not in df:
        df["variant"] = "base"
    if "age" not in df and "age_band" in df:
        df = _spread_bands(df, source)
    missing = [c for c in (*KEYS, "population", "deaths") if c not in df]
    if missing:
        raise ProjectionError(f"projection {source}: missing column(s) {missing} (layout: docs/scenarios.md)")
    problems = []
    for col, kind in (("age", "integer"), ("year", "integer"), ("population", "number"), ("deaths", "number")):
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() | (np.isinf(num) if kind == "number" else (num % 1 != 0))
        if bad.any():
            problems.append(f"column {col}: not a{'n' if kind == 'integer' else ''} {kind} in {int(bad.sum())} "
                            f"row(s): {_example_rows(df[KEYS[:2] + [col]], df.index[bad])}")
        df[col] = num.astype("int64" if kind == "integer" and not bad.any() else "float64")
    for col in ("municipality", "sex", "variant"):
        df[col] = df[col].astype("string").str.strip().astype(object)
    if problems:
        raise ProjectionError(f"projection {source}: " + " | ".join(problems))
    df = df.reset_index(drop=True)
    try:
        ProjectionSchema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise ProjectionError(f"projection {source}: " + _describe(err.failure_cases, df)) from None
    return df[KEYS + ["population", "deaths"]].sort_values(KEYS).reset_index(drop=True)


def _describe(cases: pd.DataFrame, df: pd.DataFrame) -> str:
    parts = []
    for (column, check), group in cases.groupby([cases["column"].fillna("(table)"), cases["check"].astype(str)],
                                                sort=False):
        index = group["index"].dropna()
        if check == "multiple_fields_uniqueness" or "unique" in check:
            dup = df.duplicated(KEYS, keep=False)
            parts.append(f"repeated key {KEYS} in {int(dup.sum())} row(s): {_example_rows(df[KEYS], df.index[dup])}")
        elif len(index):
            rows = index.astype(np.int64).unique()
            cols = KEYS + ([column] if column in df and column not in KEYS else [])
            if column == "(table)" or column not in df:
                cols = KEYS + ["population", "deaths"]
            parts.append(f"column {column}: {check} fails in {len(rows)} row(s): {_example_rows(df[cols], rows)}")
        else:
            parts.append(f"column {column}: {check}: {', '.join(map(str, group['failure_case'].head(EXAMPLES)))}")
    return " | ".join(dict.fromkeys(parts))


def load_projection(path: str | Path) -> pd.DataFrame:
    """Read a projection file (``.csv`` or ``.parquet``) in the layout and validate it.

    Raises
    ------
    ProjectionError
        If the file breaks the layout (see :func:`validate_projection`).
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"projection file {path} does not exist")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"municipality": str, "sex": str, "variant": str}, encoding="utf-8")
    return validate_projection(frame, str(path))


@dataclass(frozen=True)
class ProjectionGrid:
    """A projection as arrays the engine multiplies: ``[variant, municipality, sex, age, year]``.

    ``population[..., j]`` is the population at the end of ``years[j]``;
    ``deaths[..., j]`` the deaths during ``years[j]``.
    """

    variants: tuple[str, ...]
    municipalities: tuple[str, ...]
    years: tuple[int, ...]
    population: np.ndarray
    deaths: np.ndarray

    def at(self, variant: str, year: int, what: str = "population") -> np.ndarray:
        """``[municipality, sex, age]`` of one variant and year."""
        return getattr(self, what)[self.variants.index(variant), :, :, :, self.years.index(year)]


def projection_grid(projection: pd.DataFrame, municipalities, years, source: str = "projection") -> ProjectionGrid:
    """The projection as a full grid over the municipalities and years a run needs.

    Parameters
    ----------
    projection
        A validated projection (:func:`validate_projection`).
    municipalities
        The county's municipalities (every one must be in the projection; others are ignored).
    years
        Years that must be present, for every municipality, sex, age and variant.

    Raises
    ------
    ProjectionError
        Naming the missing municipality, year, or municipality x sex x age x year cells.
    """
    munis = tuple(sorted(municipalities))
    years = tuple(sorted(int(y) for y in years))
    have_m = set(projection["municipality"])
    lack = [m for m in munis if m not in have_m]
    if lack:
        raise ProjectionError(f"{source}: no rows for municipality {lack} (it has {sorted(have_m)[:10]})")
    have_y = set(projection["year"])
    lack_y = [y for y in years if y not in have_y]
    if lack_y:
        raise ProjectionError(f"{source}: no rows for year {lack_y} (it has {min(have_y)}-{max(have_y)}); "
                              f"the run needs {years[0]}-{years[-1]}")
    part = projection[projection["municipality"].isin(munis) & projection["year"].isin(years)]
    variants = tuple(dict.fromkeys(part["variant"]))
    full = pd.MultiIndex.from_product([variants, munis, SEXES, range(MAX_AGE + 1), years],
                                      names=["variant", "municipality", "sex", "age", "year"])
    table = part.set_index(["variant", "municipality", "sex", "age", "year"])[["population", "deaths"]]
    table = table.reindex(full)
    gap = table["population"].isna()
    if gap.any():
        ex = [", ".join(map(str, k)) for k in table.index[gap][:EXAMPLES]]
        raise ProjectionError(f"{source}: {int(gap.sum())} cell(s) missing (variant, municipality, sex, age, year), "
                              f"e.g. {'; '.join(ex)}; every age 0-{MAX_AGE} of both sexes is needed")
    shape = (len(variants), len(munis), len(SEXES), MAX_AGE + 1, len(years))
    return ProjectionGrid(variants, munis, years, table["population"].to_numpy().reshape(shape),
                          table["deaths"].to_numpy().reshape(shape))
