"""Pieces of the hot paths rewritten for speed (issue #21): same results as before."""

from __future__ import annotations

import os
import time

from strego.broker.redis.scripts import Scripts, _read, with_lib
from strego.ids import _ALPHABET, new_task_id
from strego.task import _has_forbidden_character


def _ulid_digits(value: int) -> str:
    """The plain one-character-at-a-time Crockford encoding the fast one replaced."""
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def test_task_ids_are_ulids_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    task_id = new_task_id()
    after = time.time_ns() // 1_000_000
    value = 0
    for char in task_id:
        value = value * 32 + _ALPHABET.index(char)
    assert len(task_id) == 26
    assert _ulid_digits(value) == task_id
    assert before <= value >> 80 <= after


def test_task_id_encoding_matches_the_plain_one_at_the_edges() -> None:
    import strego.ids as ids

    for value in (0, 1, 2**128 - 1, (2**48 - 1) << 80, int.from_bytes(os.urandom(16), "big")):
        fast = "".join(ids._PAIRS[(value >> shift) & 1023] for shift in ids._SHIFTS)
        assert fast == _ulid_digits(value)


def test_ascii_fast_path_agrees_with_the_unicode_categories() -> None:
    for code in range(128):
        text = f"a{chr(code)}b"
        assert _has_forbidden_character(text) == (not chr(code).isprintable())
    assert _has_forbidden_character("caf\u00e9\u200b")  # zero-width space: Cf
    assert not _has_forbidden_character("caf\u00e9")


LIB = """-- helpers
local Q = {index = 12}

local function a()
  return 1
end

local function b()
  return a() + 1
end

local function unused()
  return 0
end

local function c(x)
  return b() + x
end
"""


def test_a_script_carries_only_the_helpers_it_uses_in_lib_order() -> None:
    source = "return c(Q.index)\n"
    built = with_lib(LIB, source)
    assert built.startswith("-- helpers\n")
    assert "unused" not in built
    assert built.index("function a") < built.index("function b") < built.index("function c")
    assert built.index("local Q") < built.index("function a")
    assert built.endswith(source)


def test_a_script_using_no_helper_carries_none() -> None:
    assert with_lib(LIB, "return 1\n") == "-- helpers\nreturn 1\n"


def test_every_script_keeps_every_helper_it_names() -> None:
    lib = _read("_lib")
    for script in vars(Scripts()).values():
        if not hasattr(script, "source"):
            continue
        own = _read(script.name)
        assert script.source.endswith(own)
        helpers = script.source[: -len(own)]
        for name in ("owned", "finish", "enqueue_check", "enqueue_write", "bury"):
            if f"{name}(" in own:
                assert f"local function {name}(" in helpers, (script.name, name)
    assert "local function" in lib
