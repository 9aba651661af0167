"""`sote worklist …` and `sote serve` from the command line: import, users, audit, reset, database errors.

Each test gets its own SQLite database and anchor file under tmp_path; the risk list is built directly
(no model) over a 120-resident synthetic county, so the directory can be loaded from the same clients.
"""
import socket
import sqlite3

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.synth import SynthConfig, generate_county
from risklist_data import make_risklist
from sote.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """A 120-resident county and a 60-client high_use list over its first residents."""
    root = tmp_path_factory.mktemp("wl_cli")
    data = root / "county"
    generate_county(data, SynthConfig(clients=120, seed=3, truth_reps=1, workers=1))
    clients = pd.read_parquet(data / "clients.parquet")
    risk = make_risklist(units=("unit_a", "unit_b"), per_unit=30, seed=1)
    risk["client_id"] = clients["client_id"].astype(str).to_numpy()[:len(risk)]
    risk.to_parquet(root / "risk.parquet", index=False)
    pd.DataFrame({"client_id": risk["client_id"], "segment": 1, "segment_name": "working age · low use"}
                 ).to_parquet(root / "segments.parquet", index=False)
    return root


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'wl.db'}"


def sql(url: str, query: str, *params):
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(query, params).fetchall()


def run(*args, db=None):
    return runner.invoke(app, [*args, *(["--db", db] if db else [])])


def test_import_loads_list_segments_and_directory_once(county, db):
    from worklist.directory import build_directory, read_clients

    res = run("worklist", "import", str(county / "risk.parquet"), "--segments", str(county / "segments.parquet"),
              "--directory-from", str(county / "county"), db=db)
    assert res.exit_code == 0, res.output
    assert "imported the high_use list as of 2025-01-01 (60 clients, list id 1)" in res.output
    assert "segments of 60 clients loaded" in res.output
    directory = len(build_directory(read_clients(county / "county")))
    assert f"client directory: {directory:,} clients" in res.output
    assert sql(db, "select count(*) from list_rows") == [(60,)]
    assert sql(db, "select count(*) from client_directory") == [(directory,)]
    assert sql(db, "select count(*) from client_segments where method = 'data'") == [(60,)]
    again = run("worklist", "import", str(county / "risk.parquet"), db=db)
    assert again.exit_code == 0, again.output
    assert "already imported: the high_use list as of 2025-01-01 (60 clients, list id 1) has the same digest; " \
           "nothing written" in again.output
    assert sql(db, "select count(*) from risk_lists") == [(1,)] and sql(db, "select count(*) from list_rows") == [(60,)]
    # the first import is in the access log (no client ids: a bulk load is not a view); the no-op is not
    assert sql(db, "select what, username, client_count from access_log") == [("import", sql(db, "select username "
               "from access_log")[0][0], 0)]
    assert sql(db, "select username from access_log")[0][0].startswith("cli:")
    missing = run("worklist", "import", str(county / "none.parquet"), db=db)
    assert missing.exit_code == 2 and "RISKLIST" in missing.output and "file not found" in missing.output


def test_users_add_list_disable_enable_and_reset_password(db):
    from worklist.auth import LoginFailed, authenticate
    from worklist.db import make_engine, session_factory

    res = run("worklist", "users", "add", "Maija.K", "--role", "case_manager", "--unit", "unit_a", "--unit", "unit_b",
              "--name", "Maija K", db=db)
    assert res.exit_code == 0, res.output
    password = res.stdout.strip().splitlines()[-1]
    assert len(password) >= 16 and password not in res.stderr  # on stdout only, once
    assert "user maija.k (case_manager of unit_a, unit_b) added" in res.stderr
    sessions = session_factory(make_engine(db))

    def login(pw):
        with sessions() as s:
            user = authenticate(s, "maija.k", pw)
            s.commit()
            return user.username

    assert login(password) == "maija.k"
    listed = run("worklist", "users", "list", db=db)
    assert listed.exit_code == 0 and "maija.k" in listed.output and "unit_a, unit_b" in listed.output
    assert run("worklist", "users", "disable", "maija.k", db=db).exit_code == 0
    assert "False" in run("worklist", "users", "list", db=db).output.splitlines()[-1]
    with pytest.raises(LoginFailed):
        login(password)
    assert run("worklist", "users", "enable", "maija.k", db=db).exit_code == 0
    reset = run("worklist", "users", "reset-password", "maija.k", db=db)
    assert reset.exit_code == 0, reset.output
    new = reset.stdout.strip().splitlines()[-1]
    assert new != password and login(new) == "maija.k"
    with pytest.raises(LoginFailed):
        login(password)
    for args, message in ((("add", "bob", "--role", "boss"), "role 'boss' is not one of"),
                          (("add", "bob", "--role", "unit_lead"), "needs at least one unit"),
                          (("add", "maija.k", "--role", "analyst"), "exists"),
                          (("disable", "nobody"), "no user 'nobody'")):
        bad = run("worklist", "users", *args, db=db)
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, bad.output
    # four changes, four user_admin rows; refused ones leave nothing
    assert sql(db, "select what, count(*) from access_log group by what") == [("user_admin", 4)]


def _three_rows(db):
    for name in ("aa", "bb", "cc"):
        assert run("worklist", "users", "add", name, "--role", "analyst", db=db).exit_code == 0


def test_audit_verify_exit_codes_after_tampering(db):
    _three_rows(db)
    ok = run("worklist", "audit", "verify", db=db)
    assert ok.exit_code == 0 and "access log intact: 3 access-log rows, 3 anchored" in ok.output
    sql(db, "update access_log set username = 'someone_else' where id = 2")
    edited = run("worklist", "audit", "verify", db=db)
    assert edited.exit_code == 1, edited.output
    assert "row 2 was edited" in edited.output and "first bad row id 2" in edited.output


def test_audit_verify_finds_removed_last_rows_even_with_the_head_rewound(db):
    _three_rows(db)
    prev = sql(db, "select hash from access_log where id = 2")[0][0]
    sql(db, "delete from access_log_clients where log_id = 3")
    sql(db, "delete from access_log where id = 3")
    sql(db, "update audit_head set last_id = 2, last_hash = ?", prev)  # a careful intruder rewinds the head
    res = run("worklist", "audit", "verify", db=db)
    assert res.exit_code == 1, res.output
    assert "rows 3–3 are missing from the end of the log (the anchor knows them)" in res.output
    anchor = db.removeprefix("sqlite:///") + ".audit-anchor"
    gone = run("worklist", "audit", "verify", "--anchor", anchor + ".elsewhere", db=db)
    assert gone.exit_code == 1 and "anchor file" in gone.output and "is missing" in gone.output


def test_audit_client_lists_who_processed_a_client_and_logs_the_look_up(db):
    from worklist.accesslog import record
    from worklist.db import make_engine, migrate, session_factory

    migrate(db)
    with session_factory(make_engine(db))() as s:
        record(s, user="cm_x", role="case_manager", units=["unit_a"], what="view_client", client_ids=["c42"],
               purpose="worklist:high_use", source="10.0.0.7")
        s.commit()
    res = run("worklist", "audit", "client", "c42", db=db)
    assert res.exit_code == 0, res.output
    assert "cm_x" in res.output and "view_client" in res.output and "worklist:high_use" in res.output
    assert "1 recorded access(es) to client c42 by 1 user(s)" in res.output
    assert sql(db, "select what, purpose from access_log where id = 2") == [("view_log", "right to know")]
    assert sql(db, "select client_id from access_log_clients where log_id = 2") == [("c42",)]
    assert "no access to client c43 is recorded" in run("worklist", "audit", "client", "c43", db=db).output


def test_reset_refuses_without_yes_and_keeps_a_marker_with_it(db):
    _three_rows(db)
    refused = run("worklist", "reset", db=db)
    assert refused.exit_code == 2 and "rerun with --yes" in refused.output
    assert sql(db, "select count(*) from users") == [(3,)]
    done = run("worklist", "reset", "--yes", db=db)
    assert done.exit_code == 0, done.output
    assert "3 access-log rows removed" in done.output
    assert sql(db, "select count(*) from users") == [(0,)] and sql(db, "select count(*) from access_log") == [(0,)]
    assert sql(db, "select last_id from audit_head") == [(0,)]
    lines = open(db.removeprefix("sqlite:///") + ".audit-anchor").read().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("# reset\t") and lines[-1].endswith("\trows=3")
    assert "by=cli:" in lines[-1]
    assert run("worklist", "audit", "verify", db=db).exit_code == 0  # the old anchor lines are before the marker
    assert run("worklist", "users", "add", "dd", "--role", "admin", db=db).exit_code == 0
    after = run("worklist", "audit", "verify", db=db)
    assert after.exit_code == 0 and "1 access-log rows, 1 anchored" in after.output


@pytest.mark.parametrize("url, message", [
    ("nonsense", "--db 'nonsense' is not a database URL"),
    ("mysql://u@localhost/db", "the worklist runs on SQLite or PostgreSQL"),
    ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot open the worklist database "
                                                      "postgresql+psycopg://u:***@127.0.0.1:1/db"),
])
def test_a_bad_or_unreachable_database_is_one_line(url, message):
    res = run("worklist", "users", "list", db=url)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "secret" not in res.output and "Traceback" not in res.output


def test_serve_refuses_remote_hosts_missing_data_and_a_busy_port(tmp_path, db):
    remote = run("serve", "--host", "0.0.0.0", db=db)
    assert remote.exit_code == 2 and "--allow-remote" in remote.output
    nodata = run("serve", "--data", str(tmp_path / "none"), db=db)
    assert nodata.exit_code == 2 and "data directory not found" in nodata.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run("serve", "--port", str(port), db=db)
    assert res.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in res.output
    assert not (tmp_path / "wl.db").exists()  # refused before the database was opened


# ------------------------------------------------------------------ the demo's worklist step

def test_demo_users_cover_every_unit_in_groups_of_two_or_three():
    from sote.demo_worklist import demo_users, unit_groups

    for n in range(2, 17):
        groups = unit_groups([f"u{i:02d}" for i in range(n)])
        assert sorted(sum(groups, [])) == [f"u{i:02d}" for i in range(n)]
        assert all(len(g) in (2, 3) for g in groups), (n, groups)
    assert unit_groups(["only"]) == [["only"]] and unit_groups([]) == []
    users = demo_users(["tuusula_hyrylä", "mantsala", "pornainen", "hyvinkaa_keskusta"])
    assert [(u["username"], u["role"], u["units"]) for u in users] == [
        ("cm_hyvinkaa_keskusta", "case_manager", ["hyvinkaa_keskusta", "mantsala"]),
        ("cm_pornainen", "case_manager", ["pornainen", "tuusula_hyrylä"]),
        ("lead_demo", "unit_lead", ["hyvinkaa_keskusta", "mantsala"]),
        ("analyst_demo", "analyst", []), ("admin_demo", "admin", [])]


def test_the_demo_refuses_a_worklist_database_inside_its_output(tmp_path):
    from sote.demo_worklist import check_outside

    out = tmp_path / "out"
    with pytest.raises(ValueError, match="would contain the store"):
        check_outside(f"sqlite:///{out / 'var' / 'wl.db'}", out)
    check_outside(f"sqlite:///{tmp_path / 'var' / 'wl.db'}", out)
    res = runner.invoke(app, ["demo", "--out", str(out), "--worklist-db", f"sqlite:///{out / 'wl.db'}"])
    assert res.exit_code == 2 and "--worklist-db" in res.output and not out.exists()


def test_a_demo_rerun_keeps_users_passwords_actions_and_the_log(county, tmp_path):
    from datetime import date

    from sqlalchemy import select

    from sote.demo_worklist import load_demo_worklist
    from worklist.auth import authenticate
    from worklist.db import User, make_engine, session_factory
    from worklist.lists import record_action

    previous = make_risklist(units=("unit_a", "unit_b"), per_unit=30, seed=2, as_of="2024-01-01")
    previous.to_parquet(tmp_path / "previous.parquet", index=False)
    url = f"sqlite:///{tmp_path / 'var' / 'wl.db'}"
    lists = [county / "risk.parquet", tmp_path / "previous.parquet"]  # newest first: imported oldest first anyway
    first = load_demo_worklist(url, lists, county / "county", county / "segments.parquet")
    assert (first["imported"], first["already"], first["segments"]) == (2, 0, 60)
    assert first["users_created"] == ["cm_unit_a", "lead_demo", "analyst_demo", "admin_demo"]
    users_file = tmp_path / "var" / "demo-users.txt"
    assert first["users_file"] == users_file and users_file.stat().st_mode & 0o777 == 0o600
    lines = users_file.read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == 5
    assert sql(url, "select id, as_of from risk_lists order by id") == [(1, "2024-01-01"), (2, "2025-01-01")]
    sessions = session_factory(make_engine(url))
    with sessions() as s:
        for line in lines[1:]:
            name, role, units, password = line.split("\t")
            assert authenticate(s, name, password).role == role
        s.commit()
        cm = s.scalars(select(User).where(User.username == "cm_unit_a")).one()
        client = sql(url, "select client_id from list_rows where list_id = 2 and unit = 'unit_a' limit 1")[0][0]
        record_action(s, list_id=2, client_id=client, units=["unit_a", "unit_b"], user=cm, status="contacted",
                      note="called", follow_up=date(2099, 1, 1))
        s.commit()
    before = (users_file.read_bytes(), sql(url, "select * from access_log"), sql(url, "select * from actions"))
    again = load_demo_worklist(url, lists, county / "county", county / "segments.parquet")
    assert (again["imported"], again["already"], again["directory"], again["users_created"]) == (0, 2, 0, [])
    assert again["users_kept"] == first["users_created"]
    assert (users_file.read_bytes(), sql(url, "select * from access_log"), sql(url, "select * from actions")) == before
    assert len(before[2]) == 1 and [r[5] for r in before[1]] == ["import", "user_admin"]
