"""HTTP credentials, checked the way Prometheus and Alertmanager send them.

One :class:`Credentials` per guarded part of the exporter: the Alertmanager webhook
(``exporter.webhook_bearer_token`` / ``webhook_username`` + ``webhook_password``, what a
receiver's ``http_config`` sends) and the read side, ``/metrics``, ``/api/*`` and the docs
(``exporter.api_bearer_token`` / ``api_username`` + ``api_password``, what a scrape config's
``authorization`` or ``basic_auth`` sends). A bearer token, basic auth, or either of both.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass, field

from vigil.config import ExporterSettings

__all__ = ["Credentials", "WebhookAuth"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Optional credentials: a bearer token, basic auth, or either of both.

    Compared in constant time (``hmac.compare_digest`` on bytes). With none configured, every
    request passes. The repr never shows them.
    """

    bearer_token: bytes = field(default=b"", repr=False)
    username: bytes = field(default=b"", repr=False)
    password: bytes = field(default=b"", repr=False)

    @classmethod
    def from_settings(cls, settings: ExporterSettings) -> Credentials:
        """The webhook's credentials (``exporter.webhook_*``)."""
        return cls(settings.webhook_bearer_token.encode(), settings.webhook_username.encode(),
                   settings.webhook_password.encode())

    @classmethod
    def for_api(cls, settings: ExporterSettings) -> Credentials:
        """The credentials of ``/metrics``, ``/api/*`` and the docs (``exporter.api_*``)."""
        return cls(settings.api_bearer_token.encode(), settings.api_username.encode(),
                   settings.api_password.encode())

    @property
    def enabled(self) -> bool:
        """Whether credentials are required."""
        return bool(self.bearer_token or self.username)

    def check(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries configured credentials."""
        if not self.enabled:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        # Starlette decodes header bytes as latin-1; encoding back gives the bytes sent.
        raw = credentials.strip().encode("latin-1", errors="replace")
        scheme = scheme.lower()
        if scheme == "bearer" and self.bearer_token:
            return hmac.compare_digest(raw, self.bearer_token)
        if scheme == "basic" and self.username:
            try:
                decoded = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, colon, password = decoded.partition(b":")
            # Both compared, always: no early exit that would time the username.
            user_ok = hmac.compare_digest(user, self.username)
            password_ok = hmac.compare_digest(password, self.password)
            return bool(colon) and user_ok and password_ok
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value: every scheme that is configured."""
        schemes = []
        if self.bearer_token:
            schemes.append('Bearer realm="vigil"')
        if self.username:
            schemes.append('Basic realm="vigil", charset="UTF-8"')
        return ", ".join(schemes)


WebhookAuth = Credentials  # the name app.py exported before the API got credentials too
