"""Shared fixtures: every test starts from vigil's default configuration."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

import vigil.config
from vigil.monitoring.logs import writing as log_writing


@pytest.fixture(autouse=True)
def _restore_config(monkeypatch: pytest.MonkeyPatch,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests may call vigil.configure(); put the defaults back (and on the singletons) after.

    Each test also gets its own XDG state home, so an exporter without ``state_dir`` keeps its
    alert store there and never in the user's ~/.local/state/vigil (nor shares one with
    another test).
    """
    for name in list(os.environ):
        if name.startswith("VIGIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    before = vigil.config.get_config()
    yield
    if vigil.config.get_config() is not before:
        vigil.config.configure(before)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the stdlib root logger and vigil's default stream after configure_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    default_stream = log_writing.default_stream
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    log_writing.default_stream = default_stream
