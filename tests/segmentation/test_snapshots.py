"""segment_at and transitions_between: the library calls behind `sote segment`, `segment-transitions` and the demo."""
import numpy as np
import pandas as pd
import pytest

from features.contract.load import load_tables
from features.histories.build import ClientHistories, build_features
from features.synth import SynthConfig, generate_county
from segmentation.segments import horizon_cost, segment_clients
from segmentation.snapshots import features_at, next_year_covered, segment_at, transitions_between
from segmentation.transitions import transition_matrix, transition_table


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "county"
    generate_county(path, SynthConfig(clients=800, seed=3, truth_reps=1, workers=1, chunk_size=800))
    return load_tables(path)


@pytest.fixture(scope="module")
def histories(tables):
    return ClientHistories(tables, cache=True)  # each date's features built once for the module


def test_next_year_covered_boundary():
    t = pd.Timestamp("2024-01-01")
    events = pd.DataFrame({"start": [pd.Timestamp("2020-05-01"), t + pd.Timedelta(days=364)]})
    assert next_year_covered(events, t)                                # the data reach T + 364 days
    assert not next_year_covered(events.iloc[:1], t)
    assert not next_year_covered(events.assign(start=events["start"] - pd.Timedelta(days=1)), t)
    assert next_year_covered(events.iloc[:1], t, data_end="2024-12-30")  # a declared end wins
    assert not next_year_covered(events, t, data_end="2024-12-29")
    assert not next_year_covered(events.iloc[:0], t)


def test_segment_at_equals_the_steps_it_replaces(tables, histories):
    t = pd.Timestamp("2024-01-01")
    seg = segment_at(tables, t, "kmeans", 3, histories=histories, random_state=5, n_bootstrap=0)
    X = build_features(tables, t)
    pd.testing.assert_frame_equal(seg.features, X)
    cost = horizon_cost(tables.tables["events"], X["client_id"], t)
    manual = segment_clients(X, "kmeans", 3, next_year_cost=cost, random_state=5, n_bootstrap=0)
    pd.testing.assert_frame_equal(seg.result.assignments, manual.assignments)
    pd.testing.assert_series_equal(seg.next_year_cost, cost)
    assert seg.as_of == t and len(seg.features) == len(X) and seg.result.assignments["segment"].nunique() == 3
    assert "next_year_cost_share" in seg.result.profiles
    assert seg.result.profiles["next_year_cost_share"].sum() == pytest.approx(1.0)


def test_segment_at_leaves_out_a_next_year_the_data_do_not_cover(tables):
    seg = segment_at(tables, "2025-06-01", "grid")       # the county ends 2025-12-31
    assert seg.next_year_cost is None and "next_year_cost_share" not in seg.result.profiles
    assert set(seg.result.assignments["segment"]) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="no client is resident at 1900-01-01"):
        segment_at(tables, "1900-01-01")
    with pytest.raises(ValueError, match="method must be one of"):
        segment_at(tables, "2024-01-01", "dbscan")


@pytest.mark.parametrize("fitted_date, other_date", [("2023-01-01", "2024-01-01"), ("2024-01-01", "2023-01-01")])
def test_transitions_between_in_either_direction(tables, histories, fitted_date, other_date):
    fitted = segment_at(tables, fitted_date, "grid", features=histories.features(fitted_date))
    moves = transitions_between(fitted, other_date, histories=histories)
    at_fitted = pd.Series(fitted.result.assignments["segment_name"].to_numpy(),
                          index=fitted.result.assignments["client_id"].to_numpy())
    at_other = fitted.result.assign(features_at(tables, other_date, histories=histories))
    before, after = (at_fitted, at_other) if fitted_date < other_date else (at_other, at_fitted)
    assert (moves.date_from, moves.date_to) == (pd.Timestamp("2023-01-01"), pd.Timestamp("2024-01-01"))
    assert moves.fitted_at == pd.Timestamp(fitted_date)
    pd.testing.assert_frame_equal(moves.flows, transition_table(before, after))
    pd.testing.assert_frame_equal(moves.matrix, transition_matrix(before, after))
    both = before.index.intersection(after.index)
    assert moves.matrix.to_numpy().sum() == len(both) > 500
    stayed = (before.loc[both] == after.loc[both]).sum()
    assert np.trace(moves.matrix.reindex(index=moves.matrix.columns, fill_value=0).to_numpy()) == stayed
    assert "2023-01-01" in moves.html() and "<svg" in moves.html()


def test_transitions_between_refuses_one_date(tables, histories):
    fitted = segment_at(tables, "2024-01-01", "grid", histories=histories)
    with pytest.raises(ValueError, match="two different dates"):
        transitions_between(fitted, "2024-01-01", tables=tables)
    with pytest.raises(ValueError, match="needs the features"):
        transitions_between(fitted, "2023-01-01")
