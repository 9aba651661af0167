"""Features for a given set of clients only: the full table's rows for those ids, built by a restricted query."""
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from features.histories.build import ClientHistories
from features.histories.output import read_features, write_features
from features.histories.sql import SELECTED

T = "2024-01-01"
BASE_TABLES = {"clients", "events", "diagnoses", "measurements", "assessments"}


@pytest.fixture(scope="module")
def histories(county):
    with ClientHistories(county, validate=False) as h:
        yield h


@pytest.fixture(scope="module")
def full(histories):
    return histories.features(T)


def _outside(county, full) -> list[str]:
    """Ids in the clients table but not in the population at T (dead, unborn or moved away)."""
    return sorted(set(county["clients"]["client_id"]) - set(full["client_id"]))


def test_selected_rows_equal_the_full_tables_rows_and_others_are_absent(county, histories, full):
    outside = _outside(county, full)
    assert outside, "the fixture county has clients outside the population at T"
    chosen = list(full["client_id"].iloc[::3])
    ids = pd.Index(chosen[::-1] + chosen[:4] + outside[:3] + ["no-such-client"])  # unsorted, duplicated, absent
    got = histories.features(T, clients=ids)
    expected = full[full["client_id"].isin(chosen)].reset_index(drop=True)
    assert len(got) == len(chosen) > 20
    pd.testing.assert_frame_equal(got, expected)
    assert not set(got["client_id"]) & set(outside)


def test_selection_in_shares_equals_one_query(county, full):
    chosen = set(full["client_id"].iloc[::2]) | set(_outside(county, full))
    with ClientHistories(county, validate=False, clients_per_query=30) as h:
        h.select_clients(chosen)
        assert h.shares() >= 3
        # a small selection still runs in the population's id-range shares: DuckDB does not push the
        # semi-join below every aggregate, so memory follows the range, not the selection
        population = h.shares()
        assert h.select_clients(list(chosen)[:5]) == 5
        assert h.shares() == population >= 3
        got = h.features(T, clients=chosen)  # a set works too
        # the restriction is lifted afterwards: every client again
        assert h.engine.query("SELECT count(*) AS n FROM clients")["n"].iloc[0] == len(county["clients"])
    pd.testing.assert_frame_equal(got, full[full["client_id"].isin(chosen)].reset_index(drop=True))


def test_no_selected_client_gives_a_typed_empty_table(histories, full):
    for ids in ([], ["no-such-client"]):
        got = histories.features(T, clients=ids)
        assert len(got) == 0 and list(got.columns) == list(full.columns)
        assert list(got.dtypes) == list(full.dtypes)
    with pytest.raises(TypeError, match="not one id as text"):
        histories.features(T, clients="c001")


def test_every_table_read_keeps_only_the_selected_clients(histories):
    """Each SELECT reading a data table filters it by ``client_id IN (SELECT client_id FROM selected_clients)``."""
    tree = sqlglot.parse_one(histories.sql(T, SELECTED), read="duckdb")
    reads = [t for t in tree.find_all(exp.Table) if t.name in BASE_TABLES]
    assert {t.name for t in reads} == BASE_TABLES and len(reads) >= 7
    for table in reads:
        where = table.find_ancestor(exp.Select).args.get("where")
        semi = [i for i in where.find_all(exp.In) if i.this.name == "client_id" and i.args.get("query")]
        assert semi and semi[0].args["query"].find(exp.Table).name == SELECTED, table.sql()
    assert SELECTED not in histories.sql(T)


def test_selected_sql_transpiles_to_spark(histories):
    spark = sqlglot.transpile(histories.sql(T, SELECTED), read="duckdb", write="spark",
                              unsupported_level=sqlglot.ErrorLevel.RAISE)
    assert len(spark) == 1 and f"IN (SELECT client_id FROM {SELECTED})" in spark[0]


@pytest.mark.parametrize("per_query", [400_000, 20])
def test_written_selection_reads_back_as_the_selected_rows(county, full, tmp_path, per_query):
    chosen = list(full["client_id"].iloc[1::4])
    with ClientHistories(county, validate=False, clients_per_query=per_query) as h:
        write_features(h, T, tmp_path / "folder", clients=chosen)
        write_features(h, T, tmp_path / "one.parquet", partition_by=None, clients=chosen)
        spec = h.spec
    expected = full[full["client_id"].isin(chosen)].reset_index(drop=True)
    for path in (tmp_path / "folder", tmp_path / "one.parquet"):
        pd.testing.assert_frame_equal(read_features(path, spec), expected, check_exact=False, rtol=1e-12)
