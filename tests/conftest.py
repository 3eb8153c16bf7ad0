"""Shared fixtures: every test starts from vigil's default configuration."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

import vigil.config
from vigil.monitoring import logs as logs_module


@pytest.fixture(autouse=True)
def _restore_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests may call vigil.configure(); put the defaults back (and on the singletons) after."""
    for name in list(os.environ):
        if name.startswith("VIGIL_"):
            monkeypatch.delenv(name)
    before = vigil.config.get_config()
    yield
    if vigil.config.get_config() is not before:
        vigil.config.configure(before)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the stdlib root logger and vigil's default stream after configure_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    default_stream = logs_module._default_stream
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs_module._default_stream = default_stream
