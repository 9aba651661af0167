"""The OMOP CDM 5.4 adapter: on the public fixture (../shared/fixtures/omop, Eunomia Synthea27Nj,
28 persons) and on a small hand-made data set for what the fixture lacks (ICD-10 and ICPC-2
source values, costs in two currencies, care-site refinement, bad units, Parquet, lower case).
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.adapters import AdapterError, ingest_omop
from features.contract.load import load_tables
from sote.cli import app

SRC = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "omop"
CONFIG = Path(__file__).resolve().parents[3] / "features" / "config"
HAS_FIXTURE = (SRC / "PERSON.csv").exists()
needs_fixture = pytest.mark.skipif(not HAS_FIXTURE, reason=f"OMOP fixture not found at {SRC} "
                                                           "(clone the repo next to shared/)")
LOINC = {"4548-4": "hba1c", "39156-5": "bmi", "8480-6": "sbp", "8462-4": "dbp", "18262-6": "ldl",
         "33914-3": "egfr"}


def said(res) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def omop(name: str) -> pd.DataFrame:
    return pd.read_csv(SRC / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    if not HAS_FIXTURE:
        pytest.skip(f"OMOP fixture not found at {SRC}")
    out = tmp_path_factory.mktemp("omop") / "out"
    result = ingest_omop(SRC)
    result.write(out)
    return result, out


@needs_fixture
def test_fixture_passes_the_contract_and_every_row_is_accounted_for(ingested):
    result, out = ingested
    assert load_tables(out).report.ok  # strict
    report = json.loads((out / "ingest_report.json").read_text())
    for name, s in report["sources"].items():
        assert s["rows_in"] == s["rows_out"] + s["rejected"], name
    for name in ("person", "death", "visit_occurrence", "condition_occurrence", "measurement", "cost"):
        assert report["sources"][name]["rows_in"] == len(omop(name.upper()))


@needs_fixture
def test_persons_become_clients_with_their_deaths(ingested):
    result, _ = ingested
    clients, person, death = result.tables["clients"], omop("PERSON"), omop("DEATH")
    assert len(clients) == len(person) == 28
    assert sorted(clients["death_date"].dropna().dt.strftime("%Y-%m-%d")) == sorted(death["death_date"])
    assert len(death) == 3
    expected_sex = person["gender_concept_id"].map({"8507": "M", "8532": "F"}).value_counts().to_dict()
    assert clients["sex"].value_counts().to_dict() == expected_sex == {"M": 15, "F": 13}
    births = person["birth_datetime"].str.slice(0, 10).tolist()
    assert clients["birth_date"].dt.strftime("%Y-%m-%d").tolist() == births
    # The fixture has no LOCATION or CARE_SITE rows: documented defaults, and reported.
    assert set(clients["municipality"]) == {"unknown"} and set(clients["unit"]) == {"unassigned"}
    assert result.report["counts"]["municipality_unknown"] == 28


@needs_fixture
def test_visit_concepts_map_to_service_lines_and_costs_come_from_unit_costs(ingested):
    result, out = ingested
    visits, ev = omop("VISIT_OCCURRENCE"), result.tables["events"]
    expected = visits["visit_concept_id"].map({"9202": "primary_care_visit", "9203": "emergency",
                                               "9201": "inpatient"}).value_counts().to_dict()
    assert ev["service"].value_counts().to_dict() == expected == {"primary_care_visit": 1722, "emergency": 56,
                                                                   "inpatient": 13}
    stays = visits[visits["visit_concept_id"] == "9201"]
    days = (pd.to_datetime(stays["visit_end_date"]) - pd.to_datetime(stays["visit_start_date"])).dt.days + 1
    inpatient = ev[ev["service"] == "inpatient"].sort_values("source_row")
    assert (inpatient["end"].dt.strftime("%Y-%m-%d").to_numpy() == stays["visit_end_date"].to_numpy()).all()
    # COST is empty: no cost in the output, the loader fills DOMAIN.md unit costs.
    assert ev["cost_eur"].isna().all() and result.report["events_without_cost"] == 1791
    filled = load_tables(out).tables["events"]
    assert filled["cost_imputed"].all()
    assert filled["cost_eur"].sum() == pytest.approx(1722 * 100 + 56 * 300 + 900 * days.sum())


@needs_fixture
def test_conditions_go_through_concept_and_the_snomed_table(ingested):
    result, _ = ingested
    cond, concept = omop("CONDITION_OCCURRENCE"), omop("CONCEPT").set_index("concept_id")
    snomed = cond["condition_concept_id"].map(concept["concept_code"])
    table = yaml.safe_load((CONFIG / "snomed_icd10.yaml").read_text())["codes"]
    mapped = snomed.isin([str(k) for k in table])
    assert len(result.tables["diagnoses"]) == int(mapped.sum()) == 186
    reasons = result.report["sources"]["condition_occurrence"]["rejected_by_reason"]
    assert reasons == {"SNOMED code not in the mapping table": int((~mapped).sum())} == {
        "SNOMED code not in the mapping table": 284}
    expected = snomed[mapped].map({str(k): v["icd10"] for k, v in table.items()})
    dx = result.tables["diagnoses"].sort_values("source_row")
    assert dx["code"].tolist() == expected.tolist() and set(dx["system"]) == {"ICD-10"}
    assert {"E11.9", "E14.2", "N18.1", "G30.9", "I50.0", "I64"} <= set(dx["code"])


@needs_fixture
def test_measurements_are_found_by_loinc_through_concept(ingested):
    result, _ = ingested
    meas, concept = omop("MEASUREMENT"), omop("CONCEPT").set_index("concept_id")
    loinc = meas["measurement_concept_id"].map(concept["concept_code"])
    ms = result.tables["measurements"]
    assert ms["name"].value_counts().to_dict() == loinc.map(LOINC).value_counts().to_dict()
    src = meas.iloc[ms["source_row"].to_numpy() - 1]
    hba1c = (ms["name"] == "hba1c").to_numpy()
    assert hba1c.sum() == 195
    raw = src["value_as_number"].astype(float).to_numpy()
    assert np.allclose(ms["value"].to_numpy()[hba1c], (raw[hba1c] - 2.15) * 10.929)
    assert np.allclose(ms["value"].to_numpy()[~hba1c & (ms["name"] == "ldl").to_numpy()],
                       raw[~hba1c & (ms["name"] == "ldl").to_numpy()] * 0.02586)


@needs_fixture
def test_cli_reads_the_key_from_the_environment(tmp_path, ingested):
    result, _ = ingested
    res = CliRunner().invoke(app, ["ingest", "omop", str(SRC), "--out", str(tmp_path / "o")],
                             env={"SOTE_PSEUDONYM_KEY": "county-secret"})
    assert res.exit_code == 0, res.output
    assert "passes the data contract" in said(res) and "visit_occurrence" in said(res)
    report = json.loads((tmp_path / "o" / "ingest_report.json").read_text())
    assert report["parameters"]["key"] == "given"
    ids = pd.read_parquet(tmp_path / "o" / "clients.parquet")["client_id"]
    assert not set(ids) & set(result.tables["clients"]["client_id"])
    assert "county-secret" not in (tmp_path / "o" / "ingest_report.json").read_text()


# ------------------------------------------------------------- a hand-made OMOP set

def _write_small_omop(root: Path) -> Path:
    src = root / "omop"
    (src / "measurement").mkdir(parents=True)
    na = None
    tables = {
        "person": pd.DataFrame({
            "person_id": [1, 2, 3], "gender_concept_id": [8507, 8532, 8551], "year_of_birth": [1950, 1980, 1990],
            "month_of_birth": [3, na, 5], "day_of_birth": [4, na, 5],
            "birth_datetime": [na, na, "1990-05-05 00:00:00"], "location_id": [10, na, na],
            "care_site_id": [100, na, na]}),
        "location": pd.DataFrame({"location_id": [10], "city": ["Hyvinkää"], "county": ["Uusimaa"]}),
        "care_site": pd.DataFrame({"care_site_id": [100, 200], "care_site_name": ["Hyvinkää health centre",
                                                                                   "Hyvinkää hospital"],
                                   "place_of_service_concept_id": [8940, 8756]}),
        "death": pd.DataFrame({"person_id": [1, 9], "death_date": ["2023-06-01", "2023-01-01"]}),
        "visit_occurrence": pd.DataFrame({
            "visit_occurrence_id": [1, 2, 3, 4, 5, 6, 7], "person_id": [1, 1, 2, 2, 3, 1, 1],
            "visit_concept_id": [9202, 9202, 9201, 32036, 99999, 5083, 9203],
            "visit_start_date": ["2022-02-01", "2022-03-01", "2022-01-01", "2022-04-01", "2022-05-01",
                                 "2022-06-01", "2023-07-01"],
            "visit_end_date": ["2022-02-01", "2022-03-01", "2022-01-05", "2022-04-01", "2022-05-01",
                               "2022-06-01", "2023-07-01"],
            "provider_id": [5, 5, 6, na, na, 5, na], "care_site_id": [100, 200, na, na, na, na, na]}),
        "cost": pd.DataFrame({"cost_id": [1, 2, 3, 4], "cost_event_id": [1, 1, 99, 2],
                              "cost_domain_id": ["Visit", "Drug", "Visit", "Visit"],
                              "total_cost": [100.0, 50.0, 10.0, 70.0], "currency_concept_id": [44818668] * 3 + [7]}),
        "condition_occurrence": pd.DataFrame({
            "person_id": [1, 1, 2, 2, 3], "condition_concept_id": [201826, 201826, 0, 0, 4000],
            "condition_start_date": ["2022-02-01"] * 5,
            "condition_source_value": ["E11.9", "44054006", "T90", "i10", "xyz"],
            "condition_source_concept_id": [45576876, 201826, 1234, 0, 0]}),
    }
    for name, frame in tables.items():
        frame.to_parquet(src / f"{name}.parquet", index=False)
    pd.DataFrame({
        "person_id": [1, 1, 1, 1, 2, 2, 2], "measurement_date": ["2022-02-01"] * 7,
        "measurement_concept_id": [3004410, 3028437, 3004410, 3004410, 3025315, 0, 3004410],
        "value_as_number": [7.0, 3.1, 7.0, 7.0, 80.0, 6.5, na],
        "unit_concept_id": [8554, 8753, 0, 8840, 9529, 0, 8554],
        "measurement_source_value": ["4548-4", "18262-6", "4548-4", "4548-4", "29463-7", "4548-4", "4548-4"],
        "unit_source_value": [na, na, na, na, "kg", "%", na],
    }).to_parquet(src / "measurement" / "part-0.parquet", index=False)
    pd.DataFrame({  # upper-case CSV beside lower-case Parquet, as mixed extracts come
        "concept_id": [44818668, 201826, 45576876, 1234, 3004410, 8554, 8840, 3028437, 3025315, 8753, 9529],
        "concept_name": ["United States dollar", "Type 2 diabetes mellitus", "Type 2 diabetes", "Diabetes NIDDM",
                         "Hemoglobin A1c", "percent", "milligram per deciliter", "LDL cholesterol", "Body weight",
                         "millimole per liter", "kilogram"],
        "vocabulary_id": ["Currency", "SNOMED", "ICD10CM", "ICPC2", "LOINC", "UCUM", "UCUM", "LOINC", "LOINC",
                          "UCUM", "UCUM"],
        "concept_code": ["USD", "44054006", "E11.9", "T90", "4548-4", "%", "mg/dL", "18262-6", "29463-7",
                         "mmol/L", "kg"],
    }).to_csv(src / "CONCEPT.csv", index=False)
    return src


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    result = ingest_omop(_write_small_omop(root))
    result.write(root / "out")
    return result, root / "out"


def test_small_set_passes_the_contract(small):
    result, out = small
    assert load_tables(out).report.ok
    for name, s in result.report["sources"].items():
        assert s["rows_in"] == s["rows_out"] + s["rejected"], name


def test_small_set_clients_places_and_imputed_birth(small):
    result, _ = small
    c = result.tables["clients"].sort_values("source_row")
    assert c["birth_date"].dt.strftime("%Y-%m-%d").tolist() == ["1950-03-04", "1980-07-01", "1990-05-05"]
    assert c["sex"].tolist() == ["M", "F", "X"]
    assert c["municipality"].tolist() == ["Hyvinkää", "unknown", "unknown"]
    assert c["unit"].tolist() == ["Hyvinkää health centre", "unassigned", "unassigned"]
    assert c["death_date"].iloc[0] == pd.Timestamp("2023-06-01")
    assert result.report["counts"] == {"birth_dates_imputed": 1, "municipality_unknown": 2, "unit_default": 2,
                                       "sex_x": 1}
    assert result.report["sources"]["death"]["rejected_by_reason"] == {"person_id not in PERSON": 1}


def test_small_set_visits_care_sites_and_costs(small):
    result, _ = small
    ev = result.tables["events"].sort_values("source_row").set_index("source_row")
    assert ev["service"].to_dict() == {1: "primary_care_visit", 2: "specialist_outpatient", 3: "inpatient",
                                       6: "remote_contact"}
    assert ev.loc[3, "end"] == pd.Timestamp("2022-01-05") and ev.drop(index=3)["end"].isna().all()
    assert ev.loc[1, "cost_eur"] == pytest.approx(92.0)  # USD 100 at 0.92; the Drug-domain row is not a visit's
    assert np.isnan(ev.loc[2, "cost_eur"])  # its only COST row has an unknown currency
    assert ev.loc[1, "unit"] == "Hyvinkää health centre" and ev.loc[1, "professional"].startswith("provider.")
    reasons = result.report["sources"]["visit_occurrence"]["rejected_by_reason"]
    assert reasons == {"laboratory visit: a measurement, not a service contact of the contract": 1,
                       "unmapped visit concept": 1, "contract: start: dated after the client's death_date": 1}
    assert result.report["unmapped"]["visit_occurrence"]["unmapped visit concept"] == [{"code": "99999", "rows": 1}]
    assert result.report["sources"]["cost"]["rejected_by_reason"] == {
        "cost of another domain (only Visit costs are attributed)": 1, "cost_event_id not in VISIT_OCCURRENCE": 1,
        "currency unknown (not EUR or USD in CONCEPT)": 1}


def test_small_set_source_values_icd10_icpc2_and_snomed(small):
    result, _ = small
    dx = result.tables["diagnoses"].sort_values("source_row")
    assert list(zip(dx["code"], dx["system"])) == [("E11.9", "ICD-10"), ("E11.9", "ICD-10"), ("T90", "ICPC-2"),
                                                   ("I10", "ICD-10")]
    assert result.report["sources"]["condition_occurrence"]["rejected_by_reason"] == {
        "no ICD-10 source value and no SNOMED concept": 1}


def test_small_set_measurement_units(small):
    result, _ = small
    ms = result.tables["measurements"].sort_values("source_row")
    assert ms["name"].tolist() == ["hba1c", "ldl", "hba1c"]
    assert ms["value"].round(2).tolist() == [53.01, 3.1, 47.54]  # 7.0 % and 6.5 % (unit from the source value)
    assert result.report["sources"]["measurement"]["rejected_by_reason"] == {
        "unit missing": 1, "unit not accepted for this LOINC code": 1, "LOINC code not a contract measurement": 1,
        "value not numeric": 1}


def test_a_county_map_file_overrides_the_packaged_maps(tmp_path):
    maps = tmp_path / "maps.yaml"
    maps.write_text('omop:\n  visit_concept:\n    "32036": {service: primary_care_visit}\n')
    root = tmp_path / "again"
    result = ingest_omop(_write_small_omop(root), maps=maps)
    assert (result.tables["events"]["service"] == "primary_care_visit").sum() == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text('omop:\n  visit_concept:\n    "9202": {service: sauna}\n')
    with pytest.raises(AdapterError, match="unknown service line 'sauna'"):
        ingest_omop(root / "omop", maps=bad)


def test_a_missing_table_is_named(tmp_path):
    (tmp_path / "PERSON.csv").write_text("person_id,gender_concept_id,year_of_birth\n1,8507,1950\n")
    with pytest.raises(AdapterError, match="table 'visit_occurrence' not found"):
        ingest_omop(tmp_path)


def test_tab_separated_tables_are_read(tmp_path):
    src = _write_small_omop(tmp_path)
    person = pd.read_parquet(src / "person.parquet")
    (src / "person.parquet").unlink()
    person.to_csv(src / "PERSON.csv", sep="\t", index=False)
    result = ingest_omop(src)
    assert len(result.tables["clients"]) == 3 and result.report["counts"]["birth_dates_imputed"] == 1
