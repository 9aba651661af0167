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


def _population_ids(dataset) -> set[str]:
    from features.targets.labels import population

    return set(population(dataset.read("clients"), AS_OF).index)


def test_current_use_flags_on_the_executors_equal_the_one_machine_flags(small_county, spark_engine):
    """The flags' prior cost (in cents), threshold, top flag and ongoing intensive care, client by client."""
    from features.targets.labels import current_use_flags
    from features.targets.labels_spark import CurrentUse

    _, dataset = small_county
    expected = current_use_flags(dataset, AS_OF)
    use = CurrentUse.compute(dataset, AS_OF, engine=spark_engine)
    try:
        rows = use.frame.toPandas().sort_values("client_id", ignore_index=True)
        flags = use.flags().toPandas().sort_values("client_id", ignore_index=True)
        members = set(use.members().toPandas()["client_id"])
    finally:
        use.unpersist()
    assert rows["client_id"].tolist() == flags["client_id"].tolist() == expected["client_id"].tolist()
    assert use.threshold == float(expected["prior_cost_threshold"].iloc[0])  # equal to the bit, not within 1e-9
    np.testing.assert_array_equal(rows["prior_cost"].to_numpy(float), expected["prior_cost"].to_numpy(float))
    assert flags["intensive_ongoing"].tolist() == expected["intensive_ongoing"].tolist()
    assert flags["prior_high_use"].tolist() == expected["prior_top"].tolist()
    assert members == set(expected["client_id"])  # no cohort: the whole population
    # not vacuous: the county has clients in intensive care at T, and a top decile below the whole population
    assert 0 < expected["intensive_ongoing"].sum() < len(expected)
    assert 0 < expected["prior_top"].sum() < len(expected) // 5


def test_cohorts_on_the_executors_equal_the_one_machine_cohorts(small_county, spark_engine):
    """Every built-in target's cohort (ages, diagnosis groups, look-backs, ongoing episodes, the prior-cost bound
    over the whole population): the same members from the per-bucket pass and the cluster's quantile."""
    from features.targets.labels import cohort_members, prior_cost
    from features.targets.labels_spark import CurrentUse
    from features.targets.spec import Cohort

    _, dataset = small_county
    population = _population_ids(dataset)
    cohorts = {name: t.cohort for name, t in load_targets().items() if t.cohort != Cohort()}
    assert {"rising_high_use", "elderly_low_function", "young_adult_mhsu", "diabetes_high_use"} <= set(cohorts)
    for name, cohort in cohorts.items():
        expected = set(cohort_members(dataset, AS_OF, cohort).index)
        use = CurrentUse.compute(dataset, AS_OF, engine=spark_engine, cohort=cohort)
        try:
            got = use.members().toPandas()["client_id"].tolist()
        finally:
            use.unpersist()
        assert len(got) == len(set(got)), name
        assert set(got) == expected, f"{name}: {len(set(got) ^ expected)} client(s) differ"
        assert 0 < len(expected) < len(population), (name, len(expected))
        if cohort.max_prior_cost_quantile is not None:  # the bound: numpy's quantile of the cents, to the bit
            cost = prior_cost(dataset, AS_OF, cohort.prior_window_days).round(2).to_numpy(float)
            assert use.cohort_threshold == float(np.quantile(cost, cohort.max_prior_cost_quantile)), name
        else:
            assert use.cohort_threshold is None
