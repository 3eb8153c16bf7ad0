"""vigil.monitoring.logs.c_scanner: the C scanner built once writes what json.dumps writes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from vigil.monitoring.logs import c_scanner

VALUES: list[Any] = [
    {"a": 1, "b": [1.5, None, True], "c": {"d": "é\u2028"}},
    ["x", {"nested": [{"deep": 1}]}, -0.0, 10**30],
    {"nan": math.nan, "inf": math.inf},
    "plain",
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("value", VALUES)
def test_the_scanner_writes_json_dumps_bytes(value: Any, ensure_ascii: bool) -> None:
    """For the stock encoder, encode(scanner_args(...)) == json.dumps, value by value."""
    encoder = json.JSONEncoder(ensure_ascii=ensure_ascii, default=str)
    args = c_scanner.scanner_args(encoder)
    assert c_scanner.encode(args, value) == json.dumps(value, ensure_ascii=ensure_ascii,
                                                       default=str)


def test_a_given_default_replaces_the_encoders() -> None:
    """scanner_args(encoder, default) calls default for values JSON cannot write."""
    args = c_scanner.scanner_args(json.JSONEncoder(), lambda value: f"<{type(value).__name__}>")
    assert c_scanner.encode(args, {"s": {1, 2}}) == '{"s": "<set>"}'


def test_a_reused_scanner_still_finds_a_cycle() -> None:
    """Each call has its own marker map: a cycle raises, and the next call works."""
    args = c_scanner.scanner_args(json.JSONEncoder())
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        c_scanner.encode(args, loop)
    assert c_scanner.encode(args, [1]) == "[1]"


class _OwnEncode(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return "custom"


@pytest.mark.parametrize(("serializer", "indent", "cls", "expected"), [
    (json.dumps, None, json.JSONEncoder, True),
    (json.dumps, 2, json.JSONEncoder, False),
    (str, None, json.JSONEncoder, False),
    (json.dumps, None, _OwnEncode, False),
    (json.dumps, None, "not a class", False),
])
def test_applies_only_where_the_bytes_are_the_same(serializer: Any, indent: object, cls: object,
                                                   expected: bool) -> None:
    """A custom serializer, an indent or an encoder with its own encode() takes the slow path."""
    assert c_scanner.applies(serializer, indent, cls) is expected
