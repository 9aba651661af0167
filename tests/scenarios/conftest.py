"""Shared fixtures of the scenario tests: one small synthetic county, its histories (features cached) and
the population that actually lived there 2021-2024."""
import pytest

from features.contract.load import load_tables
from features.histories.build import ClientHistories
from features.synth import SynthConfig, generate_county


@pytest.fixture(scope="session")
def sc_county(tmp_path_factory):
    """A 1,500-resident synthetic county (seed 5), 2019-2025."""
    path = tmp_path_factory.mktemp("scen") / "county"
    generate_county(path, SynthConfig(clients=1_500, seed=5, truth_reps=1, workers=1, chunk_size=1_500))
    return path


@pytest.fixture(scope="session")
def sc_tables(sc_county):
    return load_tables(sc_county)


@pytest.fixture(scope="session")
def sc_histories(sc_tables):
    histories = ClientHistories(sc_tables, cache=True)  # each date's features built once
    yield histories
    if hasattr(histories, "close"):
        histories.close()


@pytest.fixture(scope="session")
def sc_observed(sc_tables):
    from scenarios.projection_synth import observed_projection

    return observed_projection(sc_tables, range(2021, 2025))
