"""Login sessions (token auth) and the throttle on failed logins: server-side, bounded.

A session is a random value in an HttpOnly cookie; the server keeps only its SHA-256,
when it was created and when it was last used. It ends on logout (server-side: a copied
cookie stops working too), after ``idle_s`` without a request, or ``lifetime_s`` after
login, whichever comes first. Sessions live in the UI process: a restart logs everyone
out, and several UI replicas behind one name need sticky sessions (or basic auth).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import secrets
import time
from collections.abc import Callable

__all__ = ["LoginThrottle", "SessionStore"]

Clock = Callable[[], float]


@dataclasses.dataclass(slots=True)
class _Session:
    created: float
    last_seen: float


class SessionStore:
    """Expiring login sessions, at most ``max_sessions`` (the oldest go first)."""

    def __init__(
        self,
        *,
        idle_s: float = 8 * 3600,
        lifetime_s: float = 7 * 86400,
        max_sessions: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.idle_s = idle_s
        self.lifetime_s = lifetime_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: collections.OrderedDict[str, _Session] = collections.OrderedDict()

    def create(self) -> str:
        """Start a session; returns the cookie value (never stored as such)."""
        now = self.clock()
        self._drop_expired(now)
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        value = secrets.token_urlsafe(32)
        self._sessions[_key(value)] = _Session(created=now, last_seen=now)
        return value

    def check(self, value: str) -> str | None:
        """The session's key (what CSRF tokens are bound to) if ``value`` is a live
        session, refreshing its idle timer; None otherwise."""
        key = _key(value)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if self._expired(session, now):
            del self._sessions[key]
            return None
        session.last_seen = now
        return key

    def end(self, value: str) -> None:
        """Logout: the session stops working at once, wherever its cookie was copied."""
        self._sessions.pop(_key(value), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: _Session, now: float) -> bool:
        return now - session.last_seen > self.idle_s or now - session.created > self.lifetime_s

    def _drop_expired(self, now: float) -> None:
        # Oldest first: stop at the first live one (later ones are younger by creation;
        # an idle-expired one behind it goes when it is next checked or pushed out).
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if not self._expired(session, now):
                return
            del self._sessions[key]


def _key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


@dataclasses.dataclass(slots=True)
class _Window:
    start: float
    failures: int


class LoginThrottle:
    """At most ``max_failures`` wrong credentials per client per ``window_s``.

    Once over, the client gets 429 until its window ends, whether its next guess is
    right or not (so a blocked guess reveals nothing). Clients are keyed by address;
    behind a reverse proxy they share one key, which then limits guessing globally.
    At most ``max_clients`` windows are kept (the oldest go first).
    """

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self.clock = clock
        self._windows: collections.OrderedDict[str, _Window] = collections.OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        window = self._windows.get(client)
        if window is None or window.failures < self.max_failures:
            return 0
        left = window.start + self.window_s - self.clock()
        if left <= 0:
            del self._windows[client]
            return 0
        return max(1, math.ceil(left))

    def failed(self, client: str) -> None:
        now = self.clock()
        window = self._windows.get(client)
        if window is None or now - window.start >= self.window_s:
            window = _Window(start=now, failures=0)
            self._windows.pop(client, None)
            while len(self._windows) >= self.max_clients:
                self._windows.popitem(last=False)
            self._windows[client] = window
        window.failures += 1

    def succeeded(self, client: str) -> None:
        self._windows.pop(client, None)
