"""The Synthea adapter on the public fixture export (../shared/fixtures/synthea, 59 patients).

Expected figures are computed here from the CSV files with plain pandas, not
taken from the adapter, so a mapping bug cannot agree with itself.
"""
import hashlib
import hmac
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.adapters import AdapterError, ingest_synthea
from features.adapters.common import DEFAULT_KEY
from features.contract.codes import code_in_ranges
from features.contract.load import load_tables
from sote.cli import app

SRC = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "synthea"
CONFIG = Path(__file__).resolve().parents[3] / "features" / "config"
TZ = "America/Los_Angeles"
pytestmark = pytest.mark.skipif(not (SRC / "patients.csv").exists(),
                                reason=f"Synthea fixture not found at {SRC} (clone the repo next to shared/)")

# The documented choices, restated independently of features/config/adapter_maps.yaml.
CLASS_TO_SERVICE = {"ambulatory": "primary_care_visit", "wellness": "primary_care_visit",
                    "outpatient": "specialist_outpatient", "urgentcare": "emergency", "emergency": "emergency",
                    "inpatient": "inpatient", "home": "home_care", "hospice": "inpatient", "snf": "inpatient",
                    "virtual": "remote_contact"}
CODE_TO_SERVICE = {"56876005": "mental_health_substance", "33879002": "primary_care_visit", "308646001": None}
MEASURES = {"4548-4": "hba1c", "39156-5": "bmi", "8480-6": "sbp", "8462-4": "dbp", "18262-6": "ldl",
            "33914-3": "egfr"}


def said(res) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def csv(name: str) -> pd.DataFrame:
    return pd.read_csv(SRC / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthea") / "out"
    result = ingest_synthea(SRC, timezone=TZ)
    result.write(out)
    return result, out


def test_output_passes_the_contract_strictly_and_every_row_is_accounted_for(ingested):
    result, out = ingested
    loaded = load_tables(out)  # strict: raises on any problem
    assert loaded.report.ok
    report = json.loads((out / "ingest_report.json").read_text())
    for name, s in report["sources"].items():
        assert s["rows_in"] == s["rows_out"] + s["rejected"], name
        assert s["rejected"] == sum(s["rejected_by_reason"].values())
    for name in ("patients", "encounters", "conditions", "observations"):
        assert report["sources"][name]["rows_in"] == len(csv(name))
    rejected = pd.read_csv(out / "rejected.csv")
    assert len(rejected) == sum(s["rejected"] for s in report["sources"].values())
    assert report["tables"] == {t: len(f) for t, f in loaded.tables.items()}


def test_every_patient_is_a_client_with_birth_death_sex_and_place(ingested):
    result, _ = ingested
    patients, clients = csv("patients"), result.tables["clients"]
    assert len(clients) == len(patients) == 59
    src = patients.set_index(clients["source_row"].to_numpy() - 1)  # source_row is 1-based
    assert (clients["birth_date"].dt.strftime("%Y-%m-%d").to_numpy() == src["BIRTHDATE"].to_numpy()).all()
    deaths = clients["death_date"].dropna().dt.strftime("%Y-%m-%d").sort_values().tolist()
    assert deaths == sorted(patients["DEATHDATE"].dropna()) and len(deaths) == 9
    assert clients["sex"].value_counts().to_dict() == patients["GENDER"].value_counts().to_dict() == {"F": 30, "M": 29}
    assert (clients["municipality"].to_numpy() == src["CITY"].to_numpy()).all()
    assert (clients["unit"].to_numpy() == src["COUNTY"].to_numpy()).all()
    assert set(clients["language"]) == {"other"}


def test_client_ids_are_keyed_pseudonyms_not_source_ids(ingested):
    result, _ = ingested
    patients, ids = csv("patients"), result.tables["clients"]["client_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{16}").all() and ids.is_unique
    assert not set(ids) & set(patients["Id"])
    first = patients["Id"].iloc[0]
    expected = hmac.new(DEFAULT_KEY.encode(), f"synthea:patient:{first}".encode(), hashlib.sha256).hexdigest()[:16]
    assert ids.iloc[0] == expected
    other = ingest_synthea(SRC, timezone=TZ, key="county-secret").tables["clients"]["client_id"]
    assert not set(other) & set(ids)  # another key, other pseudonyms
    assert ingest_synthea(SRC, timezone=TZ, key="county-secret").tables["clients"]["client_id"].equals(other)
    assert result.report["parameters"]["key"].startswith("default")
    assert any("public default key" in n for n in result.report["notes"])


def test_encounter_classes_map_to_the_documented_service_lines(ingested):
    result, _ = ingested
    enc = csv("encounters")
    service = enc["ENCOUNTERCLASS"].map(CLASS_TO_SERVICE)
    override = enc["CODE"].isin(list(CODE_TO_SERVICE))
    service[override] = enc.loc[override, "CODE"].map(CODE_TO_SERVICE)
    expected = service.dropna().value_counts().to_dict()
    assert result.tables["events"]["service"].value_counts().to_dict() == expected
    assert expected == {"primary_care_visit": 1896, "specialist_outpatient": 395, "emergency": 135,
                        "inpatient": 93, "home_care": 47, "mental_health_substance": 15}
    death_cert = result.report["sources"]["encounters"]["rejected_by_reason"]
    assert death_cert == {"administrative record (death certification), not a service contact": 9}


def test_episodes_keep_their_local_end_day_and_visits_have_none(ingested):
    result, _ = ingested
    ev, enc = result.tables["events"], csv("encounters")
    inpatient = ev[ev["service"] == "inpatient"]
    assert inpatient["end"].notna().all() and (inpatient["end"] >= inpatient["start"]).all()
    assert ev.loc[ev["service"] != "inpatient", "end"].isna().all()
    # 2021-04-27T04:06Z .. 2021-05-07T04:31Z is 26 April .. 6 May in California.
    row = int(np.flatnonzero(enc["START"] == "2021-04-27T04:06:00Z")[0]) + 1
    stay = ev[ev["source_row"] == row].iloc[0]
    assert (stay["start"], stay["end"]) == (pd.Timestamp("2021-04-26"), pd.Timestamp("2021-05-06"))
    # Hospice (39.6 days on average in the fixture) is a ward stay priced by the ward role.
    hospice = ev[ev["source_row"].isin(np.flatnonzero(enc["ENCOUNTERCLASS"] == "hospice") + 1)]
    assert len(hospice) == 5 and hospice["professional"].str.startswith("ward.").all()


def test_costs_come_from_the_claim_in_euros_or_from_unit_costs(ingested, tmp_path):
    result, _ = ingested
    ev, enc = result.tables["events"], csv("encounters")
    kept = enc.iloc[ev["source_row"].to_numpy() - 1]
    assert ev["cost_eur"].sum() == pytest.approx(0.92 * kept["TOTAL_CLAIM_COST"].astype(float).sum())
    base = ingest_synthea(SRC, timezone=TZ, cost="base", eur_per_usd=1.0).tables["events"]
    assert base["cost_eur"].sum() == pytest.approx(kept["BASE_ENCOUNTER_COST"].astype(float).sum())
    unit = ingest_synthea(SRC, timezone=TZ, cost="unit")
    assert unit.tables["events"]["cost_eur"].isna().all()
    unit.write(tmp_path / "unit")
    filled = load_tables(tmp_path / "unit").tables["events"]
    assert filled["cost_imputed"].all() and (filled["cost_eur"] > 0).all()


def test_measurements_are_converted_to_contract_units(ingested):
    result, _ = ingested
    ms, obs = result.tables["measurements"], csv("observations")
    src = obs.iloc[ms["source_row"].to_numpy() - 1]
    assert (src["CODE"].map(MEASURES).to_numpy() == ms["name"].to_numpy()).all()
    assert ms["name"].value_counts().to_dict() == obs["CODE"].map(MEASURES).value_counts().to_dict()
    raw = src["VALUE"].astype(float).to_numpy()
    hba1c = (ms["name"] == "hba1c").to_numpy()
    assert np.allclose(ms["value"].to_numpy()[hba1c], (raw[hba1c] - 2.15) * 10.929)
    # A known value: HbA1c 6.1 % is 43.2 mmol/mol.
    known = ms[hba1c & (raw == 6.1)]
    assert len(known) and known["value"].round(2).eq(43.17).all()
    ldl = (ms["name"] == "ldl").to_numpy()
    assert np.allclose(ms["value"].to_numpy()[ldl], raw[ldl] / 38.67, rtol=1e-3)
    assert ms.loc[ms["name"] == "egfr"].shape[0] == 100  # 10 in mL/min/{1.73_m2} + 90 in "mL/min"


def test_unmapped_codes_are_counted_exactly_and_kept_with_reasons(ingested):
    result, out = ingested
    table = yaml.safe_load((CONFIG / "snomed_icd10.yaml").read_text())["codes"]
    cond, obs = csv("conditions"), csv("observations")
    unmapped = ~cond["CODE"].isin([str(k) for k in table])
    not_measured = ~obs["CODE"].isin(list(MEASURES))
    by_reason = result.report["sources"]
    assert by_reason["conditions"]["rejected_by_reason"] == {
        "SNOMED code not in the mapping table": int(unmapped.sum())}
    assert by_reason["observations"]["rejected_by_reason"] == {
        "LOINC code not a contract measurement": int(not_measured.sum())}
    assert int(unmapped.sum()) == 1242 and int(not_measured.sum()) == 19546
    listed = result.report["unmapped"]["conditions"]["SNOMED code not in the mapping table"]
    assert {c["code"]: c["rows"] for c in listed} == cond.loc[unmapped, "CODE"].value_counts().to_dict()
    rejected = pd.read_csv(out / "rejected.csv", dtype={"code": str})
    rows = rejected.loc[rejected["source_table"] == "conditions", "source_row"]
    assert sorted(rows) == sorted(np.flatnonzero(unmapped) + 1)
    assert rejected["client_id"].isin(result.tables["clients"]["client_id"]).all()


def test_chronic_conditions_of_the_fixture_are_all_mapped(ingested):
    result, _ = ingested
    chronic = re.compile(r"diabet|hypertens|heart failure|coronary|myocardial|emphysema|obstructive|asthma|"
                         r"kidney disease|alzheimer|dementia|depress|anxiety|alcohol|drug|stroke|"
                         r"cerebrovascular|cancer|malignant|carcinoma", re.I)
    cond = csv("conditions")
    chronic_rows = cond["DESCRIPTION"].str.contains(chronic)
    mapped_rows = set(result.tables["diagnoses"]["source_row"])
    missed = cond[chronic_rows & ~(pd.Series(np.arange(1, len(cond) + 1)).isin(mapped_rows))]
    assert missed.empty, missed[["CODE", "DESCRIPTION"]].drop_duplicates().to_string()
    # Every DOMAIN.md group has at least one SNOMED code mapped into its ICD-10 range.
    table = yaml.safe_load((CONFIG / "snomed_icd10.yaml").read_text())["codes"]
    icd = pd.Series([v["icd10"] for v in table.values()])
    for lo, hi in [("E10", "E14"), ("I50", "I50"), ("I20", "I25"), ("J44", "J44"), ("J45", "J45"),
                   ("N18", "N18"), ("F00", "F03"), ("G30", "G30"), ("F32", "F33"), ("F40", "F41"),
                   ("F10", "F19"), ("I10", "I10"), ("I63", "I64"), ("C00", "C97")]:
        assert code_in_ranges(icd, [(lo, hi)]).any(), (lo, hi)


def test_utc_days_put_fatal_emergencies_after_death_and_the_report_says_why():
    result = ingest_synthea(SRC)  # timezone UTC
    reasons = result.report["sources"]["encounters"]["rejected_by_reason"]
    assert reasons["contract: start: dated after the client's death_date"] == 4
    assert any("--timezone" in n for n in result.report["notes"])


def test_ingest_is_deterministic(ingested):
    result, _ = ingested
    again = ingest_synthea(SRC, timezone=TZ)
    for t, frame in result.tables.items():
        pd.testing.assert_frame_equal(frame, again.tables[t])
    assert again.report == result.report


def test_cli_ingests_and_reports(tmp_path):
    runner = CliRunner()
    out = tmp_path / "syn"
    res = runner.invoke(app, ["ingest", "synthea", str(SRC), "--out", str(out), "--timezone", TZ])
    assert res.exit_code == 0, res.output
    assert "passes the data contract" in said(res)
    assert "SNOMED code not in the mapping table: 79 code(s)" in said(res)
    assert (out / "ingest_report.json").exists() and (out / "events.parquet").exists()
    again = runner.invoke(app, ["ingest", "synthea", str(SRC), "--out", str(out), "--timezone", TZ, "--no-check"])
    assert again.exit_code == 0, again.output  # an earlier ingest output is replaced


def test_cli_errors_are_clear_messages(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["ingest", "synthea", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "export folder not found" in said(missing)
    bad_cost = runner.invoke(app, ["ingest", "synthea", str(SRC), "--out", str(tmp_path / "o"), "--cost", "x"])
    assert bad_cost.exit_code == 2 and "cost must be one of" in said(bad_cost)
    bad_tz = runner.invoke(app, ["ingest", "synthea", str(SRC), "--out", str(tmp_path / "o"), "--timezone", "Mars"])
    assert bad_tz.exit_code == 2 and "unknown time zone" in said(bad_tz)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("precious")
    refused = runner.invoke(app, ["ingest", "synthea", str(SRC), "--out", str(busy)])
    assert refused.exit_code == 2 and "holds files sote did not write" in said(refused)
    assert (busy / "thesis.docx").read_text() == "precious"
    for res in (missing, bad_cost, bad_tz, refused):
        assert "Traceback" not in res.output


def test_a_missing_column_names_the_table_and_column(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("patients", "encounters", "conditions", "observations"):
        frame = csv(name)
        if name == "encounters":
            frame = frame.drop(columns=["ENCOUNTERCLASS"])
        frame.to_csv(src / f"{name}.csv", index=False)
    with pytest.raises(AdapterError, match=r"table 'encounters'.*\['encounterclass'\]"):
        ingest_synthea(src)


def test_an_export_without_the_cost_column_leaves_costs_to_unit_costs(tmp_path):
    src = tmp_path / "old"
    src.mkdir()
    for name in ("patients", "encounters", "conditions", "observations"):
        frame = csv(name).head(300)
        if name == "encounters":  # Synthea 2.x wrote one COST column
            frame = frame.drop(columns=["BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST"]).assign(COST="1.0")
        frame.to_csv(src / f"{name}.csv", index=False)
    result = ingest_synthea(src, timezone=TZ)
    assert result.tables["events"]["cost_eur"].isna().all()
    assert result.report["counts"]["cost_missing"] == 300
    assert any("without TOTAL_CLAIM_COST" in n for n in result.report["notes"])
