"""The UI's options and auth settings, validated once when the app is built."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from strego.errors import ConfigurationError

__all__ = [
    "MIN_SECRET_LENGTH",
    "AuthSpec",
    "BasicAuth",
    "TokenAuth",
    "UIConfig",
    "parse_auth",
    "signing_key",
]

#: Shortest token accepted at all; ``strego ui`` wants 12 beyond loopback.
MIN_SECRET_LENGTH = 8
#: Shortest password or token ``strego ui`` accepts when it listens beyond loopback.
MIN_EXPOSED_SECRET_LENGTH = 12


@dataclasses.dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP basic auth: browsers prompt for it; API clients send ``-u user:password``."""

    username: str
    password: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or not self.password or ":" in self.username:
            raise ConfigurationError("basic auth needs a username without ':' and a password")

    def check(self, username: str, password: str) -> bool:
        """Constant-time comparison of both parts (no early exit on the username)."""
        user_ok = hmac.compare_digest(_bytes(username), _bytes(self.username))
        password_ok = hmac.compare_digest(_bytes(password), _bytes(self.password))
        return user_ok and password_ok

    @property
    def secret(self) -> str:
        return f"{self.username}:{self.password}"


@dataclasses.dataclass(frozen=True, slots=True)
class TokenAuth:
    """A shared secret: ``Authorization: Bearer TOKEN`` for API clients, a login form
    (which starts a server-side session, see ``sessions``) for browsers."""

    token: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or len(self.token) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"the UI token must be at least {MIN_SECRET_LENGTH} characters"
            )

    def check(self, token: str) -> bool:
        return hmac.compare_digest(_bytes(token), _bytes(self.token))

    @property
    def secret(self) -> str:
        return self.token


AuthSpec = BasicAuth | TokenAuth


def _bytes(text: str) -> bytes:
    # surrogateescape: a header decoded from arbitrary bytes still compares (and fails)
    return text.encode("utf-8", "surrogateescape")


def signing_key(auth: AuthSpec | None, secret_key: str | bytes | None) -> bytes | None:
    """The key CSRF tokens are signed with: ``secret_key``, else one derived from the
    credentials (so replicas and restarts agree), else None (random per process)."""
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    if secret_key is not None:
        if len(secret_key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"secret_key must be at least {MIN_SECRET_LENGTH} characters")
        return hashlib.sha256(b"strego-ui-csrf\0" + secret_key).digest()
    if auth is None:
        return None
    return hashlib.sha256(b"strego-ui-csrf\0" + _bytes(auth.secret)).digest()


def parse_auth(auth: object) -> AuthSpec | None:
    """``("user", "pass")`` → BasicAuth, ``"token"`` → TokenAuth, either object as is."""
    if auth is None or isinstance(auth, BasicAuth | TokenAuth):
        return auth
    if isinstance(auth, str):
        return TokenAuth(auth)
    if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(p, str) for p in auth):
        return BasicAuth(auth[0], auth[1])
    raise ConfigurationError(
        "auth must be None, (username, password), a token string, BasicAuth or TokenAuth"
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UIConfig:
    """How the app behaves; see ``create_app``."""

    read_only: bool = False
    auth: AuthSpec | None = None
    page_size: int = 25
    refresh_ms: int = 2000
    title: str = "strego"
    # The biggest legitimate request: a bulk form on MAX_BULK ids of 200 characters,
    # each percent-encoded from 4 UTF-8 bytes (2.4 MB).
    max_body_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 500:
            raise ConfigurationError(f"page_size must be 1-500, got {self.page_size}")
        if self.refresh_ms < 250:
            raise ConfigurationError(f"refresh_ms must be >= 250, got {self.refresh_ms}")
