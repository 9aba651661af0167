"""The care figures of the realism report on hand-made records: who counts as in 24-hour care and in regular home
care at year end among residents aged 75+."""
import pandas as pd
import pytest

from features.synth.realism import REFERENCE, care_shares

T = pd.Timestamp


def _tables():
    clients = pd.DataFrame({
        "client_id": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "birth_date": [T("1940-01-01")] * 7 + [T("1960-01-01")],                  # h is 64: not counted
        "death_date": [pd.NaT] * 6 + [T("2024-12-20"), pd.NaT],                    # g died in December
        "moved_in": [pd.NaT] * 8, "moved_out": [pd.NaT] * 8,
    })
    ev = pd.DataFrame({
        "client_id": ["a", "b", "c", "c", "d", "e", "g", "h"],
        "service": ["housing_24h", "housing_24h", "home_care", "housing_24h", "home_care", "home_care",
                    "housing_24h", "housing_24h"],
        "start": [T("2024-12-01"), T("2024-11-01"), T("2024-12-10"), T("2024-06-01"), T("2024-12-31"),
                  T("2024-11-29"), T("2024-12-01"), T("2024-12-01")],
        "end": [T("2024-12-31"), T("2024-12-30"), pd.NaT, pd.NaT, pd.NaT, pd.NaT, T("2024-12-20"),
                T("2024-12-31")],
    })
    return {"clients": clients, "events": ev}


def test_care_shares_count_year_end_care_among_residents_75_plus():
    shares = care_shares(_tables(), 2024)
    # residents 75+ on 1 Jan 2025: a-f (g died, h is 64). In 24-hour care: a (ends 31 Dec) and c (open episode);
    # b's stay ended on 30 December. Home care in December and not in 24-hour care: d; c is in 24-hour care,
    # e's visit was in November.
    assert shares["housing_24h_share_75_plus"] == pytest.approx(2 / 6)
    assert shares["home_care_share_75_plus"] == pytest.approx(1 / 6)


def test_the_care_ranges_are_the_issue_s():
    assert REFERENCE["housing_24h_share_75_plus"] == (0.06, 0.11)
    assert REFERENCE["home_care_share_75_plus"] == (0.09, 0.13)


def test_a_cost_only_read_gives_the_care_figures_as_missing():
    from features.synth.realism import realism_report

    tables = _tables()
    tables["events"] = tables["events"].assign(cost_eur=1.0)
    tables["diagnoses"] = pd.DataFrame({"client_id": ["a"], "date": [T("2020-01-01")], "code": ["I10"]})
    full = realism_report(tables, [2024]).set_index("figure")
    assert full.loc["housing_24h_share_75_plus", "value"] == pytest.approx(2 / 6)
    costs_only = {**tables, "events": tables["events"][["client_id", "start", "cost_eur"]]}
    part = realism_report(costs_only, [2024]).set_index("figure")
    assert part.loc[["housing_24h_share_75_plus", "home_care_share_75_plus"], "value"].isna().all()
    assert part.loc[["housing_24h_share_75_plus", "home_care_share_75_plus"], "within"].isna().all()
    assert part.loc["cost_per_resident_eur", "value"] == full.loc["cost_per_resident_eur", "value"]
