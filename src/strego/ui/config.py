"""The UI's options and auth settings, validated once when the app is built."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from strego.errors import ConfigurationError

__all__ = ["AuthSpec", "BasicAuth", "TokenAuth", "UIConfig", "parse_auth"]


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
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


@dataclasses.dataclass(frozen=True, slots=True)
class TokenAuth:
    """A shared secret: ``Authorization: Bearer TOKEN`` for API clients, a login form
    (which sets a session cookie derived from the token) for browsers."""

    token: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if len(self.token) < 8:
            raise ConfigurationError("the UI token must be at least 8 characters")

    def check(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.token.encode())

    @property
    def session_value(self) -> str:
        """The login cookie's value: proves the token was given without storing it."""
        return hmac.new(self.token.encode(), b"strego-ui-session", hashlib.sha256).hexdigest()


AuthSpec = BasicAuth | TokenAuth


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

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 500:
            raise ConfigurationError(f"page_size must be 1-500, got {self.page_size}")
        if self.refresh_ms < 250:
            raise ConfigurationError(f"refresh_ms must be >= 250, got {self.refresh_ms}")
