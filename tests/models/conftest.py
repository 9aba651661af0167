import pytest

from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county


@pytest.fixture(scope="session")
def county_3000(tmp_path_factory):
    """The 3,000-client county of issue 11 (seed 5): 96 young adults with MHSU contacts at the validation date."""
    path = tmp_path_factory.mktemp("county3000") / "county"
    generate_county(path, SynthConfig(clients=3_000, seed=5, truth_reps=1, workers=1))
    return path


@pytest.fixture(scope="session")
def tables_3000(county_3000):
    return load_tables(county_3000)


@pytest.fixture(scope="session")
def trained_3000(county_3000, tables_3000, tmp_path_factory):
    """``high_use`` trained (2023-01-01, judged 2024-01-01) and registered on the 3,000-client county.

    A namespace with ``data`` (the county folder), ``tables``, ``uri`` (its own MLflow store) and ``result``
    (:class:`models.train.TrainResult`). Shared by the monitoring, list-evaluation and label-bias tests.
    """
    from types import SimpleNamespace

    from models.train import TrainConfig, train

    uri = f"sqlite:///{tmp_path_factory.mktemp('trained3000') / 'mlflow.db'}"
    result = train(tables_3000, TrainConfig(target="high_use"), register=True, tracking_uri=uri)
    return SimpleNamespace(data=county_3000, tables=tables_3000, uri=uri, result=result)
