"""``redact``: the one function that masks credentials before text is printed, logged or shown.

Every message that may carry a Redis URL or a PostgreSQL DSN goes through it: CLI
errors and banners, log lines (``strego.logs`` formats through it), UI error pages and
configuration errors. It masks

- the password of any ``scheme://user:password@host`` URL, whatever the scheme's case
  (``REDIS://``), the topology (cluster and Sentinel URLs list several hosts) and the
  characters people paste unencoded into passwords (``@``, ``/``, quotes): the
  userinfo runs to the *last* ``@`` of the URL, so an ambiguous URL is over-masked,
  never leaked;
- ``password=`` / ``sentinel_password=`` / ``token=``-like parameters, in URL queries
  and in ``key=value`` DSNs (quoted or not);
- any piece of the secrets of the URLs passed as ``sources`` (a parser's error may
  quote a fragment, e.g. ``Port could not be cast to integer value as 'pa'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["MASK", "redact"]

MASK = "***"
# A URL token: a scheme, then everything up to whitespace or a quote/bracket that
# ends a URL inside a message ("... at 'redis://...': refused").
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s'\"<>]*)")
_SECRET_KEY = r"[a-z_\-]*(?:password|passwd|pwd|secret|token|auth)[a-z_\-]*"
# key=value where the key names a secret: query parameters (?password=, &...) and
# libpq DSN words (password='a b'); the value runs to the next separator or quote.
_SECRET_PARAM = re.compile(
    rf"(?i)((?:^|(?<=[?&;\s,(]))\b{_SECRET_KEY}\s*=\s*)('[^']*'|\"[^\"]*\"|[^&;\s'\"]*)"
)
_PIECES = re.compile(r"[/@:?#&=]")
_MIN_PIECE = 3  # shorter fragments are too common to scrub from a message


def redact(text: str, *sources: str) -> str:
    """``text`` with every credential masked as ``***`` (see the module docstring).

    ``sources``: URLs or DSNs whose secrets must not appear anywhere in ``text``, even
    as a fragment (pass the URL a failed connection or parse was given).
    """
    pieces = {piece for source in (text, *sources) for piece in _secrets_of(source)}
    masked = _URL.sub(lambda m: m.group(1) + _mask_userinfo(m.group(2)), text)
    masked = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, masked)
    for piece in sorted(pieces, key=len, reverse=True):
        masked = masked.replace(piece, MASK)
    return masked


def _mask_userinfo(rest: str) -> str:
    """``user:password@host...`` → ``user:***@host...`` (the last ``@`` ends userinfo)."""
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return rest  # no password (a bare user name, or no userinfo at all)
    user = userinfo.partition(":")[0]
    return f"{user}:{MASK}@{host}"


def _secrets_of(source: str) -> Iterator[str]:
    """The password and secret parameters of ``source`` if it is a URL or DSN, and
    their pieces as a URL parser splitting in the wrong place would quote them."""
    found: list[str] = []
    match = re.match(r"(?i)\s*[a-z][a-z0-9+.\-]*://(.*)", source, re.DOTALL)
    if match:
        userinfo, at, _host = match.group(1).rpartition("@")
        if at and ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    found += [m.group(2).strip("'\"") for m in _SECRET_PARAM.finditer(source)]
    for secret in found:
        if secret.strip("*"):
            yield from (p for p in [secret, *_PIECES.split(secret)] if len(p) >= _MIN_PIECE)
