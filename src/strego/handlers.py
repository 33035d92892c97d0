"""Handler registry: signatures are checked once, at registration; payloads are decoded
from the handler's type hint with a cached pydantic ``TypeAdapter``.

Accepted shapes: ``(task)``, ``(payload: T)``, ``(payload: T, task)``; ``async def``
runs on the event loop, plain ``def`` in a thread pool. A handler's return annotation
(a model, dataclass, TypedDict...) shapes how its result is encoded.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic

from strego.envelope import TaskMessage
from strego.retry import RetryPolicyFn
from strego.serializers import JSON, SerializerRegistry
from strego.task import Task

__all__ = ["DecodeError", "Handler", "HandlerFn", "HandlerRegistry"]

HandlerFn = Callable[..., Any]  # returns the task's result (or an awaitable of it)
_MISSING = inspect.Parameter.empty


class DecodeError(Exception):
    """The payload cannot be turned into what the handler asked for (dead-letter it)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Handler:
    """One registered handler and how to call it."""

    type: str
    fn: HandlerFn
    is_async: bool
    wants_payload: bool
    wants_task: bool
    adapter: pydantic.TypeAdapter[Any] | None  # None: give the serializer's output as is
    raw_bytes: bool
    retry_policy: RetryPolicyFn | None = None
    result_adapter: pydantic.TypeAdapter[Any] | None = None  # from the return annotation

    def decode(self, message: TaskMessage, serializers: SerializerRegistry) -> Any:
        """The payload as the handler wants it; raises :class:`DecodeError`."""
        if self.raw_bytes:
            return message.payload
        serializer = serializers.get(message.serializer)
        if serializer is None:
            raise DecodeError(
                "unknown_serializer",
                f"no serializer named {message.serializer!r} is registered on this worker",
            )
        try:
            if self.adapter is not None and serializer is JSON:
                return self.adapter.validate_json(message.payload)
            value = serializer.loads(message.payload)
            return value if self.adapter is None else self.adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise DecodeError("validation", str(exc)) from exc
        except Exception as exc:  # a serializer's loads may raise anything
            raise DecodeError("undecodable", f"{type(exc).__name__}: {exc}") from exc

    def call(self, payload: Any, task: Task) -> Any:
        if self.wants_payload and self.wants_task:
            return self.fn(payload, task)
        if self.wants_task:
            return self.fn(task)
        return self.fn(payload)


def build_handler(
    task_type: str, fn: HandlerFn, retry_policy: RetryPolicyFn | None = None
) -> Handler:
    if not isinstance(task_type, str) or not task_type.strip():
        raise ValueError("handler task type must be a non-empty string")
    if not callable(fn):
        raise TypeError(f"handler for {task_type!r} is not callable: {fn!r}")
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    hints = _type_hints(fn)
    if len(params) == 2:
        wants_payload, wants_task, payload_param = True, True, params[0]
    elif len(params) == 1 and _is_task_param(params[0], hints):
        wants_payload, wants_task, payload_param = False, True, None
    elif len(params) == 1:
        wants_payload, wants_task, payload_param = True, False, params[0]
    else:
        raise TypeError(
            f"handler for {task_type!r} must take (task), (payload) or (payload, task); "
            f"it takes {len(params)} positional parameters"
        )
    annotation = hints.get(payload_param.name, _MISSING) if payload_param else _MISSING
    raw = annotation is bytes
    adapter = None if annotation in (_MISSING, Any) or raw else pydantic.TypeAdapter(annotation)
    return Handler(
        type=task_type,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        wants_payload=wants_payload,
        wants_task=wants_task,
        adapter=adapter,
        raw_bytes=raw,
        retry_policy=retry_policy,
        result_adapter=_result_adapter(hints.get("return", _MISSING)),
    )


def _result_adapter(annotation: Any) -> pydantic.TypeAdapter[Any] | None:
    """How to encode the handler's results: None when its return annotation says
    nothing useful (missing, ``None``, ``Any``, ``object``; ``bytes`` are kept as they
    are) or names a type pydantic cannot describe (say a protobuf message, which its
    own serializer encodes)."""
    if annotation in (_MISSING, None, type(None), Any, object, bytes) or isinstance(
        annotation, str | typing.ForwardRef
    ):  # a string: a forward reference get_type_hints could not resolve
        return None
    try:
        return pydantic.TypeAdapter(annotation)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return None


def _type_hints(fn: HandlerFn) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to what is there
        return dict(getattr(fn, "__annotations__", {}))


def _is_task_param(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    annotation = hints.get(param.name, _MISSING)
    if annotation is _MISSING:
        return param.name == "task"
    return annotation is Task


class HandlerRegistry:
    """task type → :class:`Handler`."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(
        self, task_type: str, fn: HandlerFn, retry_policy: RetryPolicyFn | None = None
    ) -> Handler:
        handler = build_handler(task_type, fn, retry_policy)
        if task_type in self._handlers:
            raise ValueError(f"a handler for {task_type!r} is already registered")
        self._handlers[task_type] = handler
        return handler

    def get(self, task_type: str) -> Handler | None:
        return self._handlers.get(task_type)

    def __len__(self) -> int:
        return len(self._handlers)

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)
