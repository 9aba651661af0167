"""Integration fixtures: a real PostgreSQL server, the worklist app served by uvicorn, and headless Chromium.

These tests run after the default suite (``make test`` runs ``pytest -m integration``). The PostgreSQL
server is Debian's (``/usr/lib/postgresql/*/bin``), started as the ``postgres`` user in a temporary
folder on a free port of 127.0.0.1; the browser is Debian's ``/usr/bin/chromium`` driven by Playwright.
When either is missing its tests are skipped with the reason, except under ``CI=true``, where a missing
component fails the run. The terminal summary holds one line counting the PostgreSQL and browser tests
that ran ("integration summary: ...").

The small county and its two risk lists are the worklist suite's own session fixtures
(``tests/worklist/conftest.py``), loaded by :mod:`wl_setup` from that file rather than copied.
"""
from __future__ import annotations

import itertools
import os

import pytest

from live_servers import CHROMIUM, CHROMIUM_ARGS, pg_bindir, postgres_cluster, uvicorn_thread
from wl_setup import WORKLIST_SUITE, load_database

wl_county = WORKLIST_SUITE.wl_county
wl_lists = WORKLIST_SUITE.wl_lists

#: Fixtures whose use puts a test in the summary's PostgreSQL or browser count.
CATEGORIES = {"postgres": ("pg_server",), "browser": ("browser",)}
_CATEGORY_KEY = pytest.StashKey[dict]()


def in_ci() -> bool:
    """True when ``CI`` is set to true: a missing PostgreSQL or browser then fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(component: str, reason: str) -> None:
    """Skip the test because ``component`` is missing, or fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{component} is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"{component} not available: {reason}")


# --------------------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def pg_server():
    """A running PostgreSQL cluster; yields a function ``new_db(name=None) -> URL`` making a migrated database.

    The migration runs once, into the cluster's first database, which then serves as the template of
    every database made (a copy is faster than migrating again).
    """
    if pg_bindir() is None:
        missing("PostgreSQL", "no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    import psycopg
    from sqlalchemy.engine import make_url

    from worklist.db import make_engine, migrate

    # fsync off: a throwaway cluster, and the tests measure behaviour, not durability
    with postgres_cluster("sote_template", settings={"fsync": "off", "max_connections": "200"}) as url:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()  # a template database must have no connections
        base = make_url(url)
        counter = itertools.count()

        def new_db(name: str | None = None) -> str:
            name = name or f"sote_t{next(counter)}"
            with psycopg.connect(host=base.host, port=base.port, user=base.username, dbname="postgres",
                                 autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base.database}"')
            return base.set(database=name).render_as_string(hide_password=False)

        yield new_db


@pytest.fixture
def pg_url(pg_server):
    """A fresh, migrated PostgreSQL database of this test."""
    return pg_server()


# ------------------------------------------------------------------------------------------- live server
@pytest.fixture(scope="session")
def live_sqlite(wl_county, wl_lists, tmp_path_factory):
    """The worklist app on a loaded SQLite database, served by uvicorn on 127.0.0.1.

    Yields a dict: ``base`` URL, ``url`` of the database, ``anchor`` path and the :func:`load_database` facts.
    """
    from worklist.db import migrate
    from worklist.web import create_app

    folder = tmp_path_factory.mktemp("live_sqlite")
    url = f"sqlite:///{folder / 'worklist.db'}"
    migrate(url)
    facts = load_database(url, wl_county, wl_lists)
    anchor = folder / "worklist.db.audit-anchor"
    app = create_app(url, wl_county, secret="integration-test-secret", anchor=anchor)
    with uvicorn_thread(app) as base:
        yield {"base": base, "url": url, "anchor": anchor, **facts}


@pytest.fixture(scope="session")
def live_pg(pg_server, wl_county, wl_lists, tmp_path_factory):
    """The worklist app on a loaded PostgreSQL database, served by uvicorn on 127.0.0.1 (keys as live_sqlite)."""
    from worklist.web import create_app

    url = pg_server("sote_web")
    facts = load_database(url, wl_county, wl_lists)
    anchor = tmp_path_factory.mktemp("live_pg") / "worklist.audit-anchor"
    app = create_app(url, wl_county, secret="integration-test-secret", anchor=anchor)
    with uvicorn_thread(app) as base:
        yield {"base": base, "url": url, "anchor": anchor, **facts}


# ----------------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, launched by path through Playwright's sync API."""
    if not CHROMIUM.exists():
        missing("Chromium", f"no {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        missing("Playwright", str(err))
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser context and page; every JavaScript dialog is recorded in ``page.dialogs`` and dismissed.

    Screenshots go to ``page.shots`` (a folder under this test's pytest temp dir).
    """
    context = browser.new_context(locale="fi-FI")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.shots = tmp_path / "screenshots"
    pg.shots.mkdir()
    try:
        yield pg
    finally:
        context.close()


# ------------------------------------------------------------------------------------------- the summary
def pytest_collection_modifyitems(config, items):
    """Remember which collected tests use PostgreSQL or the browser (for the summary line)."""
    categories = config.stash.setdefault(_CATEGORY_KEY, {})
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            names.add("pg_server")  # a fixture parametrized by backend asks for PostgreSQL at run time
        for category, fixtures in CATEGORIES.items():
            if names.intersection(fixtures):
                categories.setdefault(item.nodeid, set()).add(category)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line: how many PostgreSQL and browser tests passed, failed or were skipped."""
    categories = config.stash.get(_CATEGORY_KEY, {})
    outcomes: dict[str, dict[str, str]] = {"postgres": {}, "browser": {}}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, ()):
            for category in categories.get(getattr(report, "nodeid", ""), ()):
                seen = outcomes[category]
                # a test has up to three reports (setup, call, teardown); a failure or skip anywhere wins
                if seen.get(report.nodeid) in (None, "passed"):
                    seen[report.nodeid] = "failed" if outcome == "error" else outcome
    if not any(outcomes.values()):
        return
    parts = []
    for category, label in (("postgres", "PostgreSQL"), ("browser", "browser")):
        states = list(outcomes[category].values())
        parts.append(f"{label} tests: {states.count('passed')} passed, {states.count('failed')} failed, "
                     f"{states.count('skipped')} skipped")
    terminalreporter.write_line("integration summary: " + "; ".join(parts) + (" (CI=true)" if in_ci() else ""))
