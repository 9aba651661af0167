"""Speaking to the live worklist app over HTTP as a browser without JavaScript would: forms and CSRF fields."""
from __future__ import annotations

import re

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in ``html`` (every form of a page carries the same one)."""
    found = _CSRF.search(html)
    if found is None:
        raise AssertionError("no csrf field on the page")
    return found.group(1)


def login(http, username: str, password: str) -> str:
    """Log ``http`` (an ``httpx.Client`` with ``base_url``; cookies kept) in; returns the session's CSRF token.

    Raises
    ------
    AssertionError
        When the login does not lead to a page with a session (a form with a CSRF token).
    """
    form = http.get("/login")
    done = http.post("/login", data={"username": username, "password": password, "csrf": csrf_of(form.text)},
                     follow_redirects=True)
    if done.status_code != 200 or "/logout" not in done.text:
        raise AssertionError(f"login of {username} failed: HTTP {done.status_code} at {done.url}")
    return csrf_of(done.text)
