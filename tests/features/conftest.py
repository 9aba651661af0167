import pytest

from history_data import make_county  # tests/features is on sys.path as a conftest folder (pytest's prepend mode)


@pytest.fixture(scope="session")
def county():
    """A seeded 120-client county covering all five tables and the awkward cases."""
    return make_county(120, seed=7)
