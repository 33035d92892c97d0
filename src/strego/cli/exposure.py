"""Who may reach a served UI: the rules ``strego ui`` and ``strego dev`` both apply.

A UI that listens beyond loopback must have auth (or an explicit ``--insecure``), and a
password or token long enough to resist guessing over the network. Without auth the
UI answers only to IP addresses, ``localhost`` and the names it is given (DNS
rebinding); the name it binds is one of them.
"""

from __future__ import annotations

import argparse
import ipaddress

__all__ = [
    "MIN_EXPOSED_SECRET_LENGTH",
    "add_exposure_options",
    "allowed_hosts",
    "check_exposure",
    "is_loopback",
]

MIN_EXPOSED_SECRET_LENGTH = 12


def add_exposure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --auth/--token",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the UI is reached by (repeatable; '.example.com' includes its "
        "subdomains). Without auth the UI answers only to IP addresses, localhost, the "
        "--host name and these",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, has_auth: bool, insecure: bool, secret: str | None = None) -> None:
    """Refuse to serve an unauthenticated or weakly protected UI beyond this machine."""
    if is_loopback(host):
        return
    if not has_auth and not insecure:
        raise ValueError(
            f"refusing to listen on {host} without --auth or --token "
            "(anyone who can reach it could delete tasks); add --insecure to allow it"
        )
    if has_auth and secret is not None and len(secret) < MIN_EXPOSED_SECRET_LENGTH:
        raise ValueError(
            f"refusing to listen on {host} with a password or token shorter than "
            f"{MIN_EXPOSED_SECRET_LENGTH} characters (it could be guessed over the network)"
        )


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The names the UI answers to besides IP addresses and localhost."""
    names = list(extra)
    if host and not _is_address(host):
        names.append(host)  # --host myhost.lan: that is how people will reach it
    return names


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host in ("", "*")
    return True
