"""The hash-chained access log: appending, anchoring after commit, concurrent writers, and what verify catches."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update

from worklist.accesslog import (GENESIS, WHAT, browse, canonical_text, client_report, default_anchor, read_anchor,
                                record, reset_marker, row_hash, verify)
from worklist.db import AccessLog, AccessLogClient, AuditHead, make_engine, session_factory

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def log(db_url, tmp_path):
    """(engine, sessionmaker, anchor path) over a fresh database holding 10 committed rows (ids 1–10)."""
    engine = make_engine(db_url)
    factory = session_factory(engine)
    anchor = tmp_path / "anchor"
    for i in range(10):
        with factory.begin() as db:
            record(db, user=f"u{i % 3}", role="case_manager", units=["Kallio"], what="view_client",
                   client_ids=[f"c{i}", f"c{i + 1}"], purpose="worklist:rising_high_use", source="127.0.0.1",
                   detail={"list": 1, "page": i}, anchor=anchor, now=T0 + timedelta(minutes=i))
    yield engine, factory, anchor
    engine.dispose()


def test_rows_are_chained_and_anchored(log):
    engine, factory, anchor = log
    with factory() as db:
        rows = db.scalars(select(AccessLog).order_by(AccessLog.id)).all()
        head = db.get(AuditHead, 1)
    assert [r.id for r in rows] == list(range(1, 11))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
    assert all(r.hash == row_hash(r) and len(r.hash) == 64 for r in rows)
    assert (head.last_id, head.last_hash) == (10, rows[-1].hash)
    assert rows[3].at == "2025-03-01T08:03:00.000000+00:00"
    assert rows[3].client_ids == "c3,c4" and rows[3].client_count == 2
    assert rows[3].detail == '{"list":1,"page":3}'
    # the canonical text is a JSON array ending with prev_hash, so every field is bound into the hash
    assert canonical_text(rows[3]).endswith(f'"{rows[2].hash}"]')
    known, problems = read_anchor(anchor)
    assert problems == [] and known == {r.id: r.hash for r in rows}
    report = verify(engine, anchor)
    assert (report.ok, report.rows, report.anchored, report.first_bad_id, report.problems) == (True, 10, 10, None, [])


def test_rolled_back_rows_never_reach_the_anchor_and_leave_no_gap(log):
    engine, factory, anchor = log
    with factory() as db:
        record(db, user="x", role="admin", units=[], what="view_log", anchor=anchor, now=T0)
        db.rollback()
    with factory() as db:  # a row in a rolled-back savepoint is dropped, its sibling in the outer transaction kept
        with db.begin():
            nested = db.begin_nested()
            record(db, user="x", role="admin", units=[], what="view_log", anchor=anchor, now=T0)
            nested.rollback()
            kept = record(db, user="y", role="admin", units=[], what="view_log", anchor=anchor, now=T0)
    with factory() as db:  # closed without commit
        record(db, user="z", role="admin", units=[], what="view_log", anchor=anchor, now=T0)
    assert kept.id == 11
    assert max(read_anchor(anchor)[0]) == 11 and len(anchor.read_text().splitlines()) == 11
    report = verify(engine, anchor)
    assert report.ok and report.rows == 11 and report.anchored == 11


def test_record_rejects_unknown_events_and_commas(log):
    _, factory, _ = log
    with factory() as db:
        with pytest.raises(ValueError, match="unknown access-log event"):
            record(db, user="u", role="admin", units=[], what="peek")
        with pytest.raises(ValueError, match="comma"):
            record(db, user="u", role="admin", units=[], what="export", client_ids=["a,b"])
        with pytest.raises(ValueError, match="timezone-aware"):
            record(db, user="u", role="admin", units=[], what="export", now=datetime(2025, 1, 1))
    assert len(WHAT) == 13 and "lockout" in WHAT


def test_duplicate_client_ids_are_indexed_once(log):
    engine, factory, anchor = log
    with factory.begin() as db:
        row = record(db, user="u", role="case_manager", units=["A"], what="export", client_ids=["c1", "c2", "c1"],
                     anchor=anchor)
    with factory() as db:
        assert sorted(db.scalars(select(AccessLogClient.client_id).where(AccessLogClient.log_id == row.id))) == [
            "c1", "c2"]
    assert row.client_count == 3 and verify(engine, anchor).ok


@pytest.mark.parametrize("column,value", [("username", "someone_else"), ("at", "2025-03-01T09:00:00.000000+00:00"),
                                          ("client_ids", "c4,c5"), ("what", "login"), ("purpose", "other"),
                                          ("detail", "{}"), ("client_count", 3), ("units", "Other"),
                                          ("source", "10.0.0.1"), ("role", "admin")])
def test_verify_catches_an_edited_field(log, column, value):
    engine, _, anchor = log
    with engine.begin() as conn:
        conn.execute(update(AccessLog).where(AccessLog.id == 4).values({column: value}))
    report = verify(engine, anchor)
    assert not report.ok and report.first_bad_id == 4
    assert "row 4 was edited" in report.problems[0]


def test_verify_catches_a_deleted_middle_row(log):
    engine, _, anchor = log
    with engine.begin() as conn:
        conn.execute(delete(AccessLogClient).where(AccessLogClient.log_id == 5))
        conn.execute(delete(AccessLog).where(AccessLog.id == 5))
    report = verify(engine, anchor)
    assert not report.ok and report.first_bad_id == 5 and report.rows == 9
    assert report.problems == ["row 5 is missing (removed from the middle of the log)"]


def test_verify_catches_deleted_last_rows_even_with_the_head_rewound(log):
    engine, factory, anchor = log
    with factory() as db:
        hash7 = db.get(AccessLog, 7).hash
    with engine.begin() as conn:
        conn.execute(delete(AccessLogClient).where(AccessLogClient.log_id > 7))
        conn.execute(delete(AccessLog).where(AccessLog.id > 7))
        conn.execute(update(AuditHead).values(last_id=7, last_hash=hash7))
    report = verify(engine, anchor)
    assert not report.ok and report.first_bad_id == 8 and report.rows == 7
    assert report.problems == ["rows 8–10 are missing from the end of the log (the anchor knows them)"]
    # without the anchor the chain itself is consistent: that is why the anchor exists
    assert verify(engine, None).ok


def test_verify_catches_a_chain_rebuilt_after_an_edit(log):
    engine, factory, anchor = log
    with factory.begin() as db:
        rows = db.scalars(select(AccessLog).order_by(AccessLog.id)).all()
        rows[5].username = "forger"
        prev = rows[4].hash
        for row in rows[5:]:
            row.prev_hash = prev
            row.hash = prev = row_hash(row)
        db.get(AuditHead, 1).last_hash = prev
    assert verify(engine, None).ok  # internally consistent again
    report = verify(engine, anchor)
    assert not report.ok and report.first_bad_id == 6 and report.anchored == 5
    assert len(report.problems) == 5 and all("differs from the anchor" in p for p in report.problems)


def test_verify_catches_client_index_tampering_and_a_missing_anchor(log, tmp_path):
    engine, _, anchor = log
    with engine.begin() as conn:
        conn.execute(delete(AccessLogClient).where(AccessLogClient.log_id == 2, AccessLogClient.client_id == "c2"))
    report = verify(engine, anchor)
    assert report.first_bad_id == 2 and "access_log_clients" in report.problems[0]
    missing = verify(engine, tmp_path / "nowhere")
    assert not missing.ok and "missing" in missing.problems[0]


def test_rows_newer_than_the_anchor_are_noted_not_bad(log):
    engine, factory, anchor = log
    with factory.begin() as db:
        record(db, user="u", role="admin", units=[], what="view_log")  # no anchor given
    report = verify(engine, anchor)
    assert report.ok and report.rows == 11 and report.anchored == 10
    assert report.notes == ["1 rows newer than the last anchor line are not anchored"]


def test_reset_marker_starts_the_anchor_afresh(db_url, tmp_path, log):
    old_engine, _, anchor = log
    reset_marker(anchor, by="admin", rows=10, now=T0)
    assert anchor.read_text().splitlines()[-1] == "# reset\t2025-03-01T08:00:00.000000+00:00\tby=admin\trows=10"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    from worklist.db import migrate

    migrate(fresh)
    engine = make_engine(fresh)
    report = verify(engine, anchor)  # the old lines (ids 1–10) are before the marker: nothing "removed"
    assert report.ok and report.rows == 0
    with session_factory(engine).begin() as db:
        record(db, user="u", role="admin", units=[], what="import", anchor=anchor)
    assert verify(engine, anchor).anchored == 1
    engine.dispose()


def test_client_report_and_browse(log):
    engine, factory, anchor = log
    frame = client_report(engine, "c4")
    assert list(frame.columns) == ["at", "username", "role", "units", "what", "purpose", "source"]
    assert frame["username"].tolist() == ["u0", "u1"]  # rows 4 (c3,c4) and 5 (c4,c5): u{3%3}, u{4%3}
    assert frame["at"].tolist() == [T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)]
    assert client_report(engine, "nobody").empty
    rows, total = browse(engine, per_page=4, page=2)
    assert total == 10 and [r.id for r in rows] == [6, 5, 4, 3]
    rows, total = browse(engine, username="u1")
    assert total == 3 and [r.id for r in rows] == [8, 5, 2]
    rows, total = browse(engine, client_id="c4", what="view_client")
    assert total == 2 and [r.id for r in rows] == [5, 4]
    rows, total = browse(engine, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    assert [r.id for r in rows] == [5, 4, 3] and total == 3
    assert browse(engine, what="login") == ([], 0)


def test_default_anchor(monkeypatch, tmp_path):
    assert default_anchor(f"sqlite:///{tmp_path / 'w.db'}") == tmp_path / "w.db.audit-anchor"
    monkeypatch.setenv("SOTE_WORKLIST_ANCHOR", str(tmp_path / "pg.anchor"))
    assert default_anchor("postgresql+psycopg://u@localhost/w") == tmp_path / "pg.anchor"
    monkeypatch.delenv("SOTE_WORKLIST_ANCHOR")
    assert default_anchor("postgresql+psycopg://u@localhost/w").parts[-2:] == ("var", "worklist-audit.anchor")


def test_concurrent_writers_keep_one_chain(db_url, tmp_path):
    """8 threads × 25 transactions on SQLite: 200 consecutive rows, a valid chain, 200 anchor lines."""
    engine = make_engine(db_url)
    factory = session_factory(engine)
    anchor = tmp_path / "anchor"
    errors = []

    def writer(n):
        try:
            for i in range(25):
                with factory.begin() as db:
                    record(db, user=f"t{n}", role="case_manager", units=["A"], what="view_client",
                           client_ids=[f"c{n}-{i}"], anchor=anchor)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    assert errors == []
    report = verify(engine, anchor)
    assert (report.ok, report.rows, report.anchored, report.problems) == (True, 200, 200, [])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT username), count(*) FROM access_log")).one() == (8, 200)
    print(f"SQLite: 200 access-log rows from 8 threads in {seconds:.2f} s ({200 / seconds:.0f} rows/s)")
    engine.dispose()


def test_verify_without_anchor_still_sees_tail_rows_the_head_knows(log):
    engine, _, _ = log
    with engine.begin() as conn:
        conn.execute(delete(AccessLogClient).where(AccessLogClient.log_id == 10))
        conn.execute(delete(AccessLog).where(AccessLog.id == 10))
    report = verify(engine, None)
    assert not report.ok and report.first_bad_id == 10
    assert report.problems == ["rows 10–10 are missing from the end of the log (the chain head knows them)"]
