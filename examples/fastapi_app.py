"""A FastAPI app that enqueues tasks and serves the strego web UI at /strego/.

    python examples/fastapi_app.py [--port 8000]
    # then: curl -X POST localhost:8000/signup -H 'content-type: application/json' \\
    #            -d '{"email": "ada@example.com"}'
    #       open http://127.0.0.1:8000/strego/ and http://127.0.0.1:8000/docs

With your own Redis: ``STREGO_REDIS_URL=redis://... uvicorn --factory fastapi_app:app_from_env``.
Needs ``fastapi`` and ``strego[ui]``.
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
from fastapi import FastAPI, HTTPException

import strego
from strego.ui import create_app


class Signup(pydantic.BaseModel):
    email: str


def build_worker(broker: strego.RedisBroker) -> strego.Server:
    """The worker. In production run it apart from the web app (``strego worker``)."""
    worker = strego.Server(broker, concurrency=5)

    @worker.handle("email:welcome")
    async def send_welcome(signup: Signup) -> None:
        await asyncio.sleep(0.2)  # talk to the mail provider

    return worker


def create_api(url: str) -> FastAPI:
    broker = strego.RedisBroker(url, group="example-fastapi")  # no I/O until first use
    worker = build_worker(broker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The worker runs inside the web process only to keep this example one command.
        async with strego.Client(broker) as client, worker:
            app.state.client = client
            yield
        await broker.aclose()

    api = FastAPI(title="strego example", lifespan=lifespan)
    api.mount("/strego", create_app(broker))  # the web UI, read-write

    @api.post("/signup", status_code=202)
    async def signup(body: Signup) -> dict[str, Any]:
        """Enqueue the welcome email; the same address twice within an hour is a 409."""
        task = strego.Task("email:welcome", body, unique_key=f"welcome:{body.email}")
        try:
            info = await api.state.client.enqueue(task)
        except strego.DuplicateTaskError as exc:
            raise HTTPException(409, f"already queued as task {exc.task_id}") from exc
        return {"task_id": info.id, "state": info.state}

    @api.get("/tasks/{task_id}")
    async def task_status(task_id: str) -> dict[str, Any]:
        record = await strego.Inspector(broker).get_task(task_id)
        if record is None:
            raise HTTPException(404, "no such task (or finished long ago)")
        return {"id": record.id, "state": record.state, "last_error": record.last_error}

    return api


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory fastapi_app:app_from_env``."""
    return create_api(os.environ.get("STREGO_REDIS_URL", "redis://127.0.0.1:6379/0"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    with redis_url() as url:
        print(f"API docs: http://127.0.0.1:{port}/docs   UI: http://127.0.0.1:{port}/strego/")
        uvicorn.run(create_api(url), host="127.0.0.1", port=port, log_level="info")
