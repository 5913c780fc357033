"""Who may do what, from where: basic auth with roles, refusal of other origins' changes, safe headers."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from jobs.config import Settings
from web.errors import error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz"})  # for load balancers: never behind auth
# The page loads only its own files: no inline script or style, no frames, no plugins.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def install(app: Flask, settings: Settings) -> None:
    """Check every request's origin and credentials, and give every response the safe headers."""
    credentials = [(user.encode(), password.encode(), role) for user, password, role in settings.credentials()]
    allowed = frozenset(settings.allowed_origins)

    @app.before_request
    def guard() -> Response | None:
        g.user = None
        refused = refuse_other_origins(allowed)
        if refused is None and credentials and request.path not in OPEN_PATHS:
            refused = authenticate(credentials)
        return refused

    app.after_request(add_headers)


def refuse_other_origins(allowed: frozenset[str]) -> Response | None:
    """A state change sent by a browser from another origin: 403 (CSRF). Sec-Fetch-Site when the browser
    sends it, else Origin; a request with neither (curl, a script) is not a browser's and passes."""
    if request.method in SAFE_METHODS:
        return None
    origin = (request.headers.get("Origin") or "").rstrip("/")
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("same-origin", "none") or (site is None and not origin) or origin in allowed:
        return None
    if site is None and origin != "null" and urlsplit(origin).netloc == request.host:
        return None  # the page's own origin (its scheme may differ behind a TLS proxy)
    return error(403, "state changes from another origin are refused", {"origin": origin or None}, "forbidden_origin")


def authenticate(credentials: list[tuple[bytes, bytes, str]]) -> Response | None:
    """HTTP basic auth against every configured user (each compare in constant time); viewers read only."""
    user, password = _basic(request.headers.get("Authorization", ""))
    role = None
    for known_user, known_password, known_role in credentials:
        same_user = hmac.compare_digest(user, known_user)
        same_password = hmac.compare_digest(password, known_password)
        if same_user and same_password and role is None:
            role = known_role
    if role is None:
        response = error(401, "authentication required")
        response.headers["WWW-Authenticate"] = 'Basic realm="jobstream", charset="UTF-8"'
        return response
    g.user = user.decode("utf-8", "replace")
    g.can_change = role != "viewer"
    if not g.can_change and request.method not in SAFE_METHODS:
        return error(403, "these credentials may read, not change", {"user": g.user}, "forbidden")
    return None


def can_change() -> bool:
    """Whether this request's user may change state (everyone, when there is no auth)."""
    return bool(g.get("can_change", True))


def acting_user() -> str | None:
    """The authenticated user of this request, named in the logs of what they do."""
    return g.get("user")


def add_headers(response: Response) -> Response:
    """nosniff and same-origin referrers everywhere; the CSP on pages; JSON is never cached."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
    elif response.mimetype == "application/json":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _basic(header: str) -> tuple[bytes, bytes]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return b"", b""
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return b"", b""
    return user, password
