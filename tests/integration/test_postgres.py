"""The worklist's database code against a real PostgreSQL server (Debian's, started by the fixtures).

The same library calls as the SQLite tests of tests/worklist: the migration, importing the lists, the
worklist page (checked row for row against the same data on SQLite), actions recorded from concurrent
threads with their access-log rows, and the chain's verification, which must catch tampering.
"""
from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text, update

from wl_setup import LIST_TARGET, load_database

pytestmark = pytest.mark.integration

NOW = datetime(2025, 1, 20, 9, 0, tzinfo=timezone.utc)


def _opened(url: str, facts: dict, anchor):
    from worklist.db import make_engine, session_factory

    engine = make_engine(url)
    return {**facts, "url": url, "engine": engine, "Session": session_factory(engine), "anchor": anchor}


@pytest.fixture(scope="session")
def shared(pg_server, wl_county, wl_lists, tmp_path_factory):
    """One loaded PostgreSQL database for the tests that only read (see wl_setup.load_database)."""
    url = pg_server("sote_shared")
    opened = _opened(url, load_database(url, wl_county, wl_lists), None)
    yield opened
    opened["engine"].dispose()


@pytest.fixture(scope="session")
def shared_sqlite(wl_county, wl_lists, tmp_path_factory):
    """The same data loaded into SQLite, to compare against."""
    from worklist.db import migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('same') / 'same.db'}"
    migrate(url)
    opened = _opened(url, load_database(url, wl_county, wl_lists), None)
    yield opened
    opened["engine"].dispose()


@pytest.fixture
def loaded(pg_url, wl_county, wl_lists, tmp_path):
    """A loaded PostgreSQL database of this test's own, for the tests that write."""
    opened = _opened(pg_url, load_database(pg_url, wl_county, wl_lists), tmp_path / "audit.anchor")
    yield opened
    opened["engine"].dispose()


@pytest.fixture
def empty(pg_url, tmp_path):
    """A migrated, empty PostgreSQL database of this test's own (the access log needs nothing else)."""
    opened = _opened(pg_url, {"units": ("unit_a",), "client": "c000042"}, tmp_path / "audit.anchor")
    yield opened
    opened["engine"].dispose()


def test_migration_is_idempotent_and_matches_the_models(pg_url):
    from alembic.migration import MigrationContext
    from alembic.autogenerate import compare_metadata

    from worklist.db import AuditHead, Base, make_engine, migrate

    migrate(pg_url)  # second time: nothing to do, nothing breaks
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select version()")).scalar().startswith("PostgreSQL")
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            head = conn.execute(select(AuditHead)).one()
            assert (head.id, head.last_id, head.last_hash) == (1, 0, "0" * 64)
    finally:
        engine.dispose()


def test_import_is_idempotent_and_keeps_both_lists(shared, wl_lists):
    from worklist import lists
    from worklist.db import ListRow, RiskListRecord

    Session = shared["Session"]
    frames = [pd.read_parquet(p) for p in wl_lists]
    with Session.begin() as db:
        again = lists.import_risklist(db, wl_lists[1], imported_by="integration")
    assert again.created is False and again.list_id == shared["list_id"]
    with Session() as db:
        assert db.scalar(select(func.count()).select_from(RiskListRecord)) == 2
        assert db.scalar(select(func.count()).select_from(ListRow)) == sum(len(f) for f in frames)
        assert lists.current_lists(db)[LIST_TARGET].id == shared["list_id"]
        new = dict(db.execute(select(ListRow.client_id, ListRow.new_on_list)
                              .where(ListRow.list_id == shared["list_id"])).all())
    previous = set(frames[0]["client_id"])
    assert new == {c: c not in previous for c in frames[1]["client_id"]}
    assert 0 < sum(new.values()) < len(new)


@pytest.mark.parametrize("filters", [
    {},
    {"sort": "name"},
    {"sort": "age", "descending": True},
    {"sort": "probability", "page": 2, "per_page": 10},
    {"new_only": True, "lang": "sv"},
    {"band": "usual"},  # the band every unit has (the small county may have no "high" in a unit)
    {"status": "none", "sort": "follow_up"},
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "default")
def test_worklist_page_equals_sqlite(shared, shared_sqlite, filters):
    """Every filter and sort gives the same rows in the same order on PostgreSQL as on SQLite."""
    from worklist import lists

    assert shared["units"] == shared_sqlite["units"] and shared["client"] == shared_sqlite["client"]
    unit = shared["units"][0]
    pages = []
    for opened in (shared, shared_sqlite):
        with opened["Session"]() as db:
            pages.append(lists.worklist_page(db, opened["list_id"], [unit], **filters))
    on_pg, on_sqlite = pages
    assert on_pg.total == on_sqlite.total and on_pg.pages == on_sqlite.pages
    assert on_pg.total > 0
    assert [r["client_id"] for r in on_pg.rows] == [r["client_id"] for r in on_sqlite.rows]
    assert on_pg.rows == on_sqlite.rows
    assert all(r["unit"] == unit for r in on_pg.rows)


def test_worklist_page_counts_and_paging(shared, wl_lists):
    from worklist import lists

    frame = pd.read_parquet(wl_lists[1])
    unit = shared["units"][0]
    expected = frame[frame["unit"] == unit].sort_values("rank")["client_id"].tolist()
    with shared["Session"]() as db:
        first = lists.worklist_page(db, shared["list_id"], [unit])
        last = lists.worklist_page(db, shared["list_id"], [unit], page=first.pages)
        nobody = lists.worklist_page(db, shared["list_id"], [])
    assert first.total == len(expected) and first.pages == math.ceil(len(expected) / lists.PER_PAGE)
    assert [r["client_id"] for r in first.rows] == expected[:lists.PER_PAGE]
    assert [r["unit_rank"] for r in first.rows] == list(range(1, len(first.rows) + 1))
    assert [r["client_id"] for r in last.rows] == expected[(first.pages - 1) * lists.PER_PAGE:]
    assert nobody.total == 0 and nobody.rows == []
    assert all(r["name"] and r["age"] is not None for r in first.rows)


def _record_actions(Session, anchor, user, list_id, units, clients, statuses, errors, done):
    from worklist import accesslog, lists

    try:
        for i, (client, status) in enumerate(zip(clients, statuses)):
            with Session.begin() as db:
                action = lists.record_action(db, list_id=list_id, client_id=client, units=units, user=user,
                                             status=status, note=f"note {i} <b>&</b>",
                                             follow_up=NOW.date() + timedelta(days=7), now=NOW)
                accesslog.record(db, user=user.username, role=user.role, units=units, what="action",
                                 client_ids=[client], purpose="worklist:rising_high_use",
                                 detail={"status": status}, anchor=anchor, now=NOW)
            done.append((client, status, action.id))
    except Exception as err:  # noqa: BLE001 - collected and re-raised by the test
        errors.append(err)


def test_concurrent_actions_and_the_log_stay_in_one_chain(loaded):
    """8 threads record 10 actions each (action + log row in one transaction): nothing lost, one chain."""
    from worklist import accesslog, lists
    from worklist.db import AccessLog, AccessLogClient, Action, ListRow, User

    Session, anchor, unit = loaded["Session"], loaded["anchor"], loaded["units"][0]
    with Session() as db:
        user = db.scalar(select(User).where(User.username == "cm.a"))
        clients = db.scalars(select(ListRow.client_id).where(ListRow.list_id == loaded["list_id"],
                                                             ListRow.unit == unit)
                             .order_by(ListRow.unit_rank).limit(20)).all()
    threads, errors, done = [], [], []
    for t in range(8):
        mine = [clients[(t * 10 + i) % len(clients)] for i in range(10)]
        statuses = ["contacted" if (t + i) % 2 else "reviewed_confirmed" for i in range(10)]
        threads.append(threading.Thread(target=_record_actions, args=(
            Session, anchor, user, loaded["list_id"], [unit], mine, statuses, errors, done)))
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    assert len(done) == 80
    with Session() as db:
        assert db.scalar(select(func.count()).select_from(Action)) == 80
        log = db.execute(select(AccessLog.id, AccessLog.prev_hash, AccessLog.hash, AccessLog.client_ids)
                         .order_by(AccessLog.id)).all()
        linked = db.scalar(select(func.count()).select_from(AccessLogClient))
        page = lists.worklist_page(db, loaded["list_id"], [unit], per_page=100)
    assert [r.id for r in log] == list(range(1, 81))
    assert [r.prev_hash for r in log[1:]] == [r.hash for r in log[:-1]]
    assert linked == 80
    assert sorted(r.client_ids for r in log) == sorted(c for c, _, _ in done)
    report = accesslog.verify(loaded["engine"], anchor)
    assert report.ok, report.problems
    assert (report.rows, report.anchored, report.first_bad_id) == (80, 80, None)
    # the worklist shows each client's latest status (the highest action id)
    latest = {}
    for client, status, action_id in sorted(done, key=lambda d: d[2]):
        latest[client] = status
    shown = {r["client_id"]: r["status"] for r in page.rows if r["client_id"] in latest}
    assert shown == latest


def _log_rows(empty, n=6):
    from worklist import accesslog

    with empty["Session"].begin() as db:
        for i in range(n):
            accesslog.record(db, user="cm.a", role="case_manager", units=[empty["units"][0]],
                             what="view_client", client_ids=[empty["client"]], source="127.0.0.1",
                             anchor=empty["anchor"], now=NOW + timedelta(seconds=i))


def _edit(db, AccessLog):
    db.execute(update(AccessLog).where(AccessLog.id == 3).values(what="view_worklist"))
    return 3


def _delete_middle(db, AccessLog):
    from worklist.db import AccessLogClient

    db.execute(delete(AccessLogClient).where(AccessLogClient.log_id == 4))
    db.execute(delete(AccessLog).where(AccessLog.id == 4))
    return 4


def _delete_tail(db, AccessLog):
    from worklist.db import AccessLogClient, AuditHead

    db.execute(delete(AccessLogClient).where(AccessLogClient.log_id >= 5))
    db.execute(delete(AccessLog).where(AccessLog.id >= 5))
    row = db.execute(select(AccessLog.hash).where(AccessLog.id == 4)).one()
    db.execute(update(AuditHead).values(last_id=4, last_hash=row.hash))
    return 5


def _rebuild(db, AccessLog):
    """Edit row 2 and recompute every hash from there on, as someone with database access could."""
    from worklist import accesslog

    rows = db.scalars(select(AccessLog).order_by(AccessLog.id)).all()
    rows[1].username = "someone.else"
    prev = rows[0].hash
    for row in rows[1:]:
        row.prev_hash = prev
        row.hash = prev = accesslog.row_hash(row)
    db.flush()
    return 2


@pytest.mark.parametrize("tamper", [_edit, _delete_middle, _delete_tail, _rebuild],
                         ids=["edited", "deleted_middle", "deleted_tail", "rebuilt"])
def test_tampering_is_detected(empty, tamper):
    from worklist import accesslog
    from worklist.db import AccessLog

    _log_rows(empty)
    assert accesslog.verify(empty["engine"], empty["anchor"]).ok
    with empty["Session"].begin() as db:
        bad = tamper(db, AccessLog)
    report = accesslog.verify(empty["engine"], empty["anchor"])
    assert not report.ok
    assert report.first_bad_id == bad
    assert report.problems


def test_client_report_lists_who_processed_the_client(empty):
    from worklist import accesslog

    _log_rows(empty, n=3)
    report = accesslog.client_report(empty["engine"], empty["client"])
    assert len(report) == 3
    assert set(report["username"]) == {"cm.a"} and set(report["what"]) == {"view_client"}
    assert list(report["at"]) == sorted(report["at"])
