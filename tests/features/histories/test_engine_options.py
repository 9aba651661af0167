"""``--engine`` on sote features and sote score: options checked first, and the data contract before any engine."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sote.app import ExitCode
from sote.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def broken(county, tmp_path_factory):
    """The history tests' county as Parquet: it breaks the contract (records after deaths, unknown clients)."""
    folder = tmp_path_factory.mktemp("broken") / "county"
    folder.mkdir()
    for name, frame in county.items():
        frame.to_parquet(folder / f"{name}.parquet")
    return folder


@pytest.mark.parametrize("command", ["features", "score"])
def test_engine_must_be_duckdb_or_spark_and_the_master_goes_with_spark(broken, tmp_path, command):
    base = [command, "--data", str(broken), "--as-of", "2024-01-01", "--out", str(tmp_path / "x.parquet")]
    result = runner.invoke(app, base + ["--engine", "bigquery"])
    assert result.exit_code == ExitCode.USER_ERROR and "--engine must be duckdb or spark" in result.output
    result = runner.invoke(app, base + ["--spark-master", "spark://h:7077"])
    assert result.exit_code == ExitCode.USER_ERROR and "--spark-master goes with --engine spark" in result.output
    assert not (tmp_path / "x.parquet").exists()


def test_spark_features_on_broken_data_fail_with_duckdbs_contract_report_before_spark_starts(
        broken, tmp_path, monkeypatch):
    import features.histories.engine_spark as engine_spark

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark was started before the data were validated")

    monkeypatch.setattr(engine_spark, "SparkEngine", no_spark)
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"features_{engine}"
        result = runner.invoke(app, ["features", "--data", str(broken), "--as-of", "2024-01-01",
                                     "--out", str(out) + (".parquet" if engine == "duckdb" else ""),
                                     "--engine", engine])
        assert result.exit_code == ExitCode.DATA_INVALID, result.output
        outputs[engine] = result.output
        assert not out.exists()
    assert outputs["spark"] == outputs["duckdb"]
    assert "breaks the data contract" in outputs["spark"] and "death_date" in outputs["spark"]


def test_batch_job_engine_key_is_checked(tmp_path):
    import yaml

    config = tmp_path / "job.yaml"
    for settings, named in (({"engine": "bigquery"}, "engine: 'bigquery' is not one of"),
                            ({"spark_master": "spark://h:7077"}, "spark_master goes with engine: spark")):
        config.write_text(yaml.safe_dump({"data": "d", "as_of": "2024-01-01", "out": "o", **settings}))
        result = runner.invoke(app, ["batch", "--config", str(config)])
        assert result.exit_code == ExitCode.USER_ERROR and named in result.output, result.output


@pytest.mark.parametrize("per_query", ["1000000", "40"])
def test_features_command_writes_clienthistories_table_sorted_by_client(broken, county, tmp_path, monkeypatch,
                                                                        per_query):
    """A .parquet --out is written by DuckDB (in shares below the threshold): the same rows, order and types."""
    import pandas as pd

    from features.histories.build import ClientHistories

    monkeypatch.setenv("SOTE_CLIENTS_PER_QUERY", per_query)
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(broken), "--as-of", "2024-01-01", "--out", str(out),
                                 "--no-validate"])
    assert result.exit_code == 0, result.output
    with ClientHistories(county, validate=False) as h:
        expected = h.features("2024-01-01")
        assert h.shares() == (1 if per_query == "1000000" else 3)
    got = pd.read_parquet(out)
    assert got["client_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    assert f"{len(expected):,} clients x {expected.shape[1] - 1} features" in result.output
