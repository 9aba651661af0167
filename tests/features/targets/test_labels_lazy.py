"""Labels, cohorts and prior costs read from a validated dataset equal those of the tables in pandas.

The dataset path reads only the clients and the events (and, when a rule needs
them, diagnoses and assessments) of the window a rule can reach
(:func:`features.targets.labels.window_tables`); the rules then run as on the
whole tables. On the awkward 200-client county of the history tests (episodes
crossing T, deaths and moves on both sides, missing costs, both code systems)
every built-in target's labels at two dates must be equal, row for row.
"""
import pandas as pd
import pytest

from features.contract.codes import code_in_ranges
from features.contract.load import load_tables, write_tables
from features.contract.stream import open_dataset
from features.contract.tables import EPISODE_SERVICES
from features.histories.spec import load_diagnosis_groups
from features.targets.labels import (
    build_labels,
    cohort_members,
    current_use_flags,
    event_span,
    load_targets,
    prior_cost,
    window_tables,
)
from history_data import make_county

DATES = ("2023-01-01", "2024-01-01")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("lazy") / "county"
    write_tables(make_county(200, seed=7), path)
    return path


@pytest.fixture(scope="module")
def dataset(folder):
    with open_dataset(folder, lenient=True) as ds:
        yield ds


@pytest.fixture(scope="module")
def tables(folder):
    return load_tables(folder, lenient=True)


@pytest.mark.parametrize("as_of", DATES)
@pytest.mark.parametrize("target", sorted(load_targets()))
def test_labels_from_the_dataset_equal_the_in_memory_labels(dataset, tables, target, as_of):
    lazy = build_labels(dataset, as_of, target)
    eager = build_labels(tables, as_of, target)
    pd.testing.assert_frame_equal(lazy, eager)
    assert len(eager) > 0 or target == "young_adult_mhsu"  # no 18-29-year-old with such contacts in 200 clients


@pytest.mark.parametrize("as_of", DATES)
def test_prior_cost_and_current_use_flags_equal(dataset, tables, as_of):
    pd.testing.assert_series_equal(prior_cost(dataset, as_of), prior_cost(tables, as_of))
    lazy, eager = current_use_flags(dataset, as_of), current_use_flags(tables, as_of)
    pd.testing.assert_frame_equal(lazy, eager)
    assert eager["intensive_ongoing"].any() and eager["prior_top"].any()  # the flags were exercised


def test_cohort_members_from_the_dataset(dataset, tables):
    for name, target in load_targets().items():
        lazy = cohort_members(dataset, "2024-01-01", target.cohort)
        eager = cohort_members(tables.tables, "2024-01-01", target.cohort)
        pd.testing.assert_frame_equal(lazy, eager, obj=name)


def test_a_folder_is_validated_and_read_through_a_dataset(folder):
    """Strict validation of a broken folder still fails, with the contract's error, on the lazy path."""
    from features.contract.validation import ContractError

    with pytest.raises(ContractError, match="death_date before birth_date"):
        build_labels(folder, "2024-01-01", "high_use")


def test_the_window_leaves_out_only_unreachable_events(dataset, tables):
    """Events in the window: every one starting in [T - 365, T + 365), episodes reaching T - 365, nothing later."""
    t = pd.Timestamp("2024-01-01")
    window = window_tables(dataset, t, history_days=365, horizon_days=365)["events"]
    every = tables.tables["events"]
    inside = every[(every["start"] >= t - pd.Timedelta(days=365)) & (every["start"] < t + pd.Timedelta(days=365))]
    assert 0 < len(inside) <= len(window) < len(every)
    assert window["start"].max() < t + pd.Timedelta(days=365)
    early = window[window["start"] < t - pd.Timedelta(days=365)]
    assert (early["end"].isna() | (early["end"] >= t - pd.Timedelta(days=365))).all()
    # an earlier row without an end is a running episode: an old point contact reaches no rule
    assert early.loc[early["end"].isna(), "service"].isin(sorted(EPISODE_SERVICES)).all()
    old_contacts = every[(every["start"] < t - pd.Timedelta(days=365)) & every["end"].isna()
                         & ~every["service"].isin(sorted(EPISODE_SERVICES))]
    assert len(old_contacts) > 0  # the data had such rows to leave out
    assert list(window.columns) == ["client_id", "start", "end", "service", "professional", "cost_eur"]
    # asked for, a point service's open rows come in from any date; without the professional, five columns
    wider = window_tables(dataset, t, history_days=365, horizon_days=365, services=["emergency"],
                          professional=False)["events"]
    assert list(wider.columns) == ["client_id", "start", "end", "service", "cost_eur"]
    assert len(wider) - len(window) == (old_contacts["service"] == "emergency").sum() > 0


def test_the_diagnosis_window_of_a_group_holds_every_row_of_the_group(dataset, tables):
    """Diagnoses read for groups: exactly the coded rows before T + horizon whose code is in one of the groups."""
    t = pd.Timestamp("2024-01-01")
    window = window_tables(dataset, t, diagnoses=("diabetes",))["diagnoses"]
    dx = tables.tables["diagnoses"]
    group = load_diagnosis_groups()["diabetes"]
    hit = ((dx["system"].eq("ICD-10") & code_in_ranges(dx["code"], list(group.icd10)))
           | (dx["system"].eq("ICPC-2") & code_in_ranges(dx["code"], list(group.icpc2))))
    expected = dx.loc[(hit & dx["code"].notna() & (dx["date"] < t)).to_numpy()]
    assert 0 < len(window) == len(expected) < len(dx)
    assert sorted(window["client_id"]) == sorted(expected["client_id"])


def test_event_span_without_reading_the_events(dataset, tables):
    starts = tables.tables["events"]["start"]
    assert event_span(dataset) == (starts.min(), starts.max()) == event_span(tables)
