"""``sote serve`` and ``sote worklist …``: the case-manager worklist's server and its administration.

Every command takes the same ``--db URL`` (default :func:`worklist.db.default_url`:
``$SOTE_WORKLIST_DB`` or the SQLite file ``var/worklist.db``) and brings the
database to the newest migration before it works. Commands that change
something (import, user administration) write a row to the access log, like
the web app does; ``--anchor`` names the file outside the database that holds
the log's checkpoints (default :func:`worklist.accesslog.default_anchor`).
"""
from __future__ import annotations

import getpass
import ipaddress
import socket
from pathlib import Path
from typing import Optional

import typer

from sote.app import app, console, fail, quiet_libraries

DB_HELP = ("Database URL: sqlite:///path/to/worklist.db or postgresql+psycopg://user@host/db "
           "(default: $SOTE_WORKLIST_DB or sqlite:///var/worklist.db).")
ANCHOR_HELP = ("The access log's anchor file (checkpoints kept outside the database; default: "
               "<db file>.audit-anchor beside a SQLite file, else $SOTE_WORKLIST_ANCHOR or var/worklist-audit.anchor).")

worklist_app = typer.Typer(no_args_is_help=True, help="The case-manager worklist: lists, users, access log.")
users_app = typer.Typer(no_args_is_help=True, help="Local worklist accounts (passwords are generated, shown once).")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained access log (703/2023).")
worklist_app.add_typer(users_app, name="users")
worklist_app.add_typer(audit_app, name="audit")
app.add_typer(worklist_app, name="worklist")


def operator_name() -> str:
    """Who runs a command, as recorded in the access log: ``cli:<login name>``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        name = "unknown"
    return f"cli:{name}"[:64]


def shown_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is printed as given (it carries no usable password)
        return url


def open_database(db: str | None):
    """Check ``--db``, connect, migrate; return ``(url, engine)`` or fail with one line naming the database.

    Parameters
    ----------
    db
        The ``--db`` value; None means :func:`worklist.db.default_url`.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from worklist.db import default_url, make_engine, migrate

    url = db or default_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        fail(f"--db {url!r} is not a database URL; give sqlite:///path/to/worklist.db or "
             "postgresql+psycopg://user@host/dbname")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        fail(f"--db {shown_url(url)}: the worklist runs on SQLite or PostgreSQL (sqlite:///… or "
             f"postgresql+psycopg://…), not {parsed.drivername}")
    quiet_libraries()
    try:
        engine = make_engine(url)
        migrate(engine)
    except NoSuchModuleError:
        fail(f"--db {shown_url(url)}: unknown database driver {parsed.drivername!r}; use sqlite:/// or "
             "postgresql+psycopg://")
    except DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err.orig).__name__
        fail(f"cannot open the worklist database {shown_url(url)}: {reason}")
    except OSError as err:
        fail(f"cannot open the worklist database {shown_url(url)}: {err.strerror or err}")
    return url, engine


def anchor_of(url: str, anchor: Path | None) -> Path:
    """The anchor file of the access log: the one given, or the default for ``url``."""
    from worklist.accesslog import default_anchor

    return Path(anchor) if anchor is not None else default_anchor(url)


def log_cli(db, anchor: Path, what: str, *, client_ids=(), detail: dict | None = None, purpose="worklist") -> None:
    """Append an access-log row for a command run from the command line (inside ``db``'s transaction)."""
    from worklist.accesslog import record

    record(db, user=operator_name(), role="admin", units=(), what=what, client_ids=client_ids, purpose=purpose,
           source="cli", detail=detail, anchor=anchor)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail with one line if nothing can listen on ``host:port`` (in use, not an address of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        fail(f"--host {host}: not an address of this machine ({err.strerror})")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            fail(f"cannot listen on {host}:{port}: {err.strerror}; choose another --port")


@app.command()
def serve(
    db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
    data: Optional[Path] = typer.Option(None, help="Folder with the canonical tables: the client page's 24 months "
                                                   "of service use (without it the chart is left out)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies",
                                        help="Send the session cookie only over HTTPS (set it behind TLS)."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on an address other machines can reach (put TLS in front)."),
    anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes sharing the port (on SQLite and "
                                                        "PostgreSQL alike; each keeps its own usage cache)."),
) -> None:
    """Start the worklist web app (log in, work a unit's list, record actions; every access is logged).

    Access is not written to the server's own request log (it would carry client ids); the access log
    in the database is the record of who saw which client.
    """
    import json
    import os

    import uvicorn

    from worklist.security import load_secret
    from worklist.web import SERVE_ENV, create_app

    if data is not None and not data.is_dir():
        fail(f"--data {data}: data directory not found")
    if not _is_loopback(host) and not allow_remote:
        fail(f"--host {host} can be reached from other machines; the worklist shows client data: give "
             "--allow-remote (behind TLS, with --secure-cookies) if that is what you mean")
    if not _is_loopback(host) and not secure_cookies:
        console.print(f"warning: listening on {host} without --secure-cookies: session cookies also travel over "
                      "plain HTTP", highlight=False, soft_wrap=True)
    _check_port(host, port)
    url, engine = open_database(db)
    engine.dispose()
    where = anchor_of(url, anchor)
    if workers == 1:
        web = create_app(url, data, secure_cookies=secure_cookies, anchor=where)
    else:
        # the secret file is created here, once, so that every worker reads the same one
        load_secret(None, where)
        os.environ[SERVE_ENV] = json.dumps({"url": url, "data": str(data.resolve()) if data else None,
                                            "anchor": str(where.resolve()), "secure_cookies": secure_cookies})
        web = "worklist.web:app_from_env"
    console.print(f"worklist at http://{host}:{port}/ (database {shown_url(url)}; access-log anchor {where}"
                  f"{f'; {workers} processes' if workers > 1 else ''}); Ctrl-C stops it",
                  highlight=False, soft_wrap=True)
    uvicorn.run(web, host=host, port=port, access_log=False, log_level="warning", workers=workers,
                factory=workers > 1)


@worklist_app.command("import")
def import_list(
    risklist: Path = typer.Argument(..., help="A risk list written by `sote score` (.parquet; sidecar <file>.json)."),
    segments: Optional[Path] = typer.Option(None, help="Data-driven segments (segments.parquet of the demo or "
                                                       "`sote segment`): client_id, segment_name."),
    directory_from: Optional[Path] = typer.Option(None, "--directory-from",
                                                  help="Data folder whose clients table becomes the client "
                                                       "directory (names and phones; synthetic data only)."),
    db: Optional[str] = typer.Option(None, "--db", help=DB_HELP),
    anchor: Optional[Path] = typer.Option(None, help=ANCHOR_HELP),
) -> None:
    """Load a scored risk list into the worklist (idempotent: the same file twice is imported once).

    The newest list (by as-of date) of each target is the current one; earlier ones stay as the clients'
    history and tell who is new on the list.
    """
    from worklist import lists
    from worklist.db import session_factory

    for path, option in ((risklist, "RISKLIST"), (segments, "--segments")):
        # a risk list may be a Parquet folder (sote score --engine spark)
        if path is not None and not (path.is_file() or (option == "RISKLIST" and path.is_dir())):
            fail(f"{option} {path}: file not found")
    if directory_from is not None and not directory_from.is_dir():
        fail(f"--directory-from {directory_from}: data directory not found")
    url, engine = open_database(db)
    where = anchor_of(url, anchor)
    with session_factory(engine)() as session:
        result = lists.import_risklist(session, risklist, imported_by=operator_name())
        done = {"list_id": result.list_id, "digest": result.digest, "rows": result.rows,
                "created": result.created, "file": risklist.name}
        if segments is not None:
            done["segments"] = lists.import_segments(session, segments, method="data")
        if directory_from is not None:
            from worklist.directory import build_directory, load_directory, read_clients

            done["directory"] = load_directory(session, build_directory(read_clients(directory_from)))
        if result.created or segments is not None or directory_from is not None:  # something was written
            log_cli(session, where, "import", detail=done)
        session.commit()
    about = f"{result.target} list as of {result.as_of} ({result.rows:,} clients, list id {result.list_id})"
    console.print(f"imported the {about}" if result.created
                  else f"already imported: the {about} has the same digest; nothing written",
                  highlight=False, soft_wrap=True)
    if "segments" in done:
        console.print(f"segments of {done['segments']:,} clients loaded from {segments}", highlight=False)
    if "directory" in done:
        console.print(f"client directory: {done['directory']:,} clients from {directory_from}", highlight=False)

