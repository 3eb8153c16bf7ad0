"""vigil installed from its wheel into a fresh virtual environment, run outside the checkout.

The wheel is built from this checkout (``pip wheel . --no-deps``) and installed with ``pip`` into
a new venv in a temporary folder; every command runs with that folder as its working directory,
so nothing can come from the checkout. The core install is tried first (no exporter extra), then
the ``exporter`` extra is added for ``vigil demo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600.0  # pip resolving and installing over the network on a slow machine


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding vigil's wheel, and a working folder outside the checkout."""

    venv: Path
    wheel: Path
    work: Path

    def run(self, *argv: str, env: dict[str, str] | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv (``vigil``, ``python``) in the working folder."""
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("VIGIL_", "PYTHONPATH", "OTEL_", "PROMETHEUS_MULTIPROC"))}
        clean["XDG_STATE_HOME"] = str(self.work / "state")
        return subprocess.run([str(self.venv / "bin" / argv[0]), *argv[1:]], cwd=self.work,
                              env={**clean, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def pip(self, *args: str) -> None:
        done = self.run("python", "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", *args, timeout=INSTALL_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    dist, venv, work = base / "dist", base / "venv", base / "work"
    work.mkdir()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--disable-pip-version-check", "-w", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(dist.glob("vigil-*.whl"))
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT, check=False)
    assert made.returncode == 0, made.stderr
    target = Installed(venv, wheel, work)
    target.pip(str(wheel))
    return target


def test_the_core_install_imports_without_the_web_stack(installed: Installed) -> None:
    """`pip install vigil` brings the library alone: importing it and using a breaker, a log
    line and a span pulls in no FastAPI, Starlette, pydantic or uvicorn."""
    done = installed.run("python", "-c", (
        "import sys, vigil\n"
        "cb = vigil.CircuitBreaker(name='wheel')\n"
        "with vigil.trace_context('Wheel', 'op'):\n"
        "    vigil.StructuredLogger('wheel').info('hello')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'pydantic', 'uvicorn'))\n"
        "print(vigil.__file__)\n"
        "print(heavy)\n"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert json.loads(lines[0])["message"] == "hello"
    assert str(installed.venv) in lines[1]  # the wheel's copy, not the checkout's
    assert lines[2] == "[]"


def test_a_bad_variable_keeps_version_and_help_working(installed: Installed) -> None:
    """With VIGIL_EXPORTER_PORT=abc, --version and --help work and a command that needs the
    configuration says what is wrong in one line (exit 1), as does importing and then using
    vigil (ConfigError at the first call that reads the configuration)."""
    bad = {"VIGIL_EXPORTER_PORT": "abc"}
    version = installed.run("vigil", "--version", env=bad)
    assert (version.returncode, version.stdout.strip()) == (0, "vigil 0.1.0")
    assert installed.run("vigil", "--help", env=bad).returncode == 0
    check = installed.run("vigil", "check", env=bad)
    assert check.returncode == 1
    assert check.stderr.strip().splitlines() == [
        "vigil: error: exporter.port: got 'abc'; VIGIL_EXPORTER_PORT must be an integer"]
    library = installed.run("python", "-c", (
        "import vigil\n"
        "try:\n"
        "    vigil.CircuitBreaker(name='late')\n"
        "except vigil.ConfigError as err:\n"
        "    print('ConfigError', err.key)\n"), env=bad)
    assert library.returncode == 0, library.stderr
    assert library.stdout.strip() == "ConfigError exporter.port"


@pytest.mark.skipif(not (Path("/usr/bin/promtool").exists() or
                         any((Path(p) / "promtool").exists()
                             for p in os.environ.get("PATH", "").split(os.pathsep))),
                    reason="promtool not installed")
def test_check_uses_the_rules_shipped_in_the_wheel(installed: Installed) -> None:
    """`vigil check` from the wheel checks the packaged rules and configs and names them;
    pointed at a folder with nothing in it, it fails."""
    done = installed.run("vigil", "check")
    assert done.returncode == 0, done.stderr
    assert "rules: OK" in done.stderr
    assert str(installed.venv) in done.stderr  # the packaged copies were checked
    (installed.work / "empty").mkdir(exist_ok=True)
    empty = installed.run("vigil", "check", "--alerts-dir", "empty")
    assert empty.returncode == 1
    assert "nothing to check" in empty.stderr


def test_rules_writes_the_shipped_mixin_from_the_wheel(installed: Installed) -> None:
    """`vigil rules --out DIR --set job=myapp` works from the core install: the rules select
    job="myapp" and the dashboards and provisioning come along."""
    done = installed.run("vigil", "rules", "--out", "mixin", "--set", "job=myapp")
    assert done.returncode == 0, done.stderr
    rules = (installed.work / "mixin" / "alerts" / "vigil.rules.yml").read_text(encoding="utf-8")
    assert 'job="myapp"' in rules
    assert 'job="vigil"' not in rules
    assert (installed.work / "mixin" / "dashboards" / "json" / "vigil-overview.json").exists()


def test_serve_without_the_exporter_extra_says_how_to_get_it(installed: Installed) -> None:
    """The core install's `vigil serve` answers one line naming the extra to install."""
    done = installed.run("vigil", "serve")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "vigil: error: `vigil serve` needs the exporter (fastapi, uvicorn, h11 not installed): "
        "pip install 'vigil[exporter]'"]


def test_the_demo_runs_from_the_wheel_with_the_exporter_extra(installed: Installed) -> None:
    """With vigil[exporter] installed from the wheel, `vigil demo --duration 20` runs outside
    the checkout and ends with its summary."""
    installed.pip(f"{installed.wheel}[exporter]")
    done = installed.run("vigil", "demo", "--duration", "20", "--no-stack",
                         "--log-file", "demo.log", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (installed.work / "demo.log").stat().st_size > 0
    # The HTML console's files are package data of the wheel (GET / serves them from there).
    console = installed.run("python", "-c", (
        "from vigil_exporter.console import ASSETS, load_asset\n"
        "print(sorted(n for n in (*ASSETS, 'index.html') if load_asset(n, 'x').body))"))
    assert console.stdout.strip() == str(sorted(
        ["console.css", "console.js", "favicon.svg", "index.html"])), console.stderr
