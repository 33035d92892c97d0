"""Auth, CSRF and security headers: one ASGI middleware in front of every UI route.

Order per request: authenticate (401 / login redirect), then CSRF on every mutating
method, then the app; every response gets the security headers and, when the browser
has none yet, the CSRF cookie.

CSRF is a double-submit token: a random value in an HttpOnly, SameSite=Strict cookie
that the server also renders into each form (``csrf_token`` field) and into the
``X-CSRF-Token`` header htmx sends. A cross-site page can neither read the cookie nor
set that header, so it cannot forge a matching pair. Requests authenticated by an
``Authorization: Bearer`` header are exempt: browsers never attach that header on their
own, so a forged cross-site request cannot carry it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import urllib.parse
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strego.ui.config import AuthSpec, BasicAuth, TokenAuth

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SecurityMiddleware",
    "relative_path",
]

CSRF_COOKIE = "strego_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "strego_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_FORM_BYTES = 1 << 20
_TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)
_SESSION_PATHS = frozenset({"/login", "/logout"})  # allowed even when read-only

# Everything is served from this origin; no inline script or style (htmx is configured
# not to inject its indicator styles), so injected markup could not run even if an
# escaping bug slipped through.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = (
    ("content-security-policy", _CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
)


def relative_path(scope: Scope) -> str:
    """The request path inside this app (without the mount prefix / root_path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class SecurityMiddleware:
    """Authenticates, enforces CSRF and adds security headers (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: AuthSpec | None,
        read_only: bool = False,
        open_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.auth = auth
        self.read_only = read_only
        self.open_prefixes = tuple(open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        path = relative_path(scope)
        via = self._authenticate(conn)
        cookie = conn.cookies.get(CSRF_COOKIE, "")
        valid_cookie = len(cookie) == _TOKEN_LENGTH
        token = cookie if valid_cookie else secrets.token_urlsafe(32)
        state = scope.setdefault("state", {})
        state["strego_auth"] = via
        state["csrf_token"] = token
        send = self._wrap_send(send, scope, None if valid_cookie else token)
        if via is None and not path.startswith(self.open_prefixes):
            await self._challenge(conn, path)(scope, receive, send)
            return
        mutating = scope["method"] not in SAFE_METHODS
        if mutating and self.read_only and path not in _SESSION_PATHS:
            await _forbidden(path, "this UI is read-only")(scope, receive, send)
            return
        if mutating and via != "bearer":
            receive, submitted = await _submitted_token(conn, receive)
            if not (valid_cookie and submitted and hmac.compare_digest(submitted, cookie)):
                await _forbidden(path, "CSRF token missing or invalid")(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _authenticate(self, conn: HTTPConnection) -> str | None:
        """How the request proved who it is: none/basic/bearer/session, or None."""
        if self.auth is None:
            return "none"
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if isinstance(self.auth, BasicAuth):
            if scheme == "basic":
                user, password = _basic_credentials(credentials.strip())
                if user is not None and self.auth.check(user, password):
                    return "basic"
            return None
        if scheme == "bearer" and self.auth.check(credentials.strip()):
            return "bearer"
        session = conn.cookies.get(SESSION_COOKIE, "")
        if session and hmac.compare_digest(session, self.auth.session_value):
            return "session"
        return None

    def _challenge(self, conn: HTTPConnection, path: str) -> Response:
        """401 for API clients and basic auth; token auth sends browsers to the login form."""
        browser = not path.startswith("/api/") and conn.scope["method"] == "GET"
        if isinstance(self.auth, TokenAuth) and browser:
            login = conn.scope.get("root_path", "") + "/login"
            target = urllib.parse.quote(conn.scope.get("root_path", "") + path)
            return RedirectResponse(f"{login}?next={target}", status_code=303)
        scheme = "Basic" if isinstance(self.auth, BasicAuth) else "Bearer"
        headers = {"www-authenticate": f'{scheme} realm="strego", charset="UTF-8"'}
        if path.startswith("/api/"):
            return JSONResponse({"error": "authentication required"}, 401, headers)
        return PlainTextResponse("Authentication required", 401, headers)

    def _wrap_send(self, send: Send, scope: Scope, new_token: str | None) -> Send:
        secure = scope.get("scheme") == "https"
        cookie_path = (scope.get("root_path", "") or "") + "/"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    if name not in headers:
                        headers.append(name, value)
                if new_token is not None:
                    headers.append("set-cookie", _csrf_cookie(new_token, cookie_path, secure))
            await send(message)

        return wrapped


def _csrf_cookie(token: str, path: str, secure: bool) -> str:
    flags = f"; Path={path}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{CSRF_COOKIE}={token}{flags}"


def _basic_credentials(value: str) -> tuple[str | None, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, "")


async def _submitted_token(conn: HTTPConnection, receive: Receive) -> tuple[Receive, str]:
    """The token from the X-CSRF-Token header, else from an urlencoded form's field.

    Reading the form consumes the body, so it is buffered and replayed to the app.
    """
    header = conn.headers.get(CSRF_HEADER)
    if header:
        return receive, header
    content_type = conn.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return receive, ""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive, ""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            return receive, ""
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10_000)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay, (fields.get(CSRF_FIELD) or [""])[0]


def _forbidden(path: str, reason: str) -> Response:
    if path.startswith("/api/"):
        return JSONResponse({"error": reason}, 403)
    return PlainTextResponse(f"Forbidden: {reason}", 403)
