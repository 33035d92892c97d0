"""Items 12 and 13: names, ids and numbers every layer can hold, refused at construction.

``.``/``..`` segments were normalised away by browsers (the task could not be reached);
NUL was stripped by the history store (``id\\x00x`` and ``idx`` merged); bidi overrides
make a name read differently than it is; ``max_retry=2**40`` was refused by PostgreSQL
after Redis had accepted it, leaving the history stuck at "active".
"""

from __future__ import annotations

import uuid

import httpx
import pytest

import strego
from strego.envelope import MAX_RETRY, MalformedTaskError, decode, encode
from strego.errors import ConfigurationError
from strego.store.postgres import PostgresStore
from strego.testing import drain
from tests.store.conftest import databases, pg_dsn  # noqa: F401
from tests.store.pg_helpers import written
from tests.ui.conftest import post_form

HOSTILE_CHARACTERS = [
    "\x00",  # NUL: PostgreSQL text refuses it
    "\x1b",  # ESC: terminal escapes in logs and the CLI
    "\n",
    "\x7f",
    "\x85",  # C1 control
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u200b",  # ZERO WIDTH SPACE
    "\ufeff",  # BOM
    "\u2028",  # LINE SEPARATOR
    "\ud800",  # a lone surrogate: not encodable as UTF-8
]


@pytest.mark.parametrize("char", HOSTILE_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_control_and_bidi_characters_are_refused(char: str) -> None:
    """In a queue name, a task type or a task id: refused with a clear error."""
    with pytest.raises(ConfigurationError, match="queue"):
        strego.Task("t", queue=f"q{char}x")
    with pytest.raises(ConfigurationError, match="task type"):
        strego.Task(f"t{char}x")
    with pytest.raises(ConfigurationError, match="task id"):
        strego.Task("t", id=f"id{char}x")


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_segments_are_refused(name: str) -> None:
    """A queue or task id that a browser would normalise out of a URL is refused."""
    with pytest.raises(ConfigurationError, match="queue"):
        strego.Task("t", queue=name)
    with pytest.raises(ConfigurationError, match="task id"):
        strego.Task("t", id=name)
    with pytest.raises(ConfigurationError):
        strego.Server(strego.RedisBroker("redis://127.0.0.1:1/0"), queues=[name])


def test_names_that_merely_look_odd_are_accepted() -> None:
    """Dots inside names, unicode letters and emoji stay valid."""
    task = strego.Task("email:send", id="...x", queue="a.b")
    assert (task.id, task.queue) == ("...x", "a.b")
    assert strego.Task("envoi:é", id="日本-1", queue="ünï").type == "envoi:é"
    assert strego.Task("t", id=".a.", queue="..a").queue == "..a"


@pytest.mark.parametrize("value", [-1, MAX_RETRY + 1, 2**31, 2**40, True, 1.5])
def test_max_retry_is_bounded(value: object) -> None:
    """max_retry must fit every layer (PostgreSQL integer columns included)."""
    with pytest.raises(ConfigurationError, match="max_retry"):
        strego.Task("t", max_retry=value)  # type: ignore[arg-type]


def test_a_header_beyond_the_bounds_is_malformed() -> None:
    """A task written by another producer with max_retry=2**40 is malformed (dead-lettered
    with its raw bytes by a worker), not stuck in history."""
    blob = encode(strego.Task("t").to_message().evolve(max_retry=2**40))
    with pytest.raises(MalformedTaskError, match="max_retry"):
        decode(blob)
    ok = strego.Task("t", max_retry=MAX_RETRY).to_message().evolve(retry_count=MAX_RETRY)
    assert decode(encode(ok)).retry_count == MAX_RETRY


@pytest.mark.postgres
async def test_the_largest_max_retry_reaches_the_history(
    pg_dsn: str,
    redis_url: str,
    prefix: str,
) -> None:
    """A task with max_retry=MAX_RETRY runs, and PostgreSQL records its whole life."""
    queue = f"bounds-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(pg_dsn, flush_interval=0.01)
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="bounds")
    server = strego.Server(broker, queues=[queue], store=store)
    server.handle("ok", lambda task: None)
    try:
        async with strego.Client(broker, store=store) as client:
            info = await client.enqueue(strego.Task("ok", queue=queue, max_retry=MAX_RETRY))
            await drain(server, timeout=20)
            await written(store)
            row = await store.get(info.id)
    finally:
        await broker.aclose()
    assert row is not None and row.state == strego.TaskState.COMPLETED
    assert row.max_retry == MAX_RETRY
    assert store.dropped == 0


@pytest.mark.parametrize("name", [".", ".."])
async def test_dot_ids_from_another_producer_stay_reachable(
    name: str, http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Redis may still hold a task id "." or ".." (written by another producer): its
    links encode the dots, so the page and its actions work."""
    task = strego.Task("t", {"n": 1})
    task._id = name  # what a producer without this validation could write
    await client.enqueue(task)
    page = (await http.get("/queues/default")).text
    link = f"/tasks/{'~2E' * len(name)}"
    assert f'href="{link}?queue=default"' in page
    detail = await http.get(f"{link}?queue=default")
    assert detail.status_code == 200 and "pending" in detail.text
    deleted = await post_form(http, f"{link}/actions/delete", {"queue": "default"})
    assert deleted.status_code == 303
    assert await strego.Inspector(broker).get_task(name) is None
