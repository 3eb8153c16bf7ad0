"""vigil.jsonsafe: one rule makes any value strict, UTF-8 JSON, never raising."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import deque
from enum import IntEnum
from typing import Any, NamedTuple

from vigil.jsonsafe import MAX_DEPTH, TOO_DEEP, json_number, json_safe

LONE = "report-\udcff.pdf"


class Raises:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class BrokenMapping(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("broken")


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Pair(NamedTuple):
    left: str
    right: str


class Level(IntEnum):
    HIGH = 3


def _strict(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def test_numbers_json_cannot_hold_become_their_words() -> None:
    """NaN and the infinities become "NaN"/"Infinity"/"-Infinity", an int past str()'s limit a
    placeholder, and int subclasses plain ints; finite numbers are kept."""
    assert json_safe([math.nan, math.inf, -math.inf, 1.5, 7]) == \
        ["NaN", "Infinity", "-Infinity", 1.5, 7]
    assert json_safe(10 ** 5000) == "<integer of 16610 bits>"
    assert json_number(10 ** 5000) == "<integer of 16610 bits>"
    assert type(json_safe(Level.HIGH)) is int


def test_structures_become_json_containers_with_text_keys() -> None:
    """Dataclasses and NamedTuples become dicts of their fields, sets and deques lists, and
    keys that are not strings their text."""
    value = {"p": Point(1, 2.0), "pair": Pair("a", "b"), "s": {3}, "d": deque([4]), (1, 2): "t"}
    assert json_safe(value) == {"p": {"x": 1, "y": 2.0}, "pair": {"left": "a", "right": "b"},
                                "s": [3], "d": [4], "(1, 2)": "t"}


def test_strings_follow_the_text_rule_and_objects_become_text() -> None:
    """A lone surrogate becomes U+FFFD (keys too), an object its str(), and one whose str()
    raises <unprintable T>: the result always encodes to UTF-8."""
    out = json_safe({LONE: [LONE, Raises(), object]})
    assert out == {"report-\ufffd.pdf": ["report-\ufffd.pdf", "<unprintable Raises>",
                                         "<class 'object'>"]}
    _strict(out).encode("utf-8")


def test_nesting_past_the_depth_rule_is_cut_and_cycles_end() -> None:
    """MAX_DEPTH levels are kept, the next becomes [TOO DEEP]; a list that contains itself
    ends in TOO_DEEP instead of recursing without end; max_depth widens the room."""
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert TOO_DEEP not in _strict(json_safe(deep))
    assert TOO_DEEP in _strict(json_safe([deep]))
    assert TOO_DEEP not in _strict(json_safe([deep], max_depth=MAX_DEPTH + 1))
    cycle: list[Any] = []
    cycle.append(cycle)
    assert TOO_DEEP in _strict(json_safe(cycle))


def test_a_container_that_raises_becomes_a_placeholder() -> None:
    """A mapping whose items() raises is written as <unprintable T>, the rest kept."""
    assert json_safe({"ok": 1, "bad": BrokenMapping()}) == \
        {"ok": 1, "bad": "<unprintable BrokenMapping>"}


def test_the_callers_objects_are_never_modified() -> None:
    """json_safe builds copies: the given dict and list are left as they were."""
    given: dict[str, Any] = {"n": math.nan, "l": [math.inf]}
    json_safe(given)
    assert math.isnan(given["n"])
    assert given["l"] == [math.inf]
