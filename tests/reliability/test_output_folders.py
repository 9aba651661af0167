"""Case 1: sote never deletes or replaces what it did not write; outputs never overlap inputs."""
import json
import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from reliability_data import csv_tables, write_csv
from features.contract.io import atomic_dir, write_table
from features.contract.outputs import (
    MANIFEST,
    OutputRefused,
    check_not_input,
    check_output_dir,
    check_output_file,
    check_store_outside,
    owned,
)
from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()
TABLE_FILES = {f"{t}.parquet" for t in ("clients", "events", "diagnoses", "measurements", "assessments")}


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_validate_with_the_input_as_quarantine_is_refused_and_the_input_kept(county_copy):
    before = _files(county_copy)
    res = runner.invoke(app, ["validate", str(county_copy), "--lenient", "--quarantine", str(county_copy)])
    assert res.exit_code == ExitCode.USER_ERROR
    assert "--quarantine" in res.output and "is the input" in res.output
    assert _files(county_copy) == before


def test_a_quarantine_or_out_folder_containing_or_inside_the_input_is_refused(county_copy, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "analysis.py").write_text("precious")
    before = _files(county_copy)
    up = runner.invoke(app, ["validate", str(county_copy), "--lenient", "--quarantine", str(tmp_path)])
    assert up.exit_code == ExitCode.USER_ERROR and "contains the input" in up.output
    inside = runner.invoke(app, ["validate", str(county_copy), "--out", str(county_copy / "clean")])
    assert inside.exit_code == ExitCode.USER_ERROR and "inside the input" in inside.output
    assert (tmp_path / "src" / "analysis.py").read_text() == "precious" and _files(county_copy) == before
    assert not (county_copy / "clean").exists()


def test_synth_refuses_a_folder_with_other_files_and_with_overwrite_keeps_them(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.txt").write_text("three years of work")
    args = ["synth", "--out", str(work), "--clients", "30", "--truth-reps", "1", "--workers", "1"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == ExitCode.USER_ERROR
    assert "thesis.txt" in refused.output and "--overwrite" in refused.output
    assert sorted(p.name for p in work.iterdir()) == ["thesis.txt"]

    done = runner.invoke(app, args + ["--overwrite"])
    assert done.exit_code == 0, done.output
    assert (work / "thesis.txt").read_text() == "three years of work"
    assert TABLE_FILES | {"truth.parquet", "manifest.json", "projection.csv"} == owned(work)
    # a rerun into sote's own folder (with the user's file beside) still needs --overwrite, and keeps the file
    again = runner.invoke(app, args + ["--overwrite", "--seed", "9"])
    assert again.exit_code == 0 and (work / "thesis.txt").read_text() == "three years of work"


def test_a_rerun_replaces_sote_s_own_folder_whole(tmp_path):
    out = tmp_path / "q"
    with atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("1")
        (tmp / "b.csv").write_text("2")
    with atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a.csv"]
    assert (out / "a.csv").read_text() == "3"
    assert json.loads((out / MANIFEST).read_text())["files"] == ["a.csv"]
    assert "q" in owned(tmp_path)


def test_with_overwrite_only_sote_s_entries_are_replaced_and_a_clash_is_refused(tmp_path):
    out = tmp_path / "q"
    with atomic_dir(out) as tmp:
        (tmp / "old.csv").write_text("sote's")
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(OutputRefused, match="notes.txt"):
        with atomic_dir(out) as tmp:
            (tmp / "new.csv").write_text("x")
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.csv").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "new.csv", "notes.txt"]
    with pytest.raises(OutputRefused, match="notes.txt"):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "notes.txt").write_text("would replace the user's file")
    assert (out / "notes.txt").read_text() == "the user's" and (out / "new.csv").read_text() == "x"


def test_an_output_file_never_replaces_a_file_sote_did_not_write(tmp_path):
    theirs = tmp_path / "features.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(theirs)
    before = theirs.read_bytes()
    with pytest.raises(OutputRefused, match="not written by sote"):
        write_table(pd.DataFrame({"y": [2]}), theirs)
    assert theirs.read_bytes() == before
    ours = tmp_path / "risk.parquet"
    write_table(pd.DataFrame({"y": [2]}), ours)
    write_table(pd.DataFrame({"y": [3]}), ours)  # sote's own: replaced
    assert pd.read_parquet(ours)["y"].tolist() == [3]
    with pytest.raises(OutputRefused):
        check_output_file(theirs)
    check_output_file(ours)


def test_features_refuses_an_out_that_would_replace_a_user_file_before_any_work(county_copy, tmp_path):
    theirs = tmp_path / "features.parquet"
    theirs.write_text("not sote's")
    res = runner.invoke(app, ["features", "--data", str(county_copy), "--as-of", "2024-01-01", "--out", str(theirs)])
    assert res.exit_code == ExitCode.USER_ERROR and "not written by sote" in res.output
    assert theirs.read_text() == "not sote's"
    inside = runner.invoke(app, ["features", "--data", str(county_copy), "--as-of", "2024-01-01", "--out",
                                 str(county_copy / "f.parquet")])
    assert inside.exit_code == ExitCode.USER_ERROR and "inside the input" in inside.output


@pytest.mark.parametrize("argv", [
    ["labels", "--as-of", "2023-01-01", "--target", "high_use", "--out", "{theirs}"],
    ["segment", "--as-of", "2024-01-01", "--out", "{theirs}"],
    ["segment", "--as-of", "2024-01-01", "--out", "{new}", "--report", "{theirs}"],
    ["segment-transitions", "--from", "2023-01-01", "--to", "2024-01-01", "--out", "{theirs}"],
    ["score", "--as-of", "2024-01-01", "--out", "{theirs}"],
])
def test_every_command_writing_a_file_refuses_to_replace_a_user_file(county_copy, tmp_path, argv):
    theirs = tmp_path / "theirs.parquet"
    theirs.write_text("not sote's")
    argv = [a.format(theirs=theirs, new=tmp_path / "new.parquet") for a in argv]
    res = runner.invoke(app, [argv[0], "--data", str(county_copy), *argv[1:]])
    assert res.exit_code == ExitCode.USER_ERROR, res.output
    assert "not written by sote" in res.output and theirs.read_text() == "not sote's"


def test_report_refuses_to_replace_a_user_file_and_its_own_input(tmp_path):
    risk = tmp_path / "risk.csv"
    risk.write_text("rank\n1\n")
    res = runner.invoke(app, ["report", "--risklist", str(risk), "--out", str(tmp_path / "risk.html")])
    assert res.exit_code == ExitCode.USER_ERROR and "risk.csv" in res.output
    assert risk.read_text() == "rank\n1\n"


def test_ingest_and_validate_out_refuse_folders_holding_other_files(tmp_path):
    data = write_csv(tmp_path / "data", csv_tables())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("precious")
    res = runner.invoke(app, ["validate", str(data), "--out", str(busy)])
    assert res.exit_code == ExitCode.USER_ERROR and "thesis.docx" in res.output
    ok = runner.invoke(app, ["validate", str(data), "--out", str(busy), "--overwrite"])
    assert ok.exit_code == 0, ok.output
    assert (busy / "thesis.docx").read_text() == "precious" and TABLE_FILES <= owned(busy)
    with pytest.raises(OutputRefused, match="inside the input"):
        check_output_dir(data / "o", inputs=[data])
    with pytest.raises(OutputRefused, match="contains the input"):
        check_not_input(tmp_path, [data / "clients.csv"])


def test_stores_that_accumulate_are_never_inside_an_output_folder(tmp_path):
    with pytest.raises(OutputRefused, match="store"):
        check_store_outside(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", tmp_path / "out")
    with pytest.raises(OutputRefused, match="store"):
        check_store_outside(None, os.getcwd())  # the default ./mlruns inside --out .
    check_store_outside(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "out")
    check_store_outside("http://tracking.example:5000", tmp_path / "out")
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "o"), "--tracking-uri",
                              f"sqlite:///{tmp_path / 'o' / 'mlflow.db'}"])
    assert res.exit_code == ExitCode.USER_ERROR and "store" in res.output
    assert not (tmp_path / "o").exists()
