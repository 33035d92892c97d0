"""A FastAPI endpoint that enqueues a task and awaits its result, with a timeout.

    python examples/results_fastapi.py [--port 8000]
    # then: curl -X POST localhost:8000/quotes -H 'content-type: application/json' \\
    #            -d '{"sku": "chair", "quantity": 3}'
    #       a slow one answers 202 with the task id; fetch it later:
    #       curl -X POST 'localhost:8000/quotes?slow=true' ... ; curl localhost:8000/quotes/ID

``POST /quotes`` waits up to 2 s for the worker's answer (pushed by Redis, no polling):
200 with the quote, 202 with the task id when it takes longer (the task goes on),
422 when the worker refused the request. ``GET /quotes/{id}`` looks once: 200, 202
while it still runs, 404 for an unknown id or a quote whose result expired.
Needs ``fastapi`` (and ``uvicorn``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import uvicorn
from _redis import redis_url
from fastapi import FastAPI, HTTPException, Response

import strego

PRICES = {"chair": 49.5, "table": 180.0, "lamp": 22.0}


class QuoteRequest(pydantic.BaseModel):
    sku: str
    quantity: int = pydantic.Field(gt=0)


class Quote(pydantic.BaseModel):
    sku: str
    quantity: int
    total: float


def build_worker(broker: strego.RedisBroker) -> strego.Server:
    """The worker. In production run it apart from the web app (``strego worker``)."""
    worker = strego.Server(broker, concurrency=10)

    @worker.handle("quote:price")
    async def price(request: QuoteRequest, task: strego.Task) -> Quote:
        if request.sku not in PRICES:
            raise strego.SkipRetry(f"unknown sku {request.sku!r}")  # retrying cannot help
        if task.labels.get("slow"):
            await asyncio.sleep(5)  # a slow supplier
        return Quote(sku=request.sku, quantity=request.quantity,
                     total=PRICES[request.sku] * request.quantity)  # fmt: skip

    return worker


def create_api(url: str) -> FastAPI:
    broker = strego.RedisBroker(url, group="example-results")  # no I/O until first use
    worker = build_worker(broker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The worker runs inside the web process only to keep this example one command.
        async with strego.Client(broker) as client, worker:
            app.state.client = client
            yield
        await broker.aclose()

    api = FastAPI(title="strego results example", lifespan=lifespan)

    @api.post("/quotes", response_model=None)
    async def create_quote(body: QuoteRequest, response: Response, slow: bool = False) -> Any:
        """Enqueue the pricing and wait up to 2 s for it."""
        labels = {"slow": "yes"} if slow else None
        client: strego.Client = api.state.client
        info = await client.enqueue(strego.Task("quote:price", body, labels=labels))
        return await answer(client, info.id, response, timeout=2.0)

    @api.get("/quotes/{task_id}", response_model=None)
    async def get_quote(task_id: str, response: Response) -> Any:
        """The quote if it is ready (looks once, never waits)."""
        return await answer(api.state.client, task_id, response, timeout=0)

    return api


async def answer(
    client: strego.Client, task_id: str, response: Response, *, timeout: float
) -> Quote | dict[str, str]:
    try:
        return await client.result(task_id, timeout=timeout, type=Quote)  # type: ignore[no-any-return]
    except strego.ResultTimeoutError:
        response.status_code = 202  # still running: the task goes on; ask again later
        return {"task_id": task_id, "status": "pending", "poll": f"/quotes/{task_id}"}
    except strego.TaskFailedError as exc:
        raise HTTPException(422, f"{exc.reason}: {exc.error}") from exc
    except strego.TaskNotFoundError as exc:
        raise HTTPException(404, "no such quote, or it expired") from exc


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory results_fastapi:app_from_env``."""
    return create_api(os.environ.get("STREGO_REDIS_URL", "redis://127.0.0.1:6379/0"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    with redis_url() as url:
        print(f"API docs: http://127.0.0.1:{port}/docs")
        uvicorn.run(create_api(url), host="127.0.0.1", port=port, log_level="info")
