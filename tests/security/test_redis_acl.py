"""The Redis ACL recipe of docs/security.md, applied to a real redis-server.

The ``ACL SETUSER`` lines are read from the document, so the recipe people copy is the
one tested: workers, producers and an operator UI do everything they do with no
denial in ``ACL LOG``; the read-only UI user reads every page and cannot write.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

import strego
from strego.embedded import EmbeddedRedis
from strego.ui import create_app
from tests.conftest import wait_until
from tests.security.routes import endpoints
from tests.support.servers import start_redis

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


async def _before_7(admin: aioredis.Redis) -> bool:
    return int(str((await admin.info("server"))["redis_version"]).split(".")[0]) < 7


def _for_server(rules: list[str], before_7: bool) -> list[str]:
    """The rules as docs/security.md says to write them on Redis 6.2 (no ``%R~``)."""
    if not before_7:
        return rules
    return [r.replace("%R~", "~", 1) if r.startswith("%R~") else r for r in rules]


def recipe() -> dict[str, list[str]]:
    """user name → the arguments of its ACL SETUSER line in docs/security.md."""
    users = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("ACL SETUSER "):
            words = shlex.split(line)[2:]
            users[words[0]] = words[1:]
    return users


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server: ACL users are server-wide."""
    server = start_redis()
    yield server
    server.cleanup()


@pytest.fixture
async def urls(acl_redis: EmbeddedRedis) -> AsyncIterator[dict[str, str]]:
    """user → a URL logging in as that user; the ACL log is checked afterwards."""
    admin = aioredis.from_url(acl_redis.url)
    users = recipe()
    assert set(users) == {
        "strego-worker",
        "strego-producer",
        "strego-ui-admin",
        "strego-ui-readonly",
    }
    host = acl_redis.url.split("//", 1)[1]
    old = await _before_7(admin)
    found = {}
    for user, rules in users.items():
        password = f"pw-{user}-0123456789"
        rules = [f">{password}" if re.fullmatch(r">[A-Z_]+", r) else r for r in rules]
        rules = _for_server(rules, old)
        await admin.acl_setuser(user, reset=True)
        await admin.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
        found[user.removeprefix("strego-")] = f"redis://{user}:{password}@{host}"
    await admin.acl_log_reset()
    await admin.flushdb()
    yield found
    await admin.aclose()


async def _denials(acl_redis: EmbeddedRedis) -> list[tuple[str, str]]:
    """(user, command) refused, leaving out redis-py's CLIENT SETINFO on Redis 6.2.

    redis-py sends CLIENT SETINFO (a Redis 7.2 command) on every connection and ignores
    the error; on 6.2 CLIENT is one ``@dangerous`` command, so the refusal is logged.
    """
    admin = aioredis.from_url(acl_redis.url)
    try:
        old = await _before_7(admin)
        entries = await admin.acl_log(100)
        return [
            (str(e["username"]), str(e["object"]))
            for e in entries
            if not (old and str(e["object"]) == "client")
        ]
    finally:
        await admin.aclose()


async def _produce(url: str) -> None:
    async with strego.RedisBroker(url, group="acl") as broker:
        client = strego.Client(broker)
        await client.enqueue(strego.Task("ok", {"n": 1}))
        await client.enqueue(strego.Task("flaky", max_retry=1))
        await client.enqueue(strego.Task("doomed"))
        await client.enqueue(strego.Task("ok", id="explicit-1", unique_key="u1"))
        await client.enqueue(strego.Task("later", process_in=600))
        cancelled = await client.enqueue(strego.Task("later", process_in=600))
        assert await client.cancel(cancelled.id)
        await client.enqueue_many([strego.Task("ok", {"n": i}) for i in range(5)])
        await client.enqueue(strego.chain(strego.Task("ok", {"n": 6}), strego.Task("ok")))


async def _work(url: str) -> None:
    async with strego.RedisBroker(url, group="acl") as broker:
        server = strego.Server(
            broker, queues=["default"], concurrency=4, retry_base=0.01, retry_max=0.02
        )
        server.handle("ok", lambda task: None)

        async def flaky(task: strego.Task) -> None:
            if task.retry_count == 0:
                raise RuntimeError("first attempt fails")

        async def doomed(task: strego.Task) -> None:
            raise strego.SkipRetry("never works")

        server.handle("flaky", flaky)
        server.handle("doomed", doomed)
        inspector = strego.Inspector(broker)

        async def drained() -> bool:
            info = await inspector.queue_info("default")
            return info.pending == info.active == info.retry == 0 and info.dead == 1

        async with server:
            await wait_until(drained, timeout=20)


async def _every_page(url: str, *, read_only: bool) -> httpx.AsyncClient:
    broker = strego.RedisBroker(url, group="acl")
    app = create_app(broker, read_only=read_only)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")
    inspector = strego.Inspector(broker)
    [dead] = await inspector.list_tasks("default", "dead")
    flows = {t.workflow_id for t in await inspector.list_tasks("default", "completed")}
    [workflow_id] = flows - {None}  # the chain _produce enqueued: its page is read too
    params = {
        "queue": "default",
        "task_id": dead.id,
        "consumer": "c",
        "task_action": "retry",
        "workflow_id": str(workflow_id),
    }
    paths = [e.path for e in endpoints(app, **params, queue_action="pause") if not e.mutating]
    paths += [f"/queues/default?state={s}" for s in ("pending", "scheduled", "dead", "completed")]
    for path in paths:
        response = await http.get(path)
        assert response.status_code < 400 or path in ("/api/history", "/history"), (
            path,
            response.status_code,
            response.text[:200],
        )
    return http


async def test_the_recipe_lets_each_part_do_its_job(
    urls: dict[str, str], acl_redis: EmbeddedRedis
) -> None:
    await _produce(urls["producer"])
    await _work(urls["worker"])
    await (await _every_page(urls["ui-readonly"], read_only=True)).aclose()
    admin = await _every_page(urls["ui-admin"], read_only=False)
    try:
        token = (await admin.get("/api/csrf")).json()["csrf_token"]
        headers = {"x-csrf-token": token}
        for action in ("pause", "resume", "dead/retry-all", "purge"):
            response = await admin.post(f"/api/queues/default/{action}", headers=headers)
            assert response.status_code == 200, (action, response.text)
    finally:
        await admin.aclose()
    assert await _denials(acl_redis) == []


async def test_the_read_only_user_cannot_write(
    urls: dict[str, str], acl_redis: EmbeddedRedis
) -> None:
    """Even through a UI that was not started read-only, Redis refuses (409, not 500)."""
    await _produce(urls["producer"])
    async with strego.RedisBroker(urls["ui-readonly"], group="acl") as broker:
        inspector = strego.Inspector(broker)
        with pytest.raises(NoPermissionError):
            await inspector.pause("default")
        with pytest.raises(NoPermissionError):
            await strego.Client(broker).enqueue(strego.Task("t"))
        app = create_app(broker)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            token = (await http.get("/api/csrf")).json()["csrf_token"]
            response = await http.post("/api/queues/default/pause", headers={"x-csrf-token": token})
            assert response.status_code == 409 and "permission" in response.text
        assert not (await inspector.queue_info("default")).paused
    denied = await _denials(acl_redis)
    assert denied and {user for user, _ in denied} == {"strego-ui-readonly"}


async def test_a_user_without_info_still_sees_the_dashboard(acl_redis: EmbeddedRedis) -> None:
    """INFO is optional: without it the Redis panel shows dashes, the rest works."""
    admin = aioredis.from_url(acl_redis.url)
    rules = recipe()["strego-ui-readonly"]
    rules = [r for r in rules if r != "+info" and not r.startswith(">")]
    rules = _for_server(rules, await _before_7(admin))
    await admin.acl_setuser("strego-no-info", reset=True)
    await admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "strego-no-info", ">no-info-0123456789", *rules
    )
    await admin.aclose()
    host = acl_redis.url.split("//", 1)[1]
    url = f"redis://strego-no-info:no-info-0123456789@{host}"
    async with strego.RedisBroker(url, group="acl") as broker:
        app = create_app(broker, read_only=True)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            assert (await http.get("/")).status_code == 200
            assert (await http.get("/api/redis")).status_code == 200
