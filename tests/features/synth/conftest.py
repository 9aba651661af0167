import pytest

from features.contract.load import load_tables
from features.synth import SynthConfig, generate_county


@pytest.fixture(scope="session")
def small_county(tmp_path_factory):
    """A 6,000-resident county (with few truth replicates) shared by the synth tests."""
    out = tmp_path_factory.mktemp("county") / "data"
    manifest = generate_county(out, SynthConfig(clients=6_000, seed=11, truth_reps=8, workers=1))
    return out, manifest


@pytest.fixture(scope="session")
def small_tables(small_county):
    return load_tables(small_county[0]).tables
