"""HTTP tests of the worklist app (FastAPI TestClient) on one session-wide SQLite database.

The database holds both risk lists of the 600-resident county, its directory and a user per role; tests that
write (actions, logins) use their own users or count access-log rows by id, so they do not disturb each other.
"""
import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from worklist import accesslog, auth
from worklist.db import AccessLog, Action, ClientDirectory, ListRow, RiskListRecord, Session, User, make_engine, \
    migrate, session_factory
from worklist.directory import build_directory, load_directory, read_clients
from worklist.lists import import_risklist
from worklist.web import create_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EVIL_NAME = '=HYPERLINK("http://evil.example","x")'
SCRIPT = "<script>alert(1)</script>"


class Env:
    """The app, its database and the test users (name -> password), units A and B and clients of each."""

    def __init__(self, app, engine, anchor, passwords, unit_a, unit_b, list_id, old_list_id, client_a, client_b):
        self.app, self.engine, self.anchor, self.passwords = app, engine, anchor, passwords
        self.unit_a, self.unit_b, self.list_id, self.old_list_id = unit_a, unit_b, list_id, old_list_id
        self.client_a, self.client_b = client_a, client_b
        self.factory = session_factory(engine)

    def last_log_id(self) -> int:
        with self.factory() as db:
            return db.execute(select(func.coalesce(func.max(AccessLog.id), 0))).scalar_one()

    def log_since(self, last: int) -> list[AccessLog]:
        with self.factory() as db:
            return list(db.scalars(select(AccessLog).where(AccessLog.id > last).order_by(AccessLog.id)))

    def login(self, username: str, password: str | None = None) -> TestClient:
        client = TestClient(self.app)
        page = client.get("/login")
        token = CSRF.search(page.text).group(1)
        r = client.post("/login", data={"username": username, "password": password or self.passwords[username],
                                        "csrf": token}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return client


def csrf_of(client: TestClient, path: str = "/") -> str:
    return CSRF.search(client.get(path).text).group(1)


@pytest.fixture(scope="session")
def env(wl_county, wl_lists, tmp_path_factory):
    folder = tmp_path_factory.mktemp("wl_web")
    url = f"sqlite:///{folder / 'worklist.db'}"
    migrate(url)
    engine = make_engine(url)
    passwords = {}
    with session_factory(engine).begin() as db:
        for path in wl_lists:
            import_risklist(db, path, imported_by="test")
        load_directory(db, build_directory(read_clients(wl_county), seed=14))
        new = db.scalars(select(RiskListRecord).order_by(RiskListRecord.as_of.desc())).all()
        list_id, old_list_id = new[0].id, new[1].id
        units = db.execute(select(ListRow.unit, func.count()).where(ListRow.list_id == list_id)
                           .group_by(ListRow.unit).order_by(func.count().desc(), ListRow.unit)).all()
        unit_a, unit_b = units[0][0], units[1][0]
        ranked = {u: db.scalars(select(ListRow.client_id).where(ListRow.list_id == list_id, ListRow.unit == u)
                                .order_by(ListRow.unit_rank)).all() for u in (unit_a, unit_b)}
        client_a, client_b = ranked[unit_a][0], ranked[unit_b][0]
        db.execute(update(ClientDirectory).where(ClientDirectory.client_id == ranked[unit_a][1])
                   .values(name=EVIL_NAME))
        for name, role, units_of in (("cm_a", "case_manager", [unit_a]), ("cm_b", "case_manager", [unit_b]),
                                     ("cm_count", "case_manager", [unit_a]), ("lead_a", "unit_lead", [unit_a]),
                                     ("analyst", "analyst", []), ("analyst_a", "analyst", [unit_a]),
                                     ("admin", "admin", []), ("admin_a", "admin", [unit_a]),
                                     ("locky", "case_manager", [unit_a]), ("idle", "case_manager", [unit_a]),
                                     ("bye", "case_manager", [unit_a]), ("polyglot", "case_manager", [unit_a])):
            _, passwords[name] = auth.add_user(db, name, role, units_of, display_name=f"{name} <i>x</i>")
    anchor = folder / "worklist.db.audit-anchor"
    app = create_app(url, data=wl_county, secret="s" * 40, anchor=anchor)
    return Env(app, engine, anchor, passwords, unit_a, unit_b, list_id, old_list_id, client_a, client_b)


def test_unauthenticated_requests_go_to_login(env):
    client = TestClient(env.app)
    for path in ("/", "/worklist", f"/clients/{env.client_a}", "/export.csv", "/export.xlsx", "/team", "/overview",
                 "/admin/log", "/admin/users"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in ("/api/worklist", f"/api/clients/{env.client_a}"):
        assert client.get(path).status_code == 401
    for path in ("/logout", "/lang", f"/clients/{env.client_a}/actions"):
        assert client.post(path, data={"csrf": "x"}, follow_redirects=False).status_code == 303
    assert client.get("/healthz").json() == {"ok": True}
    login = client.get("/login")
    assert login.status_code == 200 and 'lang="fi"' in login.text and "Kirjaudu" in login.text


def test_security_headers_and_cookie_flags(env):
    client = TestClient(env.app)
    page = client.get("/login")
    token = CSRF.search(page.text).group(1)
    r = client.post("/login", data={"username": "cm_a", "password": env.passwords["cm_a"], "csrf": token},
                    follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "sote_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # secure_cookies=False in this app
    page = client.get(f"/clients/{env.client_a}")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-security-policy"].startswith("default-src 'self'; style-src 'self' 'unsafe-inline'")
    assert "<script" not in page.text  # no page needs JavaScript


def test_other_units_client_is_404_on_every_route(env):
    b = env.login("cm_b")
    token = csrf_of(b)
    with env.factory() as db:
        before = db.execute(select(func.count()).select_from(Action)).scalar_one()
    for cid in (env.client_a, "no-such-client"):
        assert b.get(f"/clients/{cid}").status_code == 404
        assert b.get(f"/clients/{cid}?list={env.list_id}").status_code == 404
        assert b.get(f"/clients/{cid}?list={env.old_list_id}").status_code == 404
        assert b.get(f"/api/clients/{cid}").status_code == 404
        r = b.post(f"/clients/{cid}/actions", data={"csrf": token, "list": str(env.list_id), "status": "contacted"})
        assert r.status_code == 404
    assert b.get(f"/clients/{env.client_b}").status_code == 200  # its own client is there
    assert env.client_a not in b.get("/worklist").text
    rows = b.get("/api/worklist").json()["rows"]
    assert rows and {r["unit"] for r in rows} == {env.unit_b}
    exported = b.get("/export.csv").content.decode("utf-8-sig")
    assert env.client_a not in exported and env.client_b in exported
    with env.factory() as db:
        assert db.execute(select(func.count()).select_from(Action)).scalar_one() == before


@pytest.mark.parametrize("user", ["analyst", "analyst_a", "admin"])
def test_users_without_client_rows_never_get_one(env, user):
    c = env.login(user)
    for path in ("/worklist", "/api/worklist", "/export.csv", "/export.xlsx"):
        assert c.get(path).status_code == 403, path
    for cid in (env.client_a, env.client_b):
        assert c.get(f"/clients/{cid}").status_code == 404
        assert c.get(f"/api/clients/{cid}").status_code == 404
    page = c.get("/overview")
    assert page.status_code == 200
    with env.factory() as db:
        ids = db.scalars(select(ListRow.client_id).where(ListRow.list_id == env.list_id)).all()
        names = db.scalars(select(ClientDirectory.name)).all()
    assert not any(cid in page.text for cid in ids)
    assert not any(name in page.text for name in names if len(name) > 6)


def test_admin_with_a_unit_sees_its_clients_only(env):
    c = env.login("admin_a")
    assert c.get(f"/clients/{env.client_a}").status_code == 200
    assert c.get(f"/clients/{env.client_b}").status_code == 404
    assert c.get("/admin/users").status_code == 200


def test_role_pages(env):
    cm = env.login("cm_a")
    for path in ("/team", "/overview", "/admin/log", "/admin/users"):
        assert cm.get(path).status_code == 403, path
    lead = env.login("lead_a")
    assert lead.get("/", follow_redirects=False).headers["location"] == "/worklist"
    assert lead.get("/team").status_code == 200
    analyst = env.login("analyst")
    assert analyst.get("/", follow_redirects=False).headers["location"] == "/overview"
    assert analyst.get("/team").status_code == 403 and analyst.get("/admin/log").status_code == 403
    users = env.login("admin").get("/admin/users")
    assert users.status_code == 200 and "cm_a &lt;i&gt;x&lt;/i&gt;" in users.text


def test_post_without_valid_csrf_is_refused(env):
    c = env.login("cm_a")
    token = csrf_of(c)
    with env.factory() as db:
        before = db.execute(select(func.count()).select_from(Action)).scalar_one()
    for data in ({}, {"csrf": ""}, {"csrf": token[:-2] + "xx"}):
        r = c.post(f"/clients/{env.client_a}/actions", data={**data, "list": str(env.list_id), "status": "contacted"})
        assert r.status_code == 403
        assert c.post("/lang", data={**data, "lang": "sv"}).status_code == 403
        assert c.post("/logout", data=data).status_code == 403
    assert c.get("/worklist").status_code == 200  # still logged in, still Finnish
    assert 'lang="fi"' in c.get("/worklist").text
    with env.factory() as db:
        assert db.execute(select(func.count()).select_from(Action)).scalar_one() == before
    # the login form: a token not matching the signed cookie, or no cookie at all
    fresh = TestClient(env.app)
    token = CSRF.search(fresh.get("/login").text).group(1)
    form = {"username": "cm_a", "password": env.passwords["cm_a"]}
    assert fresh.post("/login", data={**form, "csrf": token + "x"}).status_code == 403
    assert TestClient(env.app).post("/login", data={**form, "csrf": token}).status_code == 403
    assert fresh.post("/login", data={**form, "csrf": token}, follow_redirects=False).status_code == 303


def test_lockout_keeps_the_right_password_out(env):
    last = env.last_log_id()
    client = TestClient(env.app)
    for _ in range(auth.MAX_FAILED):
        token = CSRF.search(client.get("/login").text).group(1)
        r = client.post("/login", data={"username": "locky", "password": "wrong password!", "csrf": token})
        assert r.status_code == 401
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "locky", "password": env.passwords["locky"], "csrf": token})
    assert r.status_code == 401 and "lukittu" in r.text
    assert client.get("/worklist", follow_redirects=False).status_code == 303
    rows = [row for row in env.log_since(last) if row.username == "locky"]
    assert len(rows) == auth.MAX_FAILED + 1
    assert {row.what for row in rows} <= {"login_failed", "lockout"} and rows[-1].what == "lockout"
    assert all(row.source == "testclient" for row in rows)


def test_every_view_and_action_is_logged_and_notes_are_escaped(env):
    last = env.last_log_id()
    c = env.login("cm_count")
    page = c.get("/worklist")
    shown = re.findall(r'href="/clients/([^"?]+)\?list=', page.text)
    assert len(shown) == 50
    token = csrf_of(c, f"/clients/{env.client_a}")
    r = c.post(f"/clients/{env.client_a}/actions",
               data={"csrf": token, "list": str(env.list_id), "status": "contacted", "note": f"soitto {SCRIPT}",
                     "follow_up": ""}, follow_redirects=False)
    assert r.status_code == 303
    client_page = c.get(r.headers["location"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client_page.text and SCRIPT not in client_page.text
    bad = c.post(f"/clients/{env.client_a}/actions",
                 data={"csrf": token, "list": str(env.list_id), "status": "not_appropriate", "reason": ""})
    assert bad.status_code == 400 and "Toimenpidettä ei tallennettu" in bad.text
    json_view = c.get(f"/api/clients/{env.client_a}").json()
    assert json_view["actions"][0]["note"] == f"soitto {SCRIPT}" and json_view["row"]["status"] == "contacted"
    api = c.get("/api/worklist?status=contacted").json()
    assert env.client_a in [row["client_id"] for row in api["rows"]]
    c.get("/export.csv?status=contacted")
    c.post("/logout", data={"csrf": token})
    rows = env.log_since(last)
    assert [r.what for r in rows] == ["login", "view_worklist", "view_client", "action", "view_client",
                                      "view_client", "view_client", "view_worklist", "export", "logout"]
    assert all(r.username == "cm_count" and r.role == "case_manager" and r.units == env.unit_a for r in rows)
    assert rows[1].client_ids.split(",") == shown and rows[1].client_count == 50
    assert all(r.client_ids == env.client_a for r in rows[2:7])
    assert rows[3].purpose == "worklist:rising_high_use"
    assert env.client_a in rows[7].client_ids.split(",") and env.client_a in rows[8].client_ids.split(",")
    with env.factory() as db:
        actions = db.scalars(select(Action).where(Action.client_id == env.client_a)).all()
    assert [a.status for a in actions] == ["contacted"] and actions[0].note == f"soitto {SCRIPT}"
    report = accesslog.verify(env.engine, env.anchor)
    assert report.ok, report.problems
    assert "cm_count" in set(accesslog.client_report(env.engine, env.client_a)["username"])


def test_language_switch(env):
    c = env.login("polyglot")
    token = csrf_of(c, "/worklist")
    r = c.post("/lang", data={"csrf": token, "lang": "sv", "next": "/worklist?band=high"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/worklist?band=high"
    page = c.get(r.headers["location"])
    assert 'lang="sv"' in page.text and "Arbetslista" in page.text and "hög" in page.text
    assert c.post("/lang", data={"csrf": token, "lang": "xx"}).status_code == 400
    assert c.post("/lang", data={"csrf": token, "lang": "en", "next": "https://evil.example/"},
                  follow_redirects=False).headers["location"] == "/"
    assert "Worklist" in c.get("/worklist").text
    with env.factory() as db:
        assert db.scalars(select(User.lang).where(User.username == "polyglot")).one() == "en"


def test_filters_sorting_and_paging(env):
    c = env.login("cm_a")
    with env.factory() as db:
        total = db.execute(select(func.count()).select_from(ListRow)
                           .where(ListRow.list_id == env.list_id, ListRow.unit == env.unit_a)).scalar_one()
        top_band = db.execute(select(ListRow.band).where(ListRow.list_id == env.list_id, ListRow.unit == env.unit_a)
                              .order_by(ListRow.unit_rank).limit(1)).scalar_one()  # the county decides which
        in_band = db.execute(select(func.count()).select_from(ListRow).where(
            ListRow.list_id == env.list_id, ListRow.unit == env.unit_a, ListRow.band == top_band)).scalar_one()
        new = db.execute(select(func.count()).select_from(ListRow).where(
            ListRow.list_id == env.list_id, ListRow.unit == env.unit_a, ListRow.new_on_list.is_(True))).scalar_one()
    first = c.get("/api/worklist").json()
    assert first["total"] == total and first["pages"] == -(-total // 50) and len(first["rows"]) == 50
    assert [r["unit_rank"] for r in first["rows"]] == list(range(1, 51))
    second = c.get("/api/worklist?page=2").json()
    assert [r["unit_rank"] for r in second["rows"]] == list(range(51, 51 + len(second["rows"])))
    banded = c.get(f"/api/worklist?band={top_band}").json()
    assert 0 < banded["total"] == in_band and {r["band"] for r in banded["rows"]} == {top_band}
    assert c.get("/api/worklist?new=1").json()["total"] == new
    by_name = [r["name"] for r in c.get("/api/worklist?sort=name").json()["rows"]]
    assert by_name == sorted(by_name)
    old = [r["age"] for r in c.get("/api/worklist?sort=age&desc=1").json()["rows"]]
    assert old == sorted(old, reverse=True)
    aged = c.get("/api/worklist?age=65-74").json()["rows"]
    assert aged and all(65 <= r["age"] <= 74 for r in aged)
    # unknown values are ignored, not errors; the page is clamped
    assert c.get("/api/worklist?band=nope&sort=evil&page=x").json()["total"] == total
    assert c.get("/api/worklist?page=999").json()["page"] == first["pages"]
    html = c.get("/worklist?band=usual&sort=probability&desc=1").text
    assert 'href="/worklist?target=rising_high_use&amp;band=usual&amp;sort=probability&amp;desc=1&amp;page=2"' in html
    assert "/export.csv?target=rising_high_use&amp;band=usual&amp;sort=probability&amp;desc=1" in html
    assert "<option value=\"usual\" selected>" in html


def test_export_is_the_unit_only_and_spreadsheet_safe(env):
    from openpyxl import load_workbook

    last = env.last_log_id()
    c = env.login("cm_a")
    r = c.get("/export.csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="worklist-rising_high_use-')
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    with env.factory() as db:
        ids = set(db.scalars(select(ListRow.client_id).where(ListRow.list_id == env.list_id,
                                                             ListRow.unit == env.unit_a)).all())
    assert {row["client_id"] for row in rows} == ids and {row["unit"] for row in rows} == {env.unit_a}
    assert "'" + EVIL_NAME in [row["name"] for row in rows]
    assert not any(v.startswith(("=", "+", "@")) for row in rows for v in row.values())
    top_band = c.get("/api/worklist").json()["rows"][0]["band"]  # a band the unit has, filtered export
    book = load_workbook(io.BytesIO(c.get(f"/export.xlsx?band={top_band}").content))
    cells = [cell for row in book.active.iter_rows(min_row=2) for cell in row]
    assert cells and not any(cell.data_type == "f" for cell in cells)
    exports = [row for row in env.log_since(last) if row.what == "export"]
    assert len(exports) == 2 and set(exports[0].client_ids.split(",")) == ids
    assert exports[0].client_count == len(ids)
    page = c.get("/worklist").text
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;x&#34;)" in page  # shown as text, escaped


def test_logout_ends_the_session(env):
    c = env.login("bye")
    cookie = c.cookies.get("sote_session")
    token = csrf_of(c, "/worklist")
    r = c.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?bye=1"
    assert c.get("/worklist", follow_redirects=False).status_code == 303
    replay = TestClient(env.app, cookies={"sote_session": cookie})
    assert replay.get("/worklist", follow_redirects=False).headers["location"].startswith("/login")
    assert replay.get("/api/worklist").status_code == 401


def test_new_session_at_login_and_tampered_cookie(env):
    c = env.login("cm_a")
    first = c.cookies.get("sote_session")
    again = env.login("cm_a")
    assert again.cookies.get("sote_session") != first
    forged = TestClient(env.app, cookies={"sote_session": first[:-3] + "abc"})
    assert forged.get("/api/worklist").status_code == 401


def test_idle_timeout_returns_to_login(env):
    c = env.login("idle")
    assert c.get("/worklist").status_code == 200
    with env.factory.begin() as db:
        uid = db.scalars(select(User.id).where(User.username == "idle")).one()
        db.execute(update(Session).where(Session.user_id == uid, Session.ended_at.is_(None))
                   .values(last_seen=datetime.now(timezone.utc) - timedelta(minutes=31)))
    r = c.get("/worklist", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?expired=1"
    assert "Istunto päättyi" in c.get("/login?expired=1").text
    with env.factory() as db:
        assert db.scalars(select(Session.ended_at).where(Session.user_id == uid)).all()[-1] is not None


def test_client_page_team_overview_and_admin_log(env):
    lead = env.login("lead_a")
    page = lead.get(f"/clients/{env.client_a}")
    assert page.status_code == 200 and "<svg" in page.text
    for text in ("Riski nyt", "Riski aiemmilla listoilla", "Tarve × voimavarat", "Aineistosta johdettu segmentti"):
        assert text in page.text
    assert page.text.count("<li>") >= 5 or "ei selitetty" in page.text
    team = lead.get("/team")
    assert team.status_code == 200 and "Tilan mukaan" in team.text
    overview = env.login("analyst").get("/overview")
    assert "Riskiluokittain" in overview.text and "Yksiköittäin" in overview.text
    admin = env.login("admin")
    last = env.last_log_id()
    log_page = admin.get(f"/admin/log?username=lead_a&what=view_client&client={env.client_a}")
    assert log_page.status_code == 200 and "asiakassivun katselu" in log_page.text
    row = env.log_since(last)[-1]
    assert row.what == "view_log" and row.client_ids == env.client_a and row.username == "admin"


def test_secret_file_and_secure_cookies(env, tmp_path, monkeypatch):
    from worklist.security import SECRET_ENV, load_secret

    monkeypatch.delenv(SECRET_ENV, raising=False)
    anchor = tmp_path / "var" / "audit.anchor"
    first = load_secret(None, anchor)
    secret_file = tmp_path / "var" / "audit.anchor.secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600 and len(first) >= 48
    assert load_secret(None, anchor) == first  # kept, so sessions survive a restart
    monkeypatch.setenv(SECRET_ENV, "e" * 20)
    assert load_secret(None, anchor) == "e" * 20
    with pytest.raises(ValueError):
        load_secret("short", anchor)
    app = create_app(str(env.engine.url), secret="t" * 40, secure_cookies=True, anchor=env.anchor)
    client = TestClient(app, base_url="https://testserver")
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "cm_a", "password": env.passwords["cm_a"], "csrf": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    assert client.get("/api/worklist").status_code == 200
    # a cookie signed with another secret is not a session here
    other = TestClient(env.app, cookies={"sote_session": client.cookies.get("sote_session")})
    assert other.get("/api/worklist").status_code == 401
