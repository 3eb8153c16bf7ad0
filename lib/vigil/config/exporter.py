"""The ``exporter.*`` settings: where the exporter listens, who may call it, its webhook, its
alert store and delivery, and its HTTP limits; with the checks that span several fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vigil.config.errors import ConfigError
from vigil.config.fields import Settings, positive, setting
from vigil.config.hosts import HOST_ENTRY, ORIGIN_ENTRY, is_loopback_host
from vigil.config.masking import masked_repr

__all__ = ["ExporterSettings"]


@dataclass(frozen=True)
class ExporterSettings(Settings):
    host: str = setting("127.0.0.1", doc="address the exporter binds (loopback unless told)")
    port: int = setting(9464, minimum=0, doc="TCP port of the exporter (0: any free port)")
    webhook_path: str = setting(
        "/alertmanager/webhook", doc="path of the Alertmanager webhook receiver")
    webhook_bearer_token: str = setting(
        "", secret=True,
        doc="token the webhook requires as 'Authorization: Bearer ...' (empty: no token)")
    webhook_username: str = setting(
        "", doc="user the webhook requires with HTTP basic auth (empty: no basic auth)")
    webhook_password: str = setting("", secret=True, doc="password for webhook_username")
    api_bearer_token: str = setting(
        "", secret=True,
        doc="token /metrics, /api/* and the docs require as 'Authorization: Bearer ...' "
            "(Prometheus: authorization.credentials); empty: none. /healthz, /readyz open")
    api_username: str = setting(
        "", doc="user /metrics, /api/* and the docs require with HTTP basic auth "
                "(Prometheus: basic_auth); empty: no basic auth")
    api_password: str = setting("", secret=True, doc="password for api_username")
    allowed_hosts: tuple[str, ...] = setting(
        [], doc="Host header names answered besides localhost, 127.0.0.1, [::1], the bound "
                "address and (bound beyond loopback) the machine's hostname; .example.com "
                "matches its subdomains, * any host; others get 421 (DNS rebinding)")
    allowed_origins: tuple[str, ...] = setting(
        [], doc="browser origins (scheme://host[:port]) allowed besides the exporter's own to "
                "call the webhook, /api/* and /metrics; * allows any; others get 403")
    docs_enabled: bool = setting(
        False, doc="serve Swagger UI at /docs and ReDoc at /redoc (their scripts load from "
                   "the jsDelivr CDN); /openapi.json is always served")
    require_webhook_credentials: bool = setting(
        False, doc="refuse to start when host is beyond loopback and the webhook has no "
                   "credentials (the container image sets it)")
    max_body_bytes: int = setting(
        1_048_576, minimum=1, doc="largest request body accepted; larger ones get 413")
    api_max_bytes: int = setting(
        8_388_608, minimum=1024, doc="largest answer of a /api/* list: entries past it are "
                                     "left out (the answer says how many it kept)")
    webhook_dedup_size: int = setting(
        10_000, minimum=1,
        doc="alert identities remembered (in the store) to drop Alertmanager's redeliveries")
    replica_labels: tuple[str, ...] = setting(
        ["replica", "prometheus_replica", "__replica__"],
        doc="labels that tell the replicas of an HA Prometheus pair apart; ignored when "
            "deciding whether an alert is a redelivery")
    state_dir: str = setting(
        "", doc="folder of the alert store (SQLite); empty: $XDG_STATE_HOME/vigil, else "
                "~/.local/state/vigil (vigil demo: a temporary folder)")
    store_url: str = setting(
        "", secret=True,
        doc="empty: SQLite in state_dir; redis://host:port/db: a Redis store shared by "
            "receivers on several hosts (the redis extra); its user:password@ is never shown")
    store_max_alerts: int = setting(
        10_000, minimum=1, doc="alerts waiting for their handlers; when full the webhook "
                               "answers 503 so Alertmanager retries")
    store_max_bytes: int = setting(
        67_108_864, minimum=1, doc="bytes of the alerts waiting for their handlers; when "
                                   "full the webhook answers 503")
    dead_letter_limit: int = setting(
        10_000, minimum=0, doc="dead-lettered deliveries kept for inspection; past it the "
                               "oldest are discarded (counted and logged)")
    delivery_max_attempts: int = setting(
        5, minimum=1, doc="calls of a handler for one alert before it is dead-lettered")
    delivery_initial_delay: float = setting(
        1.0, minimum=0, doc="seconds before a failed delivery is tried again (doubling)")
    delivery_max_delay: float = setting(
        300.0, minimum=0, doc="cap on the seconds between two delivery attempts")
    delivery_poll_interval: float = positive(
        0.5, "seconds between two looks at the store for alerts that another receiver "
             "process accepted")
    lease_seconds: float = positive(
        30.0, "seconds a delivery stays claimed by a receiver that stopped renewing it "
              "(one that died on another host) before another takes it over")
    shutdown_timeout: float = positive(
        10.0, "seconds a stop waits for running handler calls; what is left stays in the "
              "store for the next start")
    request_timeout: float = positive(
        10.0, "seconds from the end of a request's head to the last byte of its body (the "
              "whole body, not each chunk); past it: 408 and the connection is closed")
    head_timeout: float = positive(
        10.0, "seconds from a connection's opening, or the end of the previous answer on a "
              "keep-alive connection, to the end of the request head (request line and "
              "headers); past it: 408 (nothing when no byte came) and the connection is closed")
    write_timeout: float = positive(
        10.0, "seconds an answer may wait with the client reading none of it (the server's "
              "send buffer full); past it the connection is aborted and the answer freed")
    max_connections: int = setting(
        1000, minimum=1, doc="open client connections at most, lowered at start to the "
                             "open-file limit minus 128; past it the oldest connection "
                             "waiting for a request head is closed, or the new one gets 503")

    def __post_init__(self) -> None:
        super().__post_init__()
        for check in _CHECKS:  # in this order: the first wrong one is the one reported
            check(self)

    def __repr__(self) -> str:
        return masked_repr(self)


def _check_address(settings: ExporterSettings) -> None:
    if settings.port > 65535:
        raise ConfigError("port", settings.port, "must be between 0 and 65535")
    if not settings.webhook_path.startswith("/"):
        raise ConfigError("webhook_path", settings.webhook_path, "must start with /")


def _check_store_url(settings: ExporterSettings) -> None:
    url = settings.store_url
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        # Not shown at all: a password may be anywhere in a URL that is not one.
        raise ConfigError("store_url", url,
                          "expected empty (SQLite in state_dir) or a redis://, rediss:// "
                          "or unix:// URL", hint="not shown: it may hold a password",
                          secret=True)


def _check_delivery_delays(settings: ExporterSettings) -> None:
    if settings.delivery_max_delay < settings.delivery_initial_delay:
        raise ConfigError("delivery_max_delay", settings.delivery_max_delay,
                          f"must be >= delivery_initial_delay "
                          f"({settings.delivery_initial_delay!r})")


def _check_basic_auth(settings: ExporterSettings) -> None:
    for user in ("webhook", "api"):
        username = getattr(settings, f"{user}_username")
        if bool(username) != bool(getattr(settings, f"{user}_password")):
            raise ConfigError(f"{user}_username", username,
                              f"basic auth needs both {user}_username and {user}_password")


def _entries_check(key: str, pattern: re.Pattern[str], allowed: str
                   ) -> Callable[[ExporterSettings], None]:
    """The check of list setting ``key``: each entry is ``*`` or matches ``pattern``."""
    def check(settings: ExporterSettings) -> None:
        for entry in getattr(settings, key):
            if entry != "*" and not pattern.fullmatch(entry):
                raise ConfigError(key, entry, allowed)
    return check


def _check_webhook_credentials(settings: ExporterSettings) -> None:
    if (settings.require_webhook_credentials and not is_loopback_host(settings.host)
            and not (settings.webhook_bearer_token or settings.webhook_username)):
        raise ConfigError(
            "require_webhook_credentials", True,
            f"host {settings.host} is beyond loopback and the webhook has no credentials: set "
            "exporter.webhook_bearer_token (VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN, or "
            "VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE naming a file that holds it), or "
            "webhook_username and webhook_password")


# The checks that span fields or need more than a field's declaration, run after those.
_CHECKS: tuple[Callable[[ExporterSettings], None], ...] = (
    _check_address,
    _check_store_url,
    _check_delivery_delays,
    _check_basic_auth,
    _entries_check("allowed_hosts", HOST_ENTRY,
                   "expected host names or IP addresses (no scheme, port or path), "
                   ".example.com for a domain and its subdomains, or *"),
    _entries_check("allowed_origins", ORIGIN_ENTRY,
                   "expected origins such as https://grafana.example or "
                   "http://localhost:3000 (scheme://host[:port], no path), or *"),
    _check_webhook_credentials,
)
