"""``strego periodic list|pause|resume|trigger|delete``."""

from __future__ import annotations

import json

import strego
from tests.cli.conftest import Cli
from tests.conftest import wait_until


async def _declare(redis_url: str, prefix: str) -> strego.Server:
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    server = strego.Server(
        broker,
        periodic=[
            strego.Periodic("reports:daily", cron="0 9 * * *", tz="Europe/Berlin"),
            strego.Periodic("heartbeat", every=5, name="hb"),
        ],
    )
    await server.start()
    return server


async def test_periodic_list_and_actions(
    cli: Cli, redis_url: str, prefix: str, inspector: strego.Inspector
) -> None:
    """list shows each schedule in its zone; pause, resume, trigger, delete act on one."""
    server = await _declare(redis_url, prefix)
    try:
        await wait_until(lambda: _started(inspector), timeout=10)
        result = await cli("periodic", "list")
        assert result.code == 0, result.err
        header, *rows = result.out.splitlines()
        assert header.split()[:4] == ["NAME", "QUEUE", "TYPE", "SCHEDULE"]
        by_name = {row.split()[0]: row for row in rows}
        assert "0 9 * * * (Europe/Berlin)" in by_name["reports:daily"]
        assert " CE" in by_name["reports:daily"]  # next run shown in Berlin time (CET/CEST)
        assert "every 5s" in by_name["hb"] and "active" in by_name["hb"]

        assert (await cli("periodic", "pause", "hb")).code == 0
        listed = json.loads((await cli("periodic", "list", "--json")).out)
        hb = next(s for s in listed if s["name"] == "hb")
        assert hb["paused"] and hb["next_run"] is None and hb["every"] == 5
        triggered = await cli("periodic", "trigger", "hb")
        assert triggered.code == 0 and "enqueued periodic:hb:manual-" in triggered.out
        assert (await cli("periodic", "resume", "hb")).code == 0
        await server.stop()  # a live worker would declare a deleted schedule again
        assert (await cli("periodic", "delete", "reports:daily")).code == 0
        names = [s["name"] for s in json.loads((await cli("periodic", "list", "--json")).out)]
        assert names == ["hb"]
        missing = await cli("periodic", "trigger", "nope", "--queue", "default")
        assert missing.code == 1
        assert "no periodic schedule 'nope' in queue 'default'" in missing.err
    finally:
        await server.stop()
        await server.broker.aclose()


async def _started(inspector: strego.Inspector) -> bool:
    infos = await inspector.periodic()
    return len(infos) == 2 and all(i.next_run is not None for i in infos)


async def test_periodic_list_empty(cli: Cli) -> None:
    """No schedules: says so."""
    result = await cli("periodic", "list")
    assert (result.code, result.out.strip()) == (0, "no periodic schedules")
