"""vigil.text: the one rule for text vigil writes out (labels, log lines, alerts)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.text import REPLACEMENT, safe_text, unprintable, valid_text

FSDECODED = os.fsdecode(b"report-\xff.pdf")


class RaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no")


class RaisingBoth:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Weird(str):
    """A str subclass whose __str__ lies about what it holds."""

    def __str__(self) -> str:
        return "something else"


class SubclassResult:
    def __str__(self) -> str:
        return Weird("held")


class SurrogateResult:
    def __str__(self) -> str:
        return "x\udcff"


class HugeInt(int):
    """10 ** 5000 with a repr pytest and hypothesis can print; str() still fails on it."""

    __str__ = int.__repr__

    def __repr__(self) -> str:
        return "HugeInt(10 ** 5000)"


HUGE = HugeInt(10 ** 5000)


class Ünïcode:  # a class name that is not ASCII
    def __str__(self) -> str:
        raise ValueError("no")


def test_ascii_text_is_returned_as_is() -> None:
    """The common case costs nothing: an ASCII str comes back as the very same object."""
    text = "plain-ascii label 123"
    assert safe_text(text) is text
    assert valid_text(text) is text


def test_valid_non_ascii_text_is_kept() -> None:
    """Text that already encodes to UTF-8 is not changed (and not copied)."""
    text = "café 😀 \u2028 日本"
    assert safe_text(text) is text
    assert valid_text(text) is text


@pytest.mark.parametrize(("given", "expected"), [
    (FSDECODED, "report-\ufffd.pdf"),
    ("\udcff\udcfe", "\ufffd\ufffd"),
    ("\ud800", REPLACEMENT),
    ("a\ud83d", "a\ufffd"),
    ("\ud83d\ude00", "😀"),  # a pair written as two code points is joined
    ("x\ude00\ud83d", "x\ufffd\ufffd"),  # the wrong order is two lone ones
    ("\ud800\ud800\udc00", "\ufffd\U00010000"),
])
def test_lone_surrogates_become_the_replacement_character(given: str, expected: str) -> None:
    """Each lone surrogate becomes U+FFFD; a high+low pair becomes the character it encodes."""
    assert safe_text(given) == expected
    assert valid_text(given) == expected
    expected.encode("utf-8")


@pytest.mark.parametrize(("value", "expected"), [
    (12, "12"), (1.5, "1.5"), (float("nan"), "nan"), (None, "None"), (True, "True"),
    (b"\xff", "b'\\xff'"), (Weird("held"), "held"), (SubclassResult(), "held"),
    (SurrogateResult(), "x\ufffd"), (RaisingStr(), "<unprintable RaisingStr>"),
    (RaisingBoth(), "<unprintable RaisingBoth>"), (Ünïcode(), "<unprintable Ünïcode>"),
    pytest.param(HUGE, "<unprintable HugeInt>", id="int-past-the-str-limit"),
])
def test_objects_become_their_text_or_unprintable(value: object, expected: str) -> None:
    """Non-str values become their str(), or <unprintable TypeName> when that raises."""
    text = safe_text(value)
    assert text == expected
    assert type(text) is str


def test_unprintable_names_the_type() -> None:
    """The placeholder names the type of the value it stands for."""
    assert unprintable(RaisingBoth()) == "<unprintable RaisingBoth>"


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.text(st.characters(exclude_categories=())),
                 st.text(st.characters(categories=["Cs"])),
                 st.binary().map(os.fsdecode)))
def test_any_text_comes_out_encodable(text: str) -> None:
    """Whatever str goes in, what comes out encodes to UTF-8 strictly, and valid text is kept."""
    out = safe_text(text)
    out.encode("utf-8")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        assert REPLACEMENT in out or len(out) < len(text)
    else:
        assert out == text


@settings(max_examples=100, deadline=None, database=None)
@given(st.one_of(st.integers(), st.floats(), st.binary(), st.decimals(), st.datetimes(),
                 st.complex_numbers(), st.lists(st.text(st.characters(categories=["Cs"]))),
                 st.dictionaries(st.text(), st.text()), st.builds(RaisingBoth),
                 st.builds(SurrogateResult), st.just(HUGE)))
def test_safe_text_never_raises(value: Any) -> None:
    """safe_text answers text for values of arbitrary types."""
    assert isinstance(safe_text(value), str)
