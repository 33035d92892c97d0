"""The envelope decoder rejects anything that is not a task, saying why."""

from __future__ import annotations

import pytest

from strego.envelope import MalformedTaskError, TaskMessage, decode, encode


@pytest.mark.parametrize(
    ("blob", "why"),
    [
        (b"no newline", "no header line"),
        (b"{not json\npayload", "not JSON"),
        (b"[1,2]\n", "not a JSON object"),
        (b'{"t":"x","q":"d"}\n', "'id'"),
        (b'{"id":"a","q":"d"}\n', "'t'"),
        (b'{"id":"a","t":"x","q":"d","mr":-1}\n', "max_retry"),
        (b'{"id":"a","t":"x","q":"d","l":{"a":1}}\n', "labels"),
        (b'{"id":"a","t":"x","q":"d","to":0}\n', "timeout"),
        (b'{"id":"a","t":"x","q":"d","zz":1}\n', None),  # unknown keys are ignored
    ],
)
def test_malformed(blob: bytes, why: str | None) -> None:
    """Each kind of garbage raises MalformedTaskError naming the problem."""
    if why is None:
        assert decode(blob).id == "a"
        return
    with pytest.raises(MalformedTaskError, match=why):
        decode(blob)


def test_traceback_is_capped() -> None:
    """Tracebacks kept with a task are capped at 8 KiB."""
    message = TaskMessage(id="a", type="t", queue="q", payload=b"", traceback="x" * 100_000)
    assert len(decode(encode(message)).traceback or "") <= 8 * 1024 + 1


def test_defaults_are_omitted() -> None:
    """Default options are left out of the header, keeping waiting tasks small."""
    blob = encode(TaskMessage(id="a", type="t", queue="q", payload=b"{}", created_ms=1))
    assert blob == b'{"id":"a","t":"t","q":"q","ca":1}\n{}'
