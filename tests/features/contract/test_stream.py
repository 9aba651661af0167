"""Streaming validation (features.contract.stream) gives validate_tables' report, kept rows and quarantine."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from features.contract.costs import fill_missing_costs
from features.contract.dataset import read_declaration
from features.contract.io import read_tables
from features.contract.load import load_tables, write_quarantine
from features.contract.outputs import MANIFEST
from features.contract.stream import VALIDATED_KEY, open_dataset
from features.contract.tables import TABLES
from features.contract.validation import ContractError, validate_tables
from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()
QFILES = [*TABLES, "summary", "problems"]


def _messy() -> dict[str, pd.DataFrame]:
    """Every kind of problem, with exact duplicate events on both sides of batch boundaries."""
    clients = pd.DataFrame({
        "client_id": ["a", "b", "c", "c", "d"],
        "birth_date": ["1950-01-01", "1990-05-05", "2001-02-03", "2001-02-03", "13.12.1973"],
        "sex": ["F", "M", "Q", "F", "F"], "municipality": ["Hyvinkää"] * 5, "language": ["fi", "sv", "fi", "fi", "fi"],
        "death_date": ["2022-01-01", "", "", "", ""], "unit": ["u1", "u1", "u2", "u2", "u1"],
    })
    events = pd.DataFrame({
        "client_id": ["a", "a", "b", "zz", "a", "b", "a", "a", "d", "b", "a", "b"],
        "start": ["2021-01-01", "2023-01-01", "2021-01-01", "2021-01-01", "2021-01-01", "2021-13-45", "2021-01-01",
                  "2099-01-01", "2021-05-05", "2021-01-01", "1940-01-01", "2021-01-01"],
        "end": ["", "", "2020-01-01", "", "", "", "", "", "", "2020-01-01", "", ""],
        "service": ["emergency", "emergency", "inpatient", "emergency", "emergency", "remote_contact", "emergency", "xx",
                    "emergency", "inpatient", "home_care", "home_care"],
        "professional": [""] * 12,
        "cost_eur": ["100", "-5", "", "50", "100", "30", "100", "abc", "7", "", "inf", ""],
        "unit": [""] * 12,
    })
    diagnoses = pd.DataFrame({"client_id": ["a", "a", "b", "b", "zz"], "date": ["2021-01-01"] * 4 + ["2021-02-02"],
                              "code": ["e11.9", "E119", "T90", "E1X", "T90"],
                              "system": ["icd10", "ICD-10", "ICPC-2", "ICD-10", "klingon"]})
    measurements = pd.DataFrame({"client_id": ["a", "b", "b"], "date": ["2021-01-01", "2021-01-01", ""],
                                 "name": ["hba1c", "hba1c", "bmi"], "value": ["500", "48", "x"]})
    assessments = pd.DataFrame({"client_id": ["a", "a", "b"], "date": ["2021-01-01"] * 3,
                                "instrument": ["rai_hc"] * 3, "scale": ["adl_h", "maple", "cps"], "value": ["7", "3", "2.5"]})
    return dict(clients=clients, events=events, diagnoses=diagnoses, measurements=measurements,
                assessments=assessments)


def _write(folder, tables, parquet=()):
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name in parquet:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _in_memory(data, lenient):
    """Today's path: every table read whole, then validate_tables."""
    declaration = read_declaration(data)
    raw, parse = read_tables(data, declaration=declaration)
    try:
        return validate_tables(raw, lenient=lenient, parse_problems=parse, period=declaration.period), None
    except ContractError as err:
        return None, err.report


def assert_same_report(old, new):
    assert [(p.table, p.column, p.rule, p.count) for p in old.problems] == \
           [(p.table, p.column, p.rule, p.count) for p in new.problems]
    for a, b in zip(old.problems, new.problems):
        if a.rows is None:
            assert b.rows is None
            continue
        np.testing.assert_array_equal(a.rows, b.rows)
        pd.testing.assert_frame_equal(a.examples, b.examples)
    assert old.rows_in == new.rows_in and old.rows_kept == new.rows_kept
    assert old.to_text() == new.to_text()


def check_same_as_in_memory(data, tmp_path, batch_rows):
    """Strict and lenient: the same report, kept rows (costs filled) and quarantine files, byte for byte."""
    old, old_error = _in_memory(data, lenient=False)
    if old_error is None:
        with open_dataset(data, batch_rows=batch_rows, workdir=tmp_path) as ds:
            assert_same_report(old.report, ds.report)
    else:
        with pytest.raises(ContractError) as err:
            open_dataset(data, batch_rows=batch_rows, workdir=tmp_path)
        assert_same_report(old_error, err.value.report)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".validated")]  # nothing left behind

    old, old_error = _in_memory(data, lenient=True)
    if old_error is not None:
        with pytest.raises(ContractError) as err:
            open_dataset(data, lenient=True, quarantine_dir=tmp_path / "q", batch_rows=batch_rows, workdir=tmp_path)
        assert_same_report(old_error, err.value.report)
        assert not (tmp_path / "q").exists()
        return None
    with open_dataset(data, lenient=True, quarantine_dir=tmp_path / "q", batch_rows=batch_rows, overwrite=True,
                      workdir=tmp_path) as ds:
        assert_same_report(old.report, ds.report)
        new = ds.to_tables()
        for table in TABLES:
            kept = fill_missing_costs(old.tables[table]) if table == "events" else old.tables[table]
            pd.testing.assert_frame_equal(kept, new.tables[table])
            assert len(new.tables[table]) + len(new.quarantine[table]) == ds.report.rows_in[table]
    write_quarantine(old, tmp_path / "q_old", overwrite=True)
    for name in QFILES:
        assert (tmp_path / "q" / f"{name}.csv").read_text() == (tmp_path / "q_old" / f"{name}.csv").read_text(), name
    return old.report


@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_messy_csv_over_batches_gives_the_in_memory_report(tmp_path, batch_rows):
    data = _write(tmp_path / "d", _messy())
    report = check_same_as_in_memory(data, tmp_path, batch_rows)
    found = {(p.table, p.column) for p in report.problems}
    assert {("events", "(all)"), ("events", "client_id"), ("events", "start"), ("events", "cost_eur"),
            ("clients", "client_id"), ("clients", "birth_date"), ("diagnoses", "system")} <= found
    dup = next(p for p in report.problems if p.column == "(all)")
    assert dup.rows.tolist() == [4, 6, 9]  # copies of rows 0 and 2, across batch boundaries for small batches


def test_parquet_tables_and_a_declared_period(tmp_path):
    tables = _messy()
    events = tables["events"]
    events = events[~events["start"].isin(["2021-13-45", "2099-01-01"]) & (events["cost_eur"] != "inf")]
    events = events.assign(start=pd.to_datetime(events["start"]), end=pd.to_datetime(events["end"]),
                           cost_eur=pd.to_numeric(events["cost_eur"], errors="coerce"))
    tables["events"] = events
    data = _write(tmp_path / "d", tables, parquet=("events", "diagnoses"))
    (data / "dataset.yaml").write_text("period: {start: 2020-01-01, end: 2022-12-31}\n")
    report = check_same_as_in_memory(data, tmp_path, batch_rows=2)
    assert any("after the end of the data period" in p.rule for p in report.problems)


def test_a_dirty_synthetic_county_over_many_batches(tmp_path):
    from features.synth import SynthConfig, generate_county

    data = tmp_path / "d"
    generate_county(data, SynthConfig(clients=150, seed=5, truth_reps=1, workers=1, dirty=True))
    report = check_same_as_in_memory(data, tmp_path, batch_rows=997)
    assert any(p.column == "(all)" for p in report.problems)


@pytest.mark.parametrize("column", ["service", "end"])
def test_missing_column_fails_on_structure_even_lenient_and_leaves_nothing(tmp_path, column):
    tables = _messy()
    tables["events"] = tables["events"].drop(columns=[column])
    data = _write(tmp_path / "d", tables)
    with pytest.raises(ContractError) as err:
        open_dataset(data, lenient=True, quarantine_dir=tmp_path / "q", batch_rows=2, workdir=tmp_path)
    old = _in_memory(data, lenient=True)[1]
    assert_same_report(old, err.value.report)
    assert not (tmp_path / "q").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "zz", ""]),
                               st.sampled_from(["2021-01-01", "2021-02-30", "1940-01-01", "2021-03-03", ""]),
                               st.sampled_from(["emergency", "home_care", "xx"]),
                               st.sampled_from(["10", "", "-1", "abc", "10.0"])), min_size=1, max_size=25),
       batch_rows=st.integers(1, 7))
def test_property_streaming_equals_in_memory(tmp_path_factory, rows, batch_rows):
    tmp_path = tmp_path_factory.mktemp("p")
    tables = _messy()
    tables["events"] = pd.DataFrame(rows, columns=["client_id", "start", "service", "cost_eur"]).assign(
        end="", professional="", unit="")
    data = _write(tmp_path / "d", tables)
    check_same_as_in_memory(data, tmp_path, batch_rows)


def _clean(tmp_path):
    tables = _messy()
    tables["clients"] = tables["clients"].iloc[:2]
    tables["events"] = tables["events"].iloc[[0, 2]].assign(end="")
    tables["diagnoses"] = tables["diagnoses"].iloc[:3]
    tables["measurements"] = tables["measurements"].iloc[1:2]
    tables["assessments"] = tables["assessments"].iloc[1:2]
    return _write(tmp_path / "d", tables)


def test_read_gives_only_the_asked_columns_and_rows_with_load_tables_dtypes(tmp_path):
    data = _clean(tmp_path)
    whole = load_tables(data)
    with open_dataset(data, workdir=tmp_path, memory_limit="100MB") as ds:
        assert ds.report.ok and set(ds.paths()) == set(TABLES)
        part = ds.read("events", ["client_id", "start", "cost_eur"], "service = ?", ["inpatient"])
        expected = whole.tables["events"].loc[lambda f: f["service"] == "inpatient", ["client_id", "start", "cost_eur"]]
        pd.testing.assert_frame_equal(part, expected.reset_index(drop=True))
        for table in TABLES:
            pd.testing.assert_frame_equal(ds.read(table), whole.tables[table])
        with pytest.raises(ValueError, match="no column"):
            ds.read("events", ["nope"])
        folder = ds.folder
        assert folder.parent == tmp_path and folder.is_dir()
    assert not folder.exists()  # a temporary folder goes with the data set


def test_validate_out_writes_a_validated_copy_used_without_validating_again(tmp_path, monkeypatch):
    data = _clean(tmp_path)
    out = tmp_path / "clean"
    res = runner.invoke(app, ["validate", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, *(f"{t}.parquet" for t in TABLES)])
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest[VALIDATED_KEY]["files"]) == {f"{t}.parquet" for t in TABLES}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".validated")]  # moved into place, none left
    expected = load_tables(data)

    import features.contract.stream as stream

    def no_validation(*args, **kwargs):
        raise AssertionError("validated again")

    with monkeypatch.context() as m:
        m.setattr(stream, "_validate", no_validation)
        with open_dataset(out) as ds:
            assert ds.folder == out and ds.report.ok
            got = ds.to_tables()
        assert out.is_dir()  # a validated copy is not removed by close
        for table in TABLES:
            pd.testing.assert_frame_equal(got.tables[table], expected.tables[table])
        assert got.period == expected.period
        # a file changed since: validated again
        events = pd.read_parquet(out / "events.parquet")
        events.to_parquet(out / "events.parquet", index=False)
        os.utime(out / "events.parquet", ns=(1, 1))
        with pytest.raises(AssertionError, match="validated again"):
            open_dataset(out)
    with open_dataset(out) as ds:
        assert ds.folder != out and ds.report.ok
    again = runner.invoke(app, ["validate", str(data), "--out", str(out)])  # sote's own folder: replaced
    assert again.exit_code == 0, again.output


def test_validate_keeps_its_exit_codes_and_refusals(tmp_path):
    data = _write(tmp_path / "d", _messy())
    strict = runner.invoke(app, ["validate", str(data), "--out", str(tmp_path / "o")])
    assert strict.exit_code == ExitCode.DATA_INVALID and not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("x")
    refused = runner.invoke(app, ["validate", str(_clean(tmp_path / "c")), "--out", str(tmp_path / "o")])
    assert refused.exit_code == ExitCode.USER_ERROR and "mine.txt" in refused.output
    lenient = runner.invoke(app, ["validate", str(data), "--lenient", "--quarantine", str(tmp_path / "q"),
                                  "--out", str(tmp_path / "o2")])
    assert lenient.exit_code == 0, lenient.output
    summary = pd.read_csv(tmp_path / "q" / "summary.csv").set_index("table")
    assert (summary["rows_kept"] + summary["rows_quarantined"] == summary["rows_in"]).all()
    assert summary.loc["events", "rows_quarantined"] == 10
    assert len(pd.read_parquet(tmp_path / "o2" / "events.parquet")) == summary.loc["events", "rows_kept"]


def test_a_table_without_rows_is_an_empty_parquet_with_the_columns(tmp_path):
    tables = _messy()
    tables["assessments"] = tables["assessments"].iloc[:0]
    data = _clean(tmp_path)
    tables["assessments"].to_csv(data / "assessments.csv", index=False)
    with open_dataset(data, workdir=tmp_path) as ds:
        frame = ds.read("assessments")
        assert len(frame) == 0 and list(frame.columns) == list(tables["assessments"].columns)
        assert ds.report.rows_in["assessments"] == 0


def test_a_partitioned_parquet_folder_streams_like_it_reads_whole(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = _messy()
    events = tables.pop("events").assign(year=lambda f: f["start"].str[:4])
    data = _write(tmp_path / "d", tables)
    pq.write_to_dataset(pa.Table.from_pandas(events, preserve_index=False), data / "events", partition_cols=["year"])
    report = check_same_as_in_memory(data, tmp_path, batch_rows=2)
    assert any(p.column == "(all)" for p in report.problems)
