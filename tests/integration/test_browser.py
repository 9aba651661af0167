"""A case manager's session in headless Chromium against the live app (uvicorn), on SQLite and on PostgreSQL.

Log in, filter the worklist, open a client, record "contacted" with a note holding a script tag (no
dialog may open; the text shows as text), see the status on the worklist, switch to Swedish, log out;
then a case manager of another unit cannot reach that client (404). Screenshots are saved under the
test's pytest temp dir (``<tmp>/screenshots``).
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

NOTE = "<script>alert(1)</script>"


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request):
    """The live app on SQLite or on PostgreSQL (the ``backend`` of the summary's count)."""
    return request.getfixturevalue("live_pg" if request.param == "postgresql" else "live_sqlite")


def _login(page, base, user):
    username, password = user
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def _facts(live):
    """The client's name and band on the newest list, read through the library (not through the page)."""
    from worklist import lists
    from worklist.db import make_engine, session_factory

    engine = make_engine(live["url"])
    try:
        with session_factory(engine)() as db:
            view = lists.client_view(db, live["client"], [live["units"][0]], live["list_id"])
    finally:
        engine.dispose()
    return view.directory["name"], view.row["band"]


def test_case_manager_session(page, browser, live):
    base, client, list_id = live["base"], live["client"], live["list_id"]
    name, band = _facts(live)
    shot = page.shots

    _login(page, base, live["users"]["a"])
    assert page.url.startswith(f"{base}/worklist")
    assert page.locator("html").get_attribute("lang") == "fi"
    page.screenshot(path=str(shot / "01_worklist.png"), full_page=True)

    # filter by the client's band: every row shown is of that band, and the client is among them
    page.select_option("form.filters select[name=band]", band)
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert f"band={band}" in page.url
    bands = page.locator("tbody tr td:nth-child(5)")
    assert bands.count() > 0
    assert all(f"b-{band}" in (bands.nth(i).get_attribute("class") or "") for i in range(bands.count()))
    page.screenshot(path=str(shot / "02_filtered.png"), full_page=True)

    page.click(f"a[href^='/clients/{client}?']")
    page.wait_for_load_state()
    assert page.url.startswith(f"{base}/clients/{client}")
    assert page.locator("h1").inner_text() == name
    assert page.locator("main").inner_text().count(client) >= 1

    page.select_option("select[name=status]", "contacted")
    page.fill("textarea[name=note]", NOTE)
    page.click("form.action button[type=submit]")
    page.wait_for_load_state()
    assert "saved=1" in page.url
    assert page.locator("td.note").first.inner_text() == NOTE  # shown as text ...
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()  # ... escaped in the HTML
    assert page.dialogs == []  # ... and never run
    page.screenshot(path=str(shot / "03_contacted.png"), full_page=True)

    # back to the worklist, filtered to "contacted": the client is there with that status
    page.goto(f"{base}/worklist?status=contacted")
    row = page.locator("tbody tr", has=page.locator(f"a[href^='/clients/{client}?']"))
    assert row.count() == 1
    assert "yhteys otettu" in row.inner_text()
    statuses = page.locator("tbody tr td:nth-child(9)")
    assert all(statuses.nth(i).inner_text() == "yhteys otettu" for i in range(statuses.count()))
    page.screenshot(path=str(shot / "04_status_on_worklist.png"), full_page=True)

    page.click("form[action='/lang'] button[value=sv]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "sv"
    assert "kontaktad" in row.inner_text()
    assert page.locator("h1").inner_text().startswith("Arbetslista")
    page.screenshot(path=str(shot / "05_swedish.png"), full_page=True)

    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_load_state()
    assert re.match(rf"{re.escape(base)}/login\b", page.url)
    page.goto(f"{base}/worklist")
    assert page.url.startswith(f"{base}/login")  # the session is over
    assert page.dialogs == []

    # a case manager of another unit: the client is not found, and not on their worklist
    _login(page, base, live["users"]["b"])
    assert page.locator(f"a[href^='/clients/{client}?']").count() == 0
    response = page.goto(f"{base}/clients/{client}?list={list_id}")
    assert response.status == 404
    assert name not in page.content()
    page.screenshot(path=str(shot / "06_other_unit_404.png"), full_page=True)
    assert page.request.get(f"{base}/api/clients/{client}").status == 404
    assert len(list(shot.glob("*.png"))) == 6
    _check_log(live)


def _check_log(live):
    """The log verifies and names who saw the client: cm.a's views and action, nothing of cm.b."""
    from worklist import accesslog
    from worklist.db import make_engine

    engine = make_engine(live["url"])
    try:
        report = accesslog.verify(engine, live["anchor"])
        seen = accesslog.client_report(engine, live["client"])
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert report.rows == report.anchored > 0
    by_a = set(seen.loc[seen["username"] == "cm.a", "what"])
    assert {"view_worklist", "view_client", "action"} <= by_a
    assert "cm.b" not in set(seen["username"])
