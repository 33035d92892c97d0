"""Host, auth, CSRF, body size and security headers: one ASGI middleware before every route.

Order per request:

1. the body is capped (``max_body_bytes``; 413 beyond it, announced or streamed);
2. the Host must be one this UI answers to (``origins.HostPolicy``: DNS rebinding);
3. authenticate: basic, bearer or a login session; wrong credentials are throttled per
   client (429 with Retry-After) and unauthenticated requests get 401 / the login form;
4. every mutating method must come from this origin (``Sec-Fetch-Site``/``Origin``),
   is refused when read-only, and must carry the CSRF token bound to the browser's
   session (``csrf.CsrfTokens``) unless it is authenticated by a bearer header, which
   browsers never attach on their own;
5. every response gets the security headers and, when the browser has none yet, the
   CSRF cookie.
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strego.ui.config import AuthSpec, BasicAuth, TokenAuth
from strego.ui.csrf import CSRF_COOKIE, CsrfTokens, is_nonce, new_nonce, submitted_token
from strego.ui.origins import HostPolicy
from strego.ui.sessions import LoginThrottle, SessionStore

__all__ = [
    "SESSION_COOKIE",
    "BodyTooLarge",
    "SecurityMiddleware",
    "SecurityOptions",
    "client_address",
    "relative_path",
]

SESSION_COOKIE = "strego_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


class BodyTooLarge(HTTPException):
    """A request body over the limit: 413, whoever was reading it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


@dataclasses.dataclass(frozen=True, slots=True)
class _Identity:
    via: str | None  # none / basic / bearer / session; None: not authenticated
    session: str | None = None  # the login session's key (CSRF tokens bind to it)
    retry_after: int = 0  # > 0: too many failed attempts, try again later


def relative_path(scope: Scope) -> str:
    """The request path inside this app (without the mount prefix / root_path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def client_address(conn: HTTPConnection) -> str:
    """Who is asking, for the login throttle (the proxy, behind a reverse proxy)."""
    return conn.client.host if conn.client else "unknown"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SecurityOptions:
    """What the middleware enforces; built once by ``create_app``."""

    auth: AuthSpec | None
    read_only: bool
    hosts: HostPolicy
    sessions: SessionStore
    throttle: LoginThrottle
    csrf: CsrfTokens
    max_body_bytes: int
    open_prefixes: Sequence[str] = ()


class SecurityMiddleware:
    """Enforces ``SecurityOptions`` in the order the module docstring lists."""

    def __init__(self, app: ASGIApp, *, options: SecurityOptions) -> None:
        self.app = app
        self.options = options
        self.open_prefixes = tuple(options.open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        path = relative_path(scope)
        nonce = conn.cookies.get(CSRF_COOKIE, "")
        fresh = None if is_nonce(nonce) else new_nonce()
        send = _with_headers(send, scope, fresh)
        try:
            receive = _limited(receive, conn, self.options.max_body_bytes)
            response, receive = await self._screen(conn, path, receive, fresh or nonce)
        except BodyTooLarge as exc:
            response = _refusal(path, exc.status_code, exc.detail)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _screen(
        self, conn: HTTPConnection, path: str, receive: Receive, nonce: str
    ) -> tuple[Response | None, Receive]:
        """A refusal, or None to let the request through (with its body replayable)."""
        options = self.options
        refusal = options.hosts.host_refusal(conn.headers.get("host"))
        if refusal is not None:
            return _refusal(path, 400, refusal), receive
        identity = self._authenticate(conn)
        if identity.retry_after:
            return _throttled(path, identity.retry_after), receive
        binding = identity.session or nonce
        state = conn.scope.setdefault("state", {})
        state["strego_auth"] = identity.via
        state["csrf_token"] = options.csrf.token(binding)
        if identity.via is None and not path.startswith(self.open_prefixes):
            return self._challenge(conn, path), receive
        if conn.scope["method"] in SAFE_METHODS:
            return None, receive
        refusal = options.hosts.origin_refusal(dict(conn.headers.items()))
        if refusal is None and options.read_only and path not in _SESSION_PATHS:
            refusal = "this UI is read-only"
        if refusal is None and identity.via != "bearer":
            # Without a cookie the binding is a fresh random value: no token matches it.
            receive, submitted = await submitted_token(conn, receive)
            if not options.csrf.valid(binding, submitted):
                refusal = "CSRF token missing or invalid"
        return (None if refusal is None else _refusal(path, 403, refusal)), receive

    def _authenticate(self, conn: HTTPConnection) -> _Identity:
        """How the request proved who it is; wrong credentials count against its client."""
        auth = self.options.auth
        if auth is None:
            return _Identity("none")
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        expected = "basic" if isinstance(auth, BasicAuth) else "bearer"
        if scheme == expected:
            return self._check_credentials(conn, auth, credentials.strip())
        if isinstance(auth, TokenAuth):
            session = self.options.sessions.check(conn.cookies.get(SESSION_COOKIE, ""))
            if session is not None:
                return _Identity("session", session=session)
        return _Identity(None)

    def _check_credentials(
        self, conn: HTTPConnection, auth: AuthSpec, credentials: str
    ) -> _Identity:
        throttle = self.options.throttle
        client = client_address(conn)
        wait = throttle.retry_after(client)
        if wait:  # even a right guess is refused now, so it reveals nothing
            return _Identity(None, retry_after=wait)
        if isinstance(auth, BasicAuth):
            user, password = _basic_credentials(credentials)
            ok = user is not None and auth.check(user, password)
        else:
            ok = auth.check(credentials)
        if not ok:
            throttle.failed(client)
            return _Identity(None)
        throttle.succeeded(client)
        return _Identity("basic" if isinstance(auth, BasicAuth) else "bearer")

    def _challenge(self, conn: HTTPConnection, path: str) -> Response:
        """401 for API clients and basic auth; token auth sends browsers to the login form."""
        browser = not path.startswith("/api/") and conn.scope["method"] == "GET"
        if isinstance(self.options.auth, TokenAuth) and browser:
            login = conn.scope.get("root_path", "") + "/login"
            target = urllib.parse.quote(conn.scope.get("root_path", "") + path)
            return RedirectResponse(f"{login}?next={target}", status_code=303)
        scheme = "Basic" if isinstance(self.options.auth, BasicAuth) else "Bearer"
        headers = {"www-authenticate": f'{scheme} realm="strego", charset="UTF-8"'}
        if path.startswith("/api/"):
            return JSONResponse({"error": "authentication required"}, 401, headers)
        return PlainTextResponse("Authentication required", 401, headers)


def _with_headers(send: Send, scope: Scope, new_nonce_value: str | None) -> Send:
    """Adds the security headers (and a new CSRF cookie) to the response."""
    secure = scope.get("scheme") == "https"
    cookie_path = (scope.get("root_path", "") or "") + "/"

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in _HEADERS:
                if name not in headers:
                    headers.append(name, value)
            if new_nonce_value is not None:
                flags = f"; Path={cookie_path}; HttpOnly; SameSite=Strict"
                flags += "; Secure" if secure else ""
                headers.append("set-cookie", f"{CSRF_COOKIE}={new_nonce_value}{flags}")
        await send(message)

    return wrapped


def _limited(receive: Receive, conn: HTTPConnection, limit: int) -> Receive:
    """``receive`` that raises BodyTooLarge past ``limit`` bytes (Content-Length first,
    so an announced 200 MB upload is refused before a byte of it is read)."""
    announced = conn.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise BodyTooLarge(limit)
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited


def _basic_credentials(value: str) -> tuple[str | None, str]:
    try:  # ValueError: non-ASCII text, which b64decode refuses before binascii sees it
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, ""
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, "")


def _refusal(path: str, status: int, reason: str) -> Response:
    if path.startswith("/api/"):
        return JSONResponse({"error": reason}, status)
    return PlainTextResponse(f"{_TITLES.get(status, 'Refused')}: {reason}", status)


def _throttled(path: str, retry_after: int) -> Response:
    response = _refusal(path, 429, f"too many failed login attempts; try again in {retry_after} s")
    response.headers["retry-after"] = str(retry_after)
    return response


_TITLES = {400: "Bad request", 403: "Forbidden", 413: "Too large", 429: "Too many requests"}
