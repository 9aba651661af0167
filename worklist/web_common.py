"""What every worklist route shares: the app's state, the signed-in viewer, rendering and the access log.

- :class:`WebState` is created once per app (:func:`worklist.web.create_app`)
  and kept on ``app.state.wl``: engine, session factory, cookie signer,
  templates, settings; nothing module-level is mutable.
- :func:`get_db` opens one ORM session per request whose transactions begin
  as readers (on SQLite a deferred ``BEGIN``: no write lock while a page is
  queried); :func:`writing` turns it into a short writing transaction
  (``BEGIN IMMEDIATE``) for what a request records. :func:`get_viewer` loads
  the server-side session named by the signed cookie (idle sessions end) and
  raises :class:`NotLoggedIn` (→ login page, or 401 on ``/api/``); the
  session's ``last_seen`` is written at most once per :data:`TOUCH_EVERY`.
- :class:`Viewer` knows the user's units and which of them show client rows
  (:attr:`Viewer.client_units`: never for an analyst; an admin only with units).
- :func:`log` writes one access-log row inside the request's writing
  transaction (begun if the request only read so far); the caller commits it
  before the page leaves, together with any action it records.
- :class:`Memo` keeps small, rebuildable answers per app (the segment
  filter's choices of a list and units).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from worklist import accesslog, auth
from worklist.db import NOTE_MAX, Session, User, WalKeeper, begin_writing
from worklist.i18n import LANG_NAMES, LANGS, label, lang_or_default, texts
from worklist.security import SESSION_COOKIE, CookieSigner, same_token

#: Time zone in which the pages show times (the database keeps UTC).
LOCAL_TZ = ZoneInfo("Europe/Helsinki")
#: Roles that may open each role page.
PAGE_ROLES = {"team": ("unit_lead",), "overview": ("analyst", "admin"), "admin": ("admin",)}
#: A session's ``last_seen`` is written again only when it is older than this (a write per request would
#: serialise every page view on SQLite); the idle timeout is measured from it, so it may end up to this much early.
TOUCH_EVERY = timedelta(seconds=60)


class NotLoggedIn(Exception):
    """No valid session: the request goes to the login page (``/api/``: 401). ``expired`` after idle timeout."""

    def __init__(self, expired: bool = False):
        super().__init__("not logged in")
        self.expired = expired


def _local_time(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def make_templates() -> Environment:
    """The Jinja2 environment of the app's templates; autoescaping is on for every template."""
    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                      autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["local_time"] = _local_time
    env.globals.update(label=label, LANGS=LANGS, LANG_NAMES=LANG_NAMES, NOTE_MAX=NOTE_MAX)
    return env


@dataclass
class WebState:
    """Everything one app instance needs; created by :func:`worklist.web.create_app`."""

    engine: Engine
    factory: sessionmaker
    signer: CookieSigner
    templates: Environment
    anchor: Path
    data: Path | None = None
    secure_cookies: bool = False
    idle: timedelta = timedelta(minutes=30)
    memo: "Memo" = field(default_factory=lambda: Memo())
    wal: WalKeeper | None = None
    _service: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def service_use(self):
        """The :class:`worklist.history.ServiceUse` reader of ``data`` (built once), or None without data."""
        if self.data is None:
            return None
        with self._lock:
            if self._service is None:
                from worklist.history import ServiceUse

                self._service = ServiceUse(self.data)
            return self._service


class Memo:
    """A small thread-safe least-recently-used map of answers that never change for their key.

    Keys must name everything the answer depends on (for a list: its id and digest, so a list deleted by
    a reset and a new one with the same id never share an answer).

    Parameters
    ----------
    size
        Most answers kept.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, build):
        """The answer of ``key``, computed by ``build()`` (outside the lock) when not yet known."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


@dataclass
class Viewer:
    """The signed-in user of a request."""

    session: Session
    user: User
    units: list[str]

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def lang(self) -> str:
        return lang_or_default(self.user.lang)

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    @property
    def client_units(self) -> list[str]:
        """Units whose client rows this user sees: a case manager's or unit lead's units, an admin's units,
        never an analyst's (aggregates only)."""
        return [] if self.role == "analyst" else list(self.units)


def state(request: Request) -> WebState:
    """The app's :class:`WebState`."""
    return request.app.state.wl


def get_db(request: Request) -> Iterator[OrmSession]:
    """One ORM session per request, closed (rolled back if uncommitted) afterwards.

    Its transactions begin as readers (``session_factory(engine, read_only=True)``); call :func:`writing`
    before changing anything (:func:`log` does).
    """
    wl = state(request)
    db = wl.factory()
    try:
        yield db
    finally:
        db.close()
        if wl.wal is not None:  # SQLite: empty the write-ahead log now and then (see WalKeeper)
            wl.wal.maybe_checkpoint()


def session_token(request: Request) -> str | None:
    """The raw session token inside the signed cookie, or None."""
    return state(request).signer.read(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))


def writing(db: OrmSession) -> None:
    """Begin the request's writing transaction (:func:`worklist.db.begin_writing`); keep it short: on
    SQLite it holds the database's write lock until the caller commits."""
    begin_writing(db)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def load_viewer(request: Request, db: OrmSession) -> Viewer | None:
    """The signed-in :class:`Viewer`, or None.

    The session is checked in a reading transaction; only when its ``last_seen`` is older than
    :data:`TOUCH_EVERY` (or the session must end: idle, user disabled) does
    :func:`worklist.auth.load_session` run in a short writing transaction that moves ``last_seen`` (or ends
    the session) and commits.
    """
    token = session_token(request)
    if token is None:
        return None
    wl = state(request)
    now = datetime.now(timezone.utc)
    sess = db.get(Session, auth._token_id(token))
    user = db.get(User, sess.user_id) if sess is not None and sess.ended_at is None else None
    found = None
    if user is not None and user.active and now - _aware(sess.last_seen) <= min(TOUCH_EVERY, wl.idle):
        found = sess, user  # recently seen: nothing to write
    elif user is not None:
        writing(db)
        found = auth.load_session(db, token, now=now, idle=wl.idle)
        db.commit()  # last_seen moved, or the idle session ended
    if found is None:
        request.state.expired = True
        return None
    sess, user = found
    units = auth.units_of(db, user)
    viewer = Viewer(sess, user, units)
    request.state.lang = viewer.lang
    request.state.viewer = viewer
    return viewer


def get_viewer(request: Request, db: OrmSession = Depends(get_db)) -> Viewer:
    """The signed-in viewer; raises :class:`NotLoggedIn` without a valid session."""
    viewer = load_viewer(request, db)
    if viewer is None:
        raise NotLoggedIn(expired=bool(getattr(request.state, "expired", False)))
    return viewer


def require_role(viewer: Viewer, page: str) -> None:
    """403 unless the viewer's role may open ``page`` (:data:`PAGE_ROLES`)."""
    if viewer.role not in PAGE_ROLES[page]:
        raise HTTPException(403, "forbidden")


def require_clients(viewer: Viewer) -> list[str]:
    """The viewer's client units; 403 for a user who sees no client rows (worklist pages, exports)."""
    if not viewer.client_units:
        raise HTTPException(403, "forbidden")
    return viewer.client_units


def check_csrf(viewer: Viewer, given: str | None) -> None:
    """403 unless ``given`` is the session's CSRF token."""
    if not same_token(given, viewer.csrf):
        raise HTTPException(403, "csrf")


def source_of(request: Request) -> str:
    """The request's source address as the access log records it."""
    return request.client.host if request.client else ""


def log(request: Request, db: OrmSession, viewer: Viewer | None, what: str, *, client_ids=(),
        purpose: str = "worklist", detail: dict | None = None, user: str | None = None, role: str = "",
        units=()):
    """Append one access-log row in the request's writing transaction (committed with the work it records).

    A request that only read so far gets its writing transaction here (:func:`writing`); one that records
    an action began it before the action, so the action and its row commit together. The caller commits
    before the response leaves. Without a signed-in ``viewer`` (login, failed login), ``user``, ``role``
    and ``units`` name who it was.
    """
    writing(db)
    return accesslog.record(db, user=viewer.user.username if viewer else (user or ""),
                            role=viewer.role if viewer else role, units=viewer.units if viewer else units,
                            what=what, client_ids=list(client_ids), purpose=purpose, source=source_of(request),
                            detail=detail, anchor=state(request).anchor)


def render(request: Request, name: str, viewer: Viewer | None, *, status: int = 200, lang: str | None = None,
           **context) -> HTMLResponse:
    """A page from ``templates/<name>.html.j2`` in the viewer's language."""
    lang = lang_or_default(lang or (viewer.lang if viewer else None))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = state(request).templates.get_template(f"{name}.html.j2").render(
        request=request, viewer=viewer, lang=lang, t=texts(lang), here=here, page_roles=PAGE_ROLES, **context)
    return HTMLResponse(page, status_code=status)


def safe_next(value: str | None) -> str:
    """A local path to go back to after a form (never another site); ``/`` otherwise."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


__all__ = ["Memo", "NotLoggedIn", "PAGE_ROLES", "TOUCH_EVERY", "Viewer", "WebState", "check_csrf", "get_db",
           "get_viewer", "load_viewer", "log", "make_templates", "render", "require_clients", "require_role",
           "safe_next", "session_token", "source_of", "state", "writing"]
