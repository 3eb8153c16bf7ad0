"""How a secret is shown: never. A stand-in for a value that may be one (its type, not its
content), URLs with their credentials and query masked, and the settings' ``repr`` with secret
fields as ``'***'``."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Hidden", "mask_url", "masked_repr"]


class Hidden:
    """Stands for a value that may be a secret: its type is shown, never its content."""

    __slots__ = ("kind",)

    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return "<secret>" if self.kind == "str" else f"a value of type {self.kind}"


def mask_url(url: str) -> str:
    """``url`` with its ``user:password@`` and query masked: ``redis://***@host:6379/0``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    if "?" in rest:
        rest = rest.split("?", 1)[0] + "?***"
    return f"{scheme}{sep}{rest}"


def _shown(field: dataclasses.Field[Any], value: object) -> str:
    """How the repr shows one field's value: a set secret as '***' (a URL with only its
    credentials masked), a secret of the wrong type by its type, anything else as itself."""
    if not field.metadata.get("secret"):
        return repr(value)
    if not isinstance(value, str):
        return repr(Hidden(value))
    if not value:
        return repr(value)
    return repr(mask_url(value)) if field.name.endswith("_url") else "'***'"


def masked_repr(obj: Any) -> str:
    """The dataclass repr of ``obj`` with secret fields as '***' (or '' when unset)."""
    parts = [f"{f.name}={_shown(f, getattr(obj, f.name))}"
             for f in dataclasses.fields(obj) if f.repr]
    return f"{type(obj).__qualname__}({', '.join(parts)})"
