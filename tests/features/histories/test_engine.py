"""The DuckDB engine's memory limit and spill folder."""
from pathlib import Path

import pandas as pd

from features.histories.engine import DuckDBEngine, default_memory_limit


def _setting(engine: DuckDBEngine, name: str) -> str:
    return engine.query(f"SELECT current_setting('{name}') AS v")["v"].iloc[0]


def test_default_limit_is_a_share_of_memory_with_a_cap():
    value = float(default_memory_limit().removesuffix("GB"))
    assert 0.5 <= value <= 6.0
    assert default_memory_limit(share=1.0, cap_gb=2.0) == "2.0GB"


def test_environment_sets_the_limit_and_spills_go_to_a_private_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", "300MB")
    engine = DuckDBEngine(threads=1)
    assert _setting(engine, "memory_limit").startswith("286")  # DuckDB reports 300 MB in MiB
    spill = Path(_setting(engine, "temp_directory"))
    assert spill.name.startswith("sote-duckdb-") and tmp_path not in spill.parents
    # a sort larger than the limit completes by spilling
    out = engine.query("SELECT count(*) AS n FROM (SELECT range AS x, md5(range::VARCHAR) AS h FROM range(4000000) "
                       "ORDER BY h) t")
    assert out["n"].iloc[0] == 4_000_000
    engine.close()
    assert not spill.exists() and not any(tmp_path.iterdir())


def test_explicit_limit_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", "300MB")
    engine = DuckDBEngine(memory_limit="1GB")
    engine.register("t", pd.DataFrame({"a": [1, 2]}))
    assert engine.columns("t") == ["a"]
    assert _setting(engine, "memory_limit").startswith("953")
    engine.close()


# ------------------------------------------------------------------------------------ writing results
import pytest  # noqa: E402

from features.histories.engine import SUCCESS, output_digest, partition_columns, read_parquet_output  # noqa: E402

_ROWS = "SELECT * FROM (VALUES ('c1', '091', 1.5), ('c2', '091', NULL), ('c3', '753', 3.0)) AS t(client_id, municipality, x)"


def test_write_a_file_and_a_partitioned_folder_and_read_them_back(tmp_path):
    engine = DuckDBEngine(threads=1)
    assert engine.write(_ROWS, tmp_path / "one.parquet") == 3
    assert pd.read_parquet(tmp_path / "one.parquet")["client_id"].tolist() == ["c1", "c2", "c3"]
    assert engine.write(_ROWS, tmp_path / "parts", partition_by=["municipality"]) == 3
    folder = tmp_path / "parts"
    assert (folder / SUCCESS).is_file() and partition_columns(folder) == ["municipality"]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["municipality=091", "municipality=753"]
    back = read_parquet_output(folder).to_pandas().sort_values("client_id", ignore_index=True)
    assert back["municipality"].tolist() == ["091", "091", "753"]  # text, not the number 91
    assert back["x"].isna().tolist() == [False, True, False]
    engine.close()


def test_a_failed_write_leaves_the_earlier_output_and_no_temporary(tmp_path):
    engine = DuckDBEngine(threads=1)
    engine.write(_ROWS, tmp_path / "parts", partition_by=["municipality"])
    before = output_digest(tmp_path / "parts")
    with pytest.raises(Exception, match="(?i)divide|conversion|error"):
        engine.write("SELECT CAST('x' AS INTEGER) AS client_id", tmp_path / "parts", partition_by=["client_id"])
    assert output_digest(tmp_path / "parts") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sote-manifest.json", "parts"]  # no temporary
    engine.close()


def test_output_digest_ignores_file_names_but_not_contents(tmp_path):
    engine = DuckDBEngine(threads=1)
    engine.write(_ROWS, tmp_path / "a", partition_by=["municipality"])
    engine.write(_ROWS, tmp_path / "b", partition_by=["municipality"])
    assert output_digest(tmp_path / "a") == output_digest(tmp_path / "b")
    data = next((tmp_path / "b" / "municipality=753").glob("*.parquet"))
    data.rename(data.with_name("part-renamed.parquet"))
    assert output_digest(tmp_path / "a") == output_digest(tmp_path / "b")
    engine.write(_ROWS.replace("3.0", "4.0"), tmp_path / "b", partition_by=["municipality"])
    assert output_digest(tmp_path / "a") != output_digest(tmp_path / "b")
    engine.close()


def test_a_folder_without_its_marker_is_not_read(tmp_path):
    engine = DuckDBEngine(threads=1)
    engine.write(_ROWS, tmp_path / "parts", partition_by=["municipality"])
    (tmp_path / "parts" / SUCCESS).unlink()
    with pytest.raises(ValueError, match="without the _SUCCESS marker"):
        read_parquet_output(tmp_path / "parts")
    with pytest.raises(FileNotFoundError):
        read_parquet_output(tmp_path / "nothing")
    engine.close()


def test_features_written_by_duckdb_read_back_equal_the_pandas_result(county, tmp_path):
    """write_features (folder by municipality, or one file) and read_features give ClientHistories.features back."""
    from features.histories.build import ClientHistories
    from features.histories.output import read_features, write_features

    with ClientHistories(county, validate=False) as h:
        expected = h.features("2024-01-01")
        write_features(h, "2024-01-01", tmp_path / "folder")
        write_features(h, "2024-01-01", tmp_path / "one.parquet", partition_by=None)
        spec = h.spec
    assert len(expected) > 50 and expected["municipality"].nunique() > 1
    for path in (tmp_path / "folder", tmp_path / "one.parquet"):
        got = read_features(path, spec)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
        assert list(got.dtypes) == list(expected.dtypes)


def test_features_written_in_shares_equal_one_query(county, tmp_path):
    """Above clients_per_query DuckDB writes the folder share by share; the rows are those of one query."""
    from features.histories.build import ClientHistories
    from features.histories.output import read_features, write_features

    with ClientHistories(county, validate=False, clients_per_query=40) as h:
        expected = h.features("2024-01-01")
        write_features(h, "2024-01-01", tmp_path / "shares")
        write_features(h, "2024-01-01", tmp_path / "one.parquet", partition_by=None)  # parts copied into one file
        spec = h.spec
        assert h.engine.query("SELECT count(*) AS n FROM clients")["n"].iloc[0] == len(county["clients"])
    files = list((tmp_path / "shares").rglob("part-*.parquet"))
    assert len({f.name.split("-")[1] for f in files}) >= 3  # written by several shares
    for path in (tmp_path / "shares", tmp_path / "one.parquet"):
        pd.testing.assert_frame_equal(read_features(path, spec), expected, check_exact=False, rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["one.parquet", "shares"]


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_shares_are_client_id_ranges_that_cover_every_row_once(parts):
    """restrict(parts, k) over k: every row exactly once, a client's rows in one share, shares in id order."""
    engine = DuckDBEngine(threads=1)
    engine.register("clients", pd.DataFrame({"client_id": ["c3", "c1", "c5", "c2", None]}))
    engine.register("events", pd.DataFrame({"client_id": ["c1", "c1", "c5", "c9", None, "c2"], "x": range(6)}))
    engine.register("unit_rates", pd.DataFrame({"service": ["a"], "eur": [1.0]}))  # no client_id: never narrowed
    seen, last = [], None
    for k in range(parts):
        engine.restrict(parts, k)
        ids = engine.query("SELECT client_id, x FROM events")
        assert len(engine.query("SELECT * FROM unit_rates")) == 1
        seen += ids["x"].tolist()
        present = sorted(ids["client_id"].dropna())
        if present:
            assert last is None or present[0] > last  # ranges ascend
            last = present[-1]
    engine.restrict(None)
    assert sorted(seen) == list(range(6))
    assert len(engine.query("SELECT * FROM events")) == 6
    engine.close()


def test_optimizers_that_rescan_parquet_are_off():
    """DuckDB 2.0's partitioned_execution re-read a Parquet file once per value of a group key: it is disabled."""
    from features.histories.engine import SLOW_OPTIMIZERS

    engine = DuckDBEngine()
    try:
        known = set(engine.query("SELECT name FROM duckdb_optimizers()")["name"])
        off = engine.query("SELECT current_setting('disabled_optimizers') AS v")["v"].iloc[0]
        for name in SLOW_OPTIMIZERS:
            assert (name in off.split(",")) == (name in known)
    finally:
        engine.close()


@pytest.mark.parametrize("value", ["abc", "lots GB"])
def test_a_wrong_memory_limit_names_its_variable(monkeypatch, value):
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match="SOTE_DUCKDB_MEMORY_LIMIT=.*not a memory size"):
        DuckDBEngine()
    with pytest.raises(ValueError, match="memory_limit='12 parsecs'"):
        DuckDBEngine(memory_limit="12 parsecs")
