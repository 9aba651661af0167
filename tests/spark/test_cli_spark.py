"""``sote features`` and ``sote score`` with ``--engine spark --spark-master`` on the cluster (slow: a full run each)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.histories.engine import SUCCESS, read_parquet_output
from sote.cli import app

pytestmark = [pytest.mark.spark, pytest.mark.slow]

runner = CliRunner()


def test_sote_features_and_score_on_the_cluster(small_county, small_model, spark_master, spark, tmp_path):
    path, _ = small_county
    features = runner.invoke(app, ["features", "--data", str(path), "--as-of", "2024-01-01",
                                   "--out", str(tmp_path / "features"), "--engine", "spark",
                                   "--spark-master", spark_master])
    assert features.exit_code == 0, features.output
    assert (tmp_path / "features" / SUCCESS).is_file() and "written by Spark" in " ".join(features.output.split())
    scored = runner.invoke(app, ["score", "--data", str(path), "--as-of", "2024-01-01", "--tracking-uri", small_model,
                                 "--out", str(tmp_path / "risk.parquet"), "--engine", "spark",
                                 "--spark-master", spark_master, "--reasons", "2"])
    assert scored.exit_code == 0, scored.output
    sidecar = json.loads((tmp_path / "risk.parquet.json").read_text())
    risk = read_parquet_output(tmp_path / "risk.parquet").to_pandas()
    assert sidecar["rows"] == len(risk) > 500 and sidecar["engine"] == "spark"
    assert len(read_parquet_output(tmp_path / "features").to_pandas()) == sidecar["resident"]
    assert pd.Series(risk["rank"]).sort_values().tolist() == list(range(1, len(risk) + 1))


def test_sote_labels_on_the_cluster_writes_duckdbs_labels(small_county, spark_master, spark, tmp_path):
    from test_labels_spark import assert_same_labels

    from features.targets.labels_spark import read_labels

    path, _ = small_county
    common = ["labels", "--data", str(path), "--as-of", "2023-01-01", "--target", "rising_high_use"]
    duck = runner.invoke(app, [*common, "--out", str(tmp_path / "labels.parquet")])
    assert duck.exit_code == 0, duck.output
    on_spark = runner.invoke(app, [*common, "--out", str(tmp_path / "labels"), "--engine", "spark",
                                   "--spark-master", spark_master])
    assert on_spark.exit_code == 0, on_spark.output
    assert "written by Spark" in " ".join(on_spark.output.split()) and (tmp_path / "labels" / SUCCESS).is_file()
    assert_same_labels(pd.read_parquet(tmp_path / "labels.parquet"), read_labels(tmp_path / "labels"))
