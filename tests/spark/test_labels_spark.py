"""Labels on the Spark cluster equal the one-machine labels for every built-in target; the quantile is numpy's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.targets.labels import build_labels, load_targets
from features.targets.labels_spark import build_labels_spark, linear_quantile, read_labels

pytestmark = pytest.mark.spark

AS_OF = "2024-01-01"


def assert_same_labels(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """The same clients in the same order, every column equal (costs and thresholds to the last bit)."""
    assert got["client_id"].tolist() == expected["client_id"].tolist()
    assert list(got.columns) == list(expected.columns)
    for col in expected.columns:
        a, b = expected[col], got[col]
        if col == "as_of":
            assert (pd.to_datetime(a) == pd.to_datetime(b)).all()
        elif a.dtype.kind == "f":
            np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float), err_msg=col)
        else:
            assert a.astype(object).tolist() == b.astype(object).tolist(), col


@pytest.mark.parametrize("seed", range(4))
def test_linear_quantile_from_two_order_statistics_is_numpys_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 7, 10, 101, 1000):
        values = np.round(rng.gamma(0.5, 3000.0, n), 2) if seed % 2 else rng.integers(0, 5, n).astype(float)
        ordered = np.sort(values)
        for q in (0.0, 0.1, 0.5, 0.8, 0.9, 0.95, 0.999, 1.0):
            got = linear_quantile(n, q, lambda positions: [ordered[p] for p in positions])
            assert got == float(np.quantile(values, q)), (n, q)
    assert np.isnan(linear_quantile(0, 0.9, lambda positions: []))


def test_labels_of_every_target_equal_on_spark_and_duckdb(small_county, spark_engine, tmp_path):
    """Cohorts with a prior-cost bound, diagnosis groups, ages and look-backs; cost, count, start and assessment
    outcomes; thresholds over the cohort and over the whole population: the same rows and labels."""
    _, dataset = small_county
    targets = load_targets()
    assert {"high_use", "rising_high_use", "elderly_low_function", "young_adult_mhsu", "diabetes_high_use"} <= set(targets)
    positive = {}
    for name, target in targets.items():
        expected = build_labels(dataset, AS_OF, target)
        info = build_labels_spark(dataset, AS_OF, target, tmp_path / name, engine=spark_engine)
        got = read_labels(tmp_path / name)
        assert (tmp_path / name / "_SUCCESS").is_file()
        assert info["rows"] == len(expected) and info["positive"] == int(expected["label"].sum())
        assert_same_labels(expected, got)
        positive[name] = (len(expected), int(expected["label"].sum()))
    # the parity would hold vacuously on empty cohorts or labels all 0: the county has members and positives
    assert all(n > 0 and 0 < p < n for n, p in positive.values()), positive
    # rising_high_use's cohort is cut by the population's prior-cost quantile: some of the population left out
    assert positive["rising_high_use"][0] < positive["high_use"][0]
