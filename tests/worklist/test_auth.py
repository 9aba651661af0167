"""Local accounts: Argon2 hashes, user rules, lockout, sessions with idle timeout, disabled users."""
import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from worklist.auth import (LOCKOUT, MAX_FAILED, LockedOut, LoginFailed, UserError, add_user, authenticate,
                           disable_user, enable_user, end_session, generate_password, hash_password, list_users,
                           load_session, reset_password, set_units, start_session, units_of, verify_password)
from worklist.db import Session, User, make_engine, session_factory

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(db_url):
    """An ORM session on a fresh database with users anna (case manager of Kallio and Vallila) and root (admin)."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        add_user(session, "Anna", "case_manager", ["Vallila", "Kallio"], password="anna-password-1", now=T0)
        add_user(session, "root", "admin", password="root-password-1", now=T0)
        session.commit()
        yield session
    engine.dispose()


def test_hashes_are_argon2id_and_salted():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and first != second
    assert verify_password(first, "correct horse") and verify_password(second, "correct horse")
    assert not verify_password(first, "correct horse ") and not verify_password("not a hash", "x")


def test_generated_passwords_are_long_and_distinct():
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50 and all(len(p) >= 16 for p in passwords)
    assert len(generate_password(8)) == 16  # never shorter than 16


def test_add_user_returns_a_working_password_and_stores_only_its_hash(db):
    user, password = add_user(db, "bea", "unit_lead", ["Kallio"], display_name="Bea B", lang="sv", now=T0)
    db.commit()
    assert len(password) >= 16 and password not in user.password_hash
    assert authenticate(db, "BEA", password, now=T0) is user
    assert (user.display_name, user.lang, user.active, user.failed_logins) == ("Bea B", "sv", True, 0)
    assert db.execute(text("SELECT count(*) FROM users WHERE password_hash LIKE :p"),
                      {"p": f"%{password}%"}).scalar() == 0


@pytest.mark.parametrize("args,message", [
    (("a", "admin"), "username"), (("Bad Name", "admin"), "username"), (("x" * 65, "admin"), "username"),
    (("anna", "admin"), "exists"), (("ANNA", "admin"), "exists"), (("carl", "boss"), "role"),
    (("carl", "case_manager"), "at least one unit"), (("carl", "unit_lead", ["  "]), "at least one unit"),
    (("carl", "case_manager", "Kallio"), "list of unit names"),
])
def test_add_user_rejects_bad_input(db, args, message):
    with pytest.raises(UserError, match=message):
        add_user(db, *args)
    with pytest.raises(UserError, match="12 characters"):
        add_user(db, "carl", "analyst", password="short")
    with pytest.raises(UserError, match="language"):
        add_user(db, "carl", "analyst", lang="de")


def test_units_and_listing(db):
    user, _ = add_user(db, "eve", "admin", ["Kallio"])  # an admin may have a unit
    assert units_of(db, user) == ["Kallio"]
    anna = db.scalar(select(User).where(User.username == "anna"))
    assert units_of(db, anna) == ["Kallio", "Vallila"]
    set_units(db, "anna", ["Pasila", "Pasila", " Kallio "])
    assert units_of(db, anna) == ["Kallio", "Pasila"]
    with pytest.raises(UserError, match="at least one unit"):
        set_units(db, "anna", [])
    set_units(db, "root", [])  # an admin without units is fine
    with pytest.raises(UserError, match="no user"):
        set_units(db, "ghost", ["A"])
    listed = {u["username"]: u for u in list_users(db, now=T0)}
    assert sorted(listed) == ["anna", "eve", "root"]
    assert listed["anna"] == {"username": "anna", "display_name": "anna", "role": "case_manager",
                              "units": ["Kallio", "Pasila"], "active": True, "locked": False}


def test_wrong_and_unknown_logins_fail_alike(db):
    with pytest.raises(LoginFailed) as wrong:
        authenticate(db, "anna", "nope", now=T0)
    with pytest.raises(LoginFailed) as unknown:
        authenticate(db, "nobody", "nope", now=T0)
    assert type(wrong.value) is type(unknown.value) is LoginFailed

    def seconds(name):
        start = time.perf_counter()
        for _ in range(3):
            with pytest.raises(LoginFailed):
                authenticate(db, name, "nope", now=T0)
        return time.perf_counter() - start

    authenticate(db, "anna", "anna-password-1", now=T0)  # reset anna's count between the timing runs
    known, unknown_time = seconds("anna"), seconds("nobody")
    db.rollback()
    # an unknown user costs a hash check too, so timing does not tell which usernames exist
    assert 0.3 < unknown_time / known < 3.5


def test_lockout_after_max_failed_then_release(db):
    for i in range(MAX_FAILED - 1):
        with pytest.raises(LoginFailed):
            authenticate(db, "anna", "wrong", now=T0 + timedelta(seconds=i))
    assert authenticate(db, "anna", "anna-password-1", now=T0).failed_logins == 0  # success resets the count
    for i in range(MAX_FAILED - 1):
        with pytest.raises(LoginFailed) as info:
            authenticate(db, "anna", "wrong", now=T0)
        assert type(info.value) is LoginFailed
    with pytest.raises(LockedOut) as info:  # the MAX_FAILED-th consecutive failure locks
        authenticate(db, "anna", "wrong", now=T0)
    db.commit()
    assert info.value.until == T0 + LOCKOUT
    assert list_users(db, now=T0)[0]["locked"]
    with pytest.raises(LockedOut):  # the right password does not open a locked account
        authenticate(db, "anna", "anna-password-1", now=T0 + LOCKOUT - timedelta(seconds=1))
    user = authenticate(db, "anna", "anna-password-1", now=T0 + LOCKOUT + timedelta(seconds=1))
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_reset_password_clears_lockout_and_ends_sessions(db):
    anna = authenticate(db, "anna", "anna-password-1", now=T0)
    token = start_session(db, anna, now=T0)
    for _ in range(MAX_FAILED):
        with pytest.raises(LoginFailed):
            authenticate(db, "anna", "wrong", now=T0)
    new = reset_password(db, "anna", now=T0)
    assert len(new) >= 16 and load_session(db, token, now=T0) is None
    assert authenticate(db, "anna", new, now=T0) is anna
    with pytest.raises(LoginFailed):
        authenticate(db, "anna", "anna-password-1", now=T0)
    assert reset_password(db, "anna", "my-own-long-password") == "my-own-long-password"


def test_hashes_with_other_parameters_still_work_and_are_upgraded(db):
    from argon2 import PasswordHasher

    anna = db.scalar(select(User).where(User.username == "anna"))
    anna.password_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("old-params-pass")
    assert authenticate(db, "anna", "old-params-pass", now=T0) is anna
    assert anna.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(anna.password_hash, "old-params-pass")


def test_disabled_user_cannot_log_in_and_loses_sessions(db):
    anna = authenticate(db, "anna", "anna-password-1", now=T0)
    token = start_session(db, anna, now=T0)
    disable_user(db, "anna", now=T0)
    with pytest.raises(LoginFailed, match="disabled"):
        authenticate(db, "anna", "anna-password-1", now=T0)
    assert load_session(db, token, now=T0) is None
    enable_user(db, "anna")
    assert authenticate(db, "anna", "anna-password-1", now=T0) is anna
    assert load_session(db, token, now=T0) is None  # an ended session stays ended
    with pytest.raises(UserError):
        disable_user(db, "ghost")


def test_sessions_store_only_the_token_hash_and_keep_a_csrf_token(db):
    anna = db.scalar(select(User).where(User.username == "anna"))
    token, other = start_session(db, anna, source="10.1.2.3", now=T0), start_session(db, anna, now=T0)
    db.commit()
    assert token != other and len(token) >= 40
    stored = db.get(Session, hashlib.sha256(token.encode()).hexdigest())
    assert stored is not None and stored.source == "10.1.2.3"
    assert db.execute(text("SELECT count(*) FROM sessions WHERE id = :t"), {"t": token}).scalar() == 0
    session, user = load_session(db, token, now=T0 + timedelta(minutes=1))
    assert session is stored and user is anna and len(session.csrf_token) >= 40
    assert session.csrf_token != load_session(db, other, now=T0)[0].csrf_token
    assert load_session(db, "forged", now=T0) is None and load_session(db, None) is None


def test_idle_timeout_ends_the_session_and_activity_keeps_it(db):
    anna = db.scalar(select(User).where(User.username == "anna"))
    token = start_session(db, anna, now=T0)
    db.commit()
    db.expire_all()  # read back from the database (SQLite returns naive UTC times)
    assert load_session(db, token, now=T0 + timedelta(minutes=29)) is not None
    assert load_session(db, token, now=T0 + timedelta(minutes=58)) is not None  # 29 min after the last use
    assert load_session(db, token, now=T0 + timedelta(minutes=88, seconds=1)) is None  # idle 30 min 1 s
    stored = db.get(Session, hashlib.sha256(token.encode()).hexdigest())
    assert stored.ended_at.replace(tzinfo=timezone.utc) == T0 + timedelta(minutes=88, seconds=1)
    assert load_session(db, token, now=T0 + timedelta(minutes=89)) is None
    short = start_session(db, anna, now=T0)
    assert load_session(db, short, now=T0 + timedelta(minutes=6), idle=timedelta(minutes=5)) is None


def test_logout_ends_the_session(db):
    anna = db.scalar(select(User).where(User.username == "anna"))
    token = start_session(db, anna, now=T0)
    end_session(db, token, now=T0 + timedelta(minutes=1))
    end_session(db, token)  # twice is harmless
    end_session(db, "unknown")
    assert load_session(db, token, now=T0 + timedelta(minutes=2)) is None
