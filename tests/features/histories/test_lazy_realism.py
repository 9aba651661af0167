"""The demo's realism report read two years of events at a time equals the report over the whole tables."""
import pandas as pd

from features.contract.load import load_tables, write_tables
from features.contract.stream import open_dataset
from features.synth.realism import realism_report
from history_data import make_county


def test_realism_figures_over_a_dataset_equal_the_report_over_the_tables(tmp_path):
    from sote.demo import realism_figures

    folder = tmp_path / "county"
    write_tables(make_county(150, seed=4), folder)
    years = [2021, 2022, 2023]
    eager = realism_report(load_tables(folder, lenient=True).tables, years)
    with open_dataset(folder, lenient=True) as dataset:
        lazy = realism_figures(dataset, years)
    pd.testing.assert_frame_equal(lazy, eager)
    assert set(eager["figure"]) >= {"top10_persistence", "cost_per_resident_eur"}
