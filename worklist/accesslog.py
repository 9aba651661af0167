"""The hash-chained access log (lokitus, 703/2023): who processed which clients' data, when and why.

Every row carries ``prev_hash`` (the previous row's hash) and ``hash`` = sha256 of its canonical text
(:func:`canonical_text`: a JSON array of the row's fields, ``prev_hash`` last). Ids are consecutive from 1,
taken from the chain head (``audit_head``), which :func:`record` locks for the rest of the caller's
transaction (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every transaction already holds the write
lock from ``BEGIN IMMEDIATE``), so concurrent writers append one after another.

The chain alone cannot show that its newest rows were deleted, or that it was recomputed after an edit.
So each committed row's ``id``, ``hash`` and time are also appended to an *anchor* file outside the
database (:func:`default_anchor`); keep that file where the database's administrators cannot rewrite it
(another host, or an append-only file system attribute). :func:`verify` checks both.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session as OrmSession

from worklist.db import AccessLog, AccessLogClient, AuditHead

#: The allowed values of ``what``.
WHAT = ("login", "login_failed", "logout", "view_worklist", "view_client", "export", "action", "view_team",
        "view_overview", "view_log", "user_admin", "import", "lockout")
#: ``prev_hash`` of the first row.
GENESIS = "0" * 64
#: Anchor location for a non-file database, unless ``$SOTE_WORKLIST_ANCHOR`` says otherwise.
ANCHOR_ENV = "SOTE_WORKLIST_ANCHOR"
_PENDING = "accesslog_anchor_pending"
_HOOKED = "accesslog_anchor_hooked"
_CHUNK = 5000


@dataclass
class AuditReport:
    """The result of :func:`verify`.

    Attributes
    ----------
    ok
        True when no row is edited, missing or disagrees with the anchor.
    rows
        Rows in the database's log.
    anchored
        Rows whose hash an anchor line confirms.
    first_bad_id
        The smallest id that is edited, missing or rebuilt (None when ``ok``).
    problems
        One sentence per problem, in id order.
    notes
        What is not a problem but limits the check (rows newer than the last anchor line, no anchor).
    """

    ok: bool
    rows: int
    anchored: int
    first_bad_id: int | None
    problems: list[str]
    notes: list[str] = field(default_factory=list)


def default_anchor(url: str) -> Path:
    """Where the anchor of the database at ``url`` lives.

    Parameters
    ----------
    url
        A database URL. A SQLite file gets ``<file>.audit-anchor`` beside it; any other database
        ``$SOTE_WORKLIST_ANCHOR`` or ``var/worklist-audit.anchor`` under the working folder.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).resolve().with_name(Path(parsed.database).name + ".audit-anchor")
    return Path(os.environ.get(ANCHOR_ENV) or "var/worklist-audit.anchor").resolve()


def utc_text(now: datetime | None = None) -> str:
    """``now`` (default the current time; must be timezone-aware) as the ISO 8601 UTC text stored in ``at``."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("access-log times must be timezone-aware")
    return now.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical_text(row) -> str:
    """The text a row's hash is computed from: a JSON array of its fields with ``prev_hash`` last."""
    return json.dumps([row.id, row.at, row.username, row.role, row.units, row.what, row.purpose, row.client_ids,
                       row.client_count, row.source, row.detail, row.prev_hash],
                      ensure_ascii=False, separators=(",", ":"))


def row_hash(row) -> str:
    """sha256 (hex) of :func:`canonical_text`."""
    return hashlib.sha256(canonical_text(row).encode("utf-8")).hexdigest()


def record(db: OrmSession, *, user: str, role: str, units: Sequence[str], what: str,
           client_ids: Sequence[str] = (), purpose: str = "worklist", source: str = "",
           detail: dict | None = None, anchor: Path | None = None, now: datetime | None = None) -> AccessLog:
    """Append one row to the log inside the caller's open transaction ``db``.

    The row commits (or rolls back) with whatever else the caller does in ``db``. The chain head stays
    locked until then, so keep the transaction short. With ``anchor``, the row's anchor line is appended
    to that file after ``db`` commits (an error writing it is raised from ``commit``); rolled-back rows,
    including rows of a rolled-back savepoint, never reach the anchor. Lines of concurrent writers may
    reach the file out of id order; :func:`verify` does not mind.

    Parameters
    ----------
    db
        An ORM session; its transaction is begun if it is not yet.
    user, role, units
        Who acted: username, role and the units they act for.
    what
        One of :data:`WHAT`.
    client_ids
        The clients whose data was processed, in the order shown (ids must not contain commas).
    purpose, source, detail
        Why (e.g. ``"worklist:rising_high_use"``), from where (client address; cut to 100 characters) and
        any further facts as a JSON-able dict (stored as canonical JSON; never client ids or names).
    anchor
        The anchor file, usually :func:`default_anchor` of the database's URL.
    now
        The time of the row (timezone-aware; default now).

    Returns
    -------
    AccessLog
        A detached copy of the new row (written, not committed).
    """
    if what not in WHAT:
        raise ValueError(f"unknown access-log event {what!r}; expected one of {', '.join(WHAT)}")
    ids = [str(c) for c in client_ids]
    if any("," in c for c in ids):
        raise ValueError("a client id cannot contain a comma")
    # Core statements throughout: the head stays locked from here to the caller's commit, so keep it short
    conn = db.connection()
    last_id, last_hash = conn.execute(select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)
                                      .with_for_update()).one()
    row = AccessLog(id=last_id + 1, at=utc_text(now), username=user, role=role, units=",".join(units),
                    what=what, purpose=purpose, client_ids=",".join(ids), client_count=len(ids),
                    source=(source or "")[:100], detail=json.dumps(detail or {}, sort_keys=True, ensure_ascii=False,
                                                                    separators=(",", ":"), default=str),
                    prev_hash=last_hash)
    row.hash = row_hash(row)
    conn.execute(insert(AccessLog.__table__).values({c.key: getattr(row, c.key) for c in AccessLog.__table__.c}))
    if ids:  # one multi-row INSERT, not one per client
        conn.execute(insert(AccessLogClient.__table__),
                     [{"log_id": row.id, "client_id": c} for c in dict.fromkeys(ids)])
    conn.execute(update(AuditHead.__table__).where(AuditHead.id == 1).values(last_id=row.id, last_hash=row.hash))
    if anchor is not None:
        _queue_anchor(db, Path(anchor), f"{row.id}\t{row.hash}\t{row.at}\n")
    return row


def _queue_anchor(db: OrmSession, anchor: Path, line: str) -> None:
    if not db.info.get(_HOOKED):
        event.listen(db, "after_commit", _write_pending)
        event.listen(db, "after_soft_rollback", _drop_rolled_back)
        event.listen(db, "after_transaction_end", _drop_pending)
        db.info[_HOOKED] = True
    # remember the (innermost) transaction the row was written in, to drop it if that one rolls back
    db.info.setdefault(_PENDING, []).append((anchor, db.get_nested_transaction() or db.get_transaction(), line))


def _write_pending(db: OrmSession) -> None:
    by_file: dict[Path, list[str]] = {}
    for anchor, _, line in db.info.pop(_PENDING, []):
        by_file.setdefault(anchor, []).append(line)
    for anchor, lines in by_file.items():
        _append(anchor, "".join(lines))


def _drop_rolled_back(db: OrmSession, previous_transaction) -> None:
    def inside(transaction) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    db.info[_PENDING] = [entry for entry in db.info.get(_PENDING, []) if not inside(entry[1])]


def _drop_pending(db: OrmSession, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed lines are written already
        db.info.pop(_PENDING, None)


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def reset_marker(anchor: Path, *, by: str, rows: int, now: datetime | None = None) -> None:
    """Append a reset marker to ``anchor``: :func:`verify` ignores the anchor lines before it.

    Parameters
    ----------
    anchor
        The anchor file.
    by
        Who reset the database.
    rows
        How many log rows the database held before the reset.
    now
        Time of the reset (timezone-aware; default now).
    """
    _append(Path(anchor), f"# reset\t{utc_text(now)}\tby={by.replace(chr(9), ' ')}\trows={int(rows)}\n")


def read_anchor(anchor: Path) -> tuple[dict[int, str], list[str]]:
    """The anchor's lines after its last reset marker as ``{id: hash}``, and a problem per malformed line."""
    lines = Path(anchor).read_text(encoding="utf-8").splitlines()
    start = max((i + 1 for i, line in enumerate(lines) if line.startswith("# reset")), default=0)
    known: dict[int, str] = {}
    problems = []
    for number, line in enumerate(lines[start:], start=start + 1):
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64:
            problems.append(f"anchor line {number} is malformed")
            continue
        if known.setdefault(int(parts[0]), parts[1]) != parts[1]:
            problems.append(f"anchor line {number} gives row {parts[0]} a second, different hash")
    return known, problems


def verify(engine: Engine, anchor: Path | None) -> AuditReport:
    """Recompute the chain and compare it with the head and the anchor.

    Finds an edited row (any field), a removed row (an id gap; its successor's ``prev_hash`` no longer
    matches), removed newest rows (the anchor knows ids beyond the last row, or the head does), a chain
    recomputed after an edit (the anchor's hash differs) and ``access_log_clients`` rows that disagree
    with their row. Rows newer than the last anchor line are noted as not anchored, not as problems.

    Parameters
    ----------
    engine
        The worklist database.
    anchor
        The anchor file; None checks the chain alone (removed newest rows then go unseen).
    """
    bad: list[tuple[int, str]] = []
    notes: list[str] = []
    known: dict[int, str] = {}
    if anchor is None:
        notes.append("no anchor file given: removed newest rows or a recomputed chain cannot be detected")
    elif not Path(anchor).exists():
        bad.append((0, f"anchor file {anchor} is missing"))
    else:
        known, malformed = read_anchor(anchor)
        bad.extend((0, p) for p in malformed)
    rows = anchored = 0
    expected_id, prev = 1, GENESIS
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":  # one snapshot for the whole check (SQLite's BEGIN IMMEDIATE is one)
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        head = conn.execute(select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)).one()
        last = conn.execute(select(func.max(AccessLog.id))).scalar() or 0
        for lo in range(1, last + 1, _CHUNK):
            span_of = (lo, lo + _CHUNK - 1)
            clients: dict[int, set[str]] = {}
            for log_id, client in conn.execute(select(AccessLogClient.log_id, AccessLogClient.client_id)
                                               .where(AccessLogClient.log_id.between(*span_of))):
                clients.setdefault(log_id, set()).add(client)
            for row in conn.execute(select(AccessLog.__table__).where(AccessLog.id.between(*span_of))
                                    .order_by(AccessLog.id)):
                row = SimpleNamespace(**row._mapping)
                rows += 1
                if row.id != expected_id:
                    gap = (f"rows {expected_id}–{row.id - 1} are" if row.id - 1 > expected_id
                           else f"row {expected_id} is")
                    bad.append((expected_id, f"{gap} missing (removed from the middle of the log)"))
                elif row.prev_hash != prev:
                    bad.append((row.id, f"row {row.id}: prev_hash does not match row {row.id - 1} (chain broken)"))
                if row_hash(row) != row.hash:
                    bad.append((row.id, f"row {row.id} was edited (its hash does not match its content)"))
                if row.id in known:
                    if known[row.id] == row.hash:
                        anchored += 1
                    else:
                        bad.append((row.id, f"row {row.id}: hash differs from the anchor "
                                                    "(chain rebuilt or row replaced)"))
                ids = row.client_ids.split(",") if row.client_ids else []
                if clients.get(row.id, set()) != set(ids) or row.client_count != len(ids):
                    bad.append((row.id, f"row {row.id}: access_log_clients or client_count disagree with the row"))
                expected_id, prev = row.id + 1, row.hash
        orphans = conn.execute(select(func.count()).select_from(AccessLogClient)
                               .where(AccessLogClient.log_id.not_in(select(AccessLog.id)))).scalar()
    if orphans:
        bad.append((0, f"{orphans} access_log_clients rows belong to no log row"))
    beyond = sorted(i for i in known if i > last)
    if beyond:
        bad.append((beyond[0], f"rows {beyond[0]}–{beyond[-1]} are missing from the end of the log "
                                 "(the anchor knows them)"))
    if head.last_id > last:
        bad.append((last + 1, f"rows {last + 1}–{head.last_id} are missing from the end of the log "
                                "(the chain head knows them)"))
    elif head.last_id < last:
        bad.append((head.last_id + 1, f"rows {head.last_id + 1}–{last} were added behind the chain head's back"))
    elif last and head.last_hash != prev:
        bad.append((last, f"the chain head's hash differs from row {last}'s (chain rebuilt or row replaced)"))
    newest_anchored = max(known, default=0)
    if last > newest_anchored and anchor is not None:
        notes.append(f"{last - newest_anchored} rows newer than the last anchor line are not anchored")
    bad.sort(key=lambda b: b[0])
    first = min((i for i, _ in bad if i > 0), default=None)
    return AuditReport(ok=not bad, rows=rows, anchored=anchored, first_bad_id=first,
                       problems=[p for _, p in bad], notes=notes)


def client_report(engine: Engine, client_id: str) -> pd.DataFrame:
    """Who processed ``client_id``'s data and when (the client's right to know), oldest first.

    Returns
    -------
    pandas.DataFrame
        Columns at (UTC timestamps), username, role, units, what, purpose, source.
    """
    query = (select(AccessLog.at, AccessLog.username, AccessLog.role, AccessLog.units, AccessLog.what,
                    AccessLog.purpose, AccessLog.source)
             .join(AccessLogClient, AccessLogClient.log_id == AccessLog.id)
             .where(AccessLogClient.client_id == str(client_id)).order_by(AccessLog.id))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(),
                             columns=["at", "username", "role", "units", "what", "purpose", "source"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame


def browse(engine: Engine, *, username: str | None = None, what: str | None = None, client_id: str | None = None,
           since: datetime | None = None, until: datetime | None = None, page: int = 1,
           per_page: int = 100) -> tuple[list[AccessLog], int]:
    """One page of the log, newest first, filtered for the admin page.

    Parameters
    ----------
    username, what, client_id
        Exact matches (None: any).
    since, until
        Timezone-aware bounds on the row time (``since`` inclusive, ``until`` exclusive).
    page, per_page
        Which page (from 1) of how many rows.

    Returns
    -------
    tuple
        The page's rows and the number of rows matching the filters.
    """
    conditions = []
    if username:
        conditions.append(AccessLog.username == username)
    if what:
        conditions.append(AccessLog.what == what)
    if client_id:
        conditions.append(AccessLog.id.in_(select(AccessLogClient.log_id)
                                           .where(AccessLogClient.client_id == str(client_id))))
    if since is not None:
        conditions.append(AccessLog.at >= utc_text(since))
    if until is not None:
        conditions.append(AccessLog.at < utc_text(until))
    page, per_page = max(int(page), 1), max(int(per_page), 1)
    with OrmSession(engine) as db:
        total = db.execute(select(func.count()).select_from(AccessLog).where(*conditions)).scalar_one()
        rows = list(db.scalars(select(AccessLog).where(*conditions).order_by(AccessLog.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)))
        db.expunge_all()
    return rows, total


__all__ = ["ANCHOR_ENV", "AuditReport", "GENESIS", "WHAT", "browse", "canonical_text", "client_report",
           "default_anchor", "read_anchor", "record", "reset_marker", "row_hash", "utc_text", "verify"]
