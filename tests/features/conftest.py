import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/pandas_reference.py is imported by the tests
    sys.path.insert(0, str(ROOT))

from history_data import make_county  # noqa: E402


@pytest.fixture(scope="session")
def county():
    """A seeded 120-client county covering all five tables and the awkward cases."""
    return make_county(120, seed=7)
