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
    assert (tmp_path / "features" / SUCCESS).is_file() and "written by Spark" in features.output
    scored = runner.invoke(app, ["score", "--data", str(path), "--as-of", "2024-01-01", "--tracking-uri", small_model,
                                 "--out", str(tmp_path / "risk.parquet"), "--engine", "spark",
                                 "--spark-master", spark_master, "--reasons", "2"])
    assert scored.exit_code == 0, scored.output
    sidecar = json.loads((tmp_path / "risk.parquet.json").read_text())
    risk = read_parquet_output(tmp_path / "risk.parquet").to_pandas()
    assert sidecar["rows"] == len(risk) > 500 and sidecar["engine"] == "spark"
    assert len(read_parquet_output(tmp_path / "features").to_pandas()) == sidecar["resident"]
    assert pd.Series(risk["rank"]).sort_values().tolist() == list(range(1, len(risk) + 1))
