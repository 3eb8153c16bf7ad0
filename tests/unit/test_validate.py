"""vigil.validate: one set of checks and one wording for settings and constructor arguments."""

from __future__ import annotations

import math

import pytest

from vigil import validate
from vigil.config import ConfigError, load_config


@pytest.mark.parametrize(("value", "message"), [
    (True, "expected an integer"), ("3", "expected an integer"), (2.0, "expected an integer"),
    (0, "must be a number >= 1"),
])
def test_integer_refuses_bools_strings_floats_and_small_values(value: object,
                                                               message: str) -> None:
    """An integer check names the key and value and says what is allowed; bool is no int."""
    with pytest.raises(ConfigError, match=f"^size: got {value!r}; {message}$"):
        validate.integer("size", value, minimum=1)
    assert validate.integer("size", 7, minimum=1) == 7


@pytest.mark.parametrize(("value", "message"), [
    (False, "expected a number"), ("1", "expected a number"),
    (math.nan, "must be a finite number"), (math.inf, "must be a finite number"),
    (0, "must be a number > 0"), (-0.5, "must be a number > 0"),
])
def test_number_refuses_nan_infinity_and_values_out_of_bounds(value: object,
                                                              message: str) -> None:
    """NaN never passes (it compares false with every bound), nor infinity unless allowed."""
    with pytest.raises(ConfigError, match=f"^timeout: {message}$|^timeout: got .*; {message}$"):
        validate.number("timeout", value, minimum=0, exclusive=True)
    assert validate.number("timeout", 2, minimum=0, exclusive=True) == 2.0
    assert validate.number("cap", math.inf, minimum=0, infinite=True) == math.inf


def test_ratio_is_in_zero_to_one() -> None:
    """A ratio is in (0, 1]: 0, above 1, NaN and bools are refused."""
    for bad in (0, 1.5, math.nan, True):
        with pytest.raises(ConfigError, match="must be a ratio in"):
            validate.ratio("rate", bad)
    assert validate.ratio("rate", 1) == 1.0


def test_settings_files_refuse_nan_through_the_same_checks() -> None:
    """A float setting of NaN in a file (YAML's .nan) is refused, naming the dotted key."""
    with pytest.raises(ConfigError, match=r"^monitoring\.alerts\.dedup_window: got nan; "
                                          r"must be a finite number$"):
        load_config({"monitoring": {"alerts": {"dedup_window": math.nan}}}, environ={})
