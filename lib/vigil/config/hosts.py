"""What a host looks like to the exporter's settings: whether binding one stays on this machine,
and the shapes of an ``allowed_hosts`` entry and an ``allowed_origins`` entry."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["HOST_ENTRY", "ORIGIN_ENTRY", "is_loopback_host"]

# A host name (.example.com: a domain and its subdomains), a bracketed IPv6 address or an IP.
HOST_ENTRY = re.compile(r"\.?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?|\[[0-9A-Fa-f:.]+\]"
                        r"|[0-9A-Fa-f:.]+")
# scheme://host[:port], no path.
ORIGIN_ENTRY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                          r"(:[0-9]{1,5})?/?")


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine (localhost, 127.x, ::1)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
