"""Synthea CSV export -> the canonical tables.

>>> from features.adapters import ingest_synthea
>>> result = ingest_synthea("synthea/csv", timezone="America/Los_Angeles")   # doctest: +SKIP
>>> result.write("out/synthea")                                                # doctest: +SKIP

patients -> clients, encounters -> events, conditions -> diagnoses (SNOMED CT
to ICD-10), observations -> measurements (LOINC, units converted). Choices and
their reasons are in docs/adapters.md and features/config/adapter_maps.yaml.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.adapters.common import (
    DEFAULT_KEY,
    AdapterError,
    IngestResult,
    Rejects,
    build_report,
    contract_frame,
    convert_measurements,
    empty_assessments,
    enforce_contract,
    load_maps,
    load_snomed_map,
    parse_day,
    parse_number,
    parse_timestamp_day,
    pseudonyms,
    read_source,
    snomed_to_icd10,
)
from features.contract.codes import normalise_icd10
from features.contract.tables import EPISODE_SERVICES, LANGUAGES

#: Canonical table <- Synthea file.
SOURCES = {"clients": "patients", "events": "encounters", "diagnoses": "conditions",
           "measurements": "observations", "assessments": "(none)"}
COSTS = ("total", "base", "unit")
_COST_COLUMN = {"total": "total_claim_cost", "base": "base_encounter_cost"}
NOT_READ = ("allergies", "careplans", "claims", "devices", "imaging_studies", "immunizations", "medications",
            "payer_transitions", "payers", "procedures", "providers", "supplies")


def _clients(src: Path, key: str, language: str, rejects: Rejects, rows_in: dict, counts: dict) -> pd.DataFrame:
    p = read_source(src, "patients", ("Id", "BIRTHDATE", "GENDER"), ("DEATHDATE", "CITY", "COUNTY"))
    rows_in["patients"] = len(p)
    cid = pseudonyms(p["id"], key, "synthea:patient")
    birth, death = parse_day(p["birthdate"]), parse_day(p["deathdate"])
    bad = np.zeros(len(p), bool)
    bad = rejects.take("patients", bad, birth.isna(), p["source_row"], "birth date missing or unreadable",
                       client_id=cid, detail=p["birthdate"])
    bad = rejects.take("patients", bad, death.isna() & p["deathdate"].notna(), p["source_row"],
                       "death date unreadable", client_id=cid, detail=p["deathdate"])
    keep = ~bad
    sex = p["gender"].str.strip().str.upper().map({"M": "M", "F": "F"}).fillna("X")
    counts["sex_x"], counts["municipality_unknown"] = int(sex.eq("X").sum()), int(p["city"].isna().sum())
    return contract_frame("clients", {
        "client_id": cid[keep], "birth_date": birth[keep], "sex": sex[keep],
        "municipality": p["city"].str.strip().fillna("unknown")[keep], "language": language,
        "death_date": death[keep], "unit": p["county"].str.strip().fillna("unknown")[keep],
        "source_row": p["source_row"][keep]})


def _service(e: pd.DataFrame, maps: dict) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Service line, role and (for rows not converted) the reason, from the class map and code overrides."""
    entries = {("class", k): v for k, v in maps["synthea"]["encounter_class"].items()}
    entries.update({("code", k): v for k, v in maps["synthea"]["encounter_code"].items()})
    cls = e["encounterclass"].str.strip().str.lower()
    code = e["code"].str.strip()
    # The code override wins over the class; rows matching neither are unmapped.
    which = [("code", c) if ("code", c) in entries else ("class", k) for c, k in zip(code.fillna(""), cls.fillna(""))]
    found = [entries.get(w) for w in which]
    service = pd.Series([f.get("service") if f else None for f in found], index=e.index, dtype="string")
    role = pd.Series([f.get("role") if f else None for f in found], index=e.index, dtype="string")
    reason = pd.Series([None if f and f.get("service") else (f.get("reason", "not converted") if f
                        else "unmapped encounter class") for f in found], index=e.index, dtype="string")
    return service, role, reason


def _events(src: Path, key: str, maps: dict, timezone: str, cost: str, eur_per_usd: float,
            rejects: Rejects, rows_in: dict, counts: dict) -> pd.DataFrame:
    e = read_source(src, "encounters", ("Id", "START", "PATIENT", "ENCOUNTERCLASS"),
                    ("STOP", "ORGANIZATION", "PROVIDER", "CODE", "DESCRIPTION", *_COST_COLUMN.values()))
    rows_in["encounters"] = len(e)
    cid = pseudonyms(e["patient"], key, "synthea:patient")
    service, role, reason = _service(e, maps)
    start = parse_timestamp_day(e["start"], timezone)
    stop = parse_timestamp_day(e["stop"], timezone)
    episode = service.isin(list(EPISODE_SERVICES)).fillna(False).to_numpy(bool)
    cost_raw = e[_COST_COLUMN[cost]] if cost != "unit" else pd.Series(pd.NA, index=e.index, dtype="string")
    cost_eur = parse_number(cost_raw) * eur_per_usd
    counts["cost_missing"] = int(cost_raw.isna().sum()) if cost != "unit" else 0
    rows = e["source_row"]
    bad = np.zeros(len(e), bool)
    unmapped = reason.eq("unmapped encounter class")
    bad = rejects.take("encounters", bad, unmapped, rows, reason, client_id=cid,
                       code=e["encounterclass"].str.strip().str.lower(), detail=e["description"])
    bad = rejects.take("encounters", bad, reason.notna(), rows, reason, client_id=cid, code=e["code"],
                       detail=e["description"])
    bad = rejects.take("encounters", bad, start.isna(), rows, "start unreadable", client_id=cid, detail=e["start"])
    bad = rejects.take("encounters", bad, episode & stop.isna().to_numpy() & e["stop"].notna().to_numpy(), rows,
                       "end unreadable", client_id=cid, detail=e["stop"])
    bad = rejects.take("encounters", bad, cost_eur.isna() & cost_raw.notna(), rows, "cost unreadable",
                       client_id=cid, detail=cost_raw)
    orgs = read_source(src, "organizations", ("Id",), ("NAME",), must_exist=False)
    unit = e["organization"]
    if orgs is not None:
        unit = unit.map(orgs.set_index("id")["name"].str.strip()).fillna(unit)
    professional = (role.fillna("provider") + "." + pseudonyms(e["provider"], key, "synthea:provider", 10)
                    ).fillna(role)
    keep = ~bad
    return contract_frame("events", {
        "client_id": cid[keep], "start": start[keep], "end": stop.where(episode, pd.NaT)[keep],
        "service": service[keep], "professional": professional[keep], "cost_eur": cost_eur[keep],
        "unit": unit[keep], "source_row": rows[keep]})


def _diagnoses(src: Path, key: str, snomed: pd.DataFrame, rejects: Rejects, rows_in: dict) -> pd.DataFrame:
    c = read_source(src, "conditions", ("START", "PATIENT", "CODE"), ("DESCRIPTION", "SYSTEM"))
    rows_in["conditions"] = len(c)
    cid = pseudonyms(c["patient"], key, "synthea:patient")
    date = parse_day(c["start"])
    # Newer Synthea versions name the code system; an ICD-10 code is taken as it is.
    icd_given = c["system"].str.upper().str.replace(r"[^A-Z0-9]", "", regex=True).str.startswith("ICD10")
    icd_given = icd_given.fillna(False).to_numpy(bool)
    code = snomed_to_icd10(c["code"], snomed)
    code[icd_given] = normalise_icd10(c["code"][icd_given])
    why = pd.Series(np.where(icd_given, "ICD-10 code unreadable", "SNOMED code not in the mapping table"),
                    index=c.index)
    bad = np.zeros(len(c), bool)
    bad = rejects.take("conditions", bad, date.isna(), c["source_row"], "date unreadable", client_id=cid,
                       detail=c["start"])
    bad = rejects.take("conditions", bad, code.isna(), c["source_row"], why, client_id=cid, code=c["code"],
                       detail=c["description"])
    keep = ~bad
    return contract_frame("diagnoses", {"client_id": cid[keep], "date": date[keep], "code": code[keep],
                                        "system": "ICD-10", "source_row": c["source_row"][keep]})


def _measurements(src: Path, key: str, maps: dict, timezone: str, rejects: Rejects, rows_in: dict
                  ) -> pd.DataFrame:
    o = read_source(src, "observations", ("DATE", "PATIENT", "CODE", "VALUE"), ("UNITS", "DESCRIPTION"))
    rows_in["observations"] = len(o)
    cid = pseudonyms(o["patient"], key, "synthea:patient")
    conv = convert_measurements(o["code"], o["units"], o["value"], maps["measurements"], o["description"])
    date = parse_timestamp_day(o["date"], timezone)
    bad = np.zeros(len(o), bool)
    bad = rejects.take("observations", bad, conv["reason"].notna(), o["source_row"], conv["reason"],
                       client_id=cid, code=o["code"], detail=conv["detail"])
    bad = rejects.take("observations", bad, date.isna(), o["source_row"], "date unreadable", client_id=cid,
                       detail=o["date"])
    keep = ~bad
    return contract_frame("measurements", {"client_id": cid[keep], "date": date[keep], "name": conv["name"][keep],
                                           "value": conv["value"][keep], "source_row": o["source_row"][keep]})


def ingest_synthea(
    src: str | Path,
    *,
    key: str | None = None,
    timezone: str = "UTC",
    cost: str = "total",
    eur_per_usd: float | None = None,
    language: str = "other",
    maps: str | Path | None = None,
    snomed_map: str | Path | None = None,
) -> IngestResult:
    """Convert a Synthea CSV export into the canonical tables.

    Parameters
    ----------
    src
        Folder of the export (``patients.csv``, ``encounters.csv``, ``conditions.csv``,
        ``observations.csv``; ``organizations.csv`` names the units if present).
    key
        Key of the pseudonymous client ids (HMAC-SHA256 of the patient id); None
        uses the public :data:`~features.adapters.common.DEFAULT_KEY` and says so in the report.
    timezone
        IANA zone to take the day of Synthea's UTC timestamps in. Synthea writes
        birth and death dates in the zone of the machine that generated the data,
        so that zone keeps events on the right day (a fatal emergency otherwise
        falls on the day after death and is rejected).
    cost
        ``total`` (TOTAL_CLAIM_COST: the encounter with its procedures, medications
        and immunizations), ``base`` (BASE_ENCOUNTER_COST only) or ``unit`` (no
        source cost: the loader fills Finnish unit costs).
    eur_per_usd
        Exchange rate for the source costs (USD); None uses the maps file's rate.
    language
        ``language`` of every client (the export has none; US patients are ``other``).
    maps, snomed_map
        YAML files merged over the packaged adapter maps and SNOMED CT -> ICD-10 table.

    Returns
    -------
    IngestResult
        Tables that pass ``features.contract.load.load_tables`` strictly, rejected rows
        with reasons, and the mapping report.

    Raises
    ------
    AdapterError
        If the folder, a required file or column is missing, or an option is invalid.
    """
    src = Path(src)
    if not src.is_dir():
        raise AdapterError(f"Synthea export folder not found: {src}")
    if cost not in COSTS:
        raise AdapterError(f"cost must be one of {COSTS}, got {cost!r}")
    if language not in LANGUAGES:
        raise AdapterError(f"language must be one of {LANGUAGES}, got {language!r}")
    try:
        pd.Timestamp("2020-01-01", tz=timezone)
    except Exception as err:  # noqa: BLE001 - pandas raises several types for an unknown zone
        raise AdapterError(f"unknown time zone {timezone!r} (use an IANA name such as Europe/Helsinki)") from err
    the_maps = load_maps(maps)
    rate = float(the_maps["currency"]["eur_per_usd"] if eur_per_usd is None else eur_per_usd)
    if rate <= 0:
        raise AdapterError(f"eur_per_usd must be positive, got {rate}")
    rejects, rows_in, counts, k = Rejects(), {}, {}, key or DEFAULT_KEY
    tables = {
        "clients": _clients(src, k, language, rejects, rows_in, counts),
        "events": _events(src, k, the_maps, timezone, cost, rate, rejects, rows_in, counts),
        "diagnoses": _diagnoses(src, k, load_snomed_map(snomed_map), rejects, rows_in),
        "measurements": _measurements(src, k, the_maps, timezone, rejects, rows_in),
        "assessments": empty_assessments(),
    }
    tables = enforce_contract(tables, SOURCES, rejects)
    rejected = rejects.frame()
    notes = _notes(src, key, rejected, cost, counts)
    params = {"key": "default (public, not secret)" if key is None else "given", "timezone": timezone,
              "cost": cost, "eur_per_usd": rate if cost != "unit" else None, "language": language,
              "maps": str(maps) if maps else "packaged", "snomed_map": str(snomed_map) if snomed_map else "packaged"}
    report = build_report("synthea", src, params, tables, rejected, SOURCES, rows_in, {}, notes)
    report["counts"] = counts
    return IngestResult(tables, rejected, report)


def _notes(src: Path, key: str | None, rejected: pd.DataFrame, cost: str, counts: dict) -> list[str]:
    notes = []
    if key is None:
        notes.append("client ids were made with the public default key: anyone holding the Synthea ids can "
                     "recompute them; pass --key (or SOTE_PSEUDONYM_KEY) for real pseudonyms")
    after_death = rejected["reason"].str.contains("after the client's death_date").sum()
    if after_death:
        notes.append(f"{after_death} row(s) fall after the patient's death date. Synthea writes timestamps in UTC "
                     "but birth and death dates in the generating machine's zone: pass --timezone with that zone")
    if counts["cost_missing"]:
        notes.append(f"{counts['cost_missing']} encounter(s) without {_COST_COLUMN[cost].upper()} (older Synthea "
                     "versions write a single COST column): the loader fills them from the unit-cost table")
    if counts["sex_x"] or counts["municipality_unknown"]:
        notes.append(f"{counts['sex_x']} patient(s) with a GENDER other than M/F (sex X), "
                     f"{counts['municipality_unknown']} without a CITY (municipality 'unknown')")
    if cost == "total":
        notes.append("costs are TOTAL_CLAIM_COST (US claim of the encounter incl. procedures and medications), "
                     "converted to EUR; use --cost unit for Finnish unit costs")
    present = [n for n in NOT_READ if (src / f"{n}.csv").exists()]
    if present:
        notes.append("not read (outside the contract): " + ", ".join(present))
    return notes
