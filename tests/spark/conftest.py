"""Spark fixtures: a real standalone cluster (a master and two workers on 127.0.0.1) and a driver session on it.

These tests run after the default suite (``make test`` runs ``pytest -m spark tests/spark``). Without Java
or pyspark they are skipped with the reason, except under ``CI=true``, where a missing component fails the
run. The cluster starts once per session (about 10-20 s of JVM start-up) and is stopped at the end; the
terminal summary holds one line counting the Spark tests ("spark summary: ...").

The county is small on purpose (the stage's budget is about five minutes with the JVMs' start-up);
the 20,000-client parity of the issue is ``test_parity_20k.py``, marked slow as well.
"""
from __future__ import annotations

import os
import sys

import pytest

from spark_cluster import standalone_cluster, what_is_missing

#: Clients in the small county every Spark test shares.
COUNTY_CLIENTS = 800
_SPARK_KEY = pytest.StashKey[dict]()


def in_ci() -> bool:
    """True when ``CI`` is set to true: a missing Java or pyspark then fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Every test under tests/spark is a Spark test."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark_master(tmp_path_factory):
    """The master URL of a standalone cluster of two one-core workers, stopped at the session's end."""
    reason = what_is_missing()
    if reason is not None:
        if in_ci():
            pytest.fail(f"Spark is required when CI=true: {reason}", pytrace=False)
        pytest.skip(f"Spark not available: {reason}")
    with standalone_cluster(tmp_path_factory.mktemp("spark_cluster"), workers=2, worker_memory="1g") as master:
        yield master


@pytest.fixture(scope="session")
def spark(spark_master):
    """A driver session on the cluster: one executor per worker (512 MB, one core), four shuffle partitions."""
    from features.histories.engine_spark import spark_session

    session = spark_session(spark_master, app_name="sote-tests", driver_memory="1g", executor_memory="512m",
                            shuffle_partitions=4,
                            config={"spark.executor.cores": "1", "spark.cores.max": "2",
                                    "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                                    "spark.pyspark.python": sys.executable})
    assert session.sparkContext.master == spark_master
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine(spark):
    """A :class:`SparkEngine` over the cluster session (closing it leaves the session running)."""
    from features.histories.engine_spark import SparkEngine

    return SparkEngine(spark)


@pytest.fixture(scope="session")
def small_county(tmp_path_factory):
    """A seeded synthetic county of :data:`COUNTY_CLIENTS` clients (valid under the contract) and its dataset."""
    from features.contract.stream import open_dataset
    from features.synth import SynthConfig, generate_county

    path = tmp_path_factory.mktemp("spark_county") / "county"
    generate_county(path, SynthConfig(clients=COUNTY_CLIENTS, seed=19, truth_reps=1, workers=1))
    with open_dataset(path) as dataset:
        yield path, dataset


@pytest.fixture(scope="session")
def small_model(small_county, tmp_path_factory):
    """``high_use`` trained (few trees, the small spec ``scoring_spec.yaml``) and registered; yields the tracking URI.

    The small spec keeps Spark's planning of the scoring's feature query short; the full spec's
    parity is the features test's (and the slow 20,000-client test scores with it).
    """
    from pathlib import Path

    from features.contract.load import load_tables
    from models.train import TrainConfig, train

    path, _ = small_county
    uri = f"sqlite:///{tmp_path_factory.mktemp('spark_mlflow') / 'mlflow.db'}"
    spec = Path(__file__).with_name("scoring_spec.yaml")
    train(load_tables(path), TrainConfig(target="high_use", spec=str(spec), n_estimators=60, early_stopping_rounds=20,
                                         shap_sample=300), register=True, tracking_uri=uri)
    return uri


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line: how many Spark tests passed, failed or were skipped."""
    seen: dict[str, str] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, ()):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid.startswith("tests/spark"):
                continue
            if seen.get(nodeid) in (None, "passed"):
                seen[nodeid] = "failed" if outcome == "error" else outcome
    if not seen:
        return
    states = list(seen.values())
    terminalreporter.write_line(f"spark summary: {states.count('passed')} passed, {states.count('failed')} failed, "
                                f"{states.count('skipped')} skipped on a standalone master and two workers"
                                + (" (CI=true)" if in_ci() else ""))
