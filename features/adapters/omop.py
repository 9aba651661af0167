"""OMOP CDM 5.4 (CSV or Parquet tables, either case) -> the canonical tables.

>>> from features.adapters import ingest_omop
>>> result = ingest_omop("omop/", key=my_key)        # doctest: +SKIP
>>> result.write("out/omop")                          # doctest: +SKIP

PERSON + DEATH (+ LOCATION, CARE_SITE) -> clients, VISIT_OCCURRENCE (+ COST)
-> events, CONDITION_OCCURRENCE -> diagnoses (ICD-10 source values, else the
SNOMED CT concept through the mapping table), MEASUREMENT -> measurements
(LOINC through CONCEPT). Choices are in docs/adapters.md.
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
    pseudonyms,
    read_source,
    snomed_to_icd10,
)
from features.contract.codes import normalise_icd10, normalise_icpc2
from features.contract.tables import EPISODE_SERVICES, LANGUAGES

#: Canonical table <- OMOP table (DEATH is merged into clients).
SOURCES = {"clients": "person", "events": "visit_occurrence", "diagnoses": "condition_occurrence",
           "measurements": "measurement", "assessments": "(none)"}
_SEX = {"8507": "M", "8532": "F"}
_LOINC = r"^\d{1,7}-\d$"


def _concepts(src: Path) -> pd.DataFrame:
    """CONCEPT as ``concept_id -> vocabulary_id, concept_code, concept_name`` (empty if the table is absent)."""
    c = read_source(src, "concept", ("concept_id", "vocabulary_id", "concept_code"), ("concept_name",),
                    must_exist=False)
    if c is None:
        return pd.DataFrame(columns=["vocabulary_id", "concept_code", "concept_name"], dtype="string")
    return c.drop_duplicates("concept_id").set_index("concept_id")[["vocabulary_id", "concept_code", "concept_name"]]


def _lookup(ids: pd.Series, concepts: pd.DataFrame, column: str) -> pd.Series:
    return ids.str.strip().map(concepts[column]).astype("string")


def _birth_dates(p: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Birth date from birth_datetime, else year/month/day; a missing month is 1 July, a missing day the 15th."""
    given = parse_day(p["birth_datetime"])
    year = parse_number(p["year_of_birth"])
    month, day = parse_number(p["month_of_birth"]), parse_number(p["day_of_birth"])
    parts = pd.DataFrame({"year": year, "month": month.fillna(7.0),
                          "day": day.fillna(pd.Series(np.where(month.isna(), 1.0, 15.0), index=p.index))})
    built = pd.to_datetime(parts[year.notna()], errors="coerce").reindex(p.index).astype("datetime64[s]")
    imputed = given.isna() & built.notna() & (month.isna() | day.isna())
    return given.fillna(built), imputed


def _clients(src: Path, key: str, language: str, default_unit: str, rejects: Rejects, rows_in: dict,
             counts: dict) -> pd.DataFrame:
    p = read_source(src, "person", ("person_id", "gender_concept_id", "year_of_birth"),
                    ("month_of_birth", "day_of_birth", "birth_datetime", "location_id", "care_site_id"))
    rows_in["person"] = len(p)
    cid = pseudonyms(p["person_id"].str.strip(), key, "omop:person")
    birth, imputed = _birth_dates(p)
    counts["birth_dates_imputed"] = int(imputed.sum())
    loc = read_source(src, "location", ("location_id",), ("city", "county"), must_exist=False)
    city = pd.Series(pd.NA, index=p.index, dtype="string")
    if loc is not None:
        loc = loc.drop_duplicates("location_id").set_index("location_id")
        city = p["location_id"].map(loc["city"].fillna(loc["county"])).astype("string")
    sites = read_source(src, "care_site", ("care_site_id",), ("care_site_name",), must_exist=False)
    unit = pd.Series(pd.NA, index=p.index, dtype="string")
    if sites is not None:
        sites = sites.drop_duplicates("care_site_id").set_index("care_site_id")["care_site_name"]
        unit = p["care_site_id"].map(sites).astype("string").fillna("care_site_" + p["care_site_id"])
    counts["municipality_unknown"] = int(city.isna().sum())
    counts["unit_default"] = int(unit.isna().sum())
    sex = p["gender_concept_id"].str.strip().map(_SEX).fillna("X")
    counts["sex_x"] = int(sex.eq("X").sum())
    death = _deaths(src, p, rejects, rows_in)
    bad = rejects.take("person", np.zeros(len(p), bool), birth.isna(), p["source_row"],
                       "birth date missing or unreadable", client_id=cid, detail=p["year_of_birth"])
    bad = rejects.take("person", bad, p["person_id"].duplicated(keep="first"), p["source_row"],
                       "duplicate person_id (first row kept)", client_id=cid)
    keep = ~bad
    return contract_frame("clients", {
        "client_id": cid[keep], "birth_date": birth[keep], "sex": sex[keep],
        "municipality": city.fillna("unknown")[keep],
        "language": language, "death_date": death[keep], "unit": unit.fillna(default_unit)[keep],
        "source_row": p["source_row"][keep]})


def _deaths(src: Path, person: pd.DataFrame, rejects: Rejects, rows_in: dict) -> pd.Series:
    """Death date of each person row (earliest DEATH row); DEATH rows not used go to ``rejects``."""
    d = read_source(src, "death", ("person_id", "death_date"), must_exist=False)
    if d is None:
        return pd.Series(pd.NaT, index=person.index, dtype="datetime64[s]")
    rows_in["death"] = len(d)
    day = parse_day(d["death_date"])
    pid = d["person_id"].str.strip()
    bad = rejects.take("death", np.zeros(len(d), bool), day.isna(), d["source_row"], "death date unreadable",
                       detail=d["death_date"])
    bad = rejects.take("death", bad, ~pid.isin(person["person_id"].str.strip()), d["source_row"],
                       "person_id not in PERSON", detail=pid)
    order = d.assign(day=day, pid=pid)[~bad].sort_values(["pid", "day"], kind="stable")
    later = order["pid"].duplicated(keep="first")
    rejects.add("death", d.index.isin(order.index[later.to_numpy()]), d["source_row"],
                "another death record of the person (earliest kept)")
    first = order[~later].set_index("pid")["day"]
    return person["person_id"].str.strip().map(first).astype("datetime64[s]")


def _service(v: pd.DataFrame, src: Path, maps: dict) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Service line, role and (for rows not converted) the reason of each visit."""
    table = maps["omop"]["visit_concept"]
    concept = v["visit_concept_id"].str.strip()
    refine = set(map(str, maps["omop"].get("refine_by_place_of_service") or []))
    sites = read_source(src, "care_site", ("care_site_id",), ("place_of_service_concept_id",), must_exist=False)
    if sites is not None and refine:
        place = v["care_site_id"].map(sites.drop_duplicates("care_site_id").set_index("care_site_id")
                                      ["place_of_service_concept_id"].str.strip()).astype("string")
        use = concept.isin(list(refine)) & place.isin([k for k, e in table.items() if e.get("service")])
        concept = concept.where(~use.fillna(False), place)
    service = concept.map({k: e.get("service") for k, e in table.items()}).astype("string")
    role = concept.map({k: e.get("role") for k, e in table.items()}).astype("string")
    reason = pd.Series(pd.NA, index=v.index, dtype="string")
    reason[~concept.isin(list(table)).to_numpy()] = "unmapped visit concept"
    named = (concept.isin(list(table)) & service.isna()).fillna(False).to_numpy()
    reason[named] = concept[named].map({k: e.get("reason", "visit concept not converted") for k, e in table.items()})
    return service, role, reason


def _visit_costs(src: Path, visits: pd.DataFrame, concepts: pd.DataFrame, eur_per_usd: float, rejects: Rejects,
                 rows_in: dict) -> pd.Series:
    """Cost of each visit in EUR: the sum of its Visit-domain COST rows' total_cost (missing if none)."""
    c = read_source(src, "cost", ("cost_event_id", "cost_domain_id", "total_cost"), ("currency_concept_id",),
                    must_exist=False)
    none = pd.Series(np.nan, index=visits.index)
    if c is None:
        return none
    rows_in["cost"] = len(c)
    currency = _lookup(c["currency_concept_id"].fillna(""), concepts, "concept_code").str.upper()
    rate = currency.map({"EUR": 1.0, "USD": eur_per_usd}).astype(float)
    amount = parse_number(c["total_cost"]) * rate
    rows = c["source_row"]
    bad = rejects.take("cost", np.zeros(len(c), bool), ~c["cost_domain_id"].str.strip().str.lower().eq("visit"),
                       rows, "cost of another domain (only Visit costs are attributed)", code=c["cost_domain_id"])
    bad = rejects.take("cost", bad, ~c["cost_event_id"].str.strip().isin(visits["visit_occurrence_id"].str.strip()),
                       rows, "cost_event_id not in VISIT_OCCURRENCE")
    bad = rejects.take("cost", bad, rate.isna(), rows, "currency unknown (not EUR or USD in CONCEPT)",
                       code=c["currency_concept_id"])
    bad = rejects.take("cost", bad, amount.isna(), rows, "total_cost missing or unreadable", detail=c["total_cost"])
    total = amount[~bad].groupby(c["cost_event_id"].str.strip()[~bad]).sum()
    return visits["visit_occurrence_id"].str.strip().map(total).astype(float)


def _events(src: Path, key: str, maps: dict, concepts: pd.DataFrame, eur_per_usd: float, rejects: Rejects,
            rows_in: dict) -> pd.DataFrame:
    v = read_source(src, "visit_occurrence", ("visit_occurrence_id", "person_id", "visit_concept_id",
                                              "visit_start_date"),
                    ("visit_end_date", "provider_id", "care_site_id"))
    rows_in["visit_occurrence"] = len(v)
    cid = pseudonyms(v["person_id"].str.strip(), key, "omop:person")
    service, role, reason = _service(v, src, maps)
    start, end = parse_day(v["visit_start_date"]), parse_day(v["visit_end_date"])
    episode = service.isin(list(EPISODE_SERVICES)).fillna(False).to_numpy(bool)
    cost = _visit_costs(src, v, concepts, eur_per_usd, rejects, rows_in)
    rows = v["source_row"]
    bad = rejects.take("visit_occurrence", np.zeros(len(v), bool), reason.notna(), rows, reason, client_id=cid,
                       code=v["visit_concept_id"], detail=_lookup(v["visit_concept_id"], concepts, "concept_name"))
    bad = rejects.take("visit_occurrence", bad, start.isna(), rows, "start unreadable", client_id=cid,
                       detail=v["visit_start_date"])
    unreadable_end = episode & end.isna().to_numpy() & v["visit_end_date"].notna().to_numpy()
    bad = rejects.take("visit_occurrence", bad, unreadable_end, rows, "end unreadable", client_id=cid,
                       detail=v["visit_end_date"])
    sites = read_source(src, "care_site", ("care_site_id",), ("care_site_name",), must_exist=False)
    unit = pd.Series(pd.NA, index=v.index, dtype="string")
    if sites is not None:
        names = sites.drop_duplicates("care_site_id").set_index("care_site_id")["care_site_name"]
        unit = v["care_site_id"].map(names).astype("string").fillna("care_site_" + v["care_site_id"])
    prov = pseudonyms(v["provider_id"].str.strip(), key, "omop:provider", 10)
    professional = (role.fillna("provider") + "." + prov).fillna(role)
    keep = ~bad
    return contract_frame("events", {
        "client_id": cid[keep], "start": start[keep], "end": end.where(episode, pd.NaT)[keep],
        "service": service[keep], "professional": professional[keep], "cost_eur": cost[keep], "unit": unit[keep],
        "source_row": rows[keep]})


def _condition_codes(c: pd.DataFrame, concepts: pd.DataFrame, snomed: pd.DataFrame
                     ) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Canonical code, system, the code looked up, and the reason where none was found."""
    value = c["condition_source_value"].str.strip()
    vocab = _lookup(c["condition_source_concept_id"].fillna(""), concepts, "vocabulary_id").str.upper()
    vocab = vocab.str.replace(r"[^A-Z0-9]", "", regex=True)
    icd10 = normalise_icd10(value)
    # A source value is ICD-10 if its vocabulary says so (ICD10, ICD10CM, ICD10fi) or, with no
    # vocabulary known, if it reads as one; ICPC-2 (Finnish primary care) likewise by vocabulary.
    is_icd = (vocab.str.startswith("ICD10") | (vocab.isna() & icd10.notna())).fillna(False)
    is_icpc = vocab.str.startswith("ICPC").fillna(False) & ~is_icd
    std_vocab = _lookup(c["condition_concept_id"], concepts, "vocabulary_id")
    snomed_code = _lookup(c["condition_concept_id"], concepts, "concept_code").where(std_vocab.eq("SNOMED"))
    fallback = value.where(value.str.fullmatch(r"\d{6,18}").fillna(False) & (vocab.isna() | vocab.eq("SNOMED")))
    snomed_code = snomed_code.fillna(fallback)
    code = snomed_to_icd10(snomed_code, snomed)
    code[is_icd.to_numpy()] = icd10[is_icd.to_numpy()]
    code[is_icpc.to_numpy()] = normalise_icpc2(value[is_icpc.to_numpy()])
    system = pd.Series(np.where(is_icpc, "ICPC-2", "ICD-10"), index=c.index, dtype="string")
    looked = snomed_code.where(~(is_icd | is_icpc), value)
    reason = pd.Series(pd.NA, index=c.index, dtype="string")
    missing = code.isna()
    reason[(missing & (is_icd | is_icpc)).to_numpy()] = "source code unreadable"
    reason[(missing & ~(is_icd | is_icpc) & snomed_code.notna()).to_numpy()] = "SNOMED code not in the mapping table"
    reason[(missing & ~(is_icd | is_icpc) & snomed_code.isna()).to_numpy()] = \
        "no ICD-10 source value and no SNOMED concept"
    return code, system, looked.fillna(c["condition_concept_id"]), reason


def _diagnoses(src: Path, key: str, concepts: pd.DataFrame, snomed: pd.DataFrame, rejects: Rejects,
               rows_in: dict) -> pd.DataFrame:
    c = read_source(src, "condition_occurrence", ("person_id", "condition_concept_id", "condition_start_date"),
                    ("condition_source_value", "condition_source_concept_id"))
    rows_in["condition_occurrence"] = len(c)
    cid = pseudonyms(c["person_id"].str.strip(), key, "omop:person")
    date = parse_day(c["condition_start_date"])
    code, system, looked, reason = _condition_codes(c, concepts, snomed)
    rows = c["source_row"]
    bad = rejects.take("condition_occurrence", np.zeros(len(c), bool), date.isna(), rows, "date unreadable",
                       client_id=cid, detail=c["condition_start_date"])
    bad = rejects.take("condition_occurrence", bad, reason.notna(), rows, reason, client_id=cid, code=looked,
                       detail=_lookup(c["condition_concept_id"], concepts, "concept_name"))
    keep = ~bad
    return contract_frame("diagnoses", {"client_id": cid[keep], "date": date[keep], "code": code[keep],
                                        "system": system[keep], "source_row": rows[keep]})


def _measurements(src: Path, key: str, maps: dict, concepts: pd.DataFrame, rejects: Rejects, rows_in: dict
                  ) -> pd.DataFrame:
    m = read_source(src, "measurement", ("person_id", "measurement_concept_id", "measurement_date"),
                    ("value_as_number", "unit_concept_id", "measurement_source_value", "unit_source_value"))
    rows_in["measurement"] = len(m)
    cid = pseudonyms(m["person_id"].str.strip(), key, "omop:person")
    vocab = _lookup(m["measurement_concept_id"], concepts, "vocabulary_id")
    loinc = _lookup(m["measurement_concept_id"], concepts, "concept_code").where(vocab.eq("LOINC"))
    source = m["measurement_source_value"].str.strip()
    loinc = loinc.fillna(source.where(source.str.fullmatch(_LOINC).fillna(False)))
    unit = _lookup(m["unit_concept_id"].fillna(""), concepts, "concept_code").fillna(m["unit_source_value"])
    names = _lookup(m["measurement_concept_id"], concepts, "concept_name")
    conv = convert_measurements(loinc, unit, m["value_as_number"], maps["measurements"], names)
    date = parse_day(m["measurement_date"])
    rows = m["source_row"]
    bad = rejects.take("measurement", np.zeros(len(m), bool), conv["reason"].notna(), rows, conv["reason"],
                       client_id=cid, code=loinc.fillna(m["measurement_concept_id"]), detail=conv["detail"])
    bad = rejects.take("measurement", bad, date.isna(), rows, "date unreadable", client_id=cid,
                       detail=m["measurement_date"])
    keep = ~bad
    return contract_frame("measurements", {"client_id": cid[keep], "date": date[keep], "name": conv["name"][keep],
                                           "value": conv["value"][keep], "source_row": rows[keep]})


def ingest_omop(
    src: str | Path,
    *,
    key: str | None = None,
    language: str = "other",
    default_unit: str = "unassigned",
    eur_per_usd: float | None = None,
    maps: str | Path | None = None,
    snomed_map: str | Path | None = None,
) -> IngestResult:
    """Convert an OMOP CDM 5.4 data set into the canonical tables.

    Parameters
    ----------
    src
        Folder of OMOP tables as CSV or Parquet, named in lower or upper case
        (``person.csv``, ``PERSON.csv``, ``person.parquet``, ``person/``). PERSON,
        VISIT_OCCURRENCE, CONDITION_OCCURRENCE and MEASUREMENT are required;
        DEATH, CONCEPT, COST, LOCATION and CARE_SITE are used when present.
    key
        Key of the pseudonymous client ids (HMAC-SHA256 of person_id); None uses
        the public default key and says so in the report.
    language
        ``language`` of every client: the CDM does not record one.
    default_unit
        ``unit`` of clients without a care site.
    eur_per_usd
        Rate for COST rows in US dollars; None uses the maps file's rate.
    maps, snomed_map
        YAML files merged over the packaged adapter maps and SNOMED CT -> ICD-10 table.

    Returns
    -------
    IngestResult
        Tables that pass ``features.contract.load.load_tables`` strictly, rejected rows
        with reasons, and the mapping report. Visits without a Visit-domain COST
        row keep a missing cost, which the loader fills from the unit-cost table.

    Raises
    ------
    AdapterError
        If the folder, a required table or column is missing, or an option is invalid.
    """
    src = Path(src)
    if not src.is_dir():
        raise AdapterError(f"OMOP folder not found: {src}")
    if language not in LANGUAGES:
        raise AdapterError(f"language must be one of {LANGUAGES}, got {language!r}")
    if not default_unit.strip():
        raise AdapterError("default_unit must not be empty")
    the_maps = load_maps(maps)
    rate = float(the_maps["currency"]["eur_per_usd"] if eur_per_usd is None else eur_per_usd)
    if rate <= 0:
        raise AdapterError(f"eur_per_usd must be positive, got {rate}")
    k, rejects, rows_in, counts = key or DEFAULT_KEY, Rejects(), {}, {}
    concepts = _concepts(src)
    tables = {
        "clients": _clients(src, k, language, default_unit, rejects, rows_in, counts),
        "events": _events(src, k, the_maps, concepts, rate, rejects, rows_in),
        "diagnoses": _diagnoses(src, k, concepts, load_snomed_map(snomed_map), rejects, rows_in),
        "measurements": _measurements(src, k, the_maps, concepts, rejects, rows_in),
        "assessments": empty_assessments(),
    }
    tables = enforce_contract(tables, SOURCES, rejects)
    rejected = rejects.frame()
    used = {t: rows_in[t] - int((rejected["source_table"] == t).sum()) for t in ("death", "cost") if t in rows_in}
    params = {"key": "default (public, not secret)" if key is None else "given", "language": language,
              "default_unit": default_unit, "eur_per_usd": rate, "maps": str(maps) if maps else "packaged",
              "snomed_map": str(snomed_map) if snomed_map else "packaged"}
    report = build_report("omop", src, params, tables, rejected, SOURCES, rows_in, used,
                          _notes(key, concepts, counts, tables))
    report["counts"] = counts
    return IngestResult(tables, rejected, report)


def _notes(key: str | None, concepts: pd.DataFrame, counts: dict, tables: dict) -> list[str]:
    notes = []
    if key is None:
        notes.append("client ids were made with the public default key: anyone holding the person_ids can "
                     "recompute them; pass --key (or SOTE_PSEUDONYM_KEY) for real pseudonyms")
    if concepts.empty:
        notes.append("no CONCEPT table: codes were taken from source values only")
    missing = int(tables["events"]["cost_eur"].isna().sum())
    if missing:
        notes.append(f"{missing} of {len(tables['events'])} visits have no Visit-domain COST row; "
                     "the loader fills their cost from the unit-cost table (cost_imputed)")
    for name, text in (("municipality_unknown", "clients without a LOCATION city (municipality 'unknown')"),
                       ("unit_default", "clients without a care site (the default unit)"),
                       ("sex_x", "clients whose gender concept is neither 8507 nor 8532 (sex X)"),
                       ("birth_dates_imputed", "birth dates completed from year_of_birth (1 July / 15th)")):
        if counts.get(name):
            notes.append(f"{counts[name]} {text}")
    return notes
