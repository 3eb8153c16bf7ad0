"""The mixin's generators work under another package name (as the wheel installs them).

The packaging maps ``alerts/`` and ``dashboards/`` to other package names; these tests copy the
modules under ``otherpkg.assets`` and import them from there in a fresh interpreter: nothing
in them imports ``dashboards.`` or ``alerts.`` absolutely, ``dashboards.model`` (with
``with_defaults``) needs no Grafana SDK, and the copies render what the checkout renders.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
ABSOLUTE = re.compile(r"^\s*(?:from|import)\s+(?:dashboards|alerts)\b", re.M)


def _copy(tmp_path: Path) -> Path:
    """otherpkg/assets/{alerts,dashboards} in ``tmp_path``: the modules and the JSON."""
    root = tmp_path / "otherpkg"
    (root / "assets").mkdir(parents=True)
    for folder in (root, root / "assets"):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    target = root / "assets" / "dashboards"
    shutil.copytree(DASHBOARDS, target, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "assets" / "alerts").mkdir()
    shutil.copy(REPO / "alerts" / "build.py", root / "assets" / "alerts" / "build.py")
    return tmp_path


def _run(path: Path, code: str) -> str:
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys\nsys.path.insert(0, "
                             f"{str(path)!r})\n{code}"], capture_output=True, text=True,
                            check=False, timeout=120, cwd=path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_no_absolute_imports_of_the_folders() -> None:
    """dashboards/*.py and alerts/build.py import each other's siblings relatively only."""
    for path in [*sorted(DASHBOARDS.glob("*.py")), REPO / "alerts" / "build.py"]:
        assert not ABSOLUTE.search(path.read_text(encoding="utf-8")), path


def test_model_and_with_defaults_work_under_another_name_without_the_sdk(tmp_path: Path
                                                                         ) -> None:
    """otherpkg.assets.dashboards.model loads the JSON and sets defaults; no SDK imported."""
    root = _copy(tmp_path)
    out = _run(root, (
        "import json\n"
        "from otherpkg.assets.dashboards.model import load_dashboards, panel_queries, "
        "with_defaults\n"
        "dash = load_dashboards()['vigil-overview.json']\n"
        "shop = with_defaults(dash, job='shop')\n"
        "job = [v for v in shop['templating']['list'] if v['name'] == 'job'][0]\n"
        "print(json.dumps({'job': job['current']['value'], 'queries': "
        "len(list(panel_queries(dash))), 'sdk': any(m.startswith('grafana_foundation_sdk') "
        "for m in sys.modules)}))\n"))
    result = json.loads(out)
    assert result["job"] == ["shop"]
    assert result["queries"] > 30
    assert result["sdk"] is False


def test_the_generators_render_the_same_under_another_name(tmp_path: Path) -> None:
    """otherpkg.assets.dashboards.build and otherpkg.assets.alerts.build give the checkout's
    files."""
    root = _copy(tmp_path)
    out = _run(root, (
        "import json\n"
        "from otherpkg.assets.dashboards import build\n"
        "from otherpkg.assets.alerts import build as alerts\n"
        "print(json.dumps({'dashboards': build.render_all(), "
        "'alerts': alerts.render(alerts.Settings())}))\n"))
    result = json.loads(out)
    for name, text in result["dashboards"].items():
        assert (DASHBOARDS / "json" / name).read_text(encoding="utf-8") == text, name
    for name, text in result["alerts"].items():
        assert (REPO / "alerts" / name).read_text(encoding="utf-8") == text, name
