"""The README stays true: its commands, and a reference row for every setting and metric."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
    """Each vigil_* metric name written in the library or exporter has a row in the table."""
    names = {m for folder in ("lib", "exporter") for path in (REPO / folder).rglob("*.py")
             for m in METRIC_LITERAL.findall(path.read_text(encoding="utf-8"))} - NOT_METRICS
    assert names, "no metric names found: the pattern is wrong"
    rows = _table_rows()
    # CounterMetricFamily takes the name without _total and adds it on exposition.
    missing = sorted(n for n in names
                     if not any(row.startswith((f"| `{n}`", f"| `{n}_total`")) for row in rows))
    assert missing == []


def test_every_alert_has_a_row() -> None:
    """Each alert in alerts/*.rules.yml has a row in the README's alerts table."""
    import yaml

    alerts = {rule["alert"] for path in (REPO / "alerts").glob("*.rules.yml")
              for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
              for rule in group["rules"] if "alert" in rule}
    assert alerts
    rows = _table_rows()
    assert sorted(a for a in alerts if not any(r.startswith(f"| `{a}`") for r in rows)) == []


def test_the_first_example_prints_its_alert_outside_the_repository(tmp_path: Path) -> None:
    """The README's first Python block, run as a script from a folder outside the checkout,
    prints the alert it sends: the handler runs before the interpreter exits."""
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None
    script = tmp_path / "example.py"
    script.write_text(block.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "disk almost full" in result.stdout.splitlines(), result.stdout


def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    """README "Testing code that uses vigil": its test module, run by pytest outside the
    checkout, passes (the helpers read back what the block did)."""
    section = README.split("### Testing code that uses vigil", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    (tmp_path / "test_example.py").write_text("import vigil\n" + block.group(1),
                                               encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_example.py"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_every_gauge_row_says_how_workers_combine() -> None:
    """Each vigil gauge's row shows its multiprocess mode from multiprocess.GAUGE_MODES."""
    from vigil.monitoring.multiprocess import GAUGE_MODES

    rows = _table_rows()
    wrong = sorted(name for name, mode in GAUGE_MODES.items()
                   if not any(row.startswith(f"| `{name}` | gauge |") and f"| `{mode}` |" in row
                              for row in rows))
    assert wrong == []


def test_the_subscriber_example_sees_every_breaker_the_process_creates(tmp_path: Path) -> None:
    """README "Reporting through your own subscribers": the attached function hears a breaker
    built after it (here one that opens), and detach() stops it hearing later ones."""
    section = README.split("### Reporting through your own subscribers", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    script = tmp_path / "subscribers.py"
    script.write_text(block.group(1) + (
        "cb = CircuitBreaker(failure_threshold=1, name='payments')\n"
        "try:\n"
        "    cb.call(lambda: 1 / 0)\n"
        "except ZeroDivisionError:\n"
        "    pass\n"
        "detach()\n"
        "later = CircuitBreaker(failure_threshold=1, name='later')\n"
        "try:\n"
        "    later.call(lambda: 1 / 0)\n"
        "except ZeroDivisionError:\n"
        "    pass\n"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    printed = [line for line in lines if not line.startswith("{")]  # vigil's JSON log lines
    assert printed == ["payments StateTransition"], result.stdout
    # vigil's own reporting still hears the later breaker.
    assert any("'later' CLOSED -> OPEN" in line for line in lines), result.stdout
