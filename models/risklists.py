"""Risk lists after scoring: reading and checking a list, risk bands, a unit's view and its safe export.

This is the library layer below the case-manager report (``sote report``)
and, later, the worklist app: it decides *which* rows a unit sees and what
they say; rendering (HTML, CSV, Excel) is done by the caller.

- :func:`read_risklist` reads a list written by :func:`models.scoring.score`
  (Parquet or CSV) and checks it against :class:`models.scoring.RiskList`,
  naming the file and what is wrong.
- :func:`unit_view` keeps one unit's clients (access follows the unit that
  owns each client), best rank first, and marks who is new since the
  previous list.
- :func:`band` puts each probability in a risk band relative to the list's
  base rate.
- :func:`export_frame` is the table a spreadsheet export carries, with every
  text cell that a spreadsheet would read as a formula neutralised
  (:func:`neutralise_formula`).
- :func:`cohort_text` and :func:`list_description` say in plain words (fi, sv,
  en) whom a list ranks and what it is for; :func:`list_about` finds that
  description for a list read from a file.
- :func:`probability_text` shows a probability honestly: a calibration
  boundary value (``probability_bound``) as "over 90 %" / "under 1 %", never
  as the capped number itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from models.listinfo import (LIST_TEXT, cohort_text, list_description, list_kind,  # noqa: F401 - re-exported
                             probability_text)
from models.scoring import LANGS, RiskList

#: Risk bands relative to the list's base rate (mean probability): [lower, upper) multiples of it.
BANDS = (("usual", 0.0, 1.5), ("raised", 1.5, 3.0), ("high", 3.0, float("inf")))

#: Band names shown to case managers.
BAND_LABELS = {
    "fi": {"usual": "tavanomainen", "raised": "kohonnut", "high": "korkea"},
    "sv": {"usual": "normal", "raised": "förhöjd", "high": "hög"},
    "en": {"usual": "usual", "raised": "raised", "high": "high"},
}

#: First characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_STRING_COLUMNS = ("client_id", "unit", "municipality", "segment", *(f"reasons_{lang}" for lang in LANGS),
                   "model_name", "model_version", "run_id", "data_digest", "probability_bound", "reason_types")
_NULLABLE = ("segment", *(f"reasons_{lang}" for lang in LANGS), "probability_bound", "reason_types")
_OPTIONAL_NUMBERS = ("probability_limit", "bin_observed_rate")
_OPTIONAL_FLAGS = ("intensive_ongoing", "prior_high_use")

class RiskListError(ValueError):
    """A file that is not a readable, valid risk list; the message names the file and the problem."""


def _columns(required_only: bool = False) -> list[str]:
    columns = RiskList.to_schema().columns
    return [name for name, col in columns.items() if col.required or not required_only]


def _read_csv(path: Path) -> pd.DataFrame:
    # every column as text first, so that client ids keep their leading zeros and nothing is guessed
    try:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RiskListError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); "
                            "save the risk list as UTF-8 CSV or use the Parquet file") from err
    except pd.errors.ParserError as err:
        raise RiskListError(f"{path} is not a readable CSV file: {str(err).splitlines()[0]}") from err
    except pd.errors.EmptyDataError as err:
        raise RiskListError(f"{path} is empty, not a risk list") from err
    missing = [c for c in _columns(required_only=True) if c not in raw.columns]
    if missing:
        return raw  # reported with the other structural problems below
    out = raw.copy()
    for col in _OPTIONAL_NUMBERS:
        if col in raw:
            out[col] = pd.to_numeric(raw[col], errors="coerce").astype(float)  # empty: not bounded / suppressed
    for col in _OPTIONAL_FLAGS:
        if col in raw:
            text = raw[col].str.strip().str.lower()
            if not text.isin(["true", "false"]).all():
                raise RiskListError(f"{path} is not a valid risk list: column '{col}' needs True or False in every "
                                    "row")
            out[col] = (text == "true").astype(bool)
    for col, kind in (("probability", "number"), ("percentile", "number"), ("rank", "whole number")):
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            raise RiskListError(f"{path} is not a valid risk list: column '{col}' needs a {kind} in every row "
                                f"({int(bad.sum()):,} row(s) without one, first at line {int(np.argmax(bad)) + 2})")
        out[col] = values.astype(float)
    if (out["rank"] != np.floor(out["rank"])).any():
        raise RiskListError(f"{path} is not a valid risk list: column 'rank' holds numbers that are not whole")
    out["rank"] = out["rank"].astype("int64")
    as_of = pd.to_datetime(raw["as_of"], errors="coerce", format="ISO8601")
    if as_of.isna().any():
        raise RiskListError(f"{path} is not a valid risk list: column 'as_of' needs an ISO date (YYYY-MM-DD) in "
                            f"every row")
    out["as_of"] = as_of.astype("datetime64[us]")
    for col in _STRING_COLUMNS:
        if col not in _NULLABLE and col in out:
            out[col] = out[col].astype(str)  # the text dtype Parquet reads into, as score() writes it
    return out


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise RiskListError(f"{path} is not a readable Parquet file: {str(err).splitlines()[0]}") from err
    frame = table.to_pandas()
    attrs = (table.schema.metadata or {}).get(b"PANDAS_ATTRS")  # where pandas keeps DataFrame.attrs
    if attrs:
        try:
            frame.attrs = json.loads(attrs)
        except ValueError:
            frame.attrs = {}
    return frame


def _read_folder(path: Path) -> pd.DataFrame:
    """A risk list written as a Parquet folder partitioned by unit (``sote score --engine spark``), best rank first."""
    from features.histories.engine import read_parquet_output

    try:
        table = read_parquet_output(path)
    except ValueError as err:
        raise RiskListError(f"risk list {path}: {err}") from err
    except OSError as err:
        raise RiskListError(f"{path} is not a readable Parquet folder: {str(err).splitlines()[0]}") from err
    frame = table.to_pandas()
    for col in _NULLABLE:  # the dtype score() writes them with (a folder has no pandas metadata to say so)
        if col in frame:
            frame[col] = frame[col].astype("string")
    return frame.sort_values("rank", kind="stable", ignore_index=True) if "rank" in frame else frame


def read_risklist(path: str | Path) -> pd.DataFrame:
    """Read a risk list written by ``sote score`` (Parquet or CSV) and check it against :class:`RiskList`.

    Parameters
    ----------
    path
        A ``.parquet`` or ``.csv`` file, or a Parquet folder partitioned by unit with
        its ``_SUCCESS`` marker (``sote score --engine spark``). In a CSV an empty reasons
        cell reads as missing (not explained): CSV cannot tell an empty text from a missing one.

    Returns
    -------
    pandas.DataFrame
        The validated list, typed as :func:`models.scoring.score` writes it.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    RiskListError
        If the file cannot be read or is not a valid risk list (missing or
        unexpected columns, values breaking the schema); the message names the
        file, the columns and the rules, never a client's identifier.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"risk list not found: {path}")
    if path.is_dir():
        frame = _read_folder(path)
    elif path.suffix == ".parquet":
        frame = _read_parquet(path)
    elif path.suffix == ".csv":
        frame = _read_csv(path)
    else:
        raise RiskListError(f"risk list {path}: use a .parquet or .csv file (as written by `sote score`)")
    expected = _columns()
    missing = [c for c in _columns(required_only=True) if c not in frame.columns]
    if missing:
        raise RiskListError(f"{path} is not a risk list: missing columns {', '.join(missing)} "
                            "(a risk list is written by `sote score`)")
    extra = [c for c in frame.columns if c not in expected]
    if extra:
        raise RiskListError(f"{path} is not a risk list: unexpected columns {', '.join(map(str, extra))}")
    attrs = dict(frame.attrs)
    try:
        valid = RiskList.validate(frame[[c for c in expected if c in frame.columns]], lazy=True)
        valid.attrs = attrs
        return valid
    except pa_errors.SchemaErrors as err:
        cases = err.failure_cases
        # name columns and rules with counts; the failing values could be client identifiers
        found = cases.groupby(["column", "check"], dropna=False, sort=True).size()
        what = "; ".join(f"column '{col}': {check} ({n:,} row(s))" for (col, check), n in found.items())
        raise RiskListError(f"{path} is not a valid risk list: {what}") from err


def band_codes(probability: pd.Series, base_rate: float) -> pd.Series:
    """Risk band code of each probability: ``high`` at ≥ 3× the base rate, ``raised`` at ≥ 1.5×, else ``usual``.

    Raises
    ------
    ValueError
        If ``base_rate`` is not a positive number.
    """
    if not (np.isfinite(base_rate) and base_rate > 0):
        raise ValueError(f"base rate must be a positive number, got {base_rate}")
    edges = [lo for _, lo, _ in BANDS] + [BANDS[-1][2]]
    codes = pd.cut(probability / base_rate, edges, right=False, labels=[name for name, _, _ in BANDS])
    return pd.Series(codes.astype(str), index=probability.index)


def band(probability: pd.Series, base_rate: float, lang: str) -> pd.Series:
    """Risk band of each probability in ``lang`` (fi, sv, en); see :func:`band_codes` for the rule."""
    if lang not in BAND_LABELS:
        raise ValueError(f"language must be one of {', '.join(BAND_LABELS)}, got {lang!r}")
    return band_codes(probability, base_rate).map(BAND_LABELS[lang])


def _select(risk: pd.DataFrame, unit: str | None, top: int | None) -> pd.DataFrame:
    view = risk if unit is None else risk[risk["unit"] == unit]
    view = view.sort_values("rank", kind="stable")
    return view.head(top) if top is not None else view


def unit_view(risk: pd.DataFrame, unit: str | None, top: int | None, previous: pd.DataFrame | None = None
              ) -> pd.DataFrame:
    """The rows a unit may see (all units when ``unit`` is None), best rank first, with ``new_on_list``.

    Parameters
    ----------
    risk
        A risk list (:func:`read_risklist`).
    unit
        The unit whose clients are shown, or None for every unit.
    top
        Keep the ``top`` best-ranked clients (at least 1), or None for all.
    previous
        The previous list: ``new_on_list`` is True for clients in this view
        who were not in the previous list's same view (same unit, same top N).
        Without it every client counts as not new.

    Raises
    ------
    ValueError
        If ``top`` is below 1 or the unit has no clients on the list.
    """
    if top is not None and (isinstance(top, bool) or int(top) != top or top < 1):
        raise ValueError(f"top must be a whole number of at least 1, got {top!r}")
    view = _select(risk, unit, top).copy()
    if unit is not None and view.empty:
        units = sorted(risk["unit"].unique())
        more = f", … {len(units) - 10} more" if len(units) > 10 else ""
        raise ValueError(f"unit {unit!r} has no clients on this list (units: {', '.join(units[:10])}{more})")
    before = _select(previous, unit, top)["client_id"] if previous is not None else view["client_id"]
    view["new_on_list"] = ~view["client_id"].isin(before)
    return view


def neutralise_formula(value):
    """A text that a spreadsheet would evaluate (starting with =, +, -, @, tab or CR) prefixed with ``'``.

    Anything else, including numbers, missing values and ordinary text, is
    returned unchanged. The apostrophe is the spreadsheet convention for
    "this is text"; the original text follows it unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_frame(view: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The columns a spreadsheet export of a unit view carries, with formula-like text neutralised.

    Columns: rank, client_id, unit, probability, probability_shown, segment,
    ``reasons_<lang>``, new_on_list, intensive_ongoing and prior_high_use
    (when the list has them), model_name, model_version, as_of (a date).
    ``probability`` is empty for a calibration boundary value, which
    ``probability_shown`` gives as "over 90 %" (:func:`probability_text`);
    measured values are in both. Every text cell passes through
    :func:`neutralise_formula`.
    """
    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}, got {lang!r}")
    flags = [c for c in _OPTIONAL_FLAGS if c in view]
    cols = ["rank", "client_id", "unit", "probability", "segment", f"reasons_{lang}", "new_on_list", *flags,
            "model_name", "model_version", "as_of"]
    out = view[cols].copy()
    if "probability_bound" in view:
        out["probability"] = out["probability"].where(view["probability_bound"].isna(), None)
    out.insert(4, "probability_shown", shown_probabilities(view, lang))
    for col in ("client_id", "unit", "probability_shown", "segment", f"reasons_{lang}", "model_name",
                "model_version"):
        out[col] = out[col].astype(object).where(out[col].notna(), None).map(neutralise_formula)
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.date
    return out.reset_index(drop=True)


def list_about(risk: pd.DataFrame, path: str | Path | None = None) -> dict | None:
    """The description of a list read from a file (:func:`list_description`), or None if unknown.

    Looked up in order: the Parquet file's metadata (``risk.attrs``, as
    :func:`read_risklist` keeps it), the JSON sidecar ``<path>.json`` written
    by ``sote score``, and the declared target named by the list's
    ``model_name`` (a registered model carries its target's name).
    """
    about = risk.attrs.get("sote_list") if hasattr(risk, "attrs") else None
    if isinstance(about, dict) and isinstance(about.get("cohort"), dict):
        return about
    if path is not None:
        sidecar = Path(str(path) + ".json")
        if sidecar.is_file():
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if isinstance(data.get("cohort"), dict):
                return {k: data.get(k) for k in ("target", "list_kind", "cohort", "purpose")}
    if len(risk):
        from features.targets.spec import TargetError, get_target

        name = str(risk["model_name"].iloc[0])
        try:
            target = get_target(name)
        except (TargetError, KeyError, ValueError):
            return None
        return list_description(name, target.cohort)
    return None


def shown_probabilities(view: pd.DataFrame, lang: str) -> pd.Series:
    """:func:`probability_text` of every row of a list or unit view (older lists: the plain numbers)."""
    if "probability_bound" not in view:
        return view["probability"].map(lambda p: probability_text(p, lang=lang))
    limit = view.get("probability_limit", pd.Series(np.nan, index=view.index))
    observed = view.get("bin_observed_rate", pd.Series(np.nan, index=view.index))
    return pd.Series([probability_text(p, b, lim, obs, lang) for p, b, lim, obs in
                      zip(view["probability"], view["probability_bound"], limit, observed)], index=view.index,
                     dtype=object)
