"""vigil.monitoring.prometheus_private: the private prometheus_client switch vigil follows."""

from __future__ import annotations

import pytest
from prometheus_client import metrics

from vigil.monitoring.prometheus_private import created_series_enabled


def test_the_switch_exists_in_the_installed_prometheus_client() -> None:
    """prometheus_client still has metrics._use_created (renamed: this fails first)."""
    assert isinstance(metrics._use_created, bool)


@pytest.mark.parametrize("value", [True, False])
def test_created_series_enabled_follows_it_live(monkeypatch: pytest.MonkeyPatch,
                                                value: bool) -> None:
    """The answer is read when asked, as prometheus_client reads it for its own metrics."""
    monkeypatch.setattr(metrics, "_use_created", value)
    assert created_series_enabled() is value
