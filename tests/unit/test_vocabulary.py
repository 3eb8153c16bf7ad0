"""vigil.vocabulary: one case-insensitive enum rule and one severity scale for alerts and errors."""

from __future__ import annotations

import pytest

from vigil.error_handling.recovery import ErrorSeverity
from vigil.monitoring.alerts import AlertSeverity
from vigil.vocabulary import SEVERITY_NAMES, CaseInsensitiveStrEnum, Severity


class Colour(CaseInsensitiveStrEnum):
    RED = "red"
    DARK_BLUE = "dark-blue"


def test_members_are_found_by_value_or_name_in_any_case() -> None:
    """Value, name, any case and surrounding spaces all find the member; members are strs."""
    assert Colour("RED") is Colour(" red ") is Colour.RED
    assert Colour("dark_blue") is Colour("DARK-BLUE") is Colour.DARK_BLUE
    assert isinstance(Colour.RED, str)
    assert str(Colour.RED) == "red"


def test_parse_names_the_value_and_what_is_allowed() -> None:
    """A miss (or a value that is not a str) is a ValueError naming it and the allowed values."""
    with pytest.raises(ValueError,
                       match=r"invalid colour 'green'; expected one of: red, dark-blue"):
        Colour.parse("green", "colour")
    with pytest.raises(ValueError, match="invalid Colour 3"):
        Colour.parse(3)


def test_alerts_and_errors_share_one_severity_scale_and_its_words() -> None:
    """AlertSeverity and ErrorSeverity are Severity; every alerting word maps to its member,
    and rank orders LOW < MEDIUM < HIGH < CRITICAL."""
    assert AlertSeverity is ErrorSeverity is Severity
    for word, value in SEVERITY_NAMES.items():
        assert Severity(word.upper()) is Severity(value)
    assert [s.rank for s in (Severity("info"), Severity("warn"), Severity("major"),
                             Severity("page"))] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"\(or error, info, major"):
        Severity.parse("urgent")
