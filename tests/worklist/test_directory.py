"""The synthetic client directory: deterministic names matching language and sex, phones, loading."""
import re

import pandas as pd
from faker.providers.person.fi_FI import Provider as Finnish
from faker.providers.person.sv_SE import Provider as Swedish
from sqlalchemy import func, select

from worklist.db import ClientDirectory, make_engine, session_factory
from worklist.directory import COLUMNS, build_directory, load_directory, read_clients


def test_directory_is_deterministic_and_order_free(wl_county):
    clients = read_clients(wl_county)
    one = build_directory(clients, seed=3)
    again = build_directory(clients.sample(frac=1.0, random_state=1), seed=3)
    other = build_directory(clients, seed=4)
    assert list(one.columns) == list(COLUMNS) and len(one) == clients["client_id"].nunique()
    pd.testing.assert_frame_equal(one, again)
    assert (one["name"] != other["name"]).mean() > 0.9
    assert one["client_id"].is_monotonic_increasing


def test_names_follow_language_and_sex(wl_county):
    clients = read_clients(wl_county)
    out = build_directory(clients, seed=0)
    first, last = out["name"].str.split(" ", n=1).str[0], out["name"].str.split(" ", n=1).str[1]
    sv, fi = out["language"] == "sv", out["language"] != "sv"
    assert sv.any() and fi.any() and (out["language"] == "other").any()
    assert last[sv].isin(list(Swedish.last_names)).all() and last[fi].isin(list(Finnish.last_names)).all()
    female, male = out["sex"] == "F", out["sex"] == "M"
    assert first[fi & female].isin(list(Finnish.first_names_female)).all()
    assert first[fi & male].isin(list(Finnish.first_names_male)).all()
    assert first[sv & female].isin(list(Swedish.first_names_female)).all()
    assert first[sv & male].isin(list(Swedish.first_names_male)).all()
    # a Finnish speaker never gets a name found only in the Swedish lists
    only_swedish = set(Swedish.first_names_female) - set(Finnish.first_names_female) - set(Finnish.first_names_male)
    assert not first[fi].isin(only_swedish).any()
    assert out["phone"].map(lambda p: bool(re.fullmatch(r"0(40|41|44|45|46|50) \d{3} \d{4}", p))).all()
    assert out["phone"].nunique() > 0.99 * len(out)
    merged = out.merge(clients.assign(client_id=clients["client_id"].astype(str)), on="client_id", suffixes=("", "_c"))
    assert (merged["unit"] == merged["unit_c"].astype(str)).all()
    assert (pd.to_datetime(merged["birth_date"]) == pd.to_datetime(merged["birth_date_c"])).all()


def test_sex_x_and_missing_birth_dates():
    clients = pd.DataFrame({"client_id": ["a", "b", "c"], "unit": ["u", "u", "u"], "municipality": ["m"] * 3,
                            "language": ["sv", "fi", "fi"], "sex": ["X", "F", "M"],
                            "birth_date": [pd.Timestamp("1950-01-01"), pd.NaT, pd.Timestamp("1990-05-05")]})
    out = build_directory(clients)
    assert out["client_id"].tolist() == ["a", "c"]
    first = out.set_index("client_id")["name"].str.split(" ").str[0]
    assert first["a"] in set(Swedish.first_names_female) | set(Swedish.first_names_male)


def test_load_directory_replaces_rows(db_url, wl_county):
    frame = build_directory(read_clients(wl_county), seed=0)
    engine = make_engine(db_url)
    with session_factory(engine).begin() as db:
        assert load_directory(db, frame) == len(frame)
    changed = frame.head(5).assign(name="<script>alert(1)</script>")
    with session_factory(engine).begin() as db:
        assert load_directory(db, changed) == 5
    with session_factory(engine).begin() as db:
        assert db.scalar(select(func.count()).select_from(ClientDirectory)) == len(frame)
        row = db.get(ClientDirectory, frame["client_id"].iloc[0])
        assert row.name == "<script>alert(1)</script>" and row.birth_date == frame["birth_date"].iloc[0]
        assert row.phone == frame["phone"].iloc[0]
    engine.dispose()
