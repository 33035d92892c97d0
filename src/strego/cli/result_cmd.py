"""``strego task result ID [--wait SECONDS]``: a task's result, waiting for it if asked.

Exit status: 0 the result was printed; 1 the task failed, was cancelled, or is unknown
(or its result expired); 3 it has not finished within ``--wait`` (ask again later).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

import pydantic_core

from strego.cli.connect import CommandError, UsageError, broker_session
from strego.client import Client
from strego.errors import (
    ResultTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
)

__all__ = ["NOT_FINISHED", "result"]

NOT_FINISHED = 3  # exit status: still waiting, running or scheduled


async def result(args: argparse.Namespace) -> int:
    if args.wait is not None and args.wait < 0:
        raise UsageError(f"--wait must be >= 0 seconds, got {args.wait:g}")
    async with broker_session(args) as broker:
        try:
            value = await Client(broker).result(args.task_id, timeout=args.wait or 0)
        except ResultTimeoutError:
            waited = f" within {args.wait:g}s" if args.wait else ""
            print(f"task {args.task_id} has not finished{waited}", file=sys.stderr)
            return NOT_FINISHED
        except TaskFailedError as exc:
            detail = f": {exc.error}" if exc.error else ""
            raise CommandError(f"task {args.task_id} failed ({exc.reason}){detail}") from exc
        except TaskCancelledError as exc:
            raise CommandError(f"task {args.task_id} was cancelled ({exc.reason})") from exc
        except TaskNotFoundError as exc:
            raise CommandError(
                f"task {args.task_id} not found: unknown, or its result expired "
                "(results are kept for result_ttl; a history store keeps them longer)"
            ) from exc
    print(_render(value, as_json=args.json))
    return 0


def _render(value: Any, *, as_json: bool) -> str:
    """JSON (pretty unless --json asks for one line); bytes as {"$base64": ...}."""
    if isinstance(value, bytes):
        value = {"$base64": base64.b64encode(value).decode()}
    plain = pydantic_core.to_jsonable_python(value, fallback=repr)
    if as_json:
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(plain, indent=2, ensure_ascii=False)
