"""The worklist database: tables (SQLAlchemy 2 ORM), engines for SQLite and PostgreSQL, migrations.

One schema serves SQLite (the default, a file kept outside every output
folder, in WAL mode) and PostgreSQL (``postgresql+psycopg://…``). The schema
is created and upgraded only by Alembic migrations (``worklist/migrations``),
never by ``create_all``: :func:`migrate` brings any database to the newest
revision.

Tables
------
users, user_units, sessions
    Local accounts (Argon2 hashes), the units each may see, server-side sessions.
risk_lists, list_rows
    Imported risk lists (one row per list, idempotent by the file's digest)
    and their client rows; the newest list per target is the current one.
client_directory, client_segments
    Who a pseudonymous id is (name, phone, municipality; shown only to the
    client's own unit) and the client's data-driven segment.
actions
    Append-only history of what a case manager did for a client on a list;
    the current status is the latest row.
access_log, access_log_clients, audit_head
    The hash-chained access log (703/2023), the client ids of each row (an
    index for "who processed my data"), and the chain head used as a lock.
"""
from __future__ import annotations

import os
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import (Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        create_engine, event, text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

#: Roles of a worklist user (see docs/worklist.md, "Who sees what").
ROLES = ("case_manager", "unit_lead", "analyst", "admin")
#: Roles that see client rows of their own units.
CLIENT_ROLES = ("case_manager", "unit_lead")
#: What a case manager can record for a client on a list; ``not_appropriate`` needs a reason.
STATUSES = ("reviewed_confirmed", "reviewed_not_needed", "contacted", "enrolled", "declined", "not_reachable",
            "not_appropriate")
#: Longest note kept with an action (characters).
NOTE_MAX = 1000

#: Where the default SQLite database lives: ``$SOTE_WORKLIST_DB`` or ``var/worklist.db`` under the working
#: folder — never inside an output folder, so a rerun of the demo or ``--overwrite`` cannot touch it.
DEFAULT_DB_ENV = "SOTE_WORKLIST_DB"


def default_url() -> str:
    """The default database URL: ``$SOTE_WORKLIST_DB`` if set, else the SQLite file ``var/worklist.db``."""
    given = os.environ.get(DEFAULT_DB_ENV)
    if given:
        return given
    return f"sqlite:///{Path('var/worklist.db').resolve()}"


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC time on every database: SQLite returns naive values, which are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"a time without a timezone cannot be stored: {value!r}")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lang: Mapped[str] = mapped_column(String(2), default="fi")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserUnit(Base):
    __tablename__ = "user_units"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    unit: Mapped[str] = mapped_column(String(100), primary_key=True)


class Session(Base):
    """A server-side login session; the cookie carries only a signed random token whose hash is ``id``."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)


class RiskListRecord(Base):
    __tablename__ = "risk_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    target: Mapped[str] = mapped_column(String(100), index=True)
    list_kind: Mapped[str | None] = mapped_column(String(30), nullable=True)
    as_of: Mapped[date] = mapped_column(Date)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(30))
    run_id: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(300))
    sidecar: Mapped[str] = mapped_column(Text)  # the list's JSON sidecar (cohort and purpose texts, counts)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by: Mapped[str] = mapped_column(String(64))


class ListRow(Base):
    __tablename__ = "list_rows"
    __table_args__ = (UniqueConstraint("list_id", "client_id"),
                      Index("ix_list_rows_list_unit_rank", "list_id", "unit", "unit_rank"),
                      Index("ix_list_rows_list_unit_globalrank", "list_id", "unit", "rank"),
                      # covering index of a unit's rows in client-id order: sorting by name, age, probability,
                      # status or follow-up, the filters, counts and the segment choices read no table rows, and
                      # the directory and action lookups of a unit's rows go in client-id order (cache-friendly)
                      Index("ix_list_rows_list_unit_cover", "list_id", "unit", "client_id", "unit_rank", "rank",
                            "probability", "band", "new_on_list", "segment"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("risk_lists.id"))
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)  # rank on the whole list
    unit_rank: Mapped[int] = mapped_column(Integer)  # rank inside the client's unit
    percentile: Mapped[float] = mapped_column(Float)
    probability: Mapped[float] = mapped_column(Float)
    probability_bound: Mapped[str | None] = mapped_column(String(5), nullable=True)
    probability_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    band: Mapped[str] = mapped_column(String(10))  # models.risklists.BANDS code: usual / raised / high
    segment: Mapped[str | None] = mapped_column(String(200), nullable=True)  # need × resources cell
    reasons_fi: Mapped[str | None] = mapped_column(Text, nullable=True)
    reasons_sv: Mapped[str | None] = mapped_column(Text, nullable=True)
    reasons_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason_types: Mapped[str | None] = mapped_column(String(200), nullable=True)
    intensive_ongoing: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    prior_high_use: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    new_on_list: Mapped[bool] = mapped_column(Boolean)  # not on the previous list of the same target


class ClientDirectory(Base):
    __tablename__ = "client_directory"
    # covering index: sorting and filtering a worklist by name or age reads no table rows
    __table_args__ = (Index("ix_client_directory_cover", "client_id", "birth_date", "name"),)

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    municipality: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))


class ClientSegment(Base):
    __tablename__ = "client_segments"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(30), primary_key=True)  # e.g. "data" (kmeans), "needs"
    segment: Mapped[str] = mapped_column(String(300))
    as_of: Mapped[date | None] = mapped_column(Date, nullable=True)


class Action(Base):
    """One recorded action; never updated or deleted (the current status is the newest row)."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_list_client", "list_id", "client_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("risk_lists.id"))
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    follow_up: Mapped[date | None] = mapped_column(Date, nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccessLog(Base):
    """One access-log row; ``hash`` = sha256 of the row's canonical text and ``prev_hash`` (see accesslog.py)."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC text, hashed as stored
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    units: Mapped[str] = mapped_column(Text)  # comma-separated
    what: Mapped[str] = mapped_column(String(40), index=True)
    purpose: Mapped[str] = mapped_column(String(100))
    client_ids: Mapped[str] = mapped_column(Text)  # comma-separated, in the order shown
    client_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AccessLogClient(Base):
    __tablename__ = "access_log_clients"

    log_id: Mapped[int] = mapped_column(ForeignKey("access_log.id"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class AuditHead(Base):
    """The single row (id 1) holding the chain's newest id and hash; locked while a row is appended."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


#: Execution option naming how a SQLite transaction begins: ``"immediate"`` (the default: a writer from its
#: start) or ``"deferred"`` (a reader; it must not write). PostgreSQL ignores it.
BEGIN_OPTION = "worklist_begin"
#: Execution options of a read-only transaction (``session_factory(engine, read_only=True)``).
READ_ONLY = {BEGIN_OPTION: "deferred"}
#: Execution options of a writing transaction (the default).
WRITING = {BEGIN_OPTION: "immediate"}
_MMAP_BYTES = 256 * 2**20
#: Connections per engine: one for each request thread of the server (anyio's default limit is 40), so a
#: request never waits for a connection; PostgreSQL keeps 10 open, SQLite (cheap connections) up to 40.
_POOL = 40


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    # reads through a shared memory map: no read() call and no private page-cache copy per connection
    cur.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    cur.close()
    # pysqlite's own transaction handling is switched off; _sqlite_begin starts every transaction
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn) -> None:
    # BEGIN IMMEDIATE (default): a writing transaction takes the write lock at its start, so two writers never
    # both read the chain head and then fail to upgrade (SQLITE_BUSY: a deferred reader cannot become a writer
    # once another one committed). A read-only transaction (READ_ONLY) begins deferred: in WAL mode it holds
    # no lock that writers wait for, and it sees one consistent snapshot.
    if conn.get_execution_options().get(BEGIN_OPTION) == "deferred":
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default :func:`default_url`); SQLite gets WAL mode and a created parent folder.

    Parameters
    ----------
    url
        ``sqlite:///path/to/file.db`` or ``postgresql+psycopg://user@host/db``.
    """
    url = url or default_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # as many connections as the server's request threads (40) and a few more: readers never wait for one
        pool = {"pool_size": _POOL, "max_overflow": 10} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=_POOL - 10)


def session_factory(engine: Engine, read_only: bool = False) -> sessionmaker:
    """A ``sessionmaker`` whose objects stay readable after commit (``expire_on_commit=False``).

    Parameters
    ----------
    read_only
        Begin its transactions as readers (:data:`READ_ONLY`; on SQLite a deferred ``BEGIN`` that takes no
        write lock). Such a session writes only in a transaction begun by :func:`begin_writing`.
    """
    return sessionmaker(engine, expire_on_commit=False, execution_options=dict(READ_ONLY) if read_only else None)


def begin_writing(db) -> None:
    """Make ``db``'s transaction a writing one (on SQLite ``BEGIN IMMEDIATE``), ending a reading one first.

    A no-op when its transaction already writes. A reading transaction with unflushed changes is an error
    (they would be written without the write lock); one without changes is committed (it wrote nothing), so
    objects loaded in it stay readable (``expire_on_commit=False``).

    Parameters
    ----------
    db
        An ORM session, usually of ``session_factory(engine, read_only=True)``.

    Raises
    ------
    RuntimeError
        If a reading transaction holds unflushed changes.
    """
    if db.in_transaction():
        if db.connection().get_execution_options().get(BEGIN_OPTION) != "deferred":
            return
        if db.new or db.dirty or db.deleted:
            raise RuntimeError("changes made in a read-only transaction; call begin_writing before changing")
        db.commit()
    db.connection(execution_options=dict(WRITING))


class WalKeeper:
    """Keeps a SQLite database's write-ahead log from growing without bound under constant reading.

    SQLite moves the WAL's pages into the database (a checkpoint) as it goes, but it can start the WAL
    file over only at a moment no reader uses it; a busy web app, reading in overlapping transactions,
    may never have one, and the file then grows by every commit (and reads slow down). At most every
    ``every`` seconds, :meth:`maybe_checkpoint` looks at the file's size and, above ``limit_bytes``, runs
    ``PRAGMA wal_checkpoint(TRUNCATE)``: it holds off writers until the readers of older snapshots are
    done (a page read: well under a second), copies the pages and empties the file.

    Parameters
    ----------
    engine
        The engine of a SQLite file database (otherwise the keeper does nothing).
    limit_bytes, every
        Checkpoint when the WAL file is larger than this; look at most this often (seconds).
    wait
        Seconds the checkpoint waits for older readers (holding writers off meanwhile) before it gives up
        until the next look.
    """

    def __init__(self, engine: Engine, limit_bytes: int = 64 * 2**20, every: float = 2.0, wait: float = 1.0):
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self.engine = engine
        self.wal = Path(f"{database}-wal") if database and database != ":memory:" else None
        self.limit_bytes = limit_bytes
        self.every = every
        self.wait = wait
        self._next = 0.0
        self._lock = threading.Lock()

    def maybe_checkpoint(self) -> bool:
        """Checkpoint and empty the WAL if it is due and too large; True when it did (one thread at a time)."""
        now = time.monotonic()
        if self.wal is None or now < self._next or not self._lock.acquire(blocking=False):
            return False
        try:
            self._next = now + self.every
            try:
                if self.wal.stat().st_size <= self.limit_bytes:
                    return False
            except FileNotFoundError:
                return False
            raw = self.engine.raw_connection()  # autocommit (no BEGIN): a checkpoint runs outside transactions
            try:
                cur = raw.cursor()
                # writers wait while it waits for older readers: give up after a second, try again later
                cur.execute(f"PRAGMA busy_timeout={int(self.wait * 1000)}")
                busy = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
            finally:
                raw.close()
            return not busy
        finally:
            self._lock.release()


def refresh_statistics(conn) -> None:
    """Update the query planner's statistics of the big tables (after an import; at server start).

    SQLite: ``ANALYZE`` with a sampling limit (fast on millions of rows); PostgreSQL: ``ANALYZE`` of the
    list, directory and action tables. Without them SQLite reads the directory through its primary key
    instead of the covering index, and PostgreSQL plans a fresh import's rows blind.

    Parameters
    ----------
    conn
        A connection (or ORM session) inside a writing transaction.
    """
    dialect = conn.dialect if hasattr(conn, "dialect") else conn.get_bind().dialect
    if dialect.name == "sqlite":
        conn.execute(text("PRAGMA analysis_limit=1000"))
        conn.execute(text("ANALYZE"))
    else:
        for table in ("list_rows", "client_directory", "actions"):
            conn.execute(text(f"ANALYZE {table}"))


def migrate(url_or_engine: str | Engine | None = None, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default the newest) with the Alembic migrations in this package."""
    from alembic import command
    from alembic.config import Config

    engine = url_or_engine if isinstance(url_or_engine, Engine) else make_engine(url_or_engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


__all__ = ["Action", "AccessLog", "AccessLogClient", "AuditHead", "BEGIN_OPTION", "Base", "CLIENT_ROLES",
           "ClientDirectory", "ClientSegment", "ListRow", "NOTE_MAX", "READ_ONLY", "ROLES", "RiskListRecord",
           "STATUSES", "Session", "User", "UserUnit", "WRITING", "WalKeeper", "begin_writing", "default_url", "make_engine",
           "migrate", "refresh_statistics", "session_factory"]
