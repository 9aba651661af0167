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
