"""Training sets sampled before any feature is built (``build_training_set(max_rows=…)``, issue 16).

The labels of a date come first; a cohort larger than ``max_rows`` is sampled
within each label (seeded), and features are built for the sampled clients only.
The rows must be those that sampling the whole joined table keeps, with the same
features; without a sample the set is the whole joined table.
"""
import numpy as np
import pandas as pd
import pytest

from features.contract.load import load_tables, write_tables
from features.contract.stream import open_dataset
from features.histories.build import ClientHistories
from features.targets.labels import build_training_set, stratified_rows

DATES = ["2022-01-01", "2023-01-01"]


class Recording(ClientHistories):
    """ClientHistories that records the ``clients`` of every feature query."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def features(self, as_of, clients=None):
        self.calls.append(None if clients is None else list(clients))
        return super().features(as_of, clients=clients)


def _sampled_the_old_way(whole: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Each date's rows of the whole joined table sampled after the join (what train did before)."""
    parts = []
    for _, part in whole.groupby("as_of", sort=True):
        part = part.reset_index(drop=True)
        parts.append(part.iloc[stratified_rows(part["label"].to_numpy(), max_rows, seed)])
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def whole(county):
    return build_training_set(county, DATES, "high_use")


def test_stratified_rows_keep_the_label_share_and_are_seeded():
    y = (np.arange(1_000) % 9 == 0).astype(int)  # 112 positives
    rows = stratified_rows(y, 300, seed=4)
    assert len(rows) == 300 and len(set(rows)) == 300 and np.all(np.diff(rows) > 0)
    assert y[rows].sum() == int(np.ceil(112 * 300 / 1_000))
    assert np.array_equal(rows, stratified_rows(y, 300, seed=4))
    assert not np.array_equal(rows, stratified_rows(y, 300, seed=5))
    assert np.array_equal(stratified_rows(y, 1_000, seed=4), np.arange(1_000))
    assert np.array_equal(stratified_rows(y, None, seed=4), np.arange(1_000))


def test_sampled_set_equals_the_whole_set_sampled(county, whole):
    sizes = whole.groupby("as_of").size()
    max_rows = int(sizes.min()) // 2
    assert max_rows > 10
    histories = Recording(county)
    sampled = build_training_set(county, DATES, "high_use", histories=histories, max_rows=max_rows, seed=3)
    pd.testing.assert_frame_equal(sampled, _sampled_the_old_way(whole, max_rows, 3))
    assert sampled.attrs["rows_available"] == [int(sizes.loc[pd.Timestamp(t)]) for t in DATES]
    # features were built for the sampled clients only, once per date
    assert len(histories.calls) == len(DATES)
    for t, ids in zip(DATES, histories.calls):
        assert ids is not None and len(ids) == max_rows
        assert sorted(ids) == sampled.loc[sampled["as_of"] == pd.Timestamp(t), "client_id"].tolist()


def test_no_sample_under_the_maximum_builds_every_client(county, whole):
    histories = Recording(county)
    same = build_training_set(county, DATES, "high_use", histories=histories, max_rows=len(whole), seed=3)
    pd.testing.assert_frame_equal(same, whole)
    assert histories.calls == [None, None]
    assert same.attrs["rows_available"] == whole.groupby("as_of").size().tolist()


def test_sampling_a_dataset_equals_sampling_the_tables(county, tmp_path):
    """The lazy path (a validated dataset, DuckDB over Parquet) samples the same rows with the same features."""
    write_tables(county, tmp_path / "county")
    tables = load_tables(tmp_path / "county", lenient=True)  # the awkward county has rows the contract quarantines
    whole = build_training_set(tables, DATES, "high_use")
    max_rows = int(whole.groupby("as_of").size().min()) // 3
    with open_dataset(tmp_path / "county", lenient=True) as dataset:
        lazy = build_training_set(dataset, DATES, "high_use", max_rows=max_rows, seed=11)
    pd.testing.assert_frame_equal(lazy, _sampled_the_old_way(whole, max_rows, 11))
    assert (lazy.groupby("as_of").size() == max_rows).all()
