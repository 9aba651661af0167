"""The live app (uvicorn on 127.0.0.1) over real HTTP, on SQLite and on PostgreSQL.

Action forms posted from concurrent sessions are all kept, each with its access-log row, in one
verifiable chain; a case manager of another unit gets 404 for the client on every client route.
"""
from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import func, select

from web_client import csrf_of, login

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request):
    """The live app on SQLite or on PostgreSQL."""
    return request.getfixturevalue("live_pg" if request.param == "postgresql" else "live_sqlite")


def _counts(url: str) -> tuple[int, int]:
    from worklist.db import AccessLog, Action, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.scalar(select(func.count()).select_from(Action)),
                    conn.scalar(select(func.count()).select_from(AccessLog).where(AccessLog.what == "action")))
    finally:
        engine.dispose()


def _unit_clients(url: str, list_id: int, unit: str, n: int) -> list[str]:
    from worklist.db import ListRow, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            # from rank 2 on: the browser test works on the unit's first client
            return list(conn.scalars(select(ListRow.client_id).where(ListRow.list_id == list_id, ListRow.unit == unit)
                                     .order_by(ListRow.unit_rank).offset(1).limit(n)))
    finally:
        engine.dispose()


def test_concurrent_action_posts_are_all_kept(live):
    """6 sessions post 8 actions each at the same time: 48 more actions, 48 more log rows, chain verifies."""
    from worklist import accesslog

    clients = _unit_clients(live["url"], live["list_id"], live["units"][0], 12)
    before = _counts(live["url"])
    errors, statuses = [], []

    def work(k):
        try:
            with httpx.Client(base_url=live["base"], timeout=60) as http:
                csrf = login(http, *live["users"]["a"])
                for i in range(8):
                    client = clients[(k * 8 + i) % len(clients)]
                    r = http.post(f"/clients/{client}/actions",
                                  data={"csrf": csrf, "list": str(live["list_id"]), "status": "not_reachable",
                                        "note": f"session {k} try {i}"})
                    statuses.append(r.status_code)
        except Exception as err:  # noqa: BLE001 - re-raised by the test below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert errors == []
    assert statuses == [303] * 48
    after = _counts(live["url"])
    assert (after[0] - before[0], after[1] - before[1]) == (48, 48)
    from worklist.db import make_engine

    engine = make_engine(live["url"])
    try:
        report = accesslog.verify(engine, live["anchor"])
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert report.rows == report.anchored


def test_another_units_client_is_not_found_anywhere(live):
    client, list_id = live["client"], live["list_id"]
    with httpx.Client(base_url=live["base"], timeout=60) as http:
        assert http.get(f"/clients/{client}").status_code == 303  # not logged in: to the login page
        assert http.get(f"/api/clients/{client}").status_code == 401
        csrf = login(http, *live["users"]["b"])
        for path in (f"/clients/{client}", f"/clients/{client}?list={list_id}", f"/api/clients/{client}",
                     f"/api/clients/{client}?list={list_id}", "/clients/no-such-client"):
            assert http.get(path).status_code == 404, path
        posted = http.post(f"/clients/{client}/actions",
                           data={"csrf": csrf, "list": str(list_id), "status": "contacted"})
        assert posted.status_code == 404
        # without a valid CSRF token the form is refused before anything else is looked at
        assert http.post(f"/clients/{client}/actions", data={"csrf": "forged", "list": str(list_id),
                                                              "status": "contacted"}).status_code == 403
        for path in ("/worklist", "/api/worklist", "/export.csv"):
            page = http.get(path)
            assert page.status_code == 200 and client not in page.text, path
        assert csrf_of(http.get("/worklist").text) == csrf
