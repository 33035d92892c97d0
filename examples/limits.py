"""Global limits: call a rate-limited HTTP API from many workers without a single 429.

    python examples/limits.py

A fake partner API (a local HTTP server) allows 5 requests a second (a token bucket)
and 2 exports at once per tenant; over that it answers 429. First, 20 calls without
limits: many are refused. Then the same handler with
``limits=[RateLimit("partner-api", 5), ConcurrencyLimit("exports", 2, key=tenant)]``
across two worker servers: every call succeeds, none is retried, and tasks held back
are parked (not failed) until the limiter allows them.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from _redis import redis_url

import strego


class PartnerAPI:
    """5 requests a second (bucket of 5) and 2 concurrent exports per tenant, else 429."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens, self.filled_at = 5.0, time.monotonic()
        self.running: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.ok = self.refused = 0

    def admit(self, tenant: str) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(5.0, self.tokens + (now - self.filled_at) * 5)
            self.filled_at = now
            if self.tokens < 1 or self.running[tenant] >= 2:
                self.refused += 1
                return False
            self.tokens -= 1
            self.running[tenant] += 1
            self.peak[tenant] = max(self.peak[tenant], self.running[tenant])
            return True

    def done(self, tenant: str) -> None:
        with self.lock:
            self.running[tenant] -= 1
            self.ok += 1

    def serve(self) -> ThreadingHTTPServer:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tenant = parse_qs(urlparse(self.path).query)["tenant"][0]
                if not api.admit(tenant):
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                time.sleep(0.6)  # the export takes a while
                api.done(tenant)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def call_api(base: str, tenant: str) -> int:
    """A plain blocking HTTP call, as most SDKs make (a sync handler runs in a thread)."""
    try:
        with urllib.request.urlopen(f"{base}/export?tenant={tenant}", timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def build_server(broker: strego.RedisBroker, base: str, limited: bool) -> strego.Server:
    server = strego.Server(broker, concurrency=10)
    limits = [
        strego.RateLimit("partner-api", 5),  # at most 5 calls a second, fleet-wide
        strego.ConcurrencyLimit("exports", 2, key=lambda task: task.payload["tenant"]),
    ]

    @server.handle("partner:export", limits=limits if limited else None)
    def export(payload: dict[str, str]) -> None:
        status = call_api(base, payload["tenant"])
        if status == 429 and limited:
            raise strego.RetryAfter(1.0)  # never happens here: the limits keep us under
        if status == 429:
            raise strego.SkipRetry("429 Too Many Requests")  # phase 1: just count it

    return server


async def run(url: str, group: str, base: str, limited: bool, count: int) -> strego.QueueInfo:
    tenants = ["acme", "acme", "acme", "globex", "initech"]  # acme is the busy one
    async with strego.RedisBroker(url, group=group, prefix=group) as producer:
        client = strego.Client(producer)
        inspector = strego.Inspector(producer)
        tasks = [strego.Task("partner:export", {"tenant": tenants[i % 5]}) for i in range(count)]
        await client.enqueue_many(tasks)
        brokers = [strego.RedisBroker(url, group=group, prefix=group) for _ in range(2)]
        servers = [build_server(b, base, limited) for b in brokers]  # two "machines"
        try:
            for server in servers:
                await server.start()
            while (info := await inspector.queue_info("default")).size:
                await asyncio.sleep(0.1)
            return info
        finally:
            for server, broker in zip(servers, brokers, strict=True):
                await server.stop()
                await broker.aclose()


async def main(url: str) -> None:
    api = PartnerAPI()
    http = api.serve()
    base = f"http://127.0.0.1:{http.server_address[1]}"
    naive = await run(url, "limits-naive", base, limited=False, count=20)
    print(f"without limits: {api.refused} of 20 calls got 429 ({naive.dead} dead)")

    api.refused = api.ok = 0
    api.peak.clear()
    began = time.monotonic()
    info = await run(url, "limits-demo", base, limited=True, count=30)
    took = time.monotonic() - began
    print(f"with limits: {api.ok} of 30 calls succeeded, {api.refused} got 429")
    print(f"retried: {info.retried}, dead: {info.dead}, parked by a limiter: {info.rate_limited}")
    print(f"at most {max(api.peak.values())} exports at once per tenant")
    print(f"30 calls in {took:.1f}s: {30 / took:.1f} a second (the limit is 5)")
    async with strego.RedisBroker(url, prefix="limits-demo") as broker:
        for limit in await strego.Inspector(broker).limits():
            print(f"limiter {limit.name}: {limit.description}, held tasks back {limit.held} times")
    http.shutdown()


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
