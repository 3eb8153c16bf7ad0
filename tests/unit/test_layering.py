"""The one-way layering rule, checked on the import graph (every import form, lazy ones too).

base (clock, config, text, forks, _lazy, jsonsafe, vocabulary, validate, events) < monitoring <
error_handling < the top level (vigil/__init__, reporting, asgi, wsgi, gunicorn, testing);
nothing in lib/ imports the exporter or a web framework. Read from each module's syntax tree:
``import a.b``, ``from a import b`` (``from vigil import error_handling`` names the module it
imports), relative imports, imports inside functions, and module names given as strings
(``importlib`` calls and vigil._lazy's forwarding tables), so a lazy import cannot hide an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"

BASE = ("vigil.clock", "vigil.config", "vigil.text", "vigil.forks", "vigil._lazy", "vigil.jsonsafe",
        "vigil.vocabulary", "vigil.validate", "vigil.events")
LAYER = {"base": 0, "monitoring": 1, "error_handling": 2, "top": 3}
FOREIGN = ("vigil_exporter", "fastapi", "starlette", "uvicorn", "flask", "django", "redis")


def _module_name(path: Path, root: Path = LIB) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    if module == "vigil" or module.startswith(BASE):
        return LAYER["base"] if module.startswith(BASE) else LAYER["top"]
    if module.startswith("vigil.monitoring"):
        return LAYER["monitoring"]
    if module.startswith("vigil.error_handling"):
        return LAYER["error_handling"]
    return LAYER["top"]


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(path: Path, root: Path = LIB) -> set[str]:
    """Every module ``path`` (under ``root``) may import, by any of the forms listed above."""
    name = _module_name(path, root)
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from vigil import error_handling` imports the module vigil.error_handling; a
            # name that is no module (`from vigil import configure`) is the package's own.
            subs = {f"{base}.{alias.name}" for alias in node.names}
            found.update(subs)
            if not all(_known(sub, root) for sub in subs):
                found.add(base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if (text == "vigil_exporter" or text.startswith(("vigil.", "vigil_exporter."))) \
                    and " " not in text:
                found.add(text)
    return {module for module in found if module}


def _lib_modules() -> list[Path]:
    return sorted(LIB.rglob("*.py"))


def _known(module: str, root: Path = LIB) -> bool:
    """A vigil module that exists (``from vigil.x import Name`` adds vigil.x.Name: not one)."""
    relative = Path(*module.split("."))
    return (root / relative).with_suffix(".py").exists() or \
        (root / relative / "__init__.py").exists()


@pytest.mark.parametrize("path", _lib_modules(), ids=lambda p: _module_name(p))
def test_no_module_imports_a_higher_layer_or_the_exporter(path: Path) -> None:
    """Each module of lib/ imports only its own layer or lower ones, and never the exporter or
    a web framework (the middlewares speak ASGI/WSGI without importing one)."""
    name = _module_name(path)
    own = _layer(name)
    for module in imports_of(path):
        assert module.split(".")[0] not in FOREIGN, f"{name} imports {module}"
        if module.startswith("vigil.") and _known(module) and not name.startswith(module):
            assert _layer(module) <= own, f"{name} (layer {own}) imports {module}"


def test_the_graph_reader_sees_every_import_form(tmp_path: Path) -> None:
    """The checker itself: the forms a grep missed (from vigil import error_handling, a
    relative import, a lazy import in a function, a module named in a string) are all found."""
    source = tmp_path / "vigil" / "monitoring" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from vigil import error_handling\n"
        "from vigil import configure\n"
        "from ..error_handling import retry\n"
        "def later():\n"
        "    import vigil.error_handling.recovery\n"
        "TABLE = {'x': 'vigil_exporter.server'}\n", encoding="utf-8")
    found = imports_of(source, tmp_path)
    assert {"vigil", "vigil.error_handling", "vigil.error_handling.retry",
            "vigil.error_handling.recovery", "vigil_exporter.server"} <= found
