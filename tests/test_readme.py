"""The README stays true: its commands, and a reference row for every setting and metric."""

from __future__ import annotations

import re
from pathlib import Path

from vigil.config import env_variables

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
METRIC_LITERAL = re.compile(r"""["'](vigil_[a-z0-9_]+)["']""")
NOT_METRICS = {"vigil_current_span"}  # the context variable's name


def _table_rows() -> set[str]:
    return {line for line in README.splitlines() if line.startswith("| `")}


def test_readme_starts_with_the_two_commands() -> None:
    """The first code block is exactly ./run demo and ./run test."""
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["./run demo", "./run test"]


def test_every_setting_has_a_row() -> None:
    """Each config key and its VIGIL_* variable appear together in one table row."""
    rows = _table_rows()
    for name, (key, _field, _type) in env_variables().items():
        assert any(f"`{key}`" in row and f"`{name}`" in row for row in rows), key


def test_every_builtin_metric_has_a_row() -> None:
    """Each vigil_* metric name written in the library has a row in the metrics table."""
    names = {m for path in (REPO / "lib").rglob("*.py")
             for m in METRIC_LITERAL.findall(path.read_text(encoding="utf-8"))} - NOT_METRICS
    assert names, "no metric names found: the pattern is wrong"
    rows = _table_rows()
    missing = sorted(n for n in names if not any(row.startswith(f"| `{n}`") for row in rows))
    assert missing == []
