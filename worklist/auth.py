"""Local accounts: Argon2 password hashes, users and their units, lockout, server-side sessions.

Functions take the caller's ORM session ``db`` and only flush; the caller commits — also after a failed
:func:`authenticate`, which counts the failure on the user row (roll back and the count is lost).

A county identity provider (OpenID Connect) would replace :func:`authenticate` only: after the provider
vouches for a username, look the :class:`~worklist.db.User` up and call :func:`start_session`; roles and
units stay in this database.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as OrmSession

from worklist.db import CLIENT_ROLES, ROLES, Session, User, UserUnit

#: Consecutive failed logins that lock an account, and for how long.
MAX_FAILED = 5
LOCKOUT = timedelta(minutes=15)
#: Default idle time after which a session ends.
IDLE = timedelta(minutes=30)
#: Shortest password an administrator may set by hand (generated ones are longer).
MIN_PASSWORD = 12
LANGS = ("fi", "sv", "en")
_USERNAME = re.compile(r"^[a-z0-9._-]{2,64}$")
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I


class UserError(ValueError):
    """A user cannot be created or changed as asked (bad name, role, units, password; unknown or taken)."""


class LoginFailed(Exception):
    """Unknown user, wrong password or disabled account (the caller shows one message for all)."""


class LockedOut(LoginFailed):
    """Too many consecutive failures: no login until ``until``, even with the right password."""

    def __init__(self, until: datetime):
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until


def _hasher() -> PasswordHasher:
    # argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~0.1 s on one core, so a login
    # burst does not starve the server; hashes made with other parameters are upgraded at the next login
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _now(now: datetime | None) -> datetime:
    return _aware(now) if now is not None else datetime.now(timezone.utc)


def _aware(when: datetime | None) -> datetime | None:
    # SQLite hands DateTime(timezone=True) values back naive; they were stored as UTC
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None else when


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) of ``password``."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; False for a wrong password or an unreadable hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def generate_password(length: int = 20) -> str:
    """A random password of ``length`` (at least 16) unambiguous letters and digits (~117 bits at 20)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(max(length, 16)))


def _clean_units(role: str, units: Sequence[str]) -> list[str]:
    if isinstance(units, str):
        raise UserError("units must be a list of unit names, not one string")
    clean = sorted({str(u).strip() for u in units if str(u).strip()})
    if role in CLIENT_ROLES and not clean:
        raise UserError(f"a {role} needs at least one unit")
    if any(len(u) > 100 or "," in u for u in clean):
        raise UserError("a unit name has at most 100 characters and no comma")
    return clean


def _user(db: OrmSession, username: str, *, lock: bool = False) -> User | None:
    query = select(User).where(User.username == username.strip().lower())
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return db.execute(query).scalar_one_or_none()


def _existing(db: OrmSession, username: str) -> User:
    user = _user(db, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def add_user(db: OrmSession, username: str, role: str, units: Sequence[str] = (), *, display_name: str | None = None,
             password: str | None = None, lang: str = "fi", now: datetime | None = None) -> tuple[User, str]:
    """Create a user.

    Parameters
    ----------
    username
        2–64 of ``a-z 0-9 . _ -`` (lower-cased).
    role
        One of :data:`worklist.db.ROLES`; case managers and unit leads need at least one unit, analysts
        and admins may have units (an admin with a unit sees that unit's clients).
    units
        The units the user acts for.
    display_name
        Shown name (default the username).
    password
        At least :data:`MIN_PASSWORD` characters; None generates one (:func:`generate_password`).
    lang
        Interface language: fi, sv or en.

    Returns
    -------
    tuple
        The new user and the plain password (to hand over once; only its hash is stored).

    Raises
    ------
    UserError
        On a bad name, role, units, password or language, or a username that exists.
    """
    name = str(username).strip().lower()
    if not _USERNAME.match(name):
        raise UserError(f"username {username!r} must be 2–64 of a-z, 0-9, '.', '_', '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if lang not in LANGS:
        raise UserError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    clean = _clean_units(role, units)
    if _user(db, name) is not None:
        raise UserError(f"user {name!r} exists")
    password = _check_password(password)
    now = _now(now)
    user = User(username=name, display_name=(display_name or name)[:200], role=role,
                password_hash=hash_password(password), active=True, failed_logins=0, locked_until=None, lang=lang,
                created_at=now, password_set_at=now)
    db.add(user)
    db.flush()
    db.add_all(UserUnit(user_id=user.id, unit=u) for u in clean)
    db.flush()
    return user, password


def _check_password(password: str | None) -> str:
    if password is None:
        return generate_password()
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def _end_sessions(db: OrmSession, user: User, now: datetime) -> None:
    db.execute(update(Session).where(Session.user_id == user.id, Session.ended_at.is_(None))
               .values(ended_at=now).execution_options(synchronize_session="fetch"))


def disable_user(db: OrmSession, username: str, now: datetime | None = None) -> None:
    """Disable ``username`` (no login, open sessions end); raises :class:`UserError` if unknown."""
    user = _existing(db, username)
    user.active = False
    _end_sessions(db, user, _now(now))
    db.flush()


def enable_user(db: OrmSession, username: str) -> None:
    """Enable a disabled ``username``; raises :class:`UserError` if unknown."""
    _existing(db, username).active = True
    db.flush()


def reset_password(db: OrmSession, username: str, password: str | None = None, now: datetime | None = None) -> str:
    """Set a new password (generated if None), clear the lockout, end the user's sessions; returns it."""
    user = _existing(db, username)
    password = _check_password(password)
    now = _now(now)
    user.password_hash, user.password_set_at = hash_password(password), now
    user.failed_logins, user.locked_until = 0, None
    _end_sessions(db, user, now)
    db.flush()
    return password


def set_units(db: OrmSession, username: str, units: Sequence[str]) -> None:
    """Replace the units of ``username`` (same rules as :func:`add_user`)."""
    user = _existing(db, username)
    clean = _clean_units(user.role, units)
    db.execute(delete(UserUnit).where(UserUnit.user_id == user.id))
    db.add_all(UserUnit(user_id=user.id, unit=u) for u in clean)
    db.flush()


def units_of(db: OrmSession, user: User) -> list[str]:
    """The units ``user`` acts for, sorted."""
    return list(db.scalars(select(UserUnit.unit).where(UserUnit.user_id == user.id).order_by(UserUnit.unit)))


def list_users(db: OrmSession, now: datetime | None = None) -> list[dict]:
    """Every user as a dict (username, display_name, role, units, active, locked), by username."""
    now = _now(now)
    units: dict[int, list[str]] = {}
    for user_id, unit in db.execute(select(UserUnit.user_id, UserUnit.unit).order_by(UserUnit.unit)):
        units.setdefault(user_id, []).append(unit)
    return [{"username": u.username, "display_name": u.display_name, "role": u.role, "units": units.get(u.id, []),
             "active": u.active, "locked": u.locked_until is not None and _aware(u.locked_until) > now}
            for u in db.scalars(select(User).order_by(User.username))]


def authenticate(db: OrmSession, username: str, password: str, now: datetime | None = None) -> User:
    """The user whose ``password`` this is; counts failures and locks the account after :data:`MAX_FAILED`.

    The user row is locked for the check (``FOR UPDATE`` on PostgreSQL), so concurrent attempts all count.
    The caller commits whether this returns or raises.

    Raises
    ------
    LockedOut
        The account is locked (also with the right password), or this failure locked it.
    LoginFailed
        Unknown user, wrong password or disabled account. Unknown users cost one hash check too.
    """
    now = _now(now)
    user = _user(db, str(username), lock=True)
    if user is None:
        verify_password(_dummy_hash(), password)
        raise LoginFailed("unknown user")
    right = verify_password(user.password_hash, password)
    locked_until = _aware(user.locked_until)
    if locked_until is not None and locked_until > now:
        raise LockedOut(locked_until)
    if not right:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED:
            user.failed_logins, user.locked_until = 0, now + LOCKOUT
            db.flush()
            raise LockedOut(user.locked_until)
        db.flush()
        raise LoginFailed("wrong password")
    if not user.active:
        raise LoginFailed("disabled")
    user.failed_logins, user.locked_until = 0, None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.flush()
    return user


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(db: OrmSession, user: User, source: str = "", now: datetime | None = None) -> str:
    """Open a session for ``user``; returns the raw token (only its sha256 is stored) for the cookie."""
    now = _now(now)
    token = secrets.token_urlsafe(32)
    db.add(Session(id=_token_id(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                   last_seen=now, ended_at=None, source=(source or "")[:100]))
    db.flush()
    return token


def load_session(db: OrmSession, token: str | None, now: datetime | None = None,
                 idle: timedelta = IDLE) -> tuple[Session, User] | None:
    """The open session of ``token`` and its user, with ``last_seen`` moved to ``now``.

    None when the token is unknown or ended, when the session was idle longer than ``idle`` (it is ended
    then), or when its user is disabled.
    """
    if not token:
        return None
    now = _now(now)
    session = db.get(Session, _token_id(token))
    if session is None or session.ended_at is not None:
        return None
    user = db.get(User, session.user_id)
    if now - _aware(session.last_seen) > idle or user is None or not user.active:
        session.ended_at = now
        db.flush()
        return None
    session.last_seen = now
    db.flush()
    return session, user


def end_session(db: OrmSession, token: str | None, now: datetime | None = None) -> None:
    """End the session of ``token`` (logout); unknown or ended tokens are ignored."""
    session = db.get(Session, _token_id(token)) if token else None
    if session is not None and session.ended_at is None:
        session.ended_at = _now(now)
        db.flush()


__all__ = ["IDLE", "LANGS", "LOCKOUT", "LockedOut", "LoginFailed", "MAX_FAILED", "MIN_PASSWORD", "UserError",
           "add_user", "authenticate", "disable_user", "enable_user", "end_session", "generate_password",
           "hash_password", "list_users", "load_session", "reset_password", "set_units", "start_session",
           "units_of", "verify_password"]
