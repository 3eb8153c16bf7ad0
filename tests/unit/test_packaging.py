"""pyproject.toml's explicit package list covers every package of lib/ and exporter/.

setuptools is given the packages by name (the asset folders are mapped under other names), so a
new subpackage left off the list is silently missing from the wheel, while the checkout, where
tests run, still imports it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _listed() -> set[str]:
    with open(REPO / "pyproject.toml", "rb") as file:
        return set(tomllib.load(file)["tool"]["setuptools"]["packages"])


def _packages(root: Path, name: str) -> set[str]:
    found = set()
    for init in root.rglob("__init__.py"):
        if "__pycache__" in init.parts:
            continue
        relative = init.parent.relative_to(root)
        found.add(".".join([name, *relative.parts]))
    return found


def test_every_package_of_the_library_and_the_exporter_is_listed() -> None:
    """Each folder with an __init__.py under lib/vigil, exporter/vigil_exporter and
    examples/vigil_demo is one of the packages pyproject.toml lists, so the wheel carries it."""
    found = _packages(REPO / "lib" / "vigil", "vigil") | \
        _packages(REPO / "exporter" / "vigil_exporter", "vigil_exporter") | \
        _packages(REPO / "examples" / "vigil_demo", "vigil_demo")
    assert sorted(found - _listed()) == []
