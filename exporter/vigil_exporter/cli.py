"""The ``vigil`` command: ``serve``, ``demo``, ``check``, ``--version``.

Errors come out as one line, ``vigil: error: <what is wrong>``, with exit status 1 (2 for a
command line argparse rejects); JSON logs go to stdout, the command's own messages to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import vigil
from vigil import __version__
from vigil.config import ConfigError, configure, load_config
from vigil_exporter.shipped import alerts_dir, dashboards_dir
from vigil_exporter.stack import ALERTS_DIR

__all__ = ["load_handler", "main"]


class CommandError(Exception):
    """A failure to report as one line and exit 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description="vigil's exporter: /metrics for Prometheus, a JSON API and the "
                    "Alertmanager webhook receiver, plus a demo application.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="serve /metrics, the JSON API and the webhook until interrupted",
        description="Serve the exporter in the foreground (Ctrl-C stops it).")
    _config_option(serve)
    serve.add_argument("--host", help="address to bind (default: exporter.host, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to bind (default: exporter.port, 9464)")
    serve.add_argument("--log-level", default=None, type=str.upper,
                       choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                       help="minimum level of every JSON log line, vigil's and uvicorn's "
                            "(default: monitoring.logging.level, INFO)")
    serve.add_argument("--state-dir", type=Path, default=None,
                       help="folder of the webhook's durable alert store (default: "
                            "exporter.state_dir, else $XDG_STATE_HOME/vigil or "
                            "~/.local/state/vigil)")
    serve.add_argument("--handler", action="append", default=[], metavar="MODULE:CALLABLE",
                       help="an alert handler to call with every webhook alert (repeatable); "
                            "the module is imported from the current folder or PYTHONPATH")

    demo = commands.add_parser(
        "demo", help="run the simulated agent application with the exporter",
        description="Run a simulated agent application instrumented with vigil, serve its "
                    "exporter and, when the prometheus and prometheus-alertmanager binaries "
                    "are on PATH, a local Prometheus and Alertmanager wired to it.")
    _config_option(demo)
    demo.add_argument("--duration", type=_positive_float, default=None,
                      help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--port", type=_port, default=None,
                      help="exporter port (default: exporter.port, 9464; 0 picks a free one)")
    demo.add_argument("--state-dir", type=Path, default=None,
                      help="folder of the webhook's alert store (default: a temporary folder, "
                           "removed at the end)")
    demo.add_argument("--no-stack", action="store_true",
                      help="do not start Prometheus and Alertmanager even if installed")
    demo.add_argument("--log-file", type=Path, default=Path("vigil-demo.log"),
                      help="append the JSON log lines to this file (default: vigil-demo.log "
                           "in the current folder), or - for stdout; the terminal shows the "
                           "links and a progress line")
    demo.add_argument("--scale", type=_positive_float, default=1.0,
                      help="multiply the simulated durations (smaller is faster; default 1.0)")
    demo.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable run")
    demo.add_argument("--progress-interval", type=_positive_float, default=5.0,
                      help="seconds between two progress lines (default 5)")

    rules = commands.add_parser(
        "rules", help="write the alerting and recording rules, Alertmanager/Prometheus configs, "
                      "runbook and Grafana dashboards for your own Prometheus and Grafana",
        description="Write vigil's rules (rendered for your selector with --set), the "
                    "Alertmanager and Prometheus configs, the runbook and the dashboards with "
                    "their provisioning into --out: DIR/alerts/ and DIR/dashboards/. The "
                    "demo's own alerts are left out.")
    rules.add_argument("--out", type=Path, required=True, help="folder to write into")
    rules.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="a rules setting, e.g. job=myapp, selector='namespace=\"shop\"', "
                            "runbook_base=https://wiki/vigil, oncall_email=you@example.com "
                            "(repeatable; the names are alerts/build.py's Settings)")

    check = commands.add_parser(
        "check", help="validate a config file, and the alert rules and Alertmanager config",
        description="Validate a vigil config file; with promtool and amtool on PATH, also "
                    "check alerts/*.rules.yml, alerts/prometheus.yml and alerts/alertmanager.yml.")
    _config_option(check)
    check.add_argument("--alerts-dir", type=Path, default=ALERTS_DIR,
                       help=f"folder with the rules and configs (default: {ALERTS_DIR})")
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="vigil YAML config (default: $VIGIL_CONFIG, else built-in defaults)")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 65535")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def _configure(path: Path | None, overrides: dict[str, Any] | None = None) -> vigil.VigilConfig:
    """Install the config file (or $VIGIL_CONFIG), the VIGIL_* variables, then ``overrides``:
    the command line's options win over both."""
    return configure(str(path) if path is not None else None, overrides=overrides)


def _serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``vigil serve``'s options as config overrides (only those given)."""
    state_dir = None if args.state_dir is None else str(args.state_dir)
    exporter = {name: value for name, value in (
        ("host", args.host), ("port", args.port), ("state_dir", state_dir)) if value is not None}
    overrides: dict[str, Any] = {"exporter": exporter} if exporter else {}
    if args.log_level is not None:
        # The flag and monitoring.logging.level are one setting: every StructuredLogger, the
        # root logger and uvicorn then follow the same level.
        overrides["monitoring"] = {"logging": {"level": args.log_level}}
    return overrides


def load_handler(spec: str) -> Callable[..., Any]:
    """``"module:callable"`` (the attribute may be dotted) -> the callable; CommandError else.

    The current folder is searched first, as ``python -m`` and gunicorn do.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CommandError(f"--handler {spec!r}: expected MODULE:CALLABLE, e.g. "
                           "myalerts:on_alert")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or whatever the module raises on import
        raise CommandError(f"--handler {spec!r}: cannot import {module_name!r}: "
                           f"{type(err).__name__}: {err}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(f"--handler {spec!r}: {module_name!r} has no attribute "
                               f"{attribute!r}") from None
    if not callable(target):
        raise CommandError(f"--handler {spec!r}: {attribute!r} is not callable")
    handler: Callable[..., Any] = target
    return handler


def _serve(args: argparse.Namespace) -> int:
    from vigil_exporter.app import create_app
    from vigil_exporter.policy import exposure_warning
    from vigil_exporter.server import serve_forever
    from vigil_exporter.store import open_store

    config = _configure(args.config, _serve_overrides(args))
    settings = config.exporter
    level = config.monitoring.logging.level
    vigil.configure_logging(level)
    handlers = [load_handler(spec) for spec in args.handler]
    for handler in handlers:
        vigil.alert_manager.register_handler(handler)
    try:
        store = open_store(settings)
    except (OSError, RuntimeError) as err:
        raise CommandError(f"cannot open the alert store: {err}") from None
    except Exception as err:  # the Redis client's errors, sqlite3.DatabaseError, ...
        raise CommandError(f"cannot open the alert store: {type(err).__name__}: {err}") \
            from None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    warning = exposure_warning(settings)
    if warning is not None:
        print(f"vigil: warning: {warning}", file=sys.stderr)
    print(f"vigil: console http://{host}:{settings.port}/ (metrics: /metrics; webhook: "
          f"{settings.webhook_path}; store: {store!r}; handlers: {len(handlers)}); Ctrl-C stops",
          file=sys.stderr)
    try:
        serve_forever(settings, app=create_app(settings=settings, store=store),
                      log_level=level.lower())
    except (OSError, RuntimeError) as err:
        raise CommandError(str(err)) from None
    finally:
        store.close()
    return 0


_TOOLS_HINT = "(Debian: apt-get install prometheus prometheus-alertmanager)"


def _check(args: argparse.Namespace) -> int:
    """Check the config, then every rule file and config in ``--alerts-dir`` with promtool and
    amtool; say what was checked, and fail when something fails or nothing could be checked."""
    source = str(args.config) if args.config is not None else None
    load_config(source)  # raises ConfigError with the key, the value and what is allowed
    print(f"config: OK ({source or 'defaults and VIGIL_* variables'})", file=sys.stderr)
    tools = {"promtool": shutil.which("promtool"), "amtool": shutil.which("amtool")}
    missing = " and ".join(name for name, path in tools.items() if not path)
    checks = _planned_checks(args.alerts_dir, tools)
    if not checks:
        raise CommandError(f"checked nothing in {str(args.alerts_dir)!r}: {missing} not on "
                           f"PATH {_TOOLS_HINT}")
    failures = [name for name, where, argv in checks if not _passes(name, where, argv)]
    if missing:
        print(f"note: {missing} not on PATH; those checks skipped {_TOOLS_HINT}",
              file=sys.stderr)
    if failures:
        raise CommandError(f"check failed: {', '.join(failures)}")
    return 0


def _planned_checks(alerts: Path, tools: dict[str, str | None]
                    ) -> list[tuple[str, str, list[str]]]:
    """``(what, where, command)`` for each file in ``alerts`` an installed tool can check."""
    if not alerts.is_dir():
        raise CommandError(f"--alerts-dir {str(alerts)!r} is not a folder (it should hold "
                           "*.rules.yml, prometheus.yml and alertmanager.yml)")
    rules = sorted(str(p) for p in alerts.glob("*.rules.yml"))
    prometheus, alertmanager = alerts / "prometheus.yml", alerts / "alertmanager.yml"
    if not rules and not prometheus.exists() and not alertmanager.exists():
        raise CommandError(f"nothing to check in {str(alerts)!r}: no *.rules.yml, "
                           "prometheus.yml or alertmanager.yml")
    promtool, amtool = tools["promtool"], tools["amtool"]
    checks: list[tuple[str, str, list[str]]] = []
    if promtool and rules:
        checks.append(("rules", f"{len(rules)} file{'s' if len(rules) != 1 else ''} in {alerts}",
                       [promtool, "check", "rules", *rules]))
    if promtool and prometheus.exists():
        checks.append(("prometheus config", str(prometheus),
                       [promtool, "check", "config", str(prometheus)]))
    if amtool and alertmanager.exists():
        checks.append(("alertmanager config", str(alertmanager),
                       [amtool, "check-config", str(alertmanager)]))
    return checks


def _passes(name: str, where: str, argv: list[str]) -> bool:
    """Run one check and say how it went (its output when it fails)."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        print(f"{name}: OK ({where})", file=sys.stderr)
        return True
    print(f"{name}: FAILED\n{(result.stdout + result.stderr).strip()}", file=sys.stderr)
    return False


def _load_shipped(name: str, folder: Path) -> Any:
    """Import the shipped package in ``folder`` (alerts/ or dashboards/) under a private name:
    from a checkout or a wheel alike, and whatever its folder is called."""
    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, init if init.exists() else folder / "build.py",
        submodule_search_locations=[str(folder)] if init.exists() else None)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot load {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: relative imports look it up there
    spec.loader.exec_module(module)
    return module


def _rules(args: argparse.Namespace) -> int:
    """Write the rules for ``--set`` settings, the configs, runbook and dashboards into --out."""
    alerts, dashboards = alerts_dir(), dashboards_dir()
    build = _load_shipped("_vigil_shipped_alerts_build", alerts)
    pairs: dict[str, str] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    try:
        settings = build.Settings.from_overrides(pairs)
    except ValueError as err:  # SettingsError: "key: got ...; allowed ..."
        raise CommandError(f"--set {err}") from None
    out: Path = args.out
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for name, text in build.render(settings, demo=False).items():
        write(f"alerts/{name}", text)
    write("alerts/runbook.md", (alerts / "runbook.md").read_text(encoding="utf-8"))
    if not pairs:  # the promtool tests hold the shipped thresholds and selector
        for test in sorted((alerts / "tests").glob("*.yml")):
            if test.name != "demo.yml":
                write(f"alerts/tests/{test.name}", test.read_text(encoding="utf-8"))
    _load_shipped("_vigil_shipped_dashboards", dashboards)
    model = importlib.import_module("_vigil_shipped_dashboards.model")  # pure JSON, no SDK
    for source in sorted((dashboards / "json").glob("*.json")):
        dashboard = json.loads(source.read_text(encoding="utf-8"))
        if settings.jobs:
            dashboard = model.with_defaults(dashboard, job=list(settings.jobs))
        write(f"dashboards/json/{source.name}",  # as dashboards/build.py writes JSON
              json.dumps(dashboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    for source in sorted((dashboards / "provisioning").rglob("*.yml")):
        write(f"dashboards/{source.relative_to(dashboards)}",
              source.read_text(encoding="utf-8"))
    print(f"wrote {len(written)} files into {out} (selector {settings.selector}): "
          f"alerts/ for Prometheus (rule_files: {', '.join(build.RULE_FILES)}) and "
          "Alertmanager, dashboards/ for Grafana", file=sys.stderr)
    return 0


def _require_exporter(command: str) -> None:
    """``vigil serve``/``demo`` need the exporter extra; without it, say so in one line."""
    missing = [name for name in ("fastapi", "uvicorn", "h11")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(f"`vigil {command}` needs the exporter ({', '.join(missing)} not "
                           "installed): pip install 'vigil[exporter]'")


def _demo(args: argparse.Namespace) -> int:
    from vigil_exporter.demo_runner import run_demo

    config = _configure(args.config)
    log_file = None if str(args.log_file) == "-" else args.log_file
    return run_demo(config, duration=args.duration, port=args.port, stack=not args.no_stack,
                    state_dir=args.state_dir,
                    log_file=log_file, scale=args.scale, seed=args.seed,
                    progress_interval=args.progress_interval)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vigil`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"serve": _serve, "check": _check, "demo": _demo, "rules": _rules}
    try:
        if args.command in ("serve", "demo"):
            _require_exporter(args.command)
        return handlers[args.command](args)
    except (ConfigError, CommandError) as err:
        print(f"vigil: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a port in use, a state folder that cannot be written, ...
        message = str(err)  # "[Errno 98] cannot listen on ...": the words, not the number
        print(f"vigil: error: {message.split('] ', 1)[-1]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # python -m vigil_exporter.cli
    sys.exit(main())
