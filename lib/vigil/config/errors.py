"""The one error of vigil's settings: :class:`ConfigError`, naming the key, the value and what
is allowed, and hiding the value when it may be a secret."""

from __future__ import annotations

from vigil.config.masking import Hidden

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A setting is wrong. ``key`` is the dotted path, ``value`` what was given.

    With ``secret=True`` the value is never kept nor shown (``value`` is a stand-in whose repr
    is ``<secret>`` or ``a value of type int``).
    """

    def __init__(self, key: str, value: object, allowed: str, *, hint: str = "",
                 secret: bool = False) -> None:
        if secret and not isinstance(value, Hidden):
            value = Hidden(value)
        self.key = key
        self.value = value
        self.allowed = allowed
        self.hint = hint
        message = f"{key}: got {value!r}; {allowed}" if key else f"got {value!r}; {allowed}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key placed under ``prefix``."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.value, self.allowed, hint=self.hint)

    @property
    def secret(self) -> bool:
        """Whether the value is hidden."""
        return isinstance(self.value, Hidden)


# Its public home: a traceback names vigil.config.ConfigError, as users import it.
ConfigError.__module__ = "vigil.config"
