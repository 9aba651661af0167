"""Cases 2 and 3: one strict date parser, and the data period checked by every command that takes a date."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from reliability_data import csv_tables, write_csv
from features.contract.dataset import DataPeriod, DeclarationError, PeriodError, read_declaration
from features.contract.io import data_period
from features.contract.dates import DateError, parse_cli_date, parse_date_column
from features.contract.load import load_tables
from features.contract.validation import ContractError
from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()


def _clients(**birth):
    frame = csv_tables()["clients"]
    return frame.assign(**birth)


def test_day_first_dates_are_errors_naming_table_column_and_rows(tmp_path):
    data = write_csv(tmp_path / "d", csv_tables(clients=_clients(birth_date=["13.12.1973", "4.7.1976", "03/02/2021"])))
    with pytest.raises(ContractError) as err:
        load_tables(data)
    (problem,) = [p for p in err.value.report.problems if p.column == "birth_date"]
    assert problem.table == "clients" and problem.count == 3 and "ISO 8601" in problem.rule
    assert problem.examples["birth_date_raw"].tolist() == ["13.12.1973", "4.7.1976", "03/02/2021"]


def test_a_declared_date_format_is_used_and_only_it(tmp_path):
    clients = _clients(birth_date=["13.12.1973", "4.7.1976", "1.2.2001"], death_date=["", "", ""])
    data = write_csv(tmp_path / "d", csv_tables(clients=clients))
    (data / "dataset.yaml").write_text('tables:\n  clients: {date_format: "%d.%m.%Y"}\n')
    kept = load_tables(data).tables["clients"]
    assert kept["birth_date"].dt.strftime("%Y-%m-%d").tolist() == ["1973-12-13", "1976-07-04", "2001-02-01"]
    clients.loc[2, "birth_date"] = "2001-02-01"  # ISO in a table declared day-first: not guessed either
    write_csv(data, {"clients": clients})
    with pytest.raises(ContractError, match="declared format"):
        load_tables(data)


def test_numbers_in_a_date_column_are_errors_not_1970(tmp_path):
    data = tmp_path / "d"
    write_csv(data, csv_tables())
    clients = pd.read_csv(data / "clients.csv", dtype=str).assign(birth_date=[1973, 1990, 2001])
    clients["birth_date"] = clients["birth_date"].astype("int64")
    (data / "clients.csv").unlink()
    clients.to_parquet(data / "clients.parquet")
    with pytest.raises(ContractError) as err:
        load_tables(data)
    (problem,) = [p for p in err.value.report.problems if p.column == "birth_date"]
    assert problem.count == 3 and "not a number" in problem.rule
    days, bad = parse_date_column(pd.Series([1973, 1990]))
    assert bad.all() and days.isna().all()


def test_timezone_aware_timestamps_become_the_finnish_local_date(tmp_path):
    stamps = pd.Series(pd.to_datetime(["2021-03-04T23:30:00Z", "2021-07-01T20:59:00Z", "2021-07-01T21:00:00Z"]))
    days, bad = parse_date_column(stamps)  # Helsinki is UTC+2 in winter, UTC+3 in summer
    assert not bad.any()
    assert days.dt.strftime("%Y-%m-%d").tolist() == ["2021-03-05", "2021-07-01", "2021-07-02"]
    text, bad = parse_date_column(pd.Series(["2021-03-04T23:30:00+00:00", "2021-03-04 10:00", "2021-03-04"]))
    assert not bad.any() and text.dt.strftime("%Y-%m-%d").tolist() == ["2021-03-05", "2021-03-04", "2021-03-04"]
    data = write_csv(tmp_path / "d", csv_tables())
    events = pd.read_csv(data / "events.csv", dtype=str, keep_default_na=False)
    events["start"] = pd.to_datetime(events["start"]).dt.tz_localize("UTC") + pd.Timedelta(hours=23)
    events["cost_eur"] = pd.to_numeric(events["cost_eur"])
    events["end"] = pd.to_datetime(events["end"])
    (data / "events.csv").unlink()
    events.to_parquet(data / "events.parquet")  # timestamp[us, tz=UTC]: once a 110-line traceback
    kept = load_tables(data).tables["events"]
    assert kept["start"].dt.strftime("%Y-%m-%d").tolist() == ["2021-01-02", "2021-02-02", "2021-03-02", "2021-04-02"]


def test_unreadable_iso_values_stay_errors():
    days, bad = parse_date_column(pd.Series(["2021-13-45", "1973", "2021-02-30", "", None], dtype="string"))
    assert bad.tolist() == [True, True, True, True, False]


@pytest.mark.parametrize("value, hint", [("01.02.2024", "day first"), ("garbage", "ISO 8601"),
                                         ("2024-02-30", "calendar"), ("2024-1-5", "ISO 8601")])
def test_cli_dates_are_iso_only(value, hint):
    with pytest.raises(DateError, match=hint):
        parse_cli_date(value, "--as-of")
    assert parse_cli_date("2024-02-29", "--as-of") == pd.Timestamp("2024-02-29")


@pytest.mark.parametrize("argv, option", [
    (["features", "--as-of", "01.02.2024", "--out", "f.parquet"], "--as-of"),
    (["labels", "--as-of", "01.02.2024", "--target", "high_use", "--out", "l.parquet"], "--as-of"),
    (["segment", "--as-of", "01.02.2024", "--out", "s.parquet"], "--as-of"),
    (["segment-transitions", "--from", "2023-01-01", "--to", "1.1.2024", "--out", "t.html"], "--to"),
    (["score", "--as-of", "01.02.2024", "--out", "r.parquet"], "--as-of"),
    (["train", "--train-as-of", "garbage"], "--train-as-of"),
])
def test_every_date_option_names_itself(tiny_county, tmp_path, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [argv[0], "--data", str(tiny_county), *argv[1:]])
    assert res.exit_code == ExitCode.USER_ERROR, res.output
    assert f"error: {option} " in res.output and "YYYY-MM-DD" in res.output
    assert "Traceback" not in res.output and not list(tmp_path.iterdir())


def test_synth_start_must_be_iso(tmp_path):
    res = runner.invoke(app, ["synth", "--out", str(tmp_path / "c"), "--clients", "5", "--start", "01.01.2019"])
    assert res.exit_code == ExitCode.USER_ERROR and "--start" in res.output and not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------------------ period

def test_the_period_comes_from_the_declaration_the_manifest_or_the_records(tiny_county, tmp_path):
    period = data_period(tiny_county)
    assert (period.start, period.end, period.source) == (pd.Timestamp("2019-01-01"), pd.Timestamp("2025-12-31"),
                                                          "manifest.json")
    data = write_csv(tmp_path / "d", csv_tables())
    inferred = data_period(data)
    assert (inferred.start, inferred.end, inferred.declared) == (pd.Timestamp("2021-01-01"),
                                                                 pd.Timestamp("2021-04-01"), False)
    assert load_tables(data).period == inferred
    (data / "dataset.yaml").write_text("period: {start: 2020-01-01, extracted: 2022-01-15}\n")
    declared = data_period(data)
    assert (declared.end, declared.source) == (pd.Timestamp("2022-01-14"), "dataset.yaml")


@pytest.mark.parametrize("text, match", [
    ("period: {start: 2020-01-01}\n", "either end or extracted"),
    ("period: {start: 01.01.2020, end: 2021-01-01}\n", "ISO 8601"),
    ("period: {start: 2022-01-01, end: 2021-01-01}\n", "before start"),
    ("tables: {clientz: {date_format: '%d.%m.%Y'}}\n", "unknown table"),
    ("tables: {clients: {encoding: klingon}}\n", "not a known encoding"),
    ("perioud: {}\n", "unknown key"),
    ("period: [\n", "not valid YAML"),
])
def test_a_bad_declaration_is_one_clear_message(tmp_path, text, match):
    data = write_csv(tmp_path / "d", csv_tables())
    (data / "dataset.yaml").write_text(text)
    with pytest.raises(DeclarationError, match=match):
        read_declaration(data)
    res = runner.invoke(app, ["validate", str(data)])
    assert res.exit_code == ExitCode.USER_ERROR and "dataset.yaml" in res.output


def test_records_after_the_declared_period_are_errors_or_quarantined(county_copy, tmp_path):
    events = pd.read_parquet(county_copy / "events.parquet")
    events["start"] = pd.to_datetime(events["start"]).astype("datetime64[s]")
    # contacts without an end, of six different living clients: no start-after-end, after-death or
    # duplicate-row problem on top
    clients = pd.read_parquet(county_copy / "clients.parquet")
    living = clients.loc[clients["death_date"].isna(), "client_id"]
    point = events[events["end"].isna() & events["client_id"].isin(living)].drop_duplicates("client_id").index
    events.loc[point[:5], "start"] = pd.Timestamp("2099-03-01")
    events.loc[point[5], "start"] = pd.Timestamp("2026-01-01")  # one day after the declared end
    events.to_parquet(county_copy / "events.parquet")
    with pytest.raises(ContractError) as err:
        load_tables(county_copy)
    (problem,) = err.value.report.problems
    assert problem.count == 6 and "after the end of the data period" in problem.rule
    result = load_tables(county_copy, lenient=True, quarantine_dir=tmp_path / "q")
    assert len(result.quarantine["events"]) == 6
    assert len(result.tables["events"]) + 6 == len(events)
    res = runner.invoke(app, ["train", "--data", str(county_copy), "--train-as-of", "2023-01-01",
                              "--valid-as-of", "2024-01-01", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert res.exit_code == ExitCode.DATA_INVALID and "after the end of the data period" in res.output


def test_without_a_declaration_records_after_today_are_errors(tmp_path):
    events = csv_tables()["events"]
    events.loc[3, "start"] = "2099-01-01"
    data = write_csv(tmp_path / "d", csv_tables(events=events))
    with pytest.raises(ContractError, match="dated after today"):
        load_tables(data)
    assert data_period(data).end == pd.Timestamp("2021-03-01")  # 2099 never becomes the period's end


def test_period_check_names_the_option_and_the_latest_date():
    period = DataPeriod(pd.Timestamp("2019-01-01"), pd.Timestamp("2025-12-31"), "manifest.json")
    assert period.check("2026-01-01", "--as-of") == pd.Timestamp("2026-01-01")
    assert period.check("2025-01-01", "--as-of", horizon_days=365) == pd.Timestamp("2025-01-01")
    with pytest.raises(PeriodError, match=r"--as-of 2026-01-02 is after .* latest index date is 2026-01-01"):
        period.check("2026-01-02", "--as-of")
    with pytest.raises(PeriodError, match="--valid-as-of 2025-06-01 needs outcomes up to 2026-05-31.*2025-01-01"):
        period.check("2025-06-01", "--valid-as-of", horizon_days=365)
    with pytest.raises(PeriodError, match="no history before it"):
        period.check("2019-01-01", "--from")


@pytest.mark.parametrize("argv, says", [
    (["features", "--as-of", "1990-01-01", "--out", "f.parquet"], "--as-of 1990-01-01 is not after"),
    (["features", "--as-of", "2099-01-01", "--out", "f.parquet"], "--as-of 2099-01-01 is after"),
    (["labels", "--as-of", "2025-06-01", "--target", "high_use", "--out", "l.parquet"], "needs outcomes up to"),
    (["segment", "--as-of", "2099-01-01", "--out", "s.parquet"], "--as-of 2099-01-01 is after"),
    (["segment-transitions", "--from", "1990-01-01", "--to", "2024-01-01", "--out", "t.html"], "--from 1990"),
    (["train", "--train-as-of", "2024-06-01", "--valid-as-of", "2025-06-01"], "--valid-as-of 2025-06-01 for"),
    (["score", "--as-of", "2099-01-01", "--out", "r.parquet"], "--as-of 2099-01-01 is after"),
])
def test_every_command_checks_its_dates_against_the_period(tiny_county, tmp_path, monkeypatch, argv, says):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [argv[0], "--data", str(tiny_county), *argv[1:]])
    assert res.exit_code == ExitCode.USER_ERROR, res.output
    assert says in res.output and "2025-12-31" in res.output
    assert not [p for p in tmp_path.iterdir() if p.name != ".sote-manifest.json"]


def test_labels_within_the_period_still_work(tiny_county, tmp_path):
    out = tmp_path / "labels.parquet"
    res = runner.invoke(app, ["labels", "--data", str(tiny_county), "--as-of", "2025-01-01", "--target", "high_use",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    labels = pd.read_parquet(out)
    assert len(labels) > 0 and set(np.unique(labels["label"])) <= {0, 1}
    assert json.loads((tmp_path / ".sote-manifest.json").read_text())["files"] == ["labels.parquet"]
