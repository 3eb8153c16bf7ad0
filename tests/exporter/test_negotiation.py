"""vigil_exporter.negotiation: /metrics' Accept handling, in-process, and the two flaws of
prometheus_client's choose_encoder it works around (when those canaries fail, the workaround
can go). The same choices over a live server: tests/reliability/test_http_policy.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import choose_encoder

from vigil_exporter.negotiation import encoder_for, metrics_media_range

OPENMETRICS = "application/openmetrics-text"
TEXT = "text/plain"


def test_prometheus_client_still_ignores_q() -> None:
    """Canary: choose_encoder gives OpenMetrics to a client that says q=0 for it."""
    _, content_type = choose_encoder(f"{OPENMETRICS};q=0")
    assert content_type.startswith(OPENMETRICS)


def test_prometheus_client_still_crashes_on_a_garbled_version() -> None:
    """Canary: choose_encoder raises on a version= that is not dotted numbers."""
    with pytest.raises(TypeError):
        choose_encoder(f"{OPENMETRICS}; version=abc")


@pytest.mark.parametrize(("accept", "expected"), [
    ("", ""),  # no Accept: the default, text
    ("text/html", ""),  # nothing that names either format: the default too
    (f"{OPENMETRICS};q=0", ""),  # refused, and text not named: the default
    (f"{OPENMETRICS};q=0, {TEXT}", TEXT),
    (f"{OPENMETRICS};q=0.5, {TEXT};q=0.5", TEXT),  # a tie goes to text
    (f"{TEXT};q=0.4, {OPENMETRICS};q=0.5", OPENMETRICS),
    (f"{OPENMETRICS};version=1.0.0", f"{OPENMETRICS};version=1.0.0"),  # parameters kept
    (f"{OPENMETRICS};version=1.0.0;q=0.9", f"{OPENMETRICS};version=1.0.0"),  # q is not
    ("application/*", OPENMETRICS),  # a wildcard names the format without parameters
    ("TEXT/PLAIN;q=0, */*;q=0.3", OPENMETRICS),  # the specific range wins for text
    (f"{OPENMETRICS};q=abc", ""),  # a malformed q: the range is ignored
    (f"{OPENMETRICS};q=1.5", ""),  # out of range: malformed too
    (f"{TEXT};q=0", None),  # text refused, OpenMetrics not acceptable: 406
    ("*/*;q=0", None),
])
def test_media_range_by_q(accept: str, expected: str | None) -> None:
    """The range /metrics answers with follows q and specificity; None means 406."""
    assert metrics_media_range(accept) == expected


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{OPENMETRICS}; version=abc", OPENMETRICS),  # the garbled version dropped, not a 500
    (f"{TEXT}; version=abc", TEXT),
    (f"{OPENMETRICS};q=0, {TEXT};q=0.1", TEXT),  # q honoured, unlike choose_encoder
    (f"{OPENMETRICS};version=1.0.0,{TEXT};version=0.0.4;q=0.5", OPENMETRICS),
])
def test_encoder_for_the_chosen_range(accept: str, expected: str) -> None:
    """encoder_for gives the format metrics_media_range chose, even for a garbled version."""
    encoder, content_type = encoder_for(accept)
    assert content_type.startswith(expected)
    assert callable(encoder)


# Accept headers built from the pieces the parser looks at, and any text at all.
ACCEPTS = st.lists(st.sampled_from([TEXT, OPENMETRICS, "*/*", "text/*", "application/*", ";", ",",
                                    " ", "=", "q", "q=", "0", "1", ".", "5", "-1", "nan",
                                    "version=", "abc", "\x00", "\u00e9"]),
                   max_size=30).map("".join) | st.text(max_size=200)


@given(ACCEPTS)
def test_any_accept_gets_a_format_or_406(accept: str) -> None:
    """No Accept header makes either function raise; encoder_for always gives one of the two
    formats."""
    chosen = metrics_media_range(accept)
    assert chosen is None or chosen == "" or chosen.startswith((TEXT, OPENMETRICS))
    _, content_type = encoder_for(accept)
    assert content_type.startswith((TEXT, OPENMETRICS))
