"""Cases 7 and 8, input side: bad numbers, raw text in the quarantine, encodings, missing columns, odd paths."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from reliability_data import csv_tables, write_csv
from features.contract.io import UnreadableTable, read_tables
from features.contract.load import load_tables
from features.contract.validation import ContractError
from features.synth import SynthConfig, generate_county
from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "NaN", "Infinity", "1e400", "12,5"])
def test_non_finite_or_unreadable_costs_are_invalid(tmp_path, bad):
    events = csv_tables()["events"]
    events.loc[0, "cost_eur"] = bad
    data = write_csv(tmp_path / "d", csv_tables(events=events))
    with pytest.raises(ContractError) as err:
        load_tables(data)
    (problem,) = err.value.report.problems
    assert (problem.table, problem.column, problem.count) == ("events", "cost_eur", 1)
    assert problem.examples["cost_eur_raw"].tolist() == [bad]


def test_infinite_costs_in_parquet_are_invalid(tmp_path):
    data = write_csv(tmp_path / "d", csv_tables())
    events = pd.read_csv(data / "events.csv")
    events["cost_eur"] = [float("inf"), float("-inf"), 5.0, None]
    (data / "events.csv").unlink()
    events.to_parquet(data / "events.parquet")
    with pytest.raises(ContractError) as err:
        load_tables(data)
    assert [(p.column, p.count) for p in err.value.report.problems] == [("cost_eur", 2)]


def test_the_quarantine_keeps_the_raw_text_of_the_value_that_failed(tmp_path):
    events = csv_tables()["events"]
    events.loc[1, "start"] = "2021-13-45"
    events.loc[2, "cost_eur"] = "abc"
    events.loc[3, "start"] = "4.7.2021"
    data = write_csv(tmp_path / "d", csv_tables(events=events))
    res = runner.invoke(app, ["validate", str(data), "--lenient", "--quarantine", str(tmp_path / "q")])
    assert res.exit_code == 0, res.output
    q = pd.read_csv(tmp_path / "q" / "events.csv", dtype=str, keep_default_na=False)
    assert q["start"].tolist() == ["2021-13-45", "2021-03-01", "4.7.2021"]
    assert q["cost_eur"].tolist() == ["", "abc", "12.5"]
    assert q["reason"].str.contains("start: ISO 8601").tolist() == [True, False, True]


def test_lenient_without_a_quarantine_folder_is_refused_before_anything_is_written(tmp_path):
    data = write_csv(tmp_path / "d", csv_tables())
    res = runner.invoke(app, ["validate", str(data), "--lenient", "--out", str(tmp_path / "clean")])
    assert res.exit_code == ExitCode.USER_ERROR and "--lenient needs --quarantine" in res.output
    assert not (tmp_path / "clean").exists()


def test_validate_out_carries_the_declared_period(county_copy, tmp_path):
    res = runner.invoke(app, ["validate", str(county_copy), "--out", str(tmp_path / "clean")])
    assert res.exit_code == 0, res.output
    assert "2019-01-01 .. 2025-12-31 (declared in manifest.json)" in res.output
    assert load_tables(tmp_path / "clean").period.source == "dataset.yaml"


def test_features_without_validation_fails_loudly_on_duplicate_clients(tmp_path):
    dirty = tmp_path / "dirty"
    manifest = generate_county(dirty, SynthConfig(clients=60, seed=4, truth_reps=1, workers=1, dirty=True))
    assert manifest["faults_injected"]["clients.duplicate_id"] >= 1
    out = tmp_path / "f.parquet"
    res = runner.invoke(app, ["features", "--data", str(dirty), "--as-of", "2024-01-01", "--out", str(out),
                              "--no-validate"])
    assert res.exit_code == ExitCode.DATA_INVALID and "more than once" in res.output
    assert not out.exists()
    checked = runner.invoke(app, ["features", "--data", str(dirty), "--as-of", "2024-01-01", "--out", str(out)])
    assert checked.exit_code == ExitCode.DATA_INVALID and not out.exists()


def test_a_latin1_csv_is_one_message_naming_the_file_or_is_read_when_declared(tmp_path):
    clients = csv_tables()["clients"].assign(municipality=["Mäntsälä", "Hyvinkää", "Järvenpää"])
    data = write_csv(tmp_path / "d", csv_tables(clients=clients))
    clients.to_csv(data / "clients.csv", index=False, encoding="latin-1")
    with pytest.raises(UnreadableTable, match=r"clients\.csv\) is not utf-8 text"):
        read_tables(data)
    res = runner.invoke(app, ["validate", str(data)])
    assert res.exit_code == ExitCode.USER_ERROR
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "clients.csv" in lines[0] and "encoding: latin-1" in lines[0]
    (data / "dataset.yaml").write_text("tables:\n  clients: {encoding: latin-1}\n")
    kept = load_tables(data).tables["clients"]
    assert kept["municipality"].tolist() == ["Mäntsälä", "Hyvinkää", "Järvenpää"]


def test_a_missing_column_is_one_problem_without_a_spurious_key_error(tmp_path):
    data = write_csv(tmp_path / "d", csv_tables(clients=csv_tables()["clients"].drop(columns=["birth_date"])))
    res = runner.invoke(app, ["validate", str(data)])
    assert res.exit_code == ExitCode.DATA_INVALID
    assert "column 'birth_date': required column missing" in res.output
    assert "KeyError" not in res.output and "1 problem(s)" in res.output


def test_damaged_parquet_is_one_message_naming_the_file(tmp_path):
    data = write_csv(tmp_path / "d", csv_tables())
    pd.read_csv(data / "events.csv").to_parquet(data / "events.parquet")
    (data / "events.csv").unlink()
    whole = (data / "events.parquet").read_bytes()
    (data / "events.parquet").write_bytes(whole[: len(whole) // 2])
    res = runner.invoke(app, ["validate", str(data)])
    assert res.exit_code == ExitCode.USER_ERROR
    assert "events.parquet" in res.output and "cannot be read as Parquet" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("name", ["br[/]", "[bold]x[/bold]", "tuusula [kotihoito]"])
def test_paths_with_markup_characters_are_printed_literally(tmp_path, name):
    data = write_csv(tmp_path / name, csv_tables())
    res = runner.invoke(app, ["validate", str(data)])
    assert res.exit_code == 0 and "all tables valid" in res.output
    missing = runner.invoke(app, ["validate", str(tmp_path / name / "nope")])
    assert missing.exit_code == ExitCode.USER_ERROR and f"{name}/nope" in missing.output
