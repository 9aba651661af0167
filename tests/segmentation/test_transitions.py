import pandas as pd

from segmentation.transitions import ENTERED, LEFT, sankey_svg, transition_matrix, transition_table


def test_transitions_conserve_clients_present_at_both_dates():
    before = pd.Series({"a": "low", "b": "low", "c": "high", "d": "high", "e": "low"})
    after = pd.Series({"a": "low", "b": "high", "c": "high", "d": "low", "f": "high"})
    flows = transition_table(before, after)
    both = flows[(flows["from_segment"] != ENTERED) & (flows["to_segment"] != LEFT)]
    assert both["clients"].sum() == 4  # a, b, c, d
    assert flows.loc[flows["to_segment"] == LEFT, "clients"].sum() == 1  # e left
    assert flows.loc[flows["from_segment"] == ENTERED, "clients"].sum() == 1  # f entered
    assert flows["clients"].sum() == len(before.index.union(after.index))
    shares = both.groupby("from_segment")["share_of_from"].sum()
    assert (shares.round(12) == 1.0).all()
    m = transition_matrix(before, after)
    assert m.to_numpy().sum() == 4 and m.loc["high", "low"] == 1 and m.loc["low", "high"] == 1
    assert (transition_matrix(before, after, normalize=True).sum(axis=1).round(12) == 1).all()


def test_sankey_is_self_contained_svg():
    before = pd.Series({"a": "low", "b": "high"})
    after = pd.Series({"a": "high", "b": "high"})
    svg = sankey_svg(transition_table(before, after), title="2023 → 2024")
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<script" not in svg
    assert svg.count("<path") == 2 and "low (1)" in svg
