"""CSRF tokens bound to the browser's session and signed by the server.

The token a page renders into its forms (``csrf_token``) and htmx sends as
``X-CSRF-Token`` is ``HMAC(secret, binding)``: the binding is the login session (token
auth) or, otherwise, a random value in the HttpOnly ``strego_csrf`` cookie. A page on
another origin can neither read a token nor compute one; a sibling origin that plants
its own ``strego_csrf`` cookie (cookies ignore ports: any app on 127.0.0.1 can) still
cannot, because it does not know the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse

from starlette.requests import HTTPConnection
from starlette.types import Message, Receive

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "CsrfTokens", "same", "submitted_token"]

CSRF_COOKIE = "strego_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
NONCE_LENGTH = 43  # secrets.token_urlsafe(32)


class CsrfTokens:
    """Signs and checks tokens with ``secret`` (random per process unless given)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret else secrets.token_bytes(32)

    def token(self, binding: str) -> str:
        digest = hmac.new(self._secret, b"strego-csrf\0" + _bytes(binding), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def valid(self, binding: str, submitted: str) -> bool:
        return bool(submitted) and same(submitted, self.token(binding))


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def is_nonce(value: str) -> bool:
    return len(value) == NONCE_LENGTH and value.isascii()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of any two strings (headers may hold non-ASCII text,
    which ``hmac.compare_digest`` refuses on ``str`` with a TypeError)."""
    return hmac.compare_digest(_bytes(a), _bytes(b))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


async def submitted_token(conn: HTTPConnection, receive: Receive) -> tuple[Receive, str]:
    """The token from the X-CSRF-Token header, else from an urlencoded form's field.

    Reading the form consumes the body, so it is buffered (``receive`` is already
    capped by the security middleware) and replayed to the app.
    """
    header = conn.headers.get(CSRF_HEADER)
    if header:
        return receive, header
    content_type = conn.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return receive, ""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive, ""
        chunks.append(message.get("body", b""))
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
