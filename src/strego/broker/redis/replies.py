"""What a Redis error means for strego: matched by exception class or error code, here only.

Redis error replies start with an upper-case code (``NOGROUP No such key...``,
``READONLY You can't write...``); redis-py maps a few codes to exception classes and
raises :class:`ResponseError` for the rest. Everything that decides "retry", "the
group is gone" or "give up" asks this module, never ``"X" in str(error)`` inline.
"""

from __future__ import annotations

import re

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

__all__ = [
    "TRANSIENT_CLASSES",
    "error_code",
    "is_busy_group",
    "is_no_group",
    "is_transient_reply",
    "is_wrong_group",
    "recorded_group",
]

#: Exception classes that mean "Redis is not reachable right now", worth retrying. The
#: cluster ones come and go while a master fails over or slots move (CLUSTERDOWN,
#: TRYAGAIN, a slot briefly without an owner).
TRANSIENT_CLASSES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
)

# Error codes of replies that say "not now" rather than "never": a failover (READONLY:
# a demoted master; MASTERDOWN: a replica lost its master; NOREPLICAS:
# min-replicas-to-write), a server loading its data (LOADING), a script or module
# hogging the server (BUSY), a cluster in transition (TRYAGAIN, CLUSTERDOWN), memory
# full under noeviction (OOM: frees up as workers acknowledge or expire things).
_TRANSIENT_CODES = frozenset(
    {"READONLY", "MASTERDOWN", "NOREPLICAS", "LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "OOM"}
)


# redis-py raises these classes for some codes, with the code cut from the message.
_CLASS_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (ReadOnlyError, "READONLY"),
    (OutOfMemoryError, "OOM"),
    (BusyLoadingError, "LOADING"),
    (TryAgainError, "TRYAGAIN"),
    (ClusterDownError, "CLUSTERDOWN"),
    (MasterDownError, "MASTERDOWN"),
)
_KNOWN_CODES = (*_TRANSIENT_CODES, "NOGROUP", "WRONGGROUP", "WRONGTYPE", "BUSYGROUP")


_QUOTED_CODE = re.compile(r"(?:^|[\s:-])(" + "|".join(_KNOWN_CODES) + r") ")


def error_code(error: BaseException) -> str:
    """The code of a Redis error reply (``NOGROUP``, ``READONLY``...), or ``""``.

    From redis-py's exception class where it has one, else from the message: its first
    word, or, for an error raised inside a Lua script on Redis 6.2 (``Error running
    script ... @user_script:60: NOGROUP ...``), the code quoted inside it.
    """
    for cls, code in _CLASS_CODES:
        if isinstance(error, cls):
            return code
    if not isinstance(error, ResponseError):
        return ""
    text = str(error).strip()
    word = text.split(" ", 1)[0]
    if word in _KNOWN_CODES:
        return word
    quoted = _QUOTED_CODE.search(text)  # Redis 6.2: "...: @user_script:60: NOGROUP No such"
    if quoted:
        return quoted[1]
    return word if word.isupper() and word.isalpha() else ""


def is_transient_reply(error: BaseException) -> bool:
    """An error reply worth retrying as it is (never evidence the task is lost)."""
    return isinstance(error, TRANSIENT_CLASSES) or error_code(error) in _TRANSIENT_CODES


def is_no_group(error: BaseException) -> bool:
    """The consumer group (or its stream) does not exist: Redis lost its data."""
    return error_code(error) == "NOGROUP"


def is_busy_group(error: BaseException) -> bool:
    return error_code(error) == "BUSYGROUP"


def is_wrong_group(error: BaseException) -> bool:
    """prepare.lua refused: the queue is served by another consumer group."""
    return error_code(error) == "WRONGGROUP"


def recorded_group(error: BaseException) -> str:
    """The group named by a WRONGGROUP reply."""
    text = str(error).strip()
    return text.split("WRONGGROUP", 1)[1].strip().split(" ", 1)[0] if "WRONGGROUP" in text else ""
