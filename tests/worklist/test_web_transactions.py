"""Reads take no write lock, writes are short separate transactions, last_seen is written once a minute."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from worklist import accesslog, auth
from worklist.db import AccessLog, Session, User, WalKeeper, begin_writing, make_engine, session_factory
from worklist.web import create_app
from worklist.web_common import TOUCH_EVERY, Memo

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_a_reading_session_does_not_block_a_writer_and_then_writes_itself(db_url):
    engine = make_engine(db_url)
    reader = session_factory(engine, read_only=True)()
    assert reader.scalars(select(User)).all() == []  # a read transaction is open now
    with session_factory(engine).begin() as other:  # with BEGIN IMMEDIATE reads this would wait 30 s and fail
        auth.add_user(other, "writer.one", "case_manager", ["u1"])
    begin_writing(reader)  # the reading transaction ends; the new one sees the committed user
    accesslog.record(reader, user="writer.one", role="case_manager", units=["u1"], what="view_worklist")
    reader.commit()
    begin_writing(reader)
    begin_writing(reader)  # already writing: nothing changes
    reader.rollback()
    reader.close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AccessLog)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(User)).scalar() == 1
    engine.dispose()


def test_changes_made_while_reading_are_refused(db_url):
    engine = make_engine(db_url)
    with session_factory(engine).begin() as db:
        auth.add_user(db, "reader.one", "analyst")
    with session_factory(engine, read_only=True)() as db:
        user = db.scalars(select(User)).one()
        user.lang = "sv"
        with pytest.raises(RuntimeError):
            begin_writing(db)
    engine.dispose()


def _last_seen(url: str) -> datetime:
    engine = make_engine(url)
    with engine.connect() as conn:
        value = conn.execute(select(Session.last_seen).where(Session.ended_at.is_(None))).scalar_one()
    engine.dispose()
    return value


def test_last_seen_is_written_at_most_once_a_minute_and_every_view_is_logged(db_url, tmp_path):
    engine = make_engine(db_url)
    with session_factory(engine).begin() as db:
        _, password = auth.add_user(db, "cm.one", "case_manager", ["u1"])
    app = create_app(db_url, secret="s" * 32, anchor=tmp_path / "a.anchor")
    client = TestClient(app)
    token = CSRF.search(client.get("/login").text).group(1)
    assert client.post("/login", data={"username": "cm.one", "password": password, "csrf": token},
                       follow_redirects=False).status_code == 303
    first = _last_seen(db_url)
    for _ in range(3):
        assert client.get("/worklist").status_code == 200
    assert _last_seen(db_url) == first  # seen less than a minute ago: not written again
    stale = datetime.now(timezone.utc) - TOUCH_EVERY - timedelta(seconds=5)
    with engine.begin() as conn:
        conn.execute(update(Session).values(last_seen=stale))
    assert client.get("/worklist").status_code == 200
    assert _last_seen(db_url) > stale + TOUCH_EVERY  # moved to the request's time
    with engine.connect() as conn:
        whats = conn.scalars(select(AccessLog.what).order_by(AccessLog.id)).all()
    assert whats == ["login"] + ["view_worklist"] * 4
    assert accesslog.verify(engine, tmp_path / "a.anchor").ok
    engine.dispose()


def test_memo_builds_once_per_key_and_forgets_the_least_recent():
    memo, calls = Memo(size=2), []

    def build(value):
        return lambda: calls.append(value) or value

    assert memo.get("a", build(1)) == 1
    assert memo.get("a", build(99)) == 1
    assert memo.get("b", build(2)) == 2
    assert memo.get("c", build(3)) == 3  # "a" is dropped
    assert memo.get("a", build(4)) == 4
    assert calls == [1, 2, 3, 4]


def test_wal_keeper_empties_a_large_write_ahead_log(db_url):
    engine = make_engine(db_url)
    keeper = WalKeeper(engine, limit_bytes=1, every=0.0)
    reader = session_factory(engine, read_only=True)()
    reader.scalars(select(User)).all()  # an older snapshot in use while others write
    with session_factory(engine).begin() as db:
        auth.add_user(db, "cm.two", "case_manager", ["u1"])
    assert keeper.wal.stat().st_size > 0
    reader.close()  # the checkpoint waits for readers of older snapshots; this one ends
    assert keeper.maybe_checkpoint()
    assert keeper.wal.stat().st_size == 0
    assert not WalKeeper(engine, limit_bytes=1, every=60.0).maybe_checkpoint()  # nothing to do: empty
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(User)).scalar() == 1
    engine.dispose()
