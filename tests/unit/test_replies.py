"""Redis error replies are classified in one place, whatever the server version."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError

from strego.broker.redis.replies import error_code, is_no_group, is_transient_reply


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ResponseError("NOGROUP No such key 'q' or consumer group 'g'"), "NOGROUP"),
        (  # Redis 6.2: an error inside a script is wrapped
            ResponseError(
                "Error running script (call to f_4e20): @user_script:60: NOGROUP No such key"
            ),
            "NOGROUP",
        ),
        (ResponseError("ERR Error running script: @user_script:9: -BUSY Redis is busy"), "BUSY"),
        (ResponseError("WRONGGROUP app-a"), "WRONGGROUP"),
        (ReadOnlyError("You can't write against a read only replica."), "READONLY"),
        (ResponseError("ERR unknown command"), "ERR"),
        (ValueError("NOGROUP"), ""),
    ],
)
def test_error_codes(error: BaseException, code: str) -> None:
    """The code is read from redis-py's class, the reply's first word or a script's wrap."""
    assert error_code(error) == code


def test_transient_and_permanent() -> None:
    """Failover and load replies are transient; a missing group and a bug are not."""
    assert is_transient_reply(ReadOnlyError("x"))
    assert is_transient_reply(ConnectionError("gone"))
    assert is_transient_reply(ResponseError("MASTERDOWN Link with MASTER is down"))
    assert is_transient_reply(ResponseError("BUSY Redis is busy running a script"))
    assert not is_transient_reply(ResponseError("NOGROUP No such key"))
    assert not is_transient_reply(ResponseError("ERR syntax error"))
    assert is_no_group(ResponseError("Error running script: @user_script:1: NOGROUP No"))
