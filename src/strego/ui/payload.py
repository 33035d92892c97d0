"""How a task payload is shown: pretty JSON, text, or a hex dump, never raw markup.

The view is a list of (css class, text) tokens; templates print each text with
autoescaping on, so a payload can colour the page but never inject into it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from strego.serializers import SerializerRegistry

__all__ = [
    "DETAIL_PAYLOAD_BYTES",
    "LIST_PAYLOAD_BYTES",
    "PayloadView",
    "jsonable",
    "payload_view",
    "preview",
]

MAX_SHOWN_BYTES = 256 * 1024
HEX_SHOWN_BYTES = 4096
#: A listing row carries the payload itself only up to this size (a preview beyond).
LIST_PAYLOAD_BYTES = 4096
#: The task endpoint carries it up to this size; beyond, the download link serves it.
DETAIL_PAYLOAD_BYTES = 1 << 20
_NOT_DECODED = object()

# One JSON token of json.dumps(indent=2) output: a key, a string, a number, a literal,
# or anything else (punctuation and whitespace) as one run.
_TOKENS = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=:))'
    r'|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<lit>true|false|null|NaN|-?Infinity)"
    r'|(?P<punct>[^"\d\-tfnNI]+|.)',
    re.DOTALL,
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PayloadView:
    """``kind``: json, text, hex or empty. ``tokens`` (json) or ``text`` is what to show."""

    kind: str
    size: int
    serializer: str | None
    tokens: Sequence[tuple[str, str]] = ()
    text: str = ""
    truncated: bool = False
    value: Any = None  # the decoded payload, JSON-compatible (kind "json" only)
    raw: bytes = dataclasses.field(default=b"", repr=False)

    @property
    def plain(self) -> str:
        """The shown text without colouring (for copy buttons and tests)."""
        return "".join(t for _, t in self.tokens) if self.tokens else self.text


def jsonable(value: Any) -> Any:
    """A JSON-compatible copy: bytes become {"$base64": ...}, unknown objects their repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return repr(value)


def payload_view(
    raw: bytes | None,
    serializer: str | None,
    decoded: Any = _NOT_DECODED,
    serializers: SerializerRegistry | None = None,
) -> PayloadView:
    """Pick the most readable safe rendering of one payload.

    Pretty JSON only for payloads that fit on the page; a larger one shows its start as
    text (or hex). ``value`` (the decoded payload, for the API) is kept up to
    ``DETAIL_PAYLOAD_BYTES``; nothing larger is decoded here.
    """
    if not raw:
        return PayloadView(kind="empty", size=0, serializer=serializer, raw=raw or b"")
    if len(raw) > DETAIL_PAYLOAD_BYTES:
        decoded = _NOT_DECODED
    elif decoded is _NOT_DECODED or (decoded is None and raw not in (b"", b"null")):
        decoded = _decode(raw, serializer, serializers or SerializerRegistry())
    is_json = decoded is not _NOT_DECODED and serializer != "raw"
    value = jsonable(decoded) if is_json else None
    if is_json and len(raw) <= MAX_SHOWN_BYTES:
        text = json.dumps(value, indent=2, ensure_ascii=False)
        if len(text) <= MAX_SHOWN_BYTES:
            tokens = highlight(text)
            return PayloadView(
                kind="json",
                size=len(raw),
                serializer=serializer,
                tokens=tokens,
                value=value,
                raw=raw,
            )
    return _as_text(raw, serializer, value)


def _as_text(raw: bytes, serializer: str | None, value: Any) -> PayloadView:
    """The start of the payload as text, or as a hex dump when it is not UTF-8."""
    common: dict[str, Any] = {"size": len(raw), "serializer": serializer, "value": value}
    try:
        text = _utf8_start(raw[:MAX_SHOWN_BYTES], cut=len(raw) > MAX_SHOWN_BYTES)
    except UnicodeDecodeError:
        shown = hex_dump(raw[:HEX_SHOWN_BYTES])
        truncated = len(raw) > HEX_SHOWN_BYTES
        return PayloadView(kind="hex", text=shown, truncated=truncated, raw=raw, **common)
    truncated = len(raw) > MAX_SHOWN_BYTES
    return PayloadView(kind="text", text=text, truncated=truncated, raw=raw, **common)


def _decode(raw: bytes, serializer: str | None, registry: SerializerRegistry) -> Any:
    found = registry.get(serializer or "json")
    if found is None or serializer == "raw":
        return _NOT_DECODED
    try:
        return found.loads(raw)
    except Exception:  # any serializer error means "show it raw", never a broken page
        return _NOT_DECODED


def highlight(text: str) -> list[tuple[str, str]]:
    """Split pretty-printed JSON into (class, text) tokens for colouring."""
    tokens: list[tuple[str, str]] = []
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup or "punct"
        if tokens and tokens[-1][0] == kind == "punct":
            tokens[-1] = (kind, tokens[-1][1] + match.group())
        else:
            tokens.append((kind, match.group()))
    return tokens


def hex_dump(data: bytes) -> str:
    """Classic 16-bytes-per-line dump: offset, hex, printable ASCII."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexed = " ".join(f"{b:02x}" for b in chunk)
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexed:<47}  {shown}")
    return "\n".join(lines)


def preview(decoded: Any, raw: bytes, limit: int = 96) -> str:
    """A one-line summary of a payload for task lists."""
    if decoded is not None:
        text = json.dumps(jsonable(decoded), ensure_ascii=False, separators=(", ", ": "))
    elif not raw:
        return ""
    else:
        try:
            text = _utf8_start(raw[: limit * 4], cut=len(raw) > limit * 4)
        except UnicodeDecodeError:
            return f"{len(raw)} bytes (binary)"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utf8_start(data: bytes, *, cut: bool) -> str:
    """``data`` as UTF-8; when it was cut from a longer payload, a character split by
    the cut is dropped instead of making the whole payload look binary."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
        raise
