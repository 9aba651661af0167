"""Segments from a validated dataset (only the next year's events read) equal those from the tables in pandas."""
import pandas as pd

from features.contract.load import load_tables, write_tables
from features.contract.stream import open_dataset
from history_data import make_county


def test_segment_at_over_a_dataset_equals_the_tables(tmp_path):
    from segmentation.snapshots import cohort_clients, segment_at

    folder = tmp_path / "county"
    write_tables(make_county(150, seed=9), folder)
    tables = load_tables(folder, lenient=True)
    with open_dataset(folder, lenient=True) as dataset:
        for as_of in ("2023-01-01", "2025-01-01"):  # next year in the data, and not (the data end mid-2025)
            lazy = segment_at(dataset, as_of, "grid", random_state=0)
            eager = segment_at(tables, as_of, "grid", random_state=0)
            pd.testing.assert_frame_equal(lazy.result.assignments, eager.result.assignments)
            assert (lazy.next_year_cost is None) == (eager.next_year_cost is None) == (as_of == "2025-01-01")
            if eager.next_year_cost is not None:
                pd.testing.assert_series_equal(lazy.next_year_cost, eager.next_year_cost)
                assert eager.next_year_cost.gt(0).any()
        pd.testing.assert_index_equal(cohort_clients(dataset, "2024-01-01", "high_use"),
                                      cohort_clients(tables, "2024-01-01", "high_use"))
