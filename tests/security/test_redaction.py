"""Item 7: one redaction function masks every credential shape a URL or DSN can carry."""

from __future__ import annotations

import logging
import socket

import pytest

import strego
from strego.errors import ConfigurationError
from strego.logs import configure_logging
from strego.redaction import redact
from tests.cli.conftest import Cli

CASES = [
    # (text, what it must become, the secrets that must not survive)
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", []),
    ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0", ["s3cret"]),
    ("redis://admin:S3cretPass@h:6379", "redis://admin:***@h:6379", ["S3cretPass"]),
    ("rediss://app:p%40ss@cache/1", "rediss://app:***@cache/1", ["p%40ss"]),
    ("redis://u:p@ss@word@h/0", "redis://u:***@h/0", ["p@ss@word", "ss@word"]),
    ("redis://u:pa/ss/wd@h:1/0", "redis://u:***@h:1/0", ["pa/ss/wd", "wd@"]),
    ("REDIS://u:Hunter22@h/0", "REDIS://u:***@h/0", ["Hunter22"]),
    ("Rediss://u:Hunter22@h/0", "Rediss://u:***@h/0", ["Hunter22"]),
    ("redis://h:6379/0?password=hunter2", "redis://h:6379/0?password=***", ["hunter2"]),
    ("redis://h/0?db=1&PASSWORD=hunter2&x=1", "redis://h/0?db=1&PASSWORD=***&x=1", ["hunter2"]),
    (
        "redis+cluster://app:s3cret@h1:7000,h2:7001",
        "redis+cluster://app:***@h1:7000,h2:7001",
        ["s3cret"],
    ),
    (
        "redis+sentinel://u:pw123@h1:26379,h2:26379/main?sentinel_password=sp456",
        "redis+sentinel://u:***@h1:26379,h2:26379/main?sentinel_password=***",
        ["pw123", "sp456"],
    ),
    ("redis+sentinel://h1:26379,h2:26379/main", "redis+sentinel://h1:26379,h2:26379/main", []),
    ("unix:///run/redis.sock", "unix:///run/redis.sock", []),
    (
        "unix:///run/redis.sock?db=1&password=sockpw",
        "unix:///run/redis.sock?db=1&password=***",
        ["sockpw"],
    ),
    ("unix://user:sockpw@/run/redis.sock", "unix://user:***@/run/redis.sock", ["sockpw"]),
    ("postgresql://app:pgpass1@db:5432/app", "postgresql://app:***@db:5432/app", ["pgpass1"]),
    ("host=db password=pgpass1 dbname=app", "host=db password=*** dbname=app", ["pgpass1"]),
    ("host=db password='pg pass 1' dbname=app", "host=db password=*** dbname=app", ["pg pass 1"]),
    ("redis://u:it'sme99@h/0", "redis://u:***@h/0", ["sme99", "it'sme99"]),
    (
        "cannot reach Redis at redis://admin:S3cretPass@10.0.0.1:6379/0: Connection refused",
        "cannot reach Redis at redis://admin:***@10.0.0.1:6379/0: Connection refused",
        ["S3cretPass"],
    ),
    (
        "bad URL 'rediss://u:Hunter22@h/0' and 'REDIS://:other99@x'",
        "bad URL 'rediss://u:***@h/0' and 'REDIS://:***@x'",
        ["Hunter22", "other99"],
    ),
]


@pytest.mark.parametrize(("text", "shown", "secrets"), CASES)
def test_redact_url_shapes(text: str, shown: str, secrets: list[str]) -> None:
    """Each URL shape: only the credential is masked, and none of it survives."""
    masked = redact(text)
    assert masked == shown
    for secret in secrets:
        assert secret not in masked


def test_redact_scrubs_fragments_a_parser_quoted() -> None:
    """A parser error quoting a piece of the password: the source URL's secrets go."""
    url = "redis://admin:pa/ssword@h:6379/0"
    message = "Port could not be cast to integer value as 'pa' (ssword@h)"
    masked = redact(message, url)
    assert "ssword" not in masked
    assert redact(f"invalid URL {url}: {message}", url).count("ssword") == 0


def test_redact_is_idempotent_and_keeps_plain_text() -> None:
    """Masking twice changes nothing; text without credentials is left alone."""
    once = redact("redis://u:pw1234@h/0 and password=abc")
    assert redact(once) == once
    plain = "Error 111 connecting to 127.0.0.1:6379. Connection refused."
    assert redact(plain) == plain


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SECRET_URLS = [
    "redis://admin:S3cretPass@127.0.0.1:{port}/0",
    "redis://admin:S3c@retPass@127.0.0.1:{port}/0",
    "redis://admin:S3c/retPass@127.0.0.1:{port}/0",
    "REDIS://admin:S3cretPass@127.0.0.1:{port}/0",
    "redis://127.0.0.1:{port}/0?password=S3cretPass",
    "redis+sentinel://admin:S3cretPass@127.0.0.1:{port}/main?sentinel_password=S3cretPass",
]


@pytest.mark.parametrize("command", [("ui",), ("stats",), ("queues", "list"), ("dead", "list")])
@pytest.mark.parametrize("template", SECRET_URLS)
async def test_cli_errors_never_show_the_password(
    cli: Cli, command: tuple[str, ...], template: str
) -> None:
    """An unreachable or unparsable URL: the one-line error masks the whole password."""
    url = template.format(port=_closed_port())
    result = await cli(*command, "--redis", url, connect=False)
    assert result.code != 0
    for piece in ("S3cretPass", "S3c", "retPass"):
        assert piece not in result.err + result.out, (command, url, result.err)


def test_broker_errors_never_show_the_password() -> None:
    """A URL the broker refuses: its ConfigurationError masks the password."""
    for url in ("REDIS://u:Hun/ter22@h/0", "redis://u:Hun/ter22@h:6379/0", "ftp://u:Hunter22@h"):
        with pytest.raises(ConfigurationError) as caught:
            strego.RedisBroker(url)
        assert "Hunter22" not in str(caught.value) and "Hun" not in str(caught.value)


def test_log_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's log formatters (text and JSON) mask a URL a message or traceback quotes."""
    for fmt in ("text", "json"):
        configure_logging("INFO", fmt)
        try:
            raise ConnectionError("cannot reach redis://u:Hunter22@h/0")
        except ConnectionError:
            logging.getLogger("strego").exception("failed at %s", "REDIS://:Hunter22@h")
        err = capsys.readouterr().err
        assert "Hunter22" not in err and "***" in err
    logging.getLogger().handlers.clear()


def test_upper_case_schemes_are_accepted() -> None:
    """Schemes are case-insensitive: REDIS:// works like redis:// (as in redis-py)."""
    strego.RedisBroker("REDIS://127.0.0.1:1/0")
    strego.RedisBroker("Rediss://127.0.0.1:1/0")
