"""A training set built on Spark is the one-machine training set: same rows, sample, features and labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.targets.labels import build_training_set
from features.targets.training_spark import build_training_set_spark

pytestmark = pytest.mark.spark

DATES = ["2023-01-01", "2024-01-01"]
SPEC = str(Path(__file__).with_name("scoring_spec.yaml"))  # a short spec: Spark plans the full one for minutes;
# the full spec's parity is the features tests'; here the sampling, the join and the stacking are under test


def assert_same_training_set(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same columns, dtypes, rows and order; features within 1e-9 (the engines' sums), labels and costs exact."""
    assert list(got.columns) == list(expected.columns)
    assert got["client_id"].tolist() == expected["client_id"].tolist()
    assert (got["as_of"] == expected["as_of"]).all()
    assert got.attrs["rows_available"] == expected.attrs["rows_available"]
    for col in expected.columns:
        a, b = expected[col], got[col]
        assert a.dtype == b.dtype, col
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=0, atol=1e-9, equal_nan=True,
                                       err_msg=col)
        else:
            assert a.astype(object).tolist() == b.astype(object).tolist(), col


def test_sampled_training_set_on_spark_equals_the_one_machine_sample(small_county, spark_engine, tmp_path):
    _, dataset = small_county
    expected = build_training_set(dataset, DATES, "high_use", SPEC, max_rows=700, seed=3)
    got = build_training_set_spark(dataset, DATES, "high_use", SPEC, engine=spark_engine, max_rows=700, seed=3,
                                   workdir=tmp_path)
    assert_same_training_set(expected, got)
    # the sample is real: each date's cohort is larger than 700, both labels are kept in the cohort's shares
    assert all(n > 700 for n in got.attrs["rows_available"]) and len(got) == 1400
    assert 0 < got["label"].mean() < 1
    assert list(tmp_path.iterdir()) == []  # the labels' scratch folder is gone


def test_unsampled_training_set_on_spark_equals_the_one_machine_set(small_county, spark_engine, tmp_path):
    _, dataset = small_county
    expected = build_training_set(dataset, DATES[1:], "rising_high_use", SPEC)
    got = build_training_set_spark(dataset, DATES[1:], "rising_high_use", SPEC, engine=spark_engine,
                                   workdir=tmp_path)
    assert_same_training_set(expected, got)
    assert len(got) == got.attrs["rows_available"][0] > 0
