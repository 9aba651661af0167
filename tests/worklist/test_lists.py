"""Risk lists in the worklist database: import, the worklist query, client page, actions, aggregates."""
import json
import math
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from list_helpers import LIST_TARGET, load_lists
from sqlalchemy import func, select

from models.risklists import RiskListError, band_codes, read_risklist
from worklist.db import NOTE_MAX, Action, ClientDirectory, ClientSegment, ListRow, RiskListRecord, User, \
    make_engine, session_factory
from worklist.lists import (AGE_BANDS, OVERVIEW_MIN_COUNT, ActionError, age_at, client_view, current_lists,
                            export_rows, import_risklist, import_segments, lists_of_target, overview, record_action,
                            suppress_counts, team_summary, worklist_page)

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def db_of():
    """Open an ORM session (one transaction, committed at the end) on a database URL."""
    engines = []

    def open_(url):
        engine = make_engine(url)
        engines.append(engine)
        return session_factory(engine).begin()

    yield open_
    for engine in engines:
        engine.dispose()


@pytest.fixture
def loaded(db_url, wl_lists, wl_county):
    """A fresh database of this test with both lists and the directory."""
    load_lists(db_url, wl_lists, wl_county)
    return db_url


def _user(db, name="cm1", role="case_manager"):
    user = User(username=name, display_name=name, role=role, password_hash="not-a-hash", created_at=NOW,
                password_set_at=NOW)
    db.add(user)
    db.flush()
    return user


def _ids(db):
    return [r.id for r in db.scalars(select(RiskListRecord).order_by(RiskListRecord.as_of))]


def test_import_is_idempotent_by_digest(db_url, wl_lists, db_of):
    with db_of(db_url) as db:
        first = import_risklist(db, wl_lists[0], imported_by="test", now=NOW)
    with db_of(db_url) as db:
        again = import_risklist(db, wl_lists[0], imported_by="someone", now=NOW)
        count = db.scalar(select(func.count()).select_from(ListRow))
        record = db.get(RiskListRecord, first.list_id)
    risk = read_risklist(wl_lists[0])
    assert first.created and not again.created
    assert (again.list_id, again.digest, again.rows) == (first.list_id, first.digest, len(risk))
    assert count == len(risk) and len(first.digest) == 64
    assert (record.target, record.list_kind, record.as_of, record.imported_by) == (LIST_TARGET, "rising",
                                                                                   date(2024, 1, 1), "test")
    assert json.loads(record.sidecar)["cohort"]["fi"] == "cohort text fi"


def test_import_rows_band_unit_rank_and_new_on_list(loaded, wl_lists, db_of):
    old, new = (read_risklist(p) for p in wl_lists)
    with db_of(loaded) as db:
        first, second = _ids(db)
        rows = {lid: pd.read_sql(select(ListRow).where(ListRow.list_id == lid), db.connection()) for lid in (first, second)}
    got = rows[second].set_index("client_id").loc[new["client_id"]]
    assert (got["band"].to_numpy() == band_codes(new["probability"], new["probability"].mean()).to_numpy()).all()
    expected_unit_rank = new.sort_values("rank").groupby("unit").cumcount() + 1
    assert (got["unit_rank"].to_numpy() == expected_unit_rank.loc[new.index].to_numpy()).all()
    assert (got["new_on_list"].to_numpy() == ~new["client_id"].isin(old["client_id"]).to_numpy()).all()
    assert 0 < got["new_on_list"].sum() < len(new)
    assert not rows[first]["new_on_list"].any()  # no earlier list of the target
    assert got["reasons_en"].isna().sum() == new["reasons_en"].isna().sum()


def test_import_rejects_a_bad_file_and_writes_nothing(db_url, tmp_path, db_of):
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"client_id": ["a"], "probability": [0.5]}).to_parquet(bad)
    with pytest.raises(RiskListError, match="missing columns"):
        with db_of(db_url) as db:
            import_risklist(db, bad, imported_by="test")
    with db_of(db_url) as db:
        assert db.scalar(select(func.count()).select_from(RiskListRecord)) == 0


def test_current_list_is_newest_as_of_then_newest_import(loaded, wl_lists, tmp_path, db_of):
    copy = tmp_path / "again.csv"  # same list date and target, other bytes: a later import of the same date
    read_risklist(wl_lists[1]).to_csv(copy, index=False)
    with db_of(loaded) as db:
        first, second = _ids(db)
        assert current_lists(db)[LIST_TARGET].id == second
        third = import_risklist(db, copy, imported_by="test")
        assert third.created and third.target == LIST_TARGET  # target from model_name without a sidecar
        assert current_lists(db)[LIST_TARGET].id == third.list_id
        assert [r.id for r in lists_of_target(db, LIST_TARGET)] == [third.list_id, second, first]


def _frame(db, list_id):
    """The list joined with the directory, as pandas computes the expected worklist."""
    rows = pd.read_sql(select(ListRow).where(ListRow.list_id == list_id), db.connection())
    names = pd.read_sql(select(ClientDirectory), db.connection())
    return rows.merge(names[["client_id", "name", "birth_date"]], on="client_id", how="left")


def test_unit_filter_never_returns_other_units(loaded_url, db_of):
    with db_of(loaded_url) as db:
        list_id = _ids(db)[1]
        frame = _frame(db, list_id)
        units = sorted(frame["unit"].unique())
        for unit in units:
            page = worklist_page(db, list_id, [unit], per_page=10_000)
            assert {r["unit"] for r in page.rows} == {unit}
            assert page.total == (frame["unit"] == unit).sum() == len(page.rows)
        two = worklist_page(db, list_id, units[:2], per_page=10_000)
        assert two.total == frame["unit"].isin(units[:2]).sum()
        assert worklist_page(db, list_id, []).rows == [] and worklist_page(db, list_id, []).total == 0
        assert worklist_page(db, list_id, ["no_such_unit"]).total == 0


def test_page_rows_carry_names_ages_and_texts(loaded_url, db_of):
    with db_of(loaded_url) as db:
        list_id = _ids(db)[1]
        frame = _frame(db, list_id).set_index("client_id")
        unit = frame["unit"].value_counts().index[0]
        rows = worklist_page(db, list_id, [unit], lang="en", per_page=10_000).rows
    as_of = date(2025, 1, 1)
    for row in rows:
        ref = frame.loc[row["client_id"]]
        assert row["name"] == ref["name"] and row["age"] == age_at(ref["birth_date"], as_of)
        assert row["probability_text"] == f"{100 * ref['probability']:.1f} %"
        assert row["band_label"] == {"usual": "usual", "raised": "raised", "high": "high"}[row["band"]]
        assert row["reasons"] == (ref["reasons_en"].split(" | ") if isinstance(ref["reasons_en"], str) else [])
        assert row["status"] is None and row["follow_up"] is None
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert [r["unit_rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert age_at(date(2000, 2, 29), date(2025, 2, 28)) == 24 and age_at(date(2000, 2, 29), date(2025, 3, 1)) == 25


def _all(db, list_id, units, **kw):
    return worklist_page(db, list_id, units, per_page=10_000, **kw).rows


def test_each_filter_matches_pandas(loaded_url, db_of):
    with db_of(loaded_url) as db:
        list_id = _ids(db)[1]
        frame = _frame(db, list_id)
        units = sorted(frame["unit"].unique())
        mine = frame[frame["unit"].isin(units)]
        as_of = date(2025, 1, 1)
        ages = mine["birth_date"].map(lambda b: age_at(b, as_of))
        for band in ("usual", "raised", "high"):
            got = {r["client_id"] for r in _all(db, list_id, units, band=band)}
            assert got == set(mine.loc[mine["band"] == band, "client_id"])
        segment = mine["segment"].iloc[0]
        assert {r["client_id"] for r in _all(db, list_id, units, segment=segment)} == \
            set(mine.loc[mine["segment"] == segment, "client_id"])
        assert {r["client_id"] for r in _all(db, list_id, units, new_only=True)} == \
            set(mine.loc[mine["new_on_list"], "client_id"])
        for label, (lo, hi) in AGE_BANDS.items():
            want = set(mine.loc[(ages >= lo) & ((ages <= hi) if hi is not None else True), "client_id"])
            got = _all(db, list_id, units, age_band=label)
            assert {r["client_id"] for r in got} == want
            assert all(lo <= r["age"] and (hi is None or r["age"] <= hi) for r in got)
        assert sum(len(_all(db, list_id, units, age_band=b)) for b in AGE_BANDS) == len(mine)
        with pytest.raises(ValueError, match="age band"):
            worklist_page(db, list_id, units, age_band="90-99")
        with pytest.raises(ValueError, match="sort"):
            worklist_page(db, list_id, units, sort="client_id")


def test_status_filter_and_sort_follow_the_latest_action(loaded, db_of):
    with db_of(loaded) as db:
        list_id = _ids(db)[1]
        user = _user(db)
        rows = _all(db, list_id, [_frame(db, list_id)["unit"].value_counts().index[0]])
        unit = rows[0]["unit"]
        a, b, c = (r["client_id"] for r in rows[:3])
        record_action(db, list_id=list_id, client_id=a, units=[unit], user=user, status="contacted", now=NOW)
        record_action(db, list_id=list_id, client_id=a, units=[unit], user=user, status="enrolled",
                      follow_up=date(2025, 4, 1), now=NOW)
        record_action(db, list_id=list_id, client_id=b, units=[unit], user=user, status="contacted",
                      follow_up="2025-03-15", now=NOW)
        record_action(db, list_id=list_id, client_id=c, units=[unit], user=user, status="declined", now=NOW)
        assert [r["client_id"] for r in _all(db, list_id, [unit], status="enrolled")] == [a]
        assert [r["client_id"] for r in _all(db, list_id, [unit], status="contacted")] == [b]
        assert len(_all(db, list_id, [unit], status="none")) == len(rows) - 3
        follow = _all(db, list_id, [unit], sort="follow_up")
        assert [r["client_id"] for r in follow[:2]] == [b, a] and follow[2]["follow_up"] is None
        by_status = _all(db, list_id, [unit], sort="status")
        assert [r["status"] for r in by_status[:3]] == ["contacted", "declined", "enrolled"]
        assert by_status[3]["status"] is None
        assert db.scalar(select(func.count()).select_from(Action)) == 4  # append-only: a has two rows


def test_sort_orders(loaded_url, db_of):
    with db_of(loaded_url) as db:
        list_id = _ids(db)[1]
        units = sorted(_frame(db, list_id)["unit"].unique())
        by_prob = _all(db, list_id, units, sort="probability", descending=True)
        assert [r["probability"] for r in by_prob] == sorted((r["probability"] for r in by_prob), reverse=True)
        up = _all(db, list_id, units, sort="probability")
        assert [r["probability"] for r in up] == sorted(r["probability"] for r in up)
        names = [r["name"] for r in _all(db, list_id, units, sort="name")]
        assert names == sorted(names)
        ages = [r["age"] for r in _all(db, list_id, units, sort="age")]
        assert ages == sorted(ages) and ages[0] < ages[-1]
        old_first = [r["age"] for r in _all(db, list_id, units, sort="age", descending=True)]
        assert old_first == sorted(old_first, reverse=True)
        ranks = [r["rank"] for r in _all(db, list_id, units, sort="rank", descending=True)]
        assert ranks == sorted(ranks, reverse=True)


def test_paging_totals_and_clamping(loaded_url, db_of):
    with db_of(loaded_url) as db:
        list_id = _ids(db)[1]
        units = sorted(_frame(db, list_id)["unit"].unique())
        everyone = _all(db, list_id, units)
        first = worklist_page(db, list_id, units, per_page=7)
        assert first.total == len(everyone) and first.pages == math.ceil(len(everyone) / 7)
        seen = []
        for page in range(1, first.pages + 1):
            got = worklist_page(db, list_id, units, per_page=7, page=page)
            assert got.page == page and len(got.rows) == (7 if page < first.pages else len(everyone) - 7 * (page - 1))
            seen += [r["client_id"] for r in got.rows]
        assert seen == [r["client_id"] for r in everyone]
        beyond = worklist_page(db, list_id, units, per_page=7, page=10_000)
        assert beyond.page == first.pages and beyond.rows
        assert worklist_page(db, list_id, units, per_page=7, page=-3).page == 1


def test_record_action_validates(loaded, db_of):
    with db_of(loaded) as db:
        list_id = _ids(db)[1]
        user = _user(db)
        frame = _frame(db, list_id)
        row = frame.iloc[0]
        other = next(u for u in frame["unit"].unique() if u != row["unit"])
        kw = dict(list_id=list_id, client_id=row["client_id"], units=[row["unit"]], user=user, now=NOW)
        with pytest.raises(LookupError):
            record_action(db, **{**kw, "units": [other]}, status="contacted")
        with pytest.raises(LookupError):
            record_action(db, **{**kw, "client_id": "nobody"}, status="contacted")
        with pytest.raises(ActionError, match="status"):
            record_action(db, **kw, status="done")
        with pytest.raises(ActionError, match="reason"):
            record_action(db, **kw, status="not_appropriate", reason="   ")
        with pytest.raises(ActionError, match="note"):
            record_action(db, **kw, status="contacted", note="x" * (NOTE_MAX + 1))
        with pytest.raises(ActionError, match="before today"):
            record_action(db, **kw, status="contacted", follow_up=date(2025, 2, 28))
        with pytest.raises(ActionError, match="date"):
            record_action(db, **kw, status="contacted", follow_up="next week")
        assert db.scalar(select(func.count()).select_from(Action)) == 0
        done = record_action(db, **kw, status="not_appropriate", reason=" moved away ", note="x" * NOTE_MAX,
                             follow_up="2025-03-01")
        assert (done.reason, done.unit, done.follow_up, done.created_at) == ("moved away", row["unit"],
                                                                             date(2025, 3, 1), NOW)
        late = NOW.replace(hour=23, minute=30)  # 01:30 on 2 March in Helsinki: 1 March is in the past there
        with pytest.raises(ActionError, match="before today"):
            record_action(db, **{**kw, "now": late}, status="contacted", follow_up="2025-03-01")


def test_client_view(loaded, db_of):
    with db_of(loaded) as db:
        first, second = _ids(db)
        user = _user(db)
        frame = _frame(db, second)
        old = set(_frame(db, first)["client_id"])
        row = frame[frame["client_id"].isin(old)].iloc[0]
        other = next(u for u in frame["unit"].unique() if u != row["unit"])
        assert client_view(db, row["client_id"], [other]) is None
        assert client_view(db, row["client_id"], []) is None
        assert client_view(db, "nobody", [row["unit"]]) is None
        record_action(db, list_id=second, client_id=row["client_id"], units=[row["unit"]], user=user,
                      status="contacted", note="first", now=NOW)
        record_action(db, list_id=second, client_id=row["client_id"], units=[row["unit"]], user=user,
                      status="enrolled", now=NOW + timedelta(hours=1))
        view = client_view(db, row["client_id"], [row["unit"]], lang="sv")
        assert view.list_id == second and view.unit == row["unit"] and view.row["status"] == "enrolled"
        assert [h["as_of"] for h in view.history] == [date(2025, 1, 1), date(2024, 1, 1)]
        assert [a["status"] for a in view.actions] == ["enrolled", "contacted"]
        assert view.actions[1]["note"] == "first" and view.actions[0]["username"] == "cm1"
        assert view.directory["name"] == row["name"] and view.segment_data is None
        assert client_view(db, row["client_id"], [row["unit"]], list_id=first).list_id == first


def test_export_rows_are_spreadsheet_safe(loaded, db_of):
    with db_of(loaded) as db:
        list_id = _ids(db)[1]
        frame = _frame(db, list_id)
        unit = frame["unit"].iloc[0]
        target = frame.loc[frame["unit"] == unit, "client_id"].iloc[0]
        db.get(ClientDirectory, target).name = "=HYPERLINK(\"http://x\")"
        db.flush()
        out = export_rows(db, list_id, [unit], lang="en", band=None)
        assert len(out) == (frame["unit"] == unit).sum()
        assert out.loc[out["client_id"] == target, "name"].iloc[0] == "'=HYPERLINK(\"http://x\")"
        assert set(out["band"]) <= {"usual", "raised", "high"}
        assert export_rows(db, list_id, []).empty


def test_overview_counts_and_suppression(loaded, db_of):
    with db_of(loaded) as db:
        list_id = _ids(db)[1]
        user = _user(db)
        frame = _frame(db, list_id)
        for client, unit in frame[["client_id", "unit"]].head(3).itertuples(index=False):
            record_action(db, list_id=list_id, client_id=client, units=[unit], user=user, status="contacted",
                          now=NOW)
        out = overview(db, list_id)
    bands = out["band"].set_index("band")["clients"]
    want = frame["band"].value_counts()
    for band, n in want.items():
        assert bands[band] == (n if n >= OVERVIEW_MIN_COUNT else None)
    status = out["status"].set_index("status")
    assert status.loc["contacted", "clients"] is None and status.loc["contacted", "suppressed"]
    # the only other count is suppressed with it, else 3 = total - shown
    assert status.loc["none", "clients"] is None
    units = out["unit"].set_index("unit")
    assert units["clients"].sum() == len(frame) - sum(n for n in frame["unit"].value_counts() if n < 5)
    for frame_ in out.values():
        assert "client_id" not in frame_.columns and "name" not in frame_.columns
    assert suppress_counts(pd.Series([0, 3, 40, 7])).tolist() == [0, None, 40, None]
    assert suppress_counts(pd.Series([2, 3, 40])).tolist() == [None, None, 40]


def test_team_summary(loaded, db_of):
    with db_of(loaded) as db:
        list_id = _ids(db)[1]
        one, two = _user(db, "cm1"), _user(db, "cm2")
        frame = _frame(db, list_id)
        unit = frame["unit"].value_counts().index[0]
        ids = frame.loc[frame["unit"] == unit, "client_id"].tolist()
        for user, client, status in ((one, ids[0], "contacted"), (one, ids[0], "enrolled"),
                                     (two, ids[1], "declined")):
            record_action(db, list_id=list_id, client_id=client, units=[unit], user=user, status=status,
                          follow_up=date(2025, 5, 1) if client == ids[1] else None, now=NOW)
        summary = team_summary(db, list_id, [unit])
    assert summary["by_status"] == {"enrolled": 1, "declined": 1, "none": len(ids) - 2}
    assert summary["by_user"] == [{"username": "cm1", "actions": 2, "clients": 1},
                                  {"username": "cm2", "actions": 1, "clients": 1}]
    assert [r["status"] for r in summary["recent"]] == ["declined", "enrolled", "contacted"]
    assert summary["follow_up_due"] == 1


def test_import_segments_replaces_a_method(db_url, tmp_path, db_of):
    path = tmp_path / "segments.parquet"
    pd.DataFrame({"client_id": ["a", "b", "c"], "segment": [0, 1, 1],
                  "segment_name": ["low use", "75+ · home care", "75+ · home care"]}).to_parquet(path)
    with db_of(db_url) as db:
        assert import_segments(db, path) == 3
        pd.DataFrame({"client_id": ["a"], "segment_name": ["<b>x</b>"]}).to_parquet(path)
        assert import_segments(db, path) == 1
        assert import_segments(db, path, method="needs") == 1
        rows = db.execute(select(ClientSegment.client_id, ClientSegment.method, ClientSegment.segment)
                          .order_by(ClientSegment.method)).all()
    assert [tuple(r) for r in rows] == [("a", "data", "<b>x</b>"), ("a", "needs", "<b>x</b>")]
