"""The web layer's security pieces: the signing secret, signed cookies, CSRF checks and response headers.

- :func:`load_secret` finds the secret that signs cookies: given, else
  ``$SOTE_WORKLIST_SECRET``, else a random one kept in a 0600 file beside the
  audit anchor (``<anchor>.secret``), created on first use.
- :class:`CookieSigner` signs the session token and the pre-login CSRF token
  (itsdangerous); a cookie whose signature does not match reads as absent.
- :func:`same_token` compares tokens in constant time.
- :data:`SECURITY_HEADERS` go on every response (a strict Content-Security-Policy
  that allows no script at all, no framing, no referrer, no caching).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

#: Environment variable holding the cookie-signing secret.
SECRET_ENV = "SOTE_WORKLIST_SECRET"
#: Name of the session cookie (a signed random token; the session itself is server-side).
SESSION_COOKIE = "sote_session"
#: Name of the login form's double-submit CSRF cookie (there is no session yet when logging in).
LOGIN_CSRF_COOKIE = "sote_login_csrf"

#: Headers sent with every response. No page needs JavaScript, so the policy allows no script source at all.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


def load_secret(secret: str | None, anchor: Path) -> str:
    """The cookie-signing secret: ``secret``, else ``$SOTE_WORKLIST_SECRET``, else ``<anchor>.secret``.

    The file is created with a fresh random secret (``secrets.token_urlsafe(48)``)
    and mode 0600 when missing; an existing file is read as it is.

    Raises
    ------
    ValueError
        If the secret found is shorter than 16 characters.
    """
    value = secret or os.environ.get(SECRET_ENV)
    if not value:
        path = Path(f"{anchor}.secret")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            value = path.read_text(encoding="utf-8").strip()
        else:
            value = secrets.token_urlsafe(48)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(value + "\n")
    if len(value) < 16:
        raise ValueError("the worklist secret must be at least 16 characters long")
    return value


class CookieSigner:
    """Signs and reads the app's cookies with one secret, a separate salt per cookie name."""

    def __init__(self, secret: str):
        self._secret = secret

    def _serializer(self, name: str) -> URLSafeSerializer:
        return URLSafeSerializer(self._secret, salt=f"sote-worklist:{name}")

    def sign(self, name: str, value: str) -> str:
        """The cookie value carrying ``value`` for the cookie ``name``."""
        return self._serializer(name).dumps(value)

    def read(self, name: str, cookie: str | None) -> str | None:
        """The value inside a cookie, or None when it is absent, tampered with or signed for another cookie."""
        if not cookie:
            return None
        try:
            value = self._serializer(name).loads(cookie)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def same_token(given: str | None, expected: str | None) -> bool:
    """True when both tokens are non-empty and equal (compared in constant time)."""
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = ["CookieSigner", "LOGIN_CSRF_COOKIE", "SECRET_ENV", "SECURITY_HEADERS", "SESSION_COOKIE", "load_secret",
           "same_token"]
