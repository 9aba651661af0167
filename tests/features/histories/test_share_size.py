"""How many clients one feature query takes: from the engine's memory limit, or told."""
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.histories.build import CLIENTS_PER_GIB, CLIENTS_PER_QUERY, ClientHistories, default_clients_per_query
from features.histories.engine import DuckDBEngine, parse_size


@pytest.mark.parametrize("text, expected", [("5.4 GiB", int(5.4 * 2**30)), ("8GB", 8 * 10**9),
                                            ("512.0 MiB", 512 * 2**20), ("300 KB", 300_000),
                                            ("1.3 TiB", int(1.3 * 2**40)), ("42", 42)])
def test_sizes_as_duckdb_writes_them(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "5 parsecs", "-1GB", "1,5GB"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_share_size_follows_the_memory_limit():
    """130,000 clients a GiB of DuckDB's limit, rounded to 10,000; never under 10,000."""
    engines = [DuckDBEngine(threads=1, memory_limit=m) for m in ("4GiB", "2GB", "50MB")]
    try:
        # 2 GB: DuckDB reports "1.8 GiB", so 234,000 rounded to 230,000
        assert [default_clients_per_query(e) for e in engines] == [4 * CLIENTS_PER_GIB, 230_000, 10_000]
    finally:
        for e in engines:
            e.close()

    class NoLimit:  # an engine that says nothing of its memory
        pass

    assert default_clients_per_query(NoLimit()) == CLIENTS_PER_QUERY


def test_the_limit_from_the_environment_sizes_the_shares(county, monkeypatch):
    monkeypatch.delenv("SOTE_CLIENTS_PER_QUERY", raising=False)
    monkeypatch.setenv("SOTE_DUCKDB_MEMORY_LIMIT", "1GiB")
    with ClientHistories(county, validate=False) as h:
        assert h.clients_per_query == CLIENTS_PER_GIB
    monkeypatch.setenv("SOTE_CLIENTS_PER_QUERY", "40")  # a count wins over the limit
    with ClientHistories(county, validate=False) as h:
        assert h.clients_per_query == 40
        assert h.shares() == -(-len(county["clients"]) // 40)
    with ClientHistories(county, validate=False, clients_per_query=70) as h:  # and the argument over both
        assert h.clients_per_query == 70


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1e6"])
def test_a_wrong_count_in_the_environment_names_the_variable(county, monkeypatch, value):
    monkeypatch.setenv("SOTE_CLIENTS_PER_QUERY", value)
    with pytest.raises(ValueError, match="SOTE_CLIENTS_PER_QUERY.*positive whole number"):
        ClientHistories(county, validate=False)


def test_one_file_in_shares_is_ordered_when_the_parts_are_joined(tmp_path):
    """order_by with shares: each share's query unordered, the one file in order (and equal run to run)."""
    engine = DuckDBEngine(threads=2)
    ids = [f"c{i:04d}" for i in range(3000)]
    engine.register("clients", pd.DataFrame({"client_id": ids[::-1]}))
    engine.register("events", pd.DataFrame({"client_id": ids * 2, "x": range(6000)}))
    sql = "SELECT client_id, SUM(x) AS x FROM events GROUP BY client_id"
    try:
        for name in ("a.parquet", "b.parquet"):
            rows = engine.write(sql, tmp_path / name, shares=4, order_by="client_id")
            assert rows == 3000
    finally:
        engine.close()
    got = pq.read_table(tmp_path / "a.parquet").to_pandas()
    assert got["client_id"].tolist() == ids
    assert got["x"].tolist() == [2 * i + 3000 for i in range(3000)]
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
