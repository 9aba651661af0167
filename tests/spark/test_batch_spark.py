"""``sote batch`` with ``engine: spark``: features and the risk list written by Spark, the same list as DuckDB's (slow)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.histories.engine import SUCCESS, read_parquet_output
from sote.cli import app

pytestmark = [pytest.mark.spark, pytest.mark.slow]

runner = CliRunner()


def test_a_batch_job_on_spark_publishes_folders_and_the_duckdb_list(small_county, small_model, spark_master, spark,
                                                                     tmp_path):
    path, _ = small_county
    summaries = {}
    for engine in ("duckdb", "spark"):
        job = {"data": str(path), "as_of": "2024-01-01", "out": str(tmp_path / engine), "tracking_uri": small_model,
               "reasons": 2, "explain_share": 0.2, "monitor": False, "engine": engine}
        if engine == "spark":
            job["spark_master"] = spark_master
        config = tmp_path / f"{engine}.yaml"
        config.write_text(yaml.safe_dump(job), encoding="utf-8")
        result = runner.invoke(app, ["batch", "--config", str(config)])
        assert result.exit_code == 0, result.output
        summaries[engine] = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    folder = tmp_path / "spark" / "2024-01-01"
    assert (folder / "features.parquet" / SUCCESS).is_file() and (folder / "risklist.parquet" / SUCCESS).is_file()
    assert set(summaries["spark"]["outputs"]) >= {"features.parquet", "risklist.parquet", "risklist.parquet.json"}
    expected = pd.read_parquet(tmp_path / "duckdb" / "2024-01-01" / "risklist.parquet")
    got = read_parquet_output(folder / "risklist.parquet").to_pandas().sort_values("rank", ignore_index=True)
    assert got["client_id"].tolist() == expected["client_id"].tolist()
    assert (got["reasons_en"].fillna("-") == expected["reasons_en"].fillna("-")).all()
    assert summaries["spark"]["steps"][2]["rows_out"] == summaries["duckdb"]["steps"][2]["rows_out"] == len(expected)
