"""Shared pieces of the Synthea and OMOP adapters.

Maps (``features/config/adapter_maps.yaml``, ``snomed_icd10.yaml``), keyed
pseudonyms, date and unit conversion, the collector of rejected rows, the final
pass through the contract's own validation, the mapping report and the atomic
write of an ingested folder. The rule every adapter keeps: each source row ends
up either in a canonical table or in ``rejected.csv`` with a reason, so that
``rows_in == rows_out + rejected`` for every source table.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.config.loader import ConfigError, ConfigFileNotFound, read_yaml
from features.contract.codes import normalise_icd10
from features.contract.tables import MEASUREMENTS, SERVICE_LINES, TABLES
from features.contract.io import atomic_dir, write_table
from features.contract.schemas import DATE_COLUMNS, FLOAT_COLUMNS, STRING_COLUMNS
from features.contract.validation import validate_tables

#: Key of the pseudonyms when none is given. Public, hence not secret: anyone
#: holding the source ids can recompute the pseudonyms made with it.
DEFAULT_KEY = "sote-public-default-key"
#: Environment variable the CLI reads the pseudonym key from.
KEY_ENV = "SOTE_PSEUDONYM_KEY"
#: Columns of ``rejected.csv``.
REJECTED_COLUMNS = ("source_table", "source_row", "client_id", "reason", "code", "detail")
REPORT_FILE = "ingest_report.json"
REJECTED_FILE = "rejected.csv"


class AdapterError(ValueError):
    """A source that cannot be read at all: a missing folder, table or column, or a bad map file."""


# --------------------------------------------------------------------------- maps

def _read_yaml(path: str | Path | None, packaged: str) -> dict:
    """A map file (or the packaged one) through the config loader; its problems as :class:`AdapterError`."""
    try:
        raw, source = read_yaml(path, packaged)
    except ConfigFileNotFound as err:
        raise AdapterError(f"map file not found: {path}") from err
    except ConfigError as err:
        raise AdapterError(f"map file {err}") from err
    if not isinstance(raw, dict):
        raise AdapterError(f"map file {source}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_maps(path: str | Path | None = None) -> dict:
    """The adapter maps: the packaged ``adapter_maps.yaml`` with ``path`` merged over it.

    Keys are turned into strings (YAML reads ``9201`` as a number) and every
    service line and measurement name is checked against the contract.

    Raises
    ------
    AdapterError
        If a map names a service line or measurement the contract does not know.
    """
    maps = _read_yaml(None, "adapter_maps.yaml")
    if path is not None:
        maps = _merge(maps, _read_yaml(path, "adapter_maps.yaml"))
    for source, section in (("synthea", "encounter_class"), ("synthea", "encounter_code"),
                            ("omop", "visit_concept")):
        entries = {str(k): dict(v or {}) for k, v in (maps.get(source, {}).get(section) or {}).items()}
        for key, entry in entries.items():
            if entry.get("service") is not None and entry["service"] not in SERVICE_LINES:
                raise AdapterError(f"adapter maps {source}.{section}.{key}: unknown service line "
                                   f"{entry['service']!r}; use one of {list(SERVICE_LINES)} or null")
        maps.setdefault(source, {})[section] = entries
    measures = {str(k): dict(v) for k, v in (maps.get("measurements") or {}).items()}
    for loinc, entry in measures.items():
        if entry.get("name") not in MEASUREMENTS:
            raise AdapterError(f"adapter maps measurements.{loinc}: unknown measurement {entry.get('name')!r}")
        entry["units"] = {normalise_unit_text(u): dict(c or {}) for u, c in (entry.get("units") or {}).items()}
    maps["measurements"] = measures
    return maps


def load_snomed_map(path: str | Path | None = None) -> pd.DataFrame:
    """SNOMED CT to ICD-10 table: ``snomed``, ``icd10``, ``name`` (the packaged table, extended by ``path``).

    Raises
    ------
    AdapterError
        If an ICD-10 code in the table is not a valid code.
    """
    codes = dict((_read_yaml(None, "snomed_icd10.yaml").get("codes") or {}))
    if path is not None:
        codes.update(_read_yaml(path, "snomed_icd10.yaml").get("codes") or {})
    frame = pd.DataFrame([{"snomed": str(k), "icd10": str(v["icd10"]), "name": v.get("name", "")}
                          for k, v in codes.items()])
    frame["icd10"] = normalise_icd10(frame["icd10"])
    bad = frame["icd10"].isna()
    if bad.any():
        raise AdapterError(f"SNOMED map: invalid ICD-10 codes for {frame.loc[bad, 'snomed'].tolist()}")
    return frame


def snomed_to_icd10(codes: pd.Series, table: pd.DataFrame) -> pd.Series:
    """ICD-10 code of each SNOMED code (missing where the table has none)."""
    lookup = table.set_index("snomed")["icd10"]
    return codes.astype("string").str.strip().map(lookup).astype("string")


# ------------------------------------------------------------------ source files

def find_source(src: Path, name: str) -> Path | None:
    """A source table in ``src`` as CSV, gzipped CSV, Parquet file or Parquet folder, in either case."""
    for stem in dict.fromkeys((name, name.lower(), name.upper())):
        for suffix in (".csv", ".csv.gz", ".parquet", ""):
            path = src / f"{stem}{suffix}"
            if path.exists() and (suffix or path.is_dir()):
                return path
    return None


def _separator(path: Path) -> str:
    """Comma, or tab for tab-separated exports (decided on the header line)."""
    import gzip

    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", errors="replace") as f:
        line = f.readline()
    return "\t" if line.count("\t") > line.count(",") else ","


def read_source(src: Path, name: str, required: tuple[str, ...], optional: tuple[str, ...] = (),
                *, must_exist: bool = True) -> pd.DataFrame | None:
    """Read a source table as text, with lower-case column names and a 1-based ``source_row``.

    Only ``required`` and ``optional`` columns are kept. Returns None for a
    missing table when ``must_exist`` is False.

    Raises
    ------
    AdapterError
        If the table is missing (and must exist) or lacks a required column.
    """
    path = find_source(src, name)
    if path is None:
        if not must_exist:
            return None
        raise AdapterError(f"table '{name}' not found in {src} (expected {name}.csv or {name}.parquet, "
                           "either case)")
    wanted = {c.lower() for c in (*required, *optional)}
    if path.is_dir() or path.suffix == ".parquet":
        import pyarrow.dataset as ds

        names = ds.dataset(path, format="parquet").schema.names
        frame = pd.read_parquet(path, columns=[c for c in names if c.lower() in wanted])
        for c in frame.columns:  # ids stored as floats (nullable) must read "8554", not "8554.0"
            col = frame[c]
            if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
                frame[c] = col.astype("Int64")
        frame = frame.astype({c: "string" for c in frame.columns})
    else:
        sep = _separator(path)
        try:
            header = pd.read_csv(path, nrows=0, sep=sep).columns
            frame = pd.read_csv(path, sep=sep, dtype="string", keep_default_na=False, na_values=[""],
                                usecols=[c for c in header if c.lower() in wanted])
        except UnicodeDecodeError as err:
            raise AdapterError(f"table '{name}' ({path}) is not UTF-8 text: byte "
                               f"{err.object[err.start:err.start + 1]!r} at byte {err.start:,} cannot be decoded; "
                               "save the export as UTF-8") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise AdapterError(f"table '{name}' ({path}) cannot be read as CSV: {str(err).strip()}") from None
    frame.columns = [c.lower() for c in frame.columns]
    missing = [c.lower() for c in required if c.lower() not in frame.columns]
    if missing:
        raise AdapterError(f"table '{name}' ({path.name}) lacks required column(s) {missing}")
    for c in optional:
        if c.lower() not in frame.columns:
            frame[c.lower()] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["source_row"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return frame


# --------------------------------------------------------------------- pseudonyms

def pseudonyms(values: pd.Series, key: str, namespace: str, length: int = 16) -> pd.Series:
    """Keyed deterministic pseudonyms: the first ``length`` hex digits of HMAC-SHA256(key, namespace:value).

    The same key and source id (surrounding spaces ignored) always give the same
    pseudonym; without the key the source id cannot be recovered or checked.
    Missing values stay missing.

    Raises
    ------
    AdapterError
        If two different source ids get the same pseudonym (never seen at 64 bits).
    """
    secret = key.encode()
    ids = values.astype("string").str.strip()
    mapped = {v: hmac.new(secret, f"{namespace}:{v}".encode(), hashlib.sha256).hexdigest()[:length]
              for v in ids.dropna().unique()}
    if len(set(mapped.values())) != len(mapped):
        raise AdapterError(f"pseudonym collision among {len(mapped):,} {namespace} ids; use a longer pseudonym")
    return ids.map(mapped).astype("string")


# ------------------------------------------------------------------ dates, units

def parse_day(values: pd.Series) -> pd.Series:
    """Dates (``YYYY-MM-DD``, optionally with a time) as days; unreadable values become NaT."""
    s = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(s, errors="coerce", format="%Y-%m-%d").astype("datetime64[s]")


def parse_timestamp_day(values: pd.Series, timezone: str) -> pd.Series:
    """The local day, in ``timezone``, of ISO 8601 timestamps with an offset or ``Z`` (UTC)."""
    ts = pd.to_datetime(values.astype("string").str.strip(), errors="coerce", utc=True, format="ISO8601")
    return ts.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize().astype("datetime64[s]")


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers as float; unreadable values become NaN."""
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").astype(float)


def normalise_unit_text(unit: str) -> str:
    """A unit compared loosely: lower case, no spaces, brackets, braces or underscores."""
    return "".join(ch for ch in str(unit).lower() if ch not in " []{}_")


def convert_measurements(codes: pd.Series, units: pd.Series, values: pd.Series, measures: dict,
                         descriptions: pd.Series | None = None) -> pd.DataFrame:
    """Map LOINC codes to the contract's measurements and convert their units.

    Parameters
    ----------
    codes, units, values
        Aligned series: LOINC code, unit as written in the source, raw value.
    measures
        The ``measurements`` section of :func:`load_maps`.
    descriptions
        Names of the codes in the source, kept as the detail of unmapped codes.

    Returns
    -------
    pandas.DataFrame
        ``name``, ``value`` (converted) and ``reason`` (missing where the row
        converted; otherwise why not) and ``detail``, aligned with ``codes``.
    """
    code = codes.astype("string").str.strip()
    unit = units.astype("string").str.strip()
    unit_key = unit.map(normalise_unit_text, na_action="ignore").astype("string")
    raw = parse_number(values)
    out = pd.DataFrame({"name": code.map({k: v["name"] for k, v in measures.items()}).astype("string"),
                        "value": np.nan, "reason": pd.NA, "detail": pd.NA}, index=codes.index)
    out["reason"] = out["reason"].astype("string")
    out["detail"] = out["detail"].astype("string")
    for loinc, entry in measures.items():
        rows = code.eq(loinc).fillna(False).to_numpy(bool)
        for u, conv in entry["units"].items():
            hit = rows & unit_key.eq(u).fillna(False).to_numpy(bool)
            out.loc[hit, "value"] = (raw[hit] + float(conv.get("add", 0.0))) * float(conv.get("multiply", 1.0))
    accepted = {(loinc, u) for loinc, e in measures.items() for u in e["units"]}
    unit_ok = pd.Series([(c, u) in accepted for c, u in zip(code.fillna(""), unit_key.fillna(""))],
                        index=codes.index)
    known = out["name"].notna()
    no_unit = known & unit.isna()
    bad_unit = known & ~no_unit & ~unit_ok
    not_numeric = known & unit_ok & raw.isna()
    for mask, reason, detail in (
        (~known, "LOINC code not a contract measurement", descriptions),
        (no_unit, "unit missing", None),
        (bad_unit, "unit not accepted for this LOINC code", unit),
        (not_numeric, "value not numeric", values.astype("string")),
    ):
        out.loc[mask, "reason"] = reason
        if detail is not None:
            out.loc[mask, "detail"] = detail[mask]
    out.loc[out["reason"].notna(), ["name", "value"]] = [pd.NA, np.nan]
    return out


# ----------------------------------------------------------------- rejected rows

def as_mask(mask) -> np.ndarray:
    """A boolean array from a mask that may hold missing values (missing counts as False)."""
    values = mask.to_numpy() if isinstance(mask, pd.Series) else mask
    return pd.array(values, dtype="boolean").fillna(False).to_numpy(bool)


@dataclass
class Rejects:
    """Rejected source rows, collected as an adapter runs (one instance per run)."""

    parts: list[pd.DataFrame] = field(default_factory=list)

    def add(self, source_table: str, mask, source_row: pd.Series, reason, *, client_id=None, code=None,
            detail=None) -> None:
        """Record the rows of ``mask`` with a reason (a string or a series aligned with ``mask``)."""
        mask = as_mask(mask)
        if not mask.any():
            return

        def pick(v):
            if v is None:
                return pd.array([pd.NA] * int(mask.sum()), dtype="string")
            if isinstance(v, pd.Series):
                return v[mask].astype("string").to_numpy()
            return pd.array([v] * int(mask.sum()), dtype="string")

        self.parts.append(pd.DataFrame({
            "source_table": source_table, "source_row": source_row[mask].to_numpy(dtype=np.int64),
            "client_id": pick(client_id), "reason": pick(reason), "code": pick(code), "detail": pick(detail),
        }))

    def take(self, source_table: str, taken: np.ndarray, mask, source_row: pd.Series, reason, **kw) -> np.ndarray:
        """Record the rows of ``mask`` not already ``taken`` (first reason wins); return the new taken mask."""
        mask = as_mask(mask) & ~taken
        self.add(source_table, mask, source_row, reason, **kw)
        return taken | mask

    def frame(self) -> pd.DataFrame:
        """All rejected rows, ordered by source table and row."""
        if not self.parts:
            return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "source_row" else "string")
                                 for c in REJECTED_COLUMNS})
        out = pd.concat(self.parts, ignore_index=True)
        for c in REJECTED_COLUMNS:
            out[c] = out[c].astype("int64" if c == "source_row" else "string")
        return out.sort_values(["source_table", "source_row"], kind="stable", ignore_index=True)


# ---------------------------------------------------------- contract and output

def contract_frame(table: str, columns: dict) -> pd.DataFrame:
    """A canonical table with the contract's column types plus ``source_row``."""
    frame = pd.DataFrame(columns)
    for c in STRING_COLUMNS[table]:
        if c in frame:
            frame[c] = frame[c].astype("string")
    for c in DATE_COLUMNS[table]:
        if c in frame:
            frame[c] = pd.to_datetime(frame[c]).astype("datetime64[s]")
    for c in FLOAT_COLUMNS[table]:
        if c in frame:
            frame[c] = frame[c].astype(float)
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame.reset_index(drop=True)


def empty_assessments() -> pd.DataFrame:
    """An empty ``assessments`` table (neither source format carries RAI scores)."""
    names = (*STRING_COLUMNS["assessments"], *DATE_COLUMNS["assessments"], *FLOAT_COLUMNS["assessments"])
    return contract_frame("assessments", {**{c: [] for c in names}, "source_row": []})


def enforce_contract(tables: dict[str, pd.DataFrame], sources: dict[str, str], rejects: Rejects
                     ) -> dict[str, pd.DataFrame]:
    """Run the contract's own validation; move every row it would quarantine to ``rejects``.

    What is left passes ``features.contract.load.load_tables`` in strict mode. Reasons are
    the validator's (e.g. ``date: dated after the client's death_date``), prefixed
    with ``contract:``; rows of a rejected client follow it (foreign key).
    """
    result = validate_tables(tables, lenient=True)
    for table, bad in result.quarantine.items():
        if len(bad):
            code = bad["code"] if "code" in bad else (bad["name"] if "name" in bad else None)
            rejects.add(sources[table], np.ones(len(bad), bool), bad["source_row"], "contract: " + bad["reason"],
                        client_id=bad["client_id"], code=code)
    return result.tables


@dataclass
class IngestResult:
    """What an adapter produced: canonical tables, rejected rows and the mapping report."""

    tables: dict[str, pd.DataFrame]
    rejected: pd.DataFrame
    report: dict

    def write(self, out: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder atomically (see :func:`write_ingested`)."""
        return write_ingested(self, out, overwrite=overwrite)


def build_report(source: str, src: Path, parameters: dict, tables: dict[str, pd.DataFrame],
                 rejected: pd.DataFrame, sources: dict[str, str], rows_in: dict[str, int],
                 used_elsewhere: dict[str, int], notes: list[str]) -> dict:
    """The mapping report: rows in / out / rejected per source table, reasons, unmapped codes.

    ``used_elsewhere`` counts rows of a source table merged into another table
    (e.g. OMOP DEATH rows into ``clients``), so that for every source table
    ``rows_in == rows_out + rejected``.
    """
    out_of = {src_table: len(tables[t]) for t, src_table in sources.items()}
    per_source = {}
    for name, n_in in rows_in.items():
        rej = rejected[rejected["source_table"] == name]
        reasons = rej["reason"].value_counts().sort_index()
        per_source[name] = {
            "rows_in": int(n_in),
            "rows_out": int(out_of.get(name, used_elsewhere.get(name, 0))),
            "rejected": int(len(rej)),
            "rejected_by_reason": {str(k): int(v) for k, v in reasons.items()},
        }
    unmapped = {}
    if len(rejected):
        mapping = rejected[~rejected["reason"].str.startswith("contract:") & rejected["code"].notna()]
        for (name, reason), group in mapping.groupby(["source_table", "reason"], sort=True):
            counts = group.groupby("code").agg(rows=("code", "size"), detail=("detail", "first"))
            counts = counts.sort_values("rows", ascending=False, kind="stable")
            unmapped.setdefault(name, {})[reason] = [
                {"code": str(c), "rows": int(r.rows), **({"detail": str(r.detail)} if pd.notna(r.detail) else {})}
                for c, r in counts.iterrows()]
    events = tables["events"]
    return {
        "source": source,
        "source_dir": str(src),
        "parameters": parameters,
        "tables": {t: int(len(f)) for t, f in tables.items()},
        "sources": per_source,
        "unmapped": unmapped,
        "service_lines": {str(k): int(v) for k, v in events["service"].value_counts().sort_index().items()},
        "events_without_cost": int(events["cost_eur"].isna().sum()),
        "notes": notes,
    }


def write_ingested(result: IngestResult, out: str | Path, *, overwrite: bool = False,
                   source: str | Path | None = None) -> Path:
    """Write tables (Parquet), ``rejected.csv`` and ``ingest_report.json`` into ``out`` atomically.

    The folder is built aside and moved into place whole, so an interrupted run
    leaves any earlier output intact. The rule of every sote output holds
    (:mod:`features.contract.outputs`): an existing folder is replaced only
    where sote wrote it; one holding other files is refused unless
    ``overwrite`` (then only sote's own files are replaced); ``out`` may not
    overlap the ``source`` folder.

    Raises
    ------
    features.contract.outputs.OutputRefused
        If ``out`` overlaps the source, is a file, or holds files sote did not write.
    """
    from features.contract.outputs import check_not_input

    out = Path(out)
    check_not_input(out, [source or result.report.get("source_dir")], "--out")
    with atomic_dir(out, overwrite=overwrite, option="--out") as tmp:
        for table in TABLES:
            write_table(result.tables[table], tmp / f"{table}.parquet")
        write_table(result.rejected, tmp / REJECTED_FILE)
        (tmp / REPORT_FILE).write_text(json.dumps(result.report, indent=2, ensure_ascii=False) + "\n")
    return out
