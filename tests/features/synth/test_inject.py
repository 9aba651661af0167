"""Injected label bias: one group's recorded use suppressed at equal need (features/synth/inject.py)."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from features.contract.outputs import OutputRefused
from features.synth.inject import suppress_group_use


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keys(events: pd.DataFrame) -> pd.Series:
    """One hash per event row of its values (client, dates, service, unit, professional, cost)."""
    cols = ["client_id", "start", "end", "service", "unit", "professional", "cost_eur"]
    return pd.util.hash_pandas_object(events[cols], index=False)  # categories hash by value, not by code


@pytest.fixture(scope="module")
def injected(small_county, tmp_path_factory):
    """The 6,000-resident synth county with half of the Swedish speakers' events dropped (seed 3)."""
    source, _ = small_county
    out = tmp_path_factory.mktemp("inject") / "county_sv"
    manifest = suppress_group_use(source, out, column="language", value="sv", share=0.5, seed=3)
    return source, out, manifest


def test_rows_are_removed_only_for_the_group_and_need_records_stay(injected):
    source, out, manifest = injected
    clients = pd.read_parquet(source / "clients.parquet")
    sv = set(clients.loc[clients["language"] == "sv", "client_id"].astype(str))
    before = pd.read_parquet(source / "events.parquet")
    after = pd.read_parquet(out / "events.parquet")
    in_group, kept_in_group = before["client_id"].isin(sv), after["client_id"].isin(sv)
    # everyone else's events are kept exactly (every value), in their order
    np.testing.assert_array_equal(_keys(before.loc[~in_group]).to_numpy(), _keys(after.loc[~kept_in_group]).to_numpy())
    assert (after.loc[~kept_in_group].dtypes == before.dtypes).all()
    # the group's kept rows are a subset of its rows; about half went (binomial: within 4 SD)
    assert set(_keys(after.loc[kept_in_group])) <= set(_keys(before.loc[in_group]))
    n, removed = int(in_group.sum()), len(before) - len(after)
    assert n > 1_000
    assert abs(removed - 0.5 * n) < 4 * np.sqrt(n * 0.25)
    inj = manifest["injection"]
    assert (inj["group_clients"], inj["group_events"], inj["events_removed"]) == (len(sv), n, removed)
    assert manifest["rows"]["events"] == len(after)
    # need is untouched: clients, diagnoses, measurements and assessments byte for byte; no truth of the old county
    for name in ("clients", "diagnoses", "measurements", "assessments"):
        assert _sha(out / f"{name}.parquet") == _sha(source / f"{name}.parquet")
    assert not (out / "truth.parquet").exists()
    assert json.loads((out / "manifest.json").read_text())["injection"]["value"] == "sv"
    assert "truth_index_dates" not in manifest


def test_the_new_county_loads_and_validates(injected):
    from features.contract.load import load_tables

    _, out, manifest = injected
    tables = load_tables(out)
    assert len(tables.tables["events"]) == manifest["rows"]["events"]


def test_seeded_same_seed_same_rows_other_seed_other_rows(injected, tmp_path):
    source, out, manifest = injected
    again = suppress_group_use(source, tmp_path / "again", column="language", value="sv", share=0.5, seed=3)
    assert _sha(tmp_path / "again" / "events.parquet") == _sha(out / "events.parquet")
    assert again["injection"] == manifest["injection"]
    suppress_group_use(source, tmp_path / "other", column="language", value="sv", share=0.5, seed=4)
    a = set(_keys(pd.read_parquet(out / "events.parquet")))
    b = set(_keys(pd.read_parquet(tmp_path / "other" / "events.parquet")))
    assert a != b


def test_services_and_share_one(small_county, tmp_path):
    source, _ = small_county
    manifest = suppress_group_use(source, tmp_path / "m", column="municipality", value="Mäntsälä", share=1.0,
                                  services=["primary_care_visit", "emergency"])
    clients = pd.read_parquet(source / "clients.parquet")
    ids = set(clients.loc[clients["municipality"] == "Mäntsälä", "client_id"].astype(str))
    after = pd.read_parquet(tmp_path / "m" / "events.parquet")
    mine = after[after["client_id"].isin(ids)]
    assert not mine["service"].isin(["primary_care_visit", "emergency"]).any()
    assert mine["service"].eq("home_care").any()  # other lines untouched
    before = pd.read_parquet(source / "events.parquet")
    hit = before["client_id"].isin(ids) & before["service"].isin(["primary_care_visit", "emergency"])
    assert manifest["injection"]["events_removed"] == int(hit.sum()) == len(before) - len(after)


def test_refusals(small_county, tmp_path):
    source, _ = small_county
    with pytest.raises(ValueError, match="column must be one of"):
        suppress_group_use(source, tmp_path / "a", column="age", value="80", share=0.5)
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]"):
        suppress_group_use(source, tmp_path / "a", column="language", value="sv", share=0.0)
    with pytest.raises(ValueError, match="no client has language = 'se'"):
        suppress_group_use(source, tmp_path / "a", column="language", value="se", share=0.5)
    with pytest.raises(ValueError, match="unknown service line"):
        suppress_group_use(source, tmp_path / "a", column="language", value="sv", share=0.5, services=["spa"])
    with pytest.raises(ValueError, match="not a generated county"):
        suppress_group_use(tmp_path, tmp_path / "a", column="language", value="sv", share=0.5)
    with pytest.raises(OutputRefused, match="inside the input"):
        suppress_group_use(source, source / "inner", column="language", value="sv", share=0.5)
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not sote's")
    with pytest.raises(OutputRefused, match="sote did not write"):
        suppress_group_use(source, foreign, column="language", value="sv", share=0.5)
    assert (foreign / "notes.txt").read_text() == "not sote's"
    assert not (tmp_path / "a").exists()
