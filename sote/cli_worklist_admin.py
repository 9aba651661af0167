"""``sote worklist users …``, ``sote worklist audit …`` and ``sote worklist reset``: administration from the shell.

User changes are written to the access log (``user_admin``) in the same
transaction as the change. A generated password is printed once, on its own
line on standard output (the message around it goes to standard error), and
is never stored in plain text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sote.app import ExitCode, console, fail
from sote.cli_worklist import (ANCHOR_HELP, DB_HELP, anchor_of, audit_app, log_cli, open_database, operator_name,
                               shown_url, users_app, worklist_app)

ROLE_HELP = ("case_manager | unit_lead (see their units' clients; need --unit) | analyst (aggregates only) | "
             "admin (users and the access log)")


def _session(db: str | None):
    """``(url, a new ORM session)`` on the checked, migrated database."""
    from worklist.db import session_factory

    url, engine = open_database(db)
    return url, session_factory(engine)()


def _change_user(db: str | None, anchor: Path | None, change, detail: dict):
    """Run ``change(session)`` and log it as ``user_admin``, in one transaction; user errors fail in one line."""
    url, session = _session(db)
    with session:
        try:
            result = change(session)
        except (ValueError, LookupError) as err:
            session.rollback()
            fail(err.args[0] if isinstance(err, KeyError) and err.args else str(err))
        log_cli(session, anchor_of(url, anchor), "user_admin", detail=detail)
        session.commit()
    return result


def _show_password(intro: str, password: str) -> None:
    console.print(f"{intro}; its password, shown only now (give it to the user; it is stored only as a hash):",
                  highlight=False, soft_wrap=True)
    typer.echo(password)


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Login name: 2-64 of a-z 0-9 . _ - (lower-cased)."),
    role: str = typer.Option(..., help=ROLE_HELP),
    unit: list[str] = typer.Option([], "--unit", help="A unit whose clients the user sees (repeat for several)."),
    name: Optional[str] = typer.Option(None, "--name", help="Display name (default: the login name)."),
    lang: str = typer.Option("fi", help="Language of the pages: fi | sv | en."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
    anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP),
) -> None:
    """Add a local account with a generated password (printed once)."""
    from worklist.auth import add_user

    if lang not in ("fi", "sv", "en"):
        fail(f"--lang must be fi, sv or en, got {lang!r}")
    user, password = _change_user(
        db, anchor, lambda s: add_user(s, username, role, unit, display_name=name, lang=lang),
        {"command": "users add", "username": username.lower(), "role": role, "units": sorted(unit)})
    units = f" of {', '.join(sorted(unit))}" if unit else ""
    _show_password(f"user {user.username} ({role}{units}) added", password)


@users_app.command("disable")
def users_disable(username: str = typer.Argument(...), db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
                  anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Disable an account: no login, and its open sessions stop working (the history stays)."""
    from worklist.auth import disable_user

    _change_user(db, anchor, lambda s: disable_user(s, username), {"command": "users disable", "username": username})
    console.print(f"user {username} disabled", highlight=False)


@users_app.command("enable")
def users_enable(username: str = typer.Argument(...), db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
                 anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Enable a disabled account again."""
    from worklist.auth import enable_user

    _change_user(db, anchor, lambda s: enable_user(s, username), {"command": "users enable", "username": username})
    console.print(f"user {username} enabled", highlight=False)


@users_app.command("reset-password")
def users_reset_password(username: str = typer.Argument(...),
                         db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
                         anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Give an account a new generated password (printed once); clears a lockout and ends its sessions."""
    from worklist.auth import reset_password

    password = _change_user(db, anchor, lambda s: reset_password(s, username),
                            {"command": "users reset-password", "username": username})
    _show_password(f"new password for {username}", password)


@users_app.command("list")
def users_list(db: Optional[str] = typer.Option(None, "--db", help=DB_HELP)) -> None:
    """List the accounts: login name, display name, role, units, active, locked out."""
    import pandas as pd

    from worklist.auth import list_users

    _, session = _session(db)
    with session:
        users = list_users(session)
    if not users:
        console.print("no users yet; add one with `sote worklist users add NAME --role admin`", highlight=False)
        return
    frame = pd.DataFrame(users)[["username", "display_name", "role", "units", "active", "locked"]]
    frame["units"] = frame["units"].map(lambda units: ", ".join(units) or "-")
    console.print(frame.to_string(index=False), highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
                 anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Check the access log's hash chain against its anchor: exit 0 when intact, 1 listing every problem.

    Finds an edited row, a removed row in the middle, removed last rows and a rebuilt chain.
    """
    from worklist.accesslog import verify

    from sqlalchemy import func, select

    from worklist.db import AccessLog

    url, engine = open_database(db)
    where = anchor_of(url, anchor)
    with engine.connect() as conn:
        empty = not conn.execute(select(func.count()).select_from(AccessLog)).scalar_one()
    # a log with rows and no anchor file is a problem (the file was removed or --anchor is wrong)
    report = verify(engine, None if empty and not where.exists() else where)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"  {problem}", highlight=False, soft_wrap=True)
    summary = f"{report.rows:,} access-log rows, {report.anchored:,} anchored in {where}"
    if report.ok:
        console.print(f"access log intact: {summary}", highlight=False, soft_wrap=True)
        return
    first = f"first bad row id {report.first_bad_id}; " if report.first_bad_id is not None else ""
    fail(f"access log of {shown_url(url)} is broken: {first}{len(report.problems)} problem(s) listed above "
         f"({summary})", ExitCode.FAILED)


@audit_app.command("client")
def audit_client(client_id: str = typer.Argument(..., help="The client's pseudonymous id."),
                 db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
                 anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Who processed a client's data and when (the client's right to know); this look-up is logged too."""
    from worklist.accesslog import client_report

    from worklist.db import session_factory

    url, engine = open_database(db)
    frame = client_report(engine, client_id)
    with session_factory(engine)() as session:
        log_cli(session, anchor_of(url, anchor), "view_log", client_ids=[client_id], purpose="right to know",
                detail={"command": "audit client", "rows": len(frame)})
        session.commit()
    if frame.empty:
        console.print(f"no access to client {client_id} is recorded", highlight=False)
        return
    console.print(frame.to_string(index=False), highlight=False, soft_wrap=True)
    console.print(f"{len(frame):,} recorded access(es) to client {client_id} by "
                  f"{frame['username'].nunique():,} user(s)", highlight=False)


@worklist_app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Really delete everything in the worklist database."),
          db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
          anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP)) -> None:
    """Delete every list, user, action and the access log, then recreate the empty schema.

    The reset itself is written to the anchor file (a "# reset" line naming who and how many log rows
    went), so a later `audit verify` checks only the new chain and the reset stays on record.
    Only the worklist's own tables are dropped.
    """
    from sqlalchemy import func, select, text

    from worklist.accesslog import reset_marker
    from worklist.db import AccessLog, Base, migrate

    if not yes:
        fail("reset deletes every list, user, action and the whole access log of the worklist database; "
             "rerun with --yes if that is what you mean")
    url, engine = open_database(db)
    where = anchor_of(url, anchor)
    with engine.connect() as conn:
        rows = int(conn.execute(select(func.count()).select_from(AccessLog)).scalar_one())
    reset_marker(where, by=operator_name(), rows=rows)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    console.print(f"worklist database {shown_url(url)} reset: {rows:,} access-log rows removed; the reset is "
                  f"recorded in {where}", highlight=False, soft_wrap=True)
