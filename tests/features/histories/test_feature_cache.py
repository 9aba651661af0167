"""ClientHistories' cache: in memory or on disk, every request gives the table an uncached build gives."""
from pathlib import Path

import pandas as pd
import pytest

from features.histories.build import ClientHistories

DATES = ["2023-01-01", "2024-01-01"]


@pytest.fixture(scope="module")
def uncached(county):
    with ClientHistories(county, validate=False) as h:
        return {t: h.features(t) for t in DATES}


@pytest.mark.parametrize("cache", [True, "disk"])
def test_a_cached_table_equals_the_uncached_one_on_every_request(county, uncached, cache):
    with ClientHistories(county, validate=False, cache=cache) as h:
        for _ in range(2):  # the first request builds, the second reads the cache
            for t in DATES:
                got = h.features(t)
                pd.testing.assert_frame_equal(got, uncached[t])
                got["client_id"] = "changed"  # a caller's change does not reach the cache
        assert len(h._cache) == len(DATES)


def test_the_disk_cache_holds_files_only_until_close(county):
    h = ClientHistories(county, validate=False, cache="disk")
    h.features(DATES[0])
    folder = h._cache_dir.name
    files = list(Path(folder).glob("*.parquet"))
    assert [f.name for f in files] == ["2023-01-01.parquet"]
    h.close()
    assert not Path(folder).exists()


def test_an_unknown_cache_kind_is_refused(county):
    with pytest.raises(ValueError, match="'disk'"):
        ClientHistories(county, validate=False, cache="ram")


def test_prepare_builds_each_date_once_into_the_cache(county, uncached, monkeypatch):
    with ClientHistories(county, validate=False, cache="disk") as h:
        built = []
        query = h._query
        monkeypatch.setattr(h, "_query", lambda t, *a: built.append(pd.Timestamp(t)) or query(t, *a))
        assert h.prepare(DATES) is None
        h.prepare([DATES[1]])  # cached already: not built again
        assert built == [pd.Timestamp(t) for t in DATES]
        assert sorted(p.name for p in Path(h._cache_dir.name).glob("*.parquet")) == [f"{t}.parquet" for t in DATES]
        for t in DATES:
            pd.testing.assert_frame_equal(h.features(t), uncached[t])
        assert len(built) == len(DATES)  # the requests read the files


def test_prepare_without_a_cache_is_refused(county):
    with ClientHistories(county, validate=False) as h, pytest.raises(ValueError, match="needs a cache"):
        h.prepare(DATES)
