"""vigil_exporter.cli: the vigil command's options, errors as one line, and its exit codes."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.durability.support import wait_ready

from vigil import __version__
from vigil_exporter.cli import load_handler, main
from vigil_exporter.stack import ALERTS_DIR, free_port

REPO = Path(__file__).resolve().parents[2]
HAVE_TOOLS = shutil.which("promtool") is not None and shutil.which("amtool") is not None


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """vigil --version prints the version and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"vigil {__version__}"


def test_installed_entry_point_runs() -> None:
    """The vigil script installed by pyproject answers --help with every command."""
    vigil = Path(sys.executable).with_name("vigil")
    result = subprocess.run([str(vigil), "--help"], capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 0
    for command in ("serve", "demo", "check"):
        assert command in result.stdout


def test_check_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    """vigil check on config/monitoring.yaml and alerts/ succeeds."""
    assert main(["check", "--config", str(REPO / "config" / "monitoring.yaml")]) == 0
    err = capsys.readouterr().err
    assert "config: OK" in err
    if HAVE_TOOLS:
        assert "rules: OK" in err
        assert "prometheus config: OK" in err
        assert "alertmanager config: OK" in err


def test_check_reports_a_bad_config_in_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong value is one 'vigil: error:' line naming the key, with exit status 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("monitoring:\n  logging:\n    level: LOUD\n")
    assert main(["check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vigil: error: monitoring.logging.level: got 'LOUD'; must be one of "
                   "DEBUG, INFO, WARNING, ERROR, CRITICAL"]


@pytest.mark.skipif(not HAVE_TOOLS, reason="promtool/amtool are not installed")
def test_check_fails_on_broken_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule file promtool rejects makes vigil check fail with status 1."""
    for name in ("prometheus.yml", "alertmanager.yml"):
        shutil.copy(ALERTS_DIR / name, tmp_path / name)
    (tmp_path / "broken.rules.yml").write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n")
    assert main(["check", "--alerts-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "rules: FAILED" in err
    assert err.strip().endswith("vigil: error: check failed: rules, prometheus config")


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An out-of-range port is rejected by the parser with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "70000 is not between 0 and 65535" in capsys.readouterr().err


def test_serve_on_a_busy_port_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """vigil serve on a port in use exits 1 with one line naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert lines == [f"vigil: error: [Errno 98] cannot listen on 127.0.0.1:{port}: "
                     f"Address already in use"]


def test_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """vigil without a command prints usage and exits 2."""
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "usage: vigil" in capsys.readouterr().err


@pytest.mark.parametrize(("spec", "says"), [
    ("no_colon", "expected MODULE:CALLABLE"),
    ("vigil_no_such_module_x:handle", "cannot import 'vigil_no_such_module_x'"),
    ("json:no_such_attribute", "has no attribute 'no_such_attribute'"),
    ("json:__doc__", "is not callable"),
])
def test_a_bad_handler_is_one_line(spec: str, says: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """vigil serve --handler that cannot be loaded: one line naming it, exit 1, nothing served."""
    assert main(["serve", "--port", "0", "--handler", spec]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vigil: error: --handler")
    assert "\n" not in err
    assert says in err


def test_handlers_are_imported_from_the_current_folder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A module in the current folder is found, as gunicorn and python -m find theirs."""
    (tmp_path / "vigil_cli_test_handlers.py").write_text("def page(alert):\n    return 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_handler("vigil_cli_test_handlers:page")(None) == 7


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_on_a_signal(sig: str, tmp_path: Path) -> None:
    """SIGINT or SIGTERM: vigil serve stops its delivery loop, logs it and exits 0."""
    port = free_port()
    vigil = Path(sys.executable).with_name("vigil")
    proc = subprocess.Popen([str(vigil), "serve", "--port", str(port), "--state-dir",
                             str(tmp_path / "state")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, "vigil serve", lambda: "")
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert '"message": "alert delivery stopped"' in out
    assert (tmp_path / "state" / "alerts.sqlite3").exists()


def test_check_fails_on_a_missing_alerts_dir(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """vigil check --alerts-dir on a path that is not a folder fails in one line, exit 1."""
    assert main(["check", "--alerts-dir", str(tmp_path / "nonexistent")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vigil: error: --alerts-dir")
    assert "is not a folder" in err


def test_check_fails_when_there_is_nothing_to_check(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """An alerts folder with no rules and no configs is an error, not "OK"."""
    assert main(["check", "--alerts-dir", str(tmp_path)]) == 1
    assert "nothing to check" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_rules_writes_the_mixin_for_another_job(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`vigil rules --set job=shop` writes rules that select job="shop" only (promtool accepts
    them), the Alertmanager and Prometheus configs, the runbook and dashboards that open on
    shop; without --set the files are the shipped ones, promtool tests included and passing."""
    import json

    import yaml

    out = tmp_path / "shop"
    assert main(["rules", "--out", str(out), "--set", "job=shop",
                 "--set", "runbook_base=https://wiki.example/vigil"]) == 0
    assert "wrote" in capsys.readouterr().err
    rules = yaml.safe_load((out / "alerts" / "vigil.rules.yml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    assert all('job="shop"' in expr and 'job="vigil"' not in expr for expr in exprs)
    urls = {rule["annotations"]["runbook_url"] for group in rules["groups"]
            for rule in group["rules"]}
    assert all(url.startswith("https://wiki.example/vigil#") for url in urls)
    assert not (out / "alerts" / "demo.rules.yml").exists()
    assert (out / "alerts" / "runbook.md").exists()
    checked = subprocess.run(["promtool", "check", "rules",
                              str(out / "alerts" / "vigil.rules.yml"),
                              str(out / "alerts" / "vigil.recording.rules.yml")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    dashboard = json.loads((out / "dashboards" / "json" / "vigil-overview.json")
                           .read_text(encoding="utf-8"))
    job = next(v for v in dashboard["templating"]["list"] if v["name"] == "job")
    assert job["current"]["value"] == ["shop"]
    assert (out / "dashboards" / "provisioning" / "dashboards" / "vigil.yml").exists()

    shipped = tmp_path / "shipped"
    assert main(["rules", "--out", str(shipped)]) == 0
    assert (shipped / "alerts" / "vigil.rules.yml").read_text(encoding="utf-8") == (
        ALERTS_DIR / "vigil.rules.yml").read_text(encoding="utf-8")
    tests = sorted(str(p) for p in (shipped / "alerts" / "tests").glob("*.yml"))
    assert tests
    tested = subprocess.run(["promtool", "test", "rules", *tests], capture_output=True,
                            text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rules_refuses_an_unknown_setting_in_one_line(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --set key is one `vigil: error:` line naming the key and the closest name."""
    assert main(["rules", "--out", str(tmp_path), "--set", "jobb=shop"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("vigil: error: --set jobb")
    assert "'job'" in err[0]
