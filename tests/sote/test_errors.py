"""Errors end a command with one literal message and an ExitCode; --debug shows the traceback (issue 11 case 7).

The tests run as root, so "unwritable" is a path under a regular file or under
/proc, which root cannot write either.
"""
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract.validation import ContractError, Problem, ValidationReport
from features.synth import SynthConfig, generate_county
from risklist_data import make_risklist
from sote.app import ExitCode, UserError, check_writable, describe_error
from sote.cli import app

runner = CliRunner()


def _raised(fn):
    try:
        fn()
    except BaseException as err:  # noqa: BLE001 - the exception is what is tested
        return err
    raise AssertionError("nothing raised")


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    generate_county(root / "county", SynthConfig(clients=300, seed=3, truth_reps=1, workers=1))
    make_risklist().to_parquet(root / "risk.parquet", index=False)
    blocker = root / "blocker"
    blocker.write_text("a regular file: nothing can be created under it, not even by root")
    return root


def _one_error(res, *needles: str) -> None:
    assert "Traceback" not in res.output, res.output
    assert res.output.count("error:") == 1, res.output
    for needle in needles:
        assert needle in res.output, (needle, res.output)


def test_exceptions_map_to_exit_statuses_and_messages():
    from models.risklists import unit_view

    report = ValidationReport([Problem("events", "start", "parseable date", None)], {"events": 3}, {"events": 3})
    code, message = describe_error(ContractError(report), "data/county")
    assert code == ExitCode.DATA_INVALID and "data/county breaks the data contract (1 problem(s)" in message

    code, message = describe_error(PermissionError(13, "Permission denied", "/x/.risk.parquet.sote-12-ab12cd34.tmp"))
    assert code == ExitCode.USER_ERROR and message == "cannot access /x/risk.parquet: Permission denied"

    ours = _raised(lambda: unit_view(make_risklist(), "x", 0))
    assert describe_error(ours) == (ExitCode.USER_ERROR, "top must be a whole number of at least 1, got 0")
    assert describe_error(UserError("--out: no")) == (ExitCode.USER_ERROR, "--out: no")

    code, message = describe_error(_raised(lambda: pd.Timestamp("garbage")))  # raised inside pandas: not ours
    assert code == ExitCode.FAILED and "internal error (DateParseError" in message and "--debug" in message

    code, message = describe_error(_raised(lambda: {}["rank"]))
    assert code == ExitCode.FAILED and message.startswith("internal error (KeyError: 'rank')")

    code, message = describe_error(_raised(lambda: b"\xe4".decode("utf-8")))
    assert code == ExitCode.USER_ERROR and "not UTF-8" in message


def test_duckdb_out_of_memory_names_the_two_knobs():
    """DuckDB's own out-of-memory error (raised by a real query over a tiny limit) says what to change."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '20MB'")
    con.execute("SET temp_directory = ''")  # nowhere to spill
    query = "SELECT range % 1000003 AS k, list(range) FROM range(3000000) GROUP BY k"
    err = _raised(lambda: con.execute(query).fetchall())
    con.close()
    code, message = describe_error(err)
    assert type(err).__name__ == "OutOfMemoryException"
    assert code == ExitCode.FAILED and message.startswith("DuckDB ran out of memory (")
    assert "SOTE_DUCKDB_MEMORY_LIMIT" in message and "SOTE_CLIENTS_PER_QUERY" in message


def test_an_internal_error_is_one_message_and_debug_shows_the_traceback(county, tmp_path, monkeypatch):
    import worklist.report

    def broken(*args, **kwargs):
        raise KeyError("rank")

    monkeypatch.setattr(worklist.report, "write_report", broken)
    args = ["report", "--risklist", str(county / "risk.parquet"), "--out", str(tmp_path / "r")]
    res = runner.invoke(app, args)
    assert res.exit_code == ExitCode.FAILED
    _one_error(res, "internal error (KeyError: 'rank')", "rerun with --debug")
    debug = runner.invoke(app, ["--debug", *args])
    assert debug.exit_code == ExitCode.FAILED
    assert "Traceback (most recent call last)" in debug.output and 'raise KeyError("rank")' in debug.output
    env = runner.invoke(app, args, env={"SOTE_DEBUG": "1"})
    assert "Traceback (most recent call last)" in env.output


def test_a_contract_error_lists_the_problems_then_one_message(county, tmp_path, monkeypatch):
    import worklist.report

    problems = [Problem("events", "cost_eur", "finite number >= 0", pd.Index([3, 9]).to_numpy())]

    def invalid(*args, **kwargs):
        raise ContractError(ValidationReport(problems, {"events": 10}, {"events": 8}))

    monkeypatch.setattr(worklist.report, "write_report", invalid)
    res = runner.invoke(app, ["report", "--risklist", str(county / "risk.parquet"), "--out", str(tmp_path / "r")])
    assert res.exit_code == ExitCode.DATA_INVALID
    _one_error(res, "table 'events', column 'cost_eur': finite number >= 0 (2 row(s))",
               "the input data breaks the data contract (1 problem(s), listed above)")
    assert res.output.index("table 'events'") < res.output.index("error:")


def test_values_with_brackets_are_printed_literally(tmp_path):
    data = str(tmp_path / "br[/]")
    for args in (["validate", data], ["features", "--data", data, "--as-of", "2024-01-01", "--out",
                                      str(tmp_path / "f.parquet")]):  # features shows the folder in a status line
        res = runner.invoke(app, args)
        assert res.exit_code == ExitCode.USER_ERROR, res.output
        _one_error(res, f"{data}")
        assert "MarkupError" not in res.output


@pytest.mark.parametrize("command", [
    ["features", "--data", "{county}/county", "--as-of", "2024-01-01", "--out", "{blocker}/f.parquet"],
    ["labels", "--data", "{county}/county", "--as-of", "2023-01-01", "--target", "high_use",
     "--out", "{blocker}/l.parquet"],
    ["report", "--risklist", "{county}/risk.parquet", "--out", "{blocker}/report"],
    ["validate", "{county}/county", "--out", "{blocker}/clean"],
    ["synth", "--out", "{blocker}/county", "--clients", "50", "--truth-reps", "1", "--workers", "1"],
    ["features", "--data", "{county}/county", "--as-of", "2024-01-01", "--out", "/proc/sote-test/f.parquet"],
], ids=["features", "labels", "report", "validate", "synth", "features-proc"])
def test_an_unwritable_output_is_one_message_naming_the_path(county, command):
    args = [a.format(county=county, blocker=county / "blocker") for a in command]
    res = runner.invoke(app, args)
    assert res.exit_code == ExitCode.USER_ERROR, res.output
    out = next(a for a in args if "blocker" in a or a.startswith("/proc"))
    _one_error(res, f"cannot write {out}")


def test_segment_writes_nothing_when_its_report_cannot_be_written(county, tmp_path):
    out = tmp_path / "segments.parquet"
    res = runner.invoke(app, ["segment", "--data", str(county / "county"), "--as-of", "2024-01-01", "--out",
                              str(out), "--report", str(county / "blocker" / "segments.html")])
    assert res.exit_code == ExitCode.USER_ERROR, res.output
    _one_error(res, "cannot write", "blocker")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_check_writable_refuses_before_touching_anything(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"file.txt is a file, not a folder"):
        check_writable(tmp_path / "ok.csv", blocker / "deeper" / "x.csv")
    with pytest.raises(UserError, match="it is a folder; give a file name"):
        check_writable(tmp_path)
    with pytest.raises(UserError, match="it is a file, and this output is a folder"):
        check_writable(folders=(blocker,))
    with pytest.raises(UserError, match="cannot create files in /proc"):
        check_writable(folders=("/proc/sote-test",))
    check_writable(tmp_path / "new" / "deeper" / "x.csv", None, folders=(tmp_path / "out", None))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # the probe leaves nothing behind


def test_score_refuses_negative_reasons_naming_the_option(tmp_path):
    res = runner.invoke(app, ["score", "--data", str(tmp_path), "--as-of", "2025-01-01", "--out",
                              str(tmp_path / "r.parquet"), "--reasons", "-3"])
    assert res.exit_code == ExitCode.USER_ERROR and "--reasons" in res.output and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []
