"""The worklist web app: :func:`create_app` (FastAPI, server-rendered Jinja2 pages, no JavaScript).

This module holds the app factory, login, logout, the language switch, the
start page and the error pages; the list and client pages are in
:mod:`worklist.pages`, the team, overview and admin pages in
:mod:`worklist.pages_admin`, what they share in :mod:`worklist.web_common`.

Sessions are server-side (:mod:`worklist.auth`); the ``sote_session`` cookie
carries only a signed random token (HttpOnly, SameSite=Lax, Secure when
configured), replaced at every login. Every form carries a CSRF token checked
on POST (403 otherwise); the login form, having no session yet, uses a signed
double-submit cookie. Every login, failed login, lockout and logout is written
to the access log (:mod:`worklist.accesslog`).

Identity-provider seam: a county's OpenID Connect login would replace
:func:`login_post` only — it must end in :func:`worklist.auth.start_session`
for a local :class:`worklist.db.User` (role and units stay local) and set the
same cookie; every other route depends only on that session.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from worklist import auth
from worklist.accesslog import default_anchor
from worklist.db import WalKeeper, default_url, make_engine, migrate, refresh_statistics, session_factory
from worklist.i18n import LANGS, lang_or_default
from worklist.security import (LOGIN_CSRF_COOKIE, SECURITY_HEADERS, SESSION_COOKIE, CookieSigner, load_secret,
                               same_token)
from worklist.web_common import (NotLoggedIn, Viewer, WebState, check_csrf, get_db, get_viewer, load_viewer, log,
                                 make_templates, render, safe_next, session_token, source_of, state, writing)

#: Environment variable carrying the settings of :func:`app_from_env` to the worker processes of ``sote serve``.
SERVE_ENV = "SOTE_WORKLIST_SERVE"
#: Requests a server process handles at once (its thread pool; the rest wait in line).
THREADS = 12
#: Where each role starts after login.
HOME = {"case_manager": "/worklist", "unit_lead": "/worklist", "analyst": "/overview", "admin": "/admin/log"}
_ERROR_KEYS = {400: "bad_request", 403: "forbidden", 404: "not_found"}


def create_app(url: str | None = None, data: Path | None = None, *, secret: str | None = None,
               secure_cookies: bool = False, idle_minutes: int = 30, anchor: Path | None = None,
               warm: bool = True, threads: int = THREADS) -> FastAPI:
    """The worklist app on the database at ``url`` (migrated to the newest revision first).

    Parameters
    ----------
    url
        Database URL (default :func:`worklist.db.default_url`).
    data
        Folder of the canonical tables the client page reads one client's
        service use from; without it the usage chart is left out.
    secret
        Cookie-signing secret; default ``$SOTE_WORKLIST_SECRET``, else a random
        one kept in ``<anchor>.secret`` (mode 0600).
    secure_cookies
        Send cookies only over HTTPS (set this behind TLS).
    idle_minutes
        A session unused this long ends; the next request goes to the login page.
    anchor
        The access log's anchor file (default :func:`worklist.accesslog.default_anchor`).
    warm
        With ``data``: build the usage chart's cache for the current lists' dates in a background thread at
        start, so the first client page does not wait for it.
    threads
        Requests handled at once (the server's thread pool; default :data:`THREADS`); more wait their turn.

    Notes
    -----
    Requests read in transactions that take no write lock and write (access-log row, action, a session's
    ``last_seen`` at most once a minute) in short separate ones; several server processes may share one
    database, anchor file and secret (``sote serve --workers``).
    """
    url = url or default_url()
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:  # the planner's statistics, whatever loaded the data (import, demo, restore)
        refresh_statistics(conn)
    anchor = Path(anchor) if anchor is not None else default_anchor(url)
    wl = WebState(engine=engine, factory=session_factory(engine, read_only=True),
                  signer=CookieSigner(load_secret(secret, anchor)),
                  templates=make_templates(), anchor=anchor, data=Path(data) if data is not None else None,
                  secure_cookies=secure_cookies, idle=timedelta(minutes=idle_minutes), wal=WalKeeper(engine))
    @asynccontextmanager
    async def lifespan(_app):
        # fewer request threads than anyio's 40: on 2 cores they only contend for the interpreter lock, and a
        # thread holding the database's write lock would wait behind all of them
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(title="sote worklist", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.wl = wl

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _auth_routes(app)
    from worklist.pages import router as pages
    from worklist.pages_admin import router as admin

    app.include_router(pages)
    app.include_router(admin)
    if warm and data is not None:
        threading.Thread(target=_warm_usage, args=(wl,), name="worklist-warm-usage", daemon=True).start()
    return app


def app_from_env() -> FastAPI:
    """The app described by ``$SOTE_WORKLIST_SERVE``: how each process of ``sote serve --workers N`` builds it.

    The variable holds JSON with ``url``, ``data`` (or null), ``anchor``, ``secure_cookies`` and
    ``idle_minutes``; the secret comes from ``$SOTE_WORKLIST_SECRET`` or the ``<anchor>.secret`` file, which
    the parent process creates before it starts the workers (:func:`worklist.security.load_secret`).

    Raises
    ------
    KeyError
        If ``$SOTE_WORKLIST_SERVE`` is not set.
    """
    conf = json.loads(os.environ[SERVE_ENV])
    return create_app(conf["url"], Path(conf["data"]) if conf.get("data") else None, anchor=Path(conf["anchor"]),
                      secure_cookies=bool(conf.get("secure_cookies")), idle_minutes=int(conf.get("idle_minutes", 30)))


def _warm_usage(wl: WebState) -> None:
    """Build the usage cache of every current list's date (the client page's chart); failures only delay
    the first client page, which builds it then."""
    from worklist.lists import current_lists

    try:
        with wl.factory() as db:
            dates = sorted({record.as_of for record in current_lists(db).values()}, reverse=True)
        service = wl.service_use()
        for as_of in dates[:service.keep]:
            service.warm(as_of)
    except Exception:  # noqa: BLE001 - a background convenience; the page builds the cache itself when needed
        logging.getLogger(__name__).warning("warming the usage cache failed", exc_info=True)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
    if _is_api(request):
        response: Response = JSONResponse({"detail": "not logged in"}, status_code=401)
    else:
        response = RedirectResponse("/login?expired=1" if exc.expired else "/login", status_code=303)
    if exc.expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": _ERROR_KEYS.get(exc.status_code, "error")}, status_code=exc.status_code)
    key = "csrf" if exc.detail == "csrf" else _ERROR_KEYS.get(exc.status_code, "error")
    return render(request, "error", getattr(request.state, "viewer", None), status=exc.status_code,
                  lang=getattr(request.state, "lang", None), message_key=key, code=exc.status_code)


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=state(request).secure_cookies)


def _login_page(request: Request, *, lang: str, status: int = 200, message: str | None = None) -> Response:
    """The login form with a double-submit CSRF token (the cookie's signed value equals the form field)."""
    wl = state(request)
    token = wl.signer.read(LOGIN_CSRF_COOKIE, request.cookies.get(LOGIN_CSRF_COOKIE)) or secrets.token_urlsafe(32)
    response = render(request, "login", None, status=status, lang=lang, login_csrf=token, message=message)
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, wl.signer.sign(LOGIN_CSRF_COOKIE, token), max_age=3600)
    return response


def _auth_routes(app: FastAPI) -> None:
    @app.get("/healthz")
    def healthz(db: OrmSession = Depends(get_db)):
        db.execute(text("SELECT 1"))
        return {"ok": True}

    @app.get("/")
    def root(request: Request, db: OrmSession = Depends(get_db)):
        viewer = load_viewer(request, db)
        if viewer is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(HOME.get(viewer.role, "/login"), status_code=303)

    @app.get("/login")
    def login_form(request: Request, lang: str | None = None, expired: str | None = None, bye: str | None = None,
                   db: OrmSession = Depends(get_db)):
        if load_viewer(request, db) is not None:
            return RedirectResponse("/", status_code=303)
        message = "expired" if expired else "logged_out" if bye else None
        return _login_page(request, lang=lang_or_default(lang), message=message)

    @app.post("/login")
    def login_post(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                   lang: str = Form("fi"), db: OrmSession = Depends(get_db)):
        wl = state(request)
        lang = lang_or_default(lang)
        expected = wl.signer.read(LOGIN_CSRF_COOKIE, request.cookies.get(LOGIN_CSRF_COOKIE))
        if not same_token(csrf, expected):
            return _login_page(request, lang=lang, status=403, message="csrf")
        name = username.strip().lower()[:64]
        writing(db)  # failed-login counts, the new session and the log row: one short writing transaction
        try:
            user = auth.authenticate(db, name, password)
        except auth.LockedOut:
            log(request, db, None, "lockout", user=name, detail={"reason": "locked"})
            db.commit()
            return _login_page(request, lang=lang, status=401, message="locked")
        except auth.LoginFailed:
            log(request, db, None, "login_failed", user=name)
            db.commit()
            return _login_page(request, lang=lang, status=401, message="login_failed")
        auth.end_session(db, session_token(request))  # a new session at every login (no fixation)
        token = auth.start_session(db, user, source=source_of(request))
        log(request, db, None, "login", user=user.username, role=user.role, units=auth.units_of(db, user))
        db.commit()
        response = RedirectResponse("/", status_code=303)
        _set_cookie(response, request, SESSION_COOKIE, wl.signer.sign(SESSION_COOKIE, token))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form(""), viewer: Viewer = Depends(get_viewer),
               db: OrmSession = Depends(get_db)):
        check_csrf(viewer, csrf)
        writing(db)
        auth.end_session(db, session_token(request))
        log(request, db, viewer, "logout")
        db.commit()
        response = RedirectResponse("/login?bye=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.post("/lang")
    def switch_language(request: Request, lang: str = Form(""), csrf: str = Form(""), next: str = Form("/"),
                        viewer: Viewer = Depends(get_viewer), db: OrmSession = Depends(get_db)):
        check_csrf(viewer, csrf)
        if lang not in LANGS:
            raise HTTPException(400, "language")
        writing(db)
        viewer.user.lang = lang
        db.add(viewer.user)
        db.commit()
        return RedirectResponse(safe_next(next), status_code=303)


__all__ = ["HOME", "SERVE_ENV", "THREADS", "app_from_env", "create_app"]
