"""Bad input never crashes a worker: it is dead-lettered with the raw bytes and a reason."""

from __future__ import annotations

import strego
from strego.envelope import TaskMessage, encode
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import dead_at_least


async def test_garbage_entries_go_to_dead_letters(
    broker: strego.RedisBroker,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """Malformed entries, unknown types or serializers, bad payloads: all dead, with reasons."""
    runs: list[int] = []

    async def good(payload: dict[str, int]) -> None:
        runs.append(payload["n"])

    stream = broker.keys("default").stream(0)
    await broker.prepare(["default"])
    bad_entries: list[dict[str, bytes]] = [
        {"x": b"\xff\x00 no d field"},
        {"d": b"no header line"},
        {"d": b"{broken json\n{}"},
        {
            "d": encode(
                TaskMessage(id="u1", type="nobody-handles-this", queue="default", payload=b"{}")
            )
        },
        {
            "d": encode(
                TaskMessage(
                    id="s1", type="good", queue="default", payload=b"\x01", serializer="protobuf"
                )
            )
        },
        {"d": encode(TaskMessage(id="v1", type="good", queue="default", payload=b'{"n":"NaN?"}'))},
    ]
    for i, fields in enumerate(bad_entries):
        await client.enqueue(strego.Task("good", {"n": i}))
        await broker.redis.xadd(stream, fields)
    await client.enqueue(strego.Task("good", {"n": 99}))
    await make_server({"good": good})
    await wait_until(lambda: dead_at_least(inspector, len(bad_entries)))
    await wait_until(lambda: len(runs) == 7)
    reasons = sorted(r.dead_reason or "" for r in await inspector.dead_letters("default"))
    assert reasons == sorted(
        ["malformed", "malformed", "malformed", "unknown_type", "unknown_serializer", "validation"]
    )
    raw = [r for r in await inspector.dead_letters("default") if r.dead_reason == "malformed"]
    assert any(b"\xff\x00 no d field" in r.payload_bytes for r in raw)


async def test_entry_deleted_while_pending_is_dead_lettered_as_lost(
    redis_url: str,
    prefix: str,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """An entry deleted under a dead worker is reported by XAUTOCLAIM and dead-lettered 'lost'."""
    await client.enqueue(strego.Task("good", {"n": 1}))
    dead = strego.RedisBroker(redis_url, prefix=prefix, group="tests", consumer="dead")
    await dead.prepare(["default"])
    (delivery,) = (await dead.fetch([("default", 1)]))["default"] or []
    await dead.redis.xdel(dead.keys("default").stream(0), delivery.entry_id)
    await dead.aclose()

    async def good(payload: dict[str, int]) -> None:
        raise AssertionError("nothing left to run")

    await make_server(
        {"good": good}, broker_options={"claim_stale_after": 0.2, "claim_check_interval": 0.1}
    )
    await wait_until(lambda: dead_at_least(inspector, 1))
    (record,) = await inspector.dead_letters("default")
    assert record.dead_reason == "lost"
    assert delivery.entry_id in (record.last_error or "")


async def test_undecodable_payload_is_dead_lettered(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    broker: strego.RedisBroker,
) -> None:
    """A payload its serializer cannot read is dead-lettered as 'undecodable'."""
    await client.enqueue(
        strego.Task("good", b"\xff not msgpack", serializer=strego.RawSerializer())
    )
    broken = TaskMessage(
        id="m1", type="good", queue="default", payload=b"\xc1", serializer="msgpack"
    )
    await broker.redis.xadd(broker.keys("default").stream(0), {"d": encode(broken)})

    async def good(payload: dict[str, int]) -> None:
        return None

    await make_server({"good": good})
    await wait_until(lambda: dead_at_least(inspector, 2))
    reasons = sorted(r.dead_reason or "" for r in await inspector.dead_letters("default"))
    assert reasons == ["undecodable", "validation"]
