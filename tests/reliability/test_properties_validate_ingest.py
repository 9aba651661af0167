"""Property-based: random bad values, types, encodings and file damage thrown at ``validate`` and ``ingest``.

Whatever the damage (6 derandomised examples per test; SOTE_PROPERTY_EXAMPLES=200 searches harder
with random seeds): never a traceback, an exit status from the documented
set (0 ok, 2 user error such as an unreadable file, 3 data invalid; never 1,
the internal error), and in lenient runs rows in = rows kept + rows
quarantined, with every quarantined row's values as the source wrote them.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reliability_data import csv_tables, write_csv
from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()
SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "synthea"
PROPERTY = settings(max_examples=int(os.environ.get("SOTE_PROPERTY_EXAMPLES", 6)), deadline=None,
                    derandomize=os.environ.get("SOTE_PROPERTY_EXAMPLES") is None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

BAD_VALUES = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "NaN", "13.12.1973", "03/02/2021", "2021-13-45", "1973", "abc", " ",
                     "[/]", "[bold]x", "=HYPERLINK(\"x\")", "E11.9+H36.0*", "x" * 300, "2099-01-01", "-5",
                     "1e400", "2021-03-04T23:30:00Z", "\u00e4\u00f6\u00e5", "0x1F", "null", "None"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n\""), max_size=12),
)
TABLE_NAMES = ["clients", "events", "diagnoses", "measurements", "assessments"]


def _with_ids(tables):
    """Every row carries a unique ``row_id`` (extra columns pass through validation)."""
    out, n = {}, 0
    for name, frame in tables.items():
        out[name] = frame.assign(row_id=[str(i) for i in range(n, n + len(frame))])
        n += len(frame)
    return out


def _same(quarantined: str, source: str) -> bool:
    """A quarantined value is the source's: the same text (trimmed), number or day."""
    q, s = quarantined.strip(), source.strip()
    if q == s:
        return True
    try:
        return float(q) == float(s)
    except ValueError:
        pass
    try:
        return pd.Timestamp(q) == pd.Timestamp(s)
    except (ValueError, OverflowError):
        return False


@st.composite
def damaged_values(draw):
    tables = _with_ids(csv_tables())
    hits = draw(st.lists(st.tuples(st.sampled_from(TABLE_NAMES), st.integers(0, 10), st.integers(0, 10),
                                   BAD_VALUES), min_size=1, max_size=6))
    for table, row, col, value in hits:
        frame = tables[table]
        column = [c for c in frame.columns if c != "row_id"][col % (frame.shape[1] - 1)]
        frame.loc[frame.index[row % len(frame)], column] = value
    return tables


@PROPERTY
@given(tables=damaged_values())
def test_validate_on_random_bad_values_keeps_every_row_accounted_for(tables):
    with tempfile.TemporaryDirectory() as tmp:
        data = write_csv(Path(tmp) / "data", tables)
        strict = runner.invoke(app, ["validate", str(data)])
        assert "Traceback" not in strict.output
        assert strict.exit_code in (ExitCode.OK, ExitCode.DATA_INVALID), strict.output
        q = Path(tmp) / "q"
        lenient = runner.invoke(app, ["validate", str(data), "--lenient", "--quarantine", str(q)])
        assert "Traceback" not in lenient.output
        assert lenient.exit_code in (ExitCode.OK, ExitCode.DATA_INVALID), lenient.output
        if lenient.exit_code == ExitCode.DATA_INVALID:  # only a table's structure fails a lenient run
            assert "whole table" in lenient.output and not q.exists()
            return
        summary = pd.read_csv(q / "summary.csv").set_index("table")
        assert (summary["rows_kept"] + summary["rows_quarantined"] == summary["rows_in"]).all()
        for name, frame in tables.items():
            assert summary.loc[name, "rows_in"] == len(frame)
            quarantined = pd.read_csv(q / f"{name}.csv", dtype=str, keep_default_na=False)
            assert len(quarantined) == summary.loc[name, "rows_quarantined"]
            source = frame.set_index("row_id")
            for _, row in quarantined.iterrows():
                original = source.loc[row["row_id"]]
                for column in source.columns:
                    if column == "code":  # normalised; the source's text is kept in code_raw
                        assert _same(row["code_raw"], str(original[column])) or original[column] == ""
                        continue
                    assert _same(row[column], str(original[column])), (name, column, row[column], original[column])


@st.composite
def damaged_files(draw):
    tables = csv_tables()
    table = draw(st.sampled_from(TABLE_NAMES))
    damage = draw(st.sampled_from(["truncate_parquet", "garbage_parquet", "garbage_csv", "binary_in_csv",
                                   "latin1", "utf16", "empty", "header_only", "wrong_type", "bool_dates",
                                   "missing_column", "extra_quote"]))
    cut = draw(st.floats(0.05, 0.95))
    column = draw(st.sampled_from(list(tables[table].columns)))
    junk = draw(st.binary(min_size=1, max_size=64))
    return tables, table, damage, cut, column, junk


def _damage(data: Path, tables, table, damage, cut, column, junk) -> None:
    csv = data / f"{table}.csv"
    if damage in ("truncate_parquet", "garbage_parquet", "wrong_type", "bool_dates"):
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        csv.unlink()
        if damage == "wrong_type":
            frame[column] = np.arange(len(frame), dtype=np.int64)
        if damage == "bool_dates":
            frame[column] = [True] * len(frame)
        frame.to_parquet(data / f"{table}.parquet")
        raw = (data / f"{table}.parquet").read_bytes()
        if damage == "truncate_parquet":
            (data / f"{table}.parquet").write_bytes(raw[: max(1, int(len(raw) * cut))])
        elif damage == "garbage_parquet":
            (data / f"{table}.parquet").write_bytes(b"PAR1" + junk)
    elif damage == "garbage_csv":
        csv.write_bytes(junk)
    elif damage == "binary_in_csv":
        raw = csv.read_bytes()
        at = max(raw.index(b"\n") + 1, int(len(raw) * cut))
        csv.write_bytes(raw[:at] + junk + raw[at:])
    elif damage == "latin1":
        tables[table].assign(**{column: "Mäntsälä"}).to_csv(csv, index=False, encoding="latin-1")
    elif damage == "utf16":
        tables[table].to_csv(csv, index=False, encoding="utf-16")
    elif damage == "empty":
        csv.write_bytes(b"")
    elif damage == "header_only":
        csv.write_text(",".join(tables[table].columns) + "\n")
    elif damage == "missing_column":
        tables[table].drop(columns=[column]).to_csv(csv, index=False)
    elif damage == "extra_quote":
        csv.write_text(csv.read_text().replace(",", ',"', 1))


@PROPERTY
@given(case=damaged_files())
def test_validate_on_damaged_files_gives_one_message_and_a_documented_status(case):
    tables, table, damage, cut, column, junk = case
    with tempfile.TemporaryDirectory() as tmp:
        data = write_csv(Path(tmp) / "data", tables)
        _damage(data, tables, table, damage, cut, column, junk)
        for args in ([], ["--lenient", "--quarantine", str(Path(tmp) / "q")]):
            res = runner.invoke(app, ["validate", str(data), *args])
            assert "Traceback" not in res.output, res.output
            assert res.exception is None or isinstance(res.exception, SystemExit), (damage, res.exception)
            assert res.exit_code in (ExitCode.OK, ExitCode.USER_ERROR, ExitCode.DATA_INVALID), (damage, res.output)
            if res.exit_code == ExitCode.USER_ERROR:
                assert table in res.output, (damage, res.output)


def _synthea_source(folder: Path) -> dict[str, int]:
    """A small Synthea export (10 patients and their first records); returns rows per file."""
    folder.mkdir()
    rows = {}
    for name, n in (("patients", 10), ("encounters", 80), ("conditions", 40), ("observations", 120)):
        frame = pd.read_csv(SYNTHEA / f"{name}.csv", dtype=str, keep_default_na=False, nrows=n)
        frame.to_csv(folder / f"{name}.csv", index=False)
        rows[name] = len(frame)
    return rows


@pytest.mark.skipif(not (SYNTHEA / "patients.csv").exists(), reason="Synthea fixture not found")
@PROPERTY
@given(hits=st.lists(st.tuples(st.sampled_from(["patients", "encounters", "conditions", "observations"]),
                               st.integers(0, 200), st.integers(0, 30), BAD_VALUES), max_size=5),
       damage=st.sampled_from(["none", "none", "latin1", "binary", "truncate", "missing_column"]),
       cut=st.floats(0.1, 0.9))
def test_ingest_on_random_damage_accounts_for_every_source_row(hits, damage, cut):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "synthea"
        rows = _synthea_source(src)
        for table, row, col, value in hits:
            frame = pd.read_csv(src / f"{table}.csv", dtype=str, keep_default_na=False)
            frame.iloc[row % len(frame), col % frame.shape[1]] = value
            frame.to_csv(src / f"{table}.csv", index=False)
        target = src / "encounters.csv"
        raw = target.read_bytes()
        if damage == "latin1":
            target.write_bytes(raw.decode("utf-8").replace("Well", "Wäll").encode("latin-1", "replace"))
        elif damage == "binary":
            target.write_bytes(raw[: int(len(raw) * cut)] + b"\x00\xff\xfe\x81" + raw[int(len(raw) * cut):])
        elif damage == "truncate":
            target.write_bytes(raw[: int(len(raw) * cut)])
        elif damage == "missing_column":
            pd.read_csv(target, dtype=str).drop(columns=["START"]).to_csv(target, index=False)
        out = Path(tmp) / "out"
        res = runner.invoke(app, ["ingest", "synthea", str(src), "--out", str(out)])
        assert "Traceback" not in res.output
        assert res.exit_code in (ExitCode.OK, ExitCode.USER_ERROR), (damage, hits, res.output)
        if res.exit_code != ExitCode.OK:
            assert not out.exists()
            if damage == "latin1" and "UTF-8" in res.output:
                assert "encounters.csv" in res.output  # the message names the file
            return
        report = json.loads((out / "ingest_report.json").read_text())
        rejected = pd.read_csv(out / "rejected.csv", dtype={"source_row": "int64"})
        for name, s in report["sources"].items():
            assert s["rows_in"] == s["rows_out"] + s["rejected"], name
            mine = rejected[rejected["source_table"] == name]["source_row"]
            assert mine.is_unique and mine.between(1, s["rows_in"]).all()
            if name in rows and damage in ("none", "latin1"):
                assert s["rows_in"] == rows[name]
