"""The issue's parity county: 20,000 seeded clients, features, labels and risk lists on the two-worker cluster (slow)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.histories.build import ClientHistories
from features.histories.engine import read_parquet_output
from features.histories.output import read_features, write_features

from test_features_spark import assert_same_features

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = "2024-01-01"


@pytest.fixture(scope="module")
def county_20k(tmp_path_factory):
    from features.contract.stream import open_dataset
    from features.synth import SynthConfig, generate_county

    path = tmp_path_factory.mktemp("county20k") / "county"
    generate_county(path, SynthConfig(clients=20_000, seed=20, truth_reps=1, workers=1))
    with open_dataset(path) as dataset:
        yield path, dataset


def test_features_of_20000_clients_equal_on_spark_and_duckdb(county_20k, spark_engine, tmp_path):
    _, dataset = county_20k
    with ClientHistories(dataset) as duck:
        expected = duck.features(AS_OF)
        spec = duck.spec
    with ClientHistories(dataset, engine=spark_engine) as spark:
        write_features(spark, AS_OF, tmp_path / "spark")
    assert len(expected) > 15_000
    assert_same_features(expected, read_features(tmp_path / "spark", spec))


def test_risk_lists_of_20000_clients_equal_on_spark_and_duckdb(county_20k, spark_engine, tmp_path):
    from features.contract.load import load_tables
    from models.scoring import score
    from models.scoring_spark import score_spark
    from models.train import TrainConfig, train

    path, dataset = county_20k
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train(load_tables(path), TrainConfig(target="high_use", n_estimators=200), register=True, tracking_uri=uri)
    model = "models:/high_use@champion"
    score(model, dataset, AS_OF, tmp_path / "duck.parquet", tracking_uri=uri, explain_share=0.2)
    score_spark(model, dataset, AS_OF, tmp_path / "spark.parquet", engine=spark_engine, tracking_uri=uri,
                explain_share=0.2)
    expected = pd.read_parquet(tmp_path / "duck.parquet")
    got = read_parquet_output(tmp_path / "spark.parquet").to_pandas().sort_values("rank", ignore_index=True)
    assert got["client_id"].tolist() == expected["client_id"].tolist()
    assert got["rank"].tolist() == expected["rank"].tolist()
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-9)
    for col in ("reasons_fi", "reasons_sv", "reasons_en", "reason_types", "segment", "data_digest"):
        a, b = expected[col].astype(object), got[col].astype(object)
        assert ((a.isna() & b.isna()) | (a == b)).all(), col


def test_labels_of_20000_clients_equal_on_spark_and_duckdb(county_20k, spark_engine, tmp_path):
    from features.targets.labels import build_labels, load_targets
    from features.targets.labels_spark import build_labels_spark, read_labels

    from test_labels_spark import assert_same_labels

    _, dataset = county_20k
    for name, target in load_targets().items():
        expected = build_labels(dataset, AS_OF, target)
        build_labels_spark(dataset, AS_OF, target, tmp_path / name, engine=spark_engine)
        assert len(expected) > 100 and expected["label"].sum() > 0, name
        assert_same_labels(expected, read_labels(tmp_path / name))
