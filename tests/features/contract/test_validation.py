import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contract.io import read_tables
from features.contract.load import load_tables, write_quarantine
from features.contract.validation import ContractError, validate_tables


def _write(tmp_path, **tables):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(data / f"{name}.csv", index=False)
    return data


@pytest.fixture
def tables():
    clients = pd.DataFrame({
        "client_id": ["a", "b", "c", "c"], "birth_date": ["1950-01-01", "1990-05-05", "2001-02-03", "2001-02-03"],
        "sex": ["F", "M", "Q", "F"], "municipality": ["Hyvinkää"] * 4, "language": ["fi", "sv", "fi", "fi"],
        "death_date": ["2022-01-01", "", "", ""], "unit": ["u1", "u1", "u2", "u2"],
    })
    events = pd.DataFrame({
        "client_id": ["a", "a", "b", "zz", "a", "b"],
        "start": ["2021-01-01", "2023-01-01", "2021-01-01", "2021-01-01", "2021-01-01", "2021-13-45"],
        "end": ["", "", "2020-01-01", "", "", ""],
        "service": ["emergency", "emergency", "inpatient", "emergency", "emergency", "remote_contact"],
        "professional": [""] * 6, "cost_eur": ["100", "-5", "", "50", "100", "30"], "unit": [""] * 6,
    })
    diagnoses = pd.DataFrame({"client_id": ["a", "a", "b", "b"], "date": ["2021-01-01"] * 4,
                              "code": ["e11.9", "E119", "T90", "E1X"], "system": ["icd10", "ICD-10", "ICPC-2", "ICD-10"]})
    measurements = pd.DataFrame({"client_id": ["a", "b"], "date": ["2021-01-01"] * 2, "name": ["hba1c", "hba1c"],
                                 "value": ["500", "48"]})
    assessments = pd.DataFrame({"client_id": ["a", "a"], "date": ["2021-01-01"] * 2, "instrument": ["rai_hc"] * 2,
                                "scale": ["adl_h", "maple"], "value": ["7", "3"]})
    return dict(clients=clients, events=events, diagnoses=diagnoses, measurements=measurements, assessments=assessments)


def test_strict_reports_every_problem_with_table_column_rule_and_examples(tmp_path, tables):
    data = _write(tmp_path, **tables)
    with pytest.raises(ContractError) as err:
        load_tables(data)
    summary = err.value.report.summary()
    found = set(zip(summary["table"], summary["column"]))
    expected = {("clients", "client_id"), ("clients", "sex"), ("events", "cost_eur"), ("events", "end"),
                ("events", "start"), ("events", "client_id"), ("events", "(all)"), ("diagnoses", "code"),
                ("measurements", "value"), ("assessments", "value")}
    assert expected <= found
    text = str(err.value)
    assert "table 'events', column 'start': ISO 8601 date (YYYY-MM-DD)" in text and "2021-13-45" in text
    assert "dated after the client's death_date" in text
    assert "foreign key" in text and "zz" in text


def test_lenient_keeps_valid_rows_and_quarantines_the_rest_with_reasons(tmp_path, tables):
    data = _write(tmp_path, **tables)
    result = load_tables(data, lenient=True, quarantine_dir=tmp_path / "q")
    for name, frame in tables.items():
        assert len(result.tables[name]) + len(result.quarantine[name]) == len(frame)
    assert result.tables["clients"]["client_id"].tolist() == ["a", "b"]
    # kept events: a's first emergency and nothing else (b's inpatient ends before it starts)
    assert result.tables["events"]["start"].dt.strftime("%Y-%m-%d").tolist() == ["2021-01-01"]
    assert result.tables["diagnoses"]["code"].tolist() == ["E11.9", "E11.9", "T90"]
    q = pd.read_csv(tmp_path / "q" / "events.csv")
    assert len(q) == 5 and q["reason"].str.len().gt(0).all()
    assert (tmp_path / "q" / "summary.csv").exists()
    summary = pd.read_csv(tmp_path / "q" / "summary.csv").set_index("table")
    assert summary.loc["events", "rows_quarantined"] == 5


def test_missing_column_fails_even_in_lenient_mode(tmp_path, tables):
    tables["events"] = tables["events"].drop(columns=["service"])
    data = _write(tmp_path, **tables)
    with pytest.raises(ContractError) as err:
        load_tables(data, lenient=True)
    assert any(p.table == "events" and p.rows is None for p in err.value.report.problems)


def test_missing_table_is_named(tmp_path, tables):
    del tables["assessments"]
    data = _write(tmp_path, **tables)
    with pytest.raises(FileNotFoundError, match="assessments"):
        read_tables(data)


def test_clean_tables_pass_and_costs_are_filled(tmp_path, tables):
    tables["clients"] = tables["clients"].iloc[:2]
    tables["events"] = pd.DataFrame({
        "client_id": ["a", "b", "b"], "start": ["2021-01-01", "2021-02-01", "2021-03-01"],
        "end": ["", "2021-02-03", ""], "service": ["emergency", "inpatient", "primary_care_visit"],
        "professional": ["", "ward.u1.01", "doctor.u1.02"], "cost_eur": ["", "", ""], "unit": [""] * 3})
    tables["diagnoses"] = tables["diagnoses"].iloc[:3]
    tables["measurements"] = tables["measurements"].iloc[1:]
    tables["assessments"] = tables["assessments"].iloc[1:]
    data = _write(tmp_path, **tables)
    result = load_tables(data)
    assert result.report.ok
    ev = result.tables["events"]
    assert ev["cost_eur"].tolist() == [300.0, 3 * 350.0, 130.0]
    assert ev["cost_imputed"].all()


def test_quarantine_write_is_atomic(tmp_path, tables, monkeypatch):
    data = _write(tmp_path, **tables)
    raw, problems = read_tables(data)
    result = validate_tables(raw, lenient=True, parse_problems=problems)
    write_quarantine(result, tmp_path / "q")
    before = (tmp_path / "q" / "events.csv").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError):
        write_quarantine(result, tmp_path / "q")
    assert (tmp_path / "q" / "events.csv").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".q")]
    assert np.all([p.suffix == ".csv" for p in (tmp_path / "q").iterdir() if p.name != ".sote-manifest.json"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["x", "y", None]), st.sampled_from([1.0, 2.0, float("nan")]),
                          st.integers(0, 2)), max_size=40))
def test_duplicate_rows_found_by_hash_equal_pandas_duplicated(rows):
    from features.contract.validation import _duplicated_rows

    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    frame = frame.astype({"a": "string"}).assign(c=pd.to_datetime(frame["c"], unit="D"))
    assert (_duplicated_rows(frame) == frame.duplicated(keep="first").to_numpy()).all()
