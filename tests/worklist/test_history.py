"""One client's monthly service use from the events table, and its SVG chart."""
import re
import threading
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from worklist.history import SERVICE_GROUPS, ServiceUse, usage_svg

AS_OF = "2025-01-01"


@pytest.fixture(scope="module")
def use(wl_county):
    return ServiceUse(wl_county)


@pytest.fixture(scope="module")
def events(wl_county):
    return pd.read_parquet(wl_county / "events.parquet")


def _expected(events, client, first="2023-01-01", stop="2025-01-01"):
    e = events[events["client_id"].astype(str) == client].copy()
    e["start"], e["end"] = pd.to_datetime(e["start"]), pd.to_datetime(e["end"])
    e = e[(e["start"] >= first) & (e["start"] < stop)]
    last = pd.Timestamp(stop) - pd.Timedelta(days=1)
    episode = e["service"].astype(str).isin(["inpatient", "housing_24h"])
    days = ((e["end"].fillna(last).clip(upper=last) - e["start"]).dt.days + 1).clip(lower=1)
    e["days"] = np.where(episode, days, 0)
    e["month"] = e["start"].dt.to_period("M").dt.to_timestamp()
    e["service"] = e["service"].astype(str)
    out = (e.groupby(["month", "service"]).agg(contacts=("start", "size"), days=("days", "sum"),
                                              cost_eur=("cost_eur", lambda s: s.fillna(0).sum()))
           .reset_index().sort_values(["month", "service"]).reset_index(drop=True))
    return out


def test_monthly_equals_pandas_on_the_events(use, events):
    window = events[(pd.to_datetime(events["start"]) >= "2023-01-01") & (pd.to_datetime(events["start"]) < AS_OF)]
    counts = window["client_id"].astype(str).value_counts()
    episodes = window.loc[window["service"].astype(str).isin(["inpatient", "housing_24h"]), "client_id"].astype(str)
    for client in [counts.index[0], counts.index[len(counts) // 2], episodes.iloc[0]]:
        got = use.monthly(client, AS_OF)
        want = _expected(events, client)
        assert len(got) > 0
        pd.testing.assert_frame_equal(got[["month", "service", "contacts", "days"]].astype({"days": "int64"}),
                                      want[["month", "service", "contacts", "days"]].astype(
                                          {"contacts": "int64", "days": "int64"}), check_dtype=False)
        assert np.allclose(got["cost_eur"], want["cost_eur"])
        assert len(got.attrs["months"]) == 24 and got.attrs["months"][0] == pd.Timestamp("2023-01-01")
    assert use.monthly("no-such-client", AS_OF).empty


def test_window_is_whole_months_before_the_list_month(use, events):
    client = events["client_id"].astype(str).value_counts().index[0]
    got = use.monthly(client, "2024-07-15", months=6)
    assert got["month"].min() >= pd.Timestamp("2024-01-01") and got["month"].max() < pd.Timestamp("2024-07-01")
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  _expected(events, client, "2024-01-01", "2024-07-01")[got.columns],
                                  check_dtype=False)


def test_lookups_are_fast_and_thread_safe(use, events):
    import time

    clients = events["client_id"].astype(str).unique()[:50]
    use.monthly(clients[0], AS_OF)
    start = time.perf_counter()
    for c in clients:
        use.monthly(c, AS_OF)
    assert (time.perf_counter() - start) / len(clients) < 0.05
    results, errors = {}, []

    def work(c):
        try:
            results[c] = len(use.monthly(c, "2024-01-01"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients[:8]]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(results) == 8
    assert len(use._cache) <= use.keep


def test_usage_svg_is_valid_and_labelled(use, events):
    client = events["client_id"].astype(str).value_counts().index[0]
    frame = use.monthly(client, AS_OF)
    for lang in ("fi", "sv", "en"):
        svg = usage_svg(frame, lang)
        root = ElementTree.fromstring(svg)
        titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
        assert len(titles) == len(re.findall(r"<rect [^>]*><title>", svg)) > 0
        shown = {g for g, (services, _, _) in SERVICE_GROUPS.items() if frame["service"].isin(services).any()}
        for g in shown:
            assert SERVICE_GROUPS[g][2][lang] in svg
    total = sum(int(t.rsplit(" ", 1)[1]) for t in titles)
    assert total == frame["contacts"].sum()
    empty = usage_svg(frame.iloc[0:0], "en")
    assert "No service use" in empty and ElementTree.fromstring(empty) is not None


def test_usage_svg_escapes_a_hostile_label():
    frame = pd.DataFrame({"month": [pd.Timestamp("2024-05-01")], "service": ['<script>alert("x")</script>&'],
                          "contacts": [3], "days": [0], "cost_eur": [10.0]})
    svg = usage_svg(frame, "en")
    assert "<script>" not in svg and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in svg
    ElementTree.fromstring(svg)
    with pytest.raises(ValueError):
        usage_svg(frame, "de")
