"""Features from a validated dataset (DuckDB scanning its Parquet) equal those of the tables in pandas."""
import pandas as pd
import pytest

from features.contract.load import load_tables, write_tables
from features.contract.stream import open_dataset
from features.histories.build import ClientHistories, build_features, load_source
from history_data import make_county

DATES = ("2023-01-01", "2024-01-01")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("lazyfeatures") / "county"
    write_tables(make_county(150, seed=5), path)  # breaks a few rules: read leniently
    return path


def _same(lazy: pd.DataFrame, eager: pd.DataFrame) -> None:
    """Integers and text equal; floats equal to 1e-12 relative (DuckDB may sum in another order)."""
    assert list(lazy.columns) == list(eager.columns) and len(lazy) == len(eager) > 0
    floats = [c for c in eager.columns if pd.api.types.is_float_dtype(eager[c])]
    pd.testing.assert_frame_equal(lazy.drop(columns=floats), eager.drop(columns=floats))
    pd.testing.assert_frame_equal(lazy[floats], eager[floats], check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("as_of", DATES)
def test_dataset_features_equal_in_memory_features(folder, as_of):
    with open_dataset(folder, lenient=True) as dataset:
        lazy = build_features(dataset, as_of)
        eager = build_features(dataset.to_tables(), as_of)
    _same(lazy, eager)


def test_a_dataset_is_scanned_not_loaded(folder):
    with open_dataset(folder, lenient=True) as dataset:
        source = load_source(dataset)
        assert source == dataset.paths()
        assert all(path.suffix == ".parquet" for path in source.values())


def test_a_folder_is_validated_once_and_its_copy_removed(folder):
    """ClientHistories validates a folder into a temporary dataset, scans it, and removes it on close."""
    eager = build_features(load_tables(folder, lenient=True), "2024-01-01")
    clean = folder.parent / "clean"
    write_tables(load_tables(folder, lenient=True).tables, clean)  # a folder that passes strict validation
    with ClientHistories(clean) as histories:
        copy = histories.dataset.folder
        assert copy.is_dir() and histories.tables["events"].parent == copy
        lazy = histories.features("2024-01-01")
    assert not copy.exists()
    _same(lazy, eager)
    _same(build_features(clean, "2024-01-01"), eager)


def test_features_built_in_shares_of_the_clients_equal_one_query(folder):
    from features.histories.engine import DuckDBEngine

    with open_dataset(folder, lenient=True) as dataset:
        whole = ClientHistories(dataset).features("2024-01-01")
        engine = DuckDBEngine()
        shares = ClientHistories(dataset, engine=engine, clients_per_query=40).features("2024-01-01")
        # the restriction is lifted afterwards: the engine sees every client again
        assert engine.query("SELECT count(*) AS n FROM clients")["n"].iloc[0] == len(dataset.read("clients"))
    assert len(whole) > 100  # several shares of 40
    pd.testing.assert_frame_equal(shares, whole)
