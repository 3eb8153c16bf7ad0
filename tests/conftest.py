"""Shared fixtures: every test starts from vigil's default configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import vigil.config


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
