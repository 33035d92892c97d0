"""Which Host a request may name and which pages may send it a mutation (DNS rebinding).

DNS rebinding: a page on ``evil.example`` re-points its name at 127.0.0.1 and becomes
*same-origin* with a UI on loopback, so browsers let it read pages and post forms.
Its requests carry ``Host: evil.example``; so a UI without auth answers only to names
an attacker cannot re-point: IP literals, ``localhost`` and ``*.localhost`` (browsers
resolve those themselves), and the names it was told (``allowed_hosts``). With auth on,
the attacker's origin holds no credentials, so any Host is accepted unless
``allowed_hosts`` is given.

Every mutation, whatever the auth mode, must come from this origin: a browser says
where a request comes from in ``Sec-Fetch-Site`` (trusted when present: pages cannot
set it) and ``Origin`` (compared with Host for browsers that lack the former).
``same-site`` is refused too: another app on 127.0.0.1:3000 is the same *site* as
127.0.0.1:8080. Clients that are not browsers send neither header and pass.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import urllib.parse
from collections.abc import Iterable

from strego.errors import ConfigurationError

__all__ = ["HostPolicy"]

_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[^:\[\]/@\s]+)(?::(\d{1,5}))?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAME_ORIGIN = frozenset({"same-origin", "none"})  # none: typed URL, bookmark


@dataclasses.dataclass(frozen=True, slots=True)
class HostPolicy:
    """``allowed``: host names (``.example.com`` also matches its subdomains; ``*``
    matches any). ``names_checked``: refuse other names (auth off, or names given)."""

    allowed: tuple[str, ...] = ()
    names_checked: bool = True

    @classmethod
    def build(cls, allowed: Iterable[str], *, has_auth: bool) -> HostPolicy:
        names = tuple(_normalise(_check_name(name)) for name in allowed)
        return cls(allowed=names, names_checked=bool(names) or not has_auth)

    def host_refusal(self, host_header: str | None) -> str | None:
        """Why a request naming ``host_header`` is refused, or None."""
        if host_header is None or not self.names_checked or "*" in self.allowed:
            return None
        parsed = _split_host(host_header)
        if parsed is None:
            return "malformed Host header"
        name = parsed[0]
        if _rebinding_proof(name) or self._listed(name):
            return None
        return (
            f"Host {name!r} is not one this UI answers to (DNS rebinding protection): it "
            "answers to IP addresses, localhost and the names in allowed_hosts "
            "(strego ui --allowed-host NAME)"
        )

    def origin_refusal(self, headers: dict[str, str]) -> str | None:
        """Why a mutation with these (lower-case) headers is cross-site, or None."""
        site = headers.get("sec-fetch-site")
        if site is not None:  # the browser's own verdict (pages cannot set this header)
            return None if site in _SAME_ORIGIN else f"cross-site request refused ({site[:40]})"
        origin = headers.get("origin")  # older browsers: compare Origin with Host
        if origin is None or self._same_origin(origin, headers.get("host", "")):
            return None
        return f"cross-site request refused (Origin: {origin[:100]})"

    def _same_origin(self, origin: str, host_header: str) -> bool:
        """The page that sent the request is this UI: its origin names our Host (a proxy
        that rewrites Host is covered by listing the public name in allowed_hosts)."""
        theirs = _split_origin(origin)
        if theirs is None:  # "null" (sandboxed frames, odd redirects) or garbage
            return False
        name, port, scheme = theirs
        own = _split_host(host_header)
        if own is not None and own[0] == name:
            own_port = own[1] if own[1] is not None else _DEFAULT_PORTS[scheme]
            if own_port == port:
                return True
        return self._listed(name)

    def _listed(self, name: str) -> bool:
        return any(
            name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:]))
            for entry in self.allowed
        )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/@ \t"):
        raise ConfigurationError(f"allowed_hosts entries must be host names, got {name!r}")
    return name


def _normalise(name: str) -> str:
    return name.strip().lower().rstrip(".") or name


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` → (lower-case name without brackets or final dot, port)."""
    match = _HOST.match(value.strip().lower())
    if match is None:
        return None
    name = match.group(1).strip("[]").rstrip(".")
    return name, int(match.group(2)) if match.group(2) else None


def _split_origin(origin: str) -> tuple[str, int, str] | None:
    """``scheme://name[:port]`` → (name, port or the scheme's default, scheme)."""
    try:
        parts = urllib.parse.urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.rstrip("."), port or _DEFAULT_PORTS[parts.scheme], parts.scheme


def _rebinding_proof(name: str) -> bool:
    """Names no DNS answer can re-point: IP literals and the ``localhost`` domain."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
