"""Features on a standalone Spark cluster equal DuckDB's cell for cell; bad input gives the same contract errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract.outputs import is_temp
from features.histories.build import ClientHistories
from features.histories.output import read_features, write_features

pytestmark = pytest.mark.spark

AS_OF = "2024-01-01"


def assert_same_features(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same clients, same columns and dtypes; integers and text equal, floats within 1e-9, nulls where nulls are."""
    assert list(got.columns) == list(expected.columns)
    assert got["client_id"].tolist() == expected["client_id"].tolist()
    problems = []
    for col in expected.columns:
        a, b = expected[col], got[col]
        assert a.dtype == b.dtype, f"{col}: {a.dtype} != {b.dtype}"
        if a.dtype.kind == "f":
            same = (a.isna() & b.isna()) | (np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(a)))
        else:
            same = a.astype(object) == b.astype(object)
        if not same.all():
            problems.append(f"{col}: {int((~same).sum())} cell(s) differ, e.g. {a[~same].iloc[0]!r} vs {b[~same].iloc[0]!r}")
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="module")
def both(spark_engine, small_county, tmp_path_factory):
    """The features as of AS_OF by DuckDB (in pandas and written) and written by Spark on the cluster."""
    _, dataset = small_county
    root = tmp_path_factory.mktemp("spark_features")
    with ClientHistories(dataset) as duck:
        expected = duck.features(AS_OF)
        write_features(duck, AS_OF, root / "duckdb")
        spec = duck.spec
    with ClientHistories(dataset, engine=spark_engine) as spark:
        write_features(spark, AS_OF, root / "spark")
    return spec, expected, root


def test_spark_features_equal_duckdb_cell_for_cell(both):
    spec, expected, root = both
    got = read_features(root / "spark", spec)
    assert len(expected) > 500 and expected.shape[1] > 200
    # the parity would pass vacuously on empty or constant columns: the county fills them
    assert expected["emergency_count_365d"].gt(0).any() and expected["hba1c_last"].isna().any()
    assert expected["hba1c_last"].notna().any() and expected["continuity_unit_730d"].notna().any()
    assert_same_features(expected, got)


def test_duckdb_written_folder_equals_its_pandas_result(both):
    spec, expected, root = both
    assert_same_features(expected, read_features(root / "duckdb", spec))


def test_spark_writes_a_folder_partitioned_by_municipality_with_a_marker(both):
    _, expected, root = both
    folder = root / "spark"
    assert (folder / "_SUCCESS").is_file()
    parts = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert parts == sorted(f"municipality={m}" for m in expected["municipality"].unique())
    assert not [p for p in root.iterdir() if is_temp(p.name)]  # no temporary folder left behind


def test_spark_sql_is_the_transpiled_duckdb_sql(spark_engine, small_county):
    from features.histories.engine_spark import to_spark_sql

    _, dataset = small_county
    with ClientHistories(dataset, engine=spark_engine) as h:
        sql = h.sql(AS_OF)
    spark_sql = to_spark_sql(sql)
    assert "DATEDIFF" in spark_sql.upper() and spark_sql != sql


def test_bad_input_gives_the_same_contract_error_before_spark_runs(spark_engine, small_county, tmp_path):
    """Validation runs before the engine: a county with a broken contract fails alike with DuckDB and Spark."""
    from features.contract.validation import ContractError

    path, _ = small_county
    bad = tmp_path / "bad"
    bad.mkdir()
    for table in path.glob("*.parquet"):
        frame = pd.read_parquet(table)
        if table.stem == "events":
            frame["service"] = frame["service"].astype(str)
            frame.loc[frame.index[:3], "service"] = "teleportation"  # not a service line of the contract
        frame.to_parquet(bad / table.name)
    for extra in path.iterdir():
        if extra.suffix != ".parquet" and extra.is_file():
            (bad / extra.name).write_bytes(extra.read_bytes())
    errors = {}
    for name, engine in (("duckdb", None), ("spark", spark_engine)):
        with pytest.raises(ContractError) as caught:
            ClientHistories(bad, engine=engine)
        errors[name] = caught.value.report.to_text()
    assert errors["spark"] == errors["duckdb"]
    assert "events" in errors["spark"] and "service" in errors["spark"] and "teleportation" in errors["spark"]


def test_a_failed_spark_write_leaves_the_earlier_output_and_no_temporary(spark, tmp_path):
    """A task failing on an executor mid-write: the folder written before is intact, nothing half-written remains."""
    from features.histories.engine import output_digest
    from features.histories.engine_spark import write_frame

    good = spark.range(200).selectExpr("id", "CAST(id % 3 AS STRING) AS part")
    write_frame(good, tmp_path / "out", partition_by=["part"])
    before = output_digest(tmp_path / "out")
    bad = spark.range(200).selectExpr("CASE WHEN id = 150 THEN raise_error('boom') ELSE id END AS id",
                                      "CAST(id % 3 AS STRING) AS part")
    with pytest.raises(Exception, match="boom"):
        write_frame(bad, tmp_path / "out", partition_by=["part"])
    assert output_digest(tmp_path / "out") == before
    assert not [p for p in tmp_path.iterdir() if is_temp(p.name)]


def test_an_engine_that_found_the_session_running_does_not_stop_it(spark, spark_master):
    """A command run in a notebook (or a test) with a live session reuses it and leaves it running."""
    from features.histories.engine_spark import SparkEngine

    engine = SparkEngine(master=spark_master)
    assert engine.spark is spark
    engine.close()
    assert spark.range(3).count() == 3  # stopped before the fix: "Cannot call methods on a stopped SparkContext"
