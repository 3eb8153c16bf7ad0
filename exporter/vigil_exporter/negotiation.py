"""Which exposition format a scrape gets: ``Accept`` read with its q values, and the encoder.

Two workarounds for prometheus_client's :func:`~prometheus_client.exposition.choose_encoder`
(0.26), kept here and nowhere else, each pinned by ``tests/exporter/test_negotiation.py``
(which also checks that prometheus_client still needs them):

- it takes the first media range it knows and ignores q, so
  ``application/openmetrics-text;q=0`` (not acceptable) got OpenMetrics:
  :func:`metrics_media_range` chooses by q first;
- it raises ``TypeError`` on a ``version=`` parameter that is not dotted numbers
  (``version=abc``), a 500 for a garbled header: :func:`encoder_for` drops such a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.exposition import choose_encoder

__all__ = ["encoder_for", "metrics_media_range"]

_TEXT = "text/plain"
_OPENMETRICS = "application/openmetrics-text"
_Q_VALUE = re.compile(r"^(0(\.\d{0,3})?|1(\.0{0,3})?)$")  # RFC 9110 qvalue
_VERSION_PARAM = re.compile(r"^\s*version\s*=\s*(.*)$")
_DOTTED_NUMBER = re.compile(r"^\d+(\.\d+)*$")


def metrics_media_range(accept: str) -> str | None:
    """The media range of ``Accept`` that ``/metrics`` answers with; None: 406.

    prometheus_client's ``choose_encoder`` takes the first range it knows and ignores q, so
    ``application/openmetrics-text;q=0`` (not acceptable) got OpenMetrics. Here each of the
    two formats gets the q of the most specific range matching it (``text/plain`` beats
    ``text/*`` beats ``*/*``); the higher q wins, a tie goes to text; a range with a malformed
    q is ignored. No range matching either format (or no Accept) means text, the default; a
    text format explicitly refused (q=0) with OpenMetrics not acceptable either means None.
    The range returned keeps its parameters (``version=``) when it named the format exactly.
    """
    best: dict[str, tuple[int, float, str]] = {}  # format -> (specificity, q, range)
    for media, kept, q in _ranges(accept):
        for candidate in (_TEXT, _OPENMETRICS):
            specificity = _specificity(media, candidate)
            if not specificity:
                continue
            chosen = ";".join([candidate, *kept]) if specificity == 3 else candidate
            previous = best.get(candidate)
            if previous is None or (specificity, q) > previous[:2]:
                best[candidate] = (specificity, q, chosen)
    return _preferred(best.get(_TEXT), best.get(_OPENMETRICS))


def _preferred(text: tuple[int, float, str] | None,
               openmetrics: tuple[int, float, str] | None) -> str | None:
    """OpenMetrics' range when acceptable and above text's q; else text's, "" (the default)
    when Accept does not name it, None when it refuses it."""
    if openmetrics is not None and openmetrics[1] > 0 and (text is None or
                                                            openmetrics[1] > text[1]):
        return openmetrics[2]
    if text is None:
        return ""
    return text[2] if text[1] > 0 else None


def _ranges(accept: str) -> Iterator[tuple[str, list[str], float]]:
    """The ranges of ``accept`` that count: ``(media type in lower case, its parameters but q,
    q)``; one without a media type or with a malformed q is left out."""
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kept, q = [], 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() != "q":
                kept.append(param)
            elif _Q_VALUE.match(value.strip()):
                q = float(value)
            else:
                q = -1.0  # malformed: the range is ignored
        if media and q >= 0:
            yield media.lower(), kept, q


def _specificity(media: str, candidate: str) -> int:
    """How exactly ``media`` names the format ``candidate``: 3 by name, 2 by its type's
    wildcard (``text/*``), 1 by ``*/*``, 0 not at all."""
    if media == candidate:
        return 3
    if media == f"{candidate.partition('/')[0]}/*":
        return 2
    return 1 if media == "*/*" else 0


def encoder_for(accept: str) -> tuple[Callable[[Any], bytes], str]:
    """prometheus_client's encoder for :func:`metrics_media_range`'s choice, minus its crash
    on a malformed ``version=`` parameter.

    A version that is not dotted numbers is dropped (as if not given), so a garbled header
    gets a default format instead of a 500.
    """
    accept = metrics_media_range(accept) or ""
    ranges = []
    for media_range in accept.split(","):
        params = [p for p in media_range.split(";")
                  if not ((m := _VERSION_PARAM.match(p)) and not _DOTTED_NUMBER.match(m[1]))]
        ranges.append(";".join(params))
    try:
        return choose_encoder(",".join(ranges))
    except Exception:  # a parsing failure in prometheus_client: fall back to the text format
        return choose_encoder("")
